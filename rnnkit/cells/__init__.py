"""Recurrent cells, functional: ``*_step_forward(x, state, params) -> (state, cache)`` and
``*_step_backward(dstate, cache) -> grads``, one code path for numpy and torch.

Each cell type is also described by a :class:`Cell` object (``RNN_CELL``, ``GRU_CELL``,
``GRU_SIMPLE_CELL``, ``LSTM_CELL``; ``get_cell(name)``) so that :mod:`rnnkit.sequence` and
:mod:`rnnkit.modules` are generic over cells.
"""

from .base import Cell, input_projection
from .gru import (
    GRU_CELL,
    GRU_SIMPLE_CELL,
    gru_simple_step_backward,
    gru_simple_step_forward,
    gru_step_backward,
    gru_step_forward,
    gru_variant,
)
from .lstm import LSTM_CELL, lstm_step_backward, lstm_step_forward
from .rnn import RNN_CELL, rnn_step_backward, rnn_step_forward

CELLS = {cell.name: cell for cell in (RNN_CELL, GRU_CELL, GRU_SIMPLE_CELL, LSTM_CELL)}


def get_cell(cell):
    """A :class:`Cell` from itself or its name ('rnn', 'gru', 'gru_simple', 'lstm')."""
    if isinstance(cell, Cell):
        return cell
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {sorted(CELLS)} or a Cell, got {cell!r}")
    return CELLS[cell]


__all__ = [
    "Cell",
    "CELLS",
    "get_cell",
    "input_projection",
    "RNN_CELL",
    "GRU_CELL",
    "GRU_SIMPLE_CELL",
    "LSTM_CELL",
    "rnn_step_forward",
    "rnn_step_backward",
    "gru_step_forward",
    "gru_step_backward",
    "gru_simple_step_forward",
    "gru_simple_step_backward",
    "gru_variant",
    "lstm_step_forward",
    "lstm_step_backward",
]
