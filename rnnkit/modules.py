"""torch.nn look-alikes: ``RNN``, ``GRU``, ``LSTM`` (stacked, bidirectional) and the cells
``RNNCell``, ``GRUCell``, ``LSTMCell``, with a hand-written ``backward``.

    m = LSTM(input_size=4, hidden_size=8, num_layers=2, bidirectional=True, seed=0)
    out, (h_n, c_n) = m(x)                # x (T, B, 4) -> out (T, B, 16), h_n (4, B, 8)
    dx, (dh0, dc0) = m.backward(d_out)    # fills m.grads (same keys as m.params)

A module holds its parameters (:class:`rnnkit.params.Parameters`), checks its own arguments
and hands the work to the functional layer: :func:`rnnkit.stacked.stacked_forward` /
:func:`~rnnkit.stacked.stacked_backward` for the sequence modules, the cells' step functions
for the cell modules.

Differences from torch, on purpose:

* parameters are **float64 by default** (an oracle and gradient checks want float64);
  ask for ``dtype="float32"`` or call ``m.to(dtype="float32")`` to match torch's default.
  Inputs must have the parameters' dtype (no silent casting).
* ``backward`` *sets* ``m.grads`` (it does not accumulate like torch's ``.grad``).
* arguments after ``num_layers`` are keyword-only (torch's positional order differs
  between RNN and LSTM/GRU).
* ``dropout=p`` is torch's (the outputs of every layer but the last, in training only:
  ``m.train()`` / ``m.eval()``); the masks come from the module's own generator, seeded by
  ``seed``. Two options torch's modules lack, between layers: ``residual=True`` adds each
  layer's input to its output from the second layer on, ``layer_norm=True`` normalises each
  layer's output over its features (parameters ``weight_ln_l{k}``, ``bias_ln_l{k}``, after
  torch's; see :mod:`rnnkit.sequence`).
* variable lengths come as ``lengths=`` or ``mask=`` instead of packed sequences; outputs
  at padded steps are 0 and ``h_n`` is each sequence's state after its last valid step,
  exactly as with torch's packed sequences.
* ``merge_mode`` ("concat" like torch, or "sum", "mul", "ave" like Keras) combines the two
  directions; the next layer's input size follows (2H for concat, H otherwise).
* ``return_sequences=False`` returns only the last valid output of each sequence,
  ``(B, D*H)``: for the forward direction the output at the sequence's last valid step,
  for the reverse direction (like Keras) the output at position 0, which is the one the
  reverse pass computes last. Both are the top layer's entries of ``h_n``.
"""

import warnings

import numpy as np

from .backend import first_nonfinite, no_autograd, resolve_dtype
from .cells import LSTM_CELL, RNN_CELL, get_cell, gru_variant
from .params import Parameters, uniform
from .sequence import initial_state
from .stacked import MERGE_MODES, layer_params, stacked_backward, stacked_forward, stacked_param_shapes
from .cells.base import check_choice

__all__ = ["RNNBase", "RNN", "GRU", "LSTM", "RNNCellBase", "RNNCell", "GRUCell", "LSTMCell", "MERGE_MODES"]


def _check_size(name, value, minimum=1):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_dropout(p, num_layers):
    if not isinstance(p, (int, float, np.floating)) or isinstance(p, bool) or not 0.0 <= p < 1.0:
        raise ValueError(f"dropout must be a probability in [0, 1), got {p!r}")
    if p > 0 and num_layers == 1:
        warnings.warn(f"dropout={p} acts between layers, so with num_layers=1 it does nothing (torch warns too)",
                      stacklevel=4)
    return float(p)


def _check_finite(xp, a, what, axes, error=ValueError):
    found = first_nonfinite(xp, a)
    if found is not None:
        index, count = found
        where = ", ".join(f"{ax}={i}" for ax, i in zip(axes, index))
        value = float(a[index])
        raise error(f"{what} has {count} non-finite value(s); the first is {what}[{where}] = {value}")


class RNNBase(Parameters):
    """Stacked, optionally bidirectional recurrent layers of one cell type, like torch's
    ``RNNBase`` (``cell`` is a :class:`rnnkit.cells.Cell` or its name: 'rnn', 'gru',
    'gru_simple', 'lstm'; ``cell_options`` are the cell's). :class:`RNN`, :class:`GRU` and
    :class:`LSTM` document the arguments, inputs and outputs; this class holds them.

    Parameters are named as torch names them: ``weight_ih_l{k}``, ``weight_hh_l{k}``,
    ``bias_ih_l{k}``, ``bias_hh_l{k}`` (and ``…_reverse`` for the reverse direction), all
    initialised from U(−1/√H, 1/√H) like torch's.
    """

    def __init__(self, cell, input_size, hidden_size, num_layers=1, *, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, merge_mode="concat", residual=False, layer_norm=False,
                 dtype="float64", seed=None, **cell_options):
        self.cell = get_cell(cell)
        self.cell_options = self.cell.resolve_options(cell_options)
        self.input_size = _check_size("input_size", input_size)
        self.hidden_size = _check_size("hidden_size", hidden_size)
        self.num_layers = _check_size("num_layers", num_layers)
        check_choice("merge_mode", merge_mode, MERGE_MODES)
        self.bias, self.batch_first, self.bidirectional = bool(bias), bool(batch_first), bool(bidirectional)
        self.merge_mode = merge_mode
        self.num_directions = 2 if bidirectional else 1
        self.dropout = _check_dropout(dropout, self.num_layers)
        self.residual, self.layer_norm = bool(residual), bool(layer_norm)
        self._rng = np.random.default_rng(seed)  # the initial weights, then the dropout masks
        shapes = stacked_param_shapes(self.cell, self.input_size, self.hidden_size, self.num_layers,
                                      self.bidirectional, merge_mode, self.bias, **self.cell_options)
        params = uniform(self._rng, 1.0 / np.sqrt(hidden_size), shapes, dtype)
        if self.layer_norm:  # gain 1 and shift 0, like torch's LayerNorm
            F = self.output_size
            for layer in range(self.num_layers):
                params[f"weight_ln_l{layer}"] = np.ones(F, dtype=resolve_dtype(dtype, "numpy"))
                params[f"bias_ln_l{layer}"] = np.zeros(F, dtype=resolve_dtype(dtype, "numpy"))
        self._set_params(params)

    def layer_params(self, layer, direction=0):
        """The parameters of one layer and direction, under the cell's names (``weight_ih``, …)."""
        return layer_params(self.params, layer, direction)

    @property
    def output_size(self):
        """Features of ``out``: D*H for concat, H for the other merge modes."""
        return 2 * self.hidden_size if self.bidirectional and self.merge_mode == "concat" else self.hidden_size

    def __repr__(self):
        extras = [f"num_layers={self.num_layers}"] if self.num_layers != 1 else []
        for name, default in (("bias", True), ("batch_first", False), ("dropout", 0.0), ("bidirectional", False),
                              ("residual", False), ("layer_norm", False)):
            if getattr(self, name) != default:
                extras.append(f"{name}={getattr(self, name)}")
        if self.bidirectional and self.merge_mode != "concat":
            extras.append(f"merge_mode={self.merge_mode!r}")
        extras += [f"{k}={v!r}" for k, v in self.cell_options.items() if v != self.cell.options[k]]
        extras.append(f"dtype={self.dtype}")
        return f"{type(self).__name__}({self.input_size}, {self.hidden_size}, {', '.join(extras)})"

    @no_autograd
    def forward(self, x, h0=None, lengths=None, mask=None, return_sequences=True, check_finite=False, *, hx=None):
        """``out, h_n = m(x, h0)`` (LSTM: ``out, (h_n, c_n) = m(x, (h0, c0))``); see the class docstring.

        ``hx=`` is accepted as torch's name for ``h0``. ``check_finite=True`` raises if inputs,
        parameters or outputs are not finite, naming the first bad entry. With ``dropout`` > 0
        and ``m.training`` (the default, as in torch), each call draws new masks.
        """
        if hx is not None:
            if h0 is not None:
                raise TypeError("give the initial state as h0 or as hx, not both")
            h0 = hx
        if check_finite:
            self._check_inputs_finite(x, h0)
        out, h_n, self._cache = stacked_forward(
            self.cell, x, h0, self.params, self.num_layers, bidirectional=self.bidirectional,
            merge_mode=self.merge_mode, batch_first=self.batch_first, lengths=lengths, mask=mask,
            return_sequences=return_sequences, dropout=self.dropout if self.training else 0.0,
            residual=self.residual, layer_norm=self.layer_norm, rng=self._rng, **self.cell_options,
        )
        if check_finite:
            self._check_outputs_finite(out, h_n, return_sequences)
        return out, h_n

    @no_autograd
    def backward(self, d_out, d_h_n=None, truncate=None):
        """BPTT through the last forward call: ``dx, dh0 = m.backward(d_out, d_h_n)``
        (LSTM: ``dx, (dh0, dc0) = m.backward(d_out, (d_h_n, d_c_n))``).

        ``d_out`` is shaped like ``out`` (or ``None``), ``d_h_n`` like ``h_n`` (or ``None``; for
        the LSTM either part may be ``None``). ``truncate=k`` truncates BPTT every k steps (see
        :func:`rnnkit.sequence.sequence_backward`). Sets ``m.grads``.
        """
        grads = stacked_backward(d_out, d_h_n, self._forward_cache(), truncate)
        self.grads = {name: grads[name] for name in self.params}
        dstate = (grads["h0"], grads["c0"]) if self.cell.has_cell_state else grads["h0"]
        return grads["x"], dstate

    def _check_inputs_finite(self, x, h0):
        xp = self._check_array(x, "x")
        _check_finite(xp, x, "x", ("b", "t", "i") if self.batch_first else ("t", "b", "i"))
        if h0 is not None:
            parts = h0 if self.cell.has_cell_state else (h0,)
            for name, part in zip(("h0", "c0"), parts):
                if part is not None:
                    _check_finite(xp, part, name, ("layer*direction", "b", "j"))
        for name, p in self.params.items():
            _check_finite(xp, p, name, ("row", "col"))

    def _check_outputs_finite(self, out, h_n, return_sequences):
        xp = self._check_array(out, "out")
        axes = ("b", "j") if not return_sequences else ("b", "t", "j") if self.batch_first else ("t", "b", "j")
        _check_finite(xp, out, "out", axes, FloatingPointError)
        for name, part in zip(("h_n", "c_n"), h_n if self.cell.has_cell_state else (h_n,)):
            _check_finite(xp, part, name, ("layer*direction", "b", "j"), FloatingPointError)


class RNN(RNNBase):
    r"""Elman RNN, like ``torch.nn.RNN``: for each layer, at every step t,

    .. math:: h_t = \phi(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh}),\qquad \phi = \tanh \text{ or ReLU}

    where :math:`x_t` is the input (layer 0) or the output of the layer below.

    Args:
        input_size: features I of ``x``.  hidden_size: H.  num_layers: stacked layers L (default 1).
        nonlinearity: ``"tanh"`` or ``"relu"``.  bias: with ``b_ih``, ``b_hh`` (default True).
        batch_first: ``x``/``out`` are ``(B, T, ·)`` instead of ``(T, B, ·)``.
        dropout: probability p of dropping each output of every layer but the last, in training
        (kept ones are scaled by 1/(1 − p)), like torch.
        bidirectional: D = 2 directions per layer.  merge_mode: how they combine (``"concat"``,
        ``"sum"``, ``"mul"``, ``"ave"``).
        residual: add each layer's input to its output, from the second layer on (not in torch).
        layer_norm: normalise each layer's output over its features, with a gain ``weight_ln_l{k}``
        (initially 1) and a shift ``bias_ln_l{k}`` (initially 0) (not in torch).
        dtype: ``"float64"`` (default) or ``"float32"``.
        seed: of the initialisation U(−1/√H, 1/√H), then of the dropout masks.

    Inputs: ``x, h0``
        x: ``(T, B, I)`` (batch_first: ``(B, T, I)``).  h0: ``(L*D, B, H)``, or None for zeros.
        lengths: ``(B,)`` integers in 1 … T, or mask: ``(T, B)`` of 0/1 (batch_first ``(B, T)``).

    Outputs: ``out, h_n``
        out: ``(T, B, D*H)`` for concat, ``(T, B, H)`` for the other merge modes (batch_first:
        batch first; ``return_sequences=False``: ``(B, ·)``, the last valid output).
        h_n: ``(L*D, B, H)``, each sequence's state after its last valid step.

    ``backward(d_out, d_h_n=None, truncate=None)`` returns ``dx, dh0`` and sets ``grads``.
    """

    def __init__(self, input_size, hidden_size, num_layers=1, *, nonlinearity="tanh", **kwargs):
        super().__init__(RNN_CELL, input_size, hidden_size, num_layers, nonlinearity=nonlinearity, **kwargs)

    @property
    def nonlinearity(self):
        return self.cell_options["nonlinearity"]


class GRU(RNNBase):
    r"""GRU, like ``torch.nn.GRU`` (gate order r, z, n): for each layer, at every step t,

    .. math::
        r_t = \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}),\quad
        z_t = \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}) \\
        n_t = \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn})),\quad
        h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}

    Args: as :class:`RNN` (without ``nonlinearity``), and
        reset_after: False applies r before W_hn, :math:`W_{hn}(r_t \odot h_{t-1}) + b_{hn}` (Cho 2014, Keras).
        update_weighs: ``"candidate"`` lets z weigh the candidate, :math:`(1 - z_t) \odot h_{t-1} + z_t \odot n_t`.
        simplified: the one-gate GRU (gate order u, c); equations in :mod:`rnnkit.cells.gru`.

    Inputs ``x, h0`` and outputs ``out, h_n``: as :class:`RNN`, with ``W_ih`` ``(3H, I)``.
    """

    def __init__(self, input_size, hidden_size, num_layers=1, *, reset_after=True, update_weighs="previous",
                 simplified=False, **kwargs):
        cell, options = gru_variant(simplified, reset_after, update_weighs)
        super().__init__(cell, input_size, hidden_size, num_layers, **options, **kwargs)
        self.simplified = bool(simplified)


class LSTM(RNNBase):
    r"""LSTM, like ``torch.nn.LSTM`` (gate order i, f, g, o): for each layer, at every step t,

    .. math::
        i_t = \sigma(W_{ii} x_t + b_{ii} + W_{hi} h_{t-1} + b_{hi}),\quad
        f_t = \sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf}) \\
        g_t = \tanh(W_{ig} x_t + b_{ig} + W_{hg} h_{t-1} + b_{hg}),\quad
        o_t = \sigma(W_{io} x_t + b_{io} + W_{ho} h_{t-1} + b_{ho}) \\
        c_t = f_t \odot c_{t-1} + i_t \odot g_t,\qquad h_t = o_t \odot \tanh(c_t)

    Args: as :class:`RNN` (without ``nonlinearity``), and
        peephole: adds :math:`w_{ci} \odot c_{t-1}`, :math:`w_{cf} \odot c_{t-1}` and
        :math:`w_{co} \odot c_t` to the gates' pre-activations (parameters ``weight_ci_l{k}``,
        ``weight_cf_l{k}``, ``weight_co_l{k}``, each ``(H,)``).

    Inputs: ``x, (h0, c0)``, each state ``(L*D, B, H)`` or None for zeros (either part may be None).
    Outputs: ``out, (h_n, c_n)``, as :class:`RNN`.
    ``backward(d_out, (d_h_n, d_c_n))`` returns ``dx, (dh0, dc0)``.
    """

    def __init__(self, input_size, hidden_size, num_layers=1, *, peephole=False, **kwargs):
        super().__init__(LSTM_CELL, input_size, hidden_size, num_layers, peephole=peephole, **kwargs)


# ---------------------------------------------------------------------------- cells


class RNNCellBase(Parameters):
    """One step of a cell, like torch's ``RNNCell``/``GRUCell``/``LSTMCell``: parameters
    ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh`` initialised from U(−1/√H, 1/√H).

    Inputs: ``x`` ``(B, input_size)`` and the state ``(B, hidden_size)`` (LSTMCell: the pair
    ``(h, c)``), None for zeros. Output: the new state. ``backward(dstate)`` after each call
    returns ``dx, dstate_prev`` and sets ``grads``. The equations are the step functions'
    (:func:`rnnkit.cells.rnn_step_forward`, …).
    """

    def __init__(self, cell, input_size, hidden_size, bias=True, *, dtype="float64", seed=None, **cell_options):
        self.cell = get_cell(cell)
        self.cell_options = self.cell.resolve_options(cell_options)
        self.input_size = _check_size("input_size", input_size)
        self.hidden_size = _check_size("hidden_size", hidden_size)
        self.bias = bool(bias)
        shapes = self.cell.param_shapes(self.input_size, self.hidden_size, self.bias, **self.cell_options)
        self._set_params(uniform(np.random.default_rng(seed), 1.0 / np.sqrt(hidden_size), shapes, dtype))

    def __repr__(self):
        extras = [] if self.bias else ["bias=False"]
        extras += [f"{k}={v!r}" for k, v in self.cell_options.items() if v != self.cell.options[k]]
        extras.append(f"dtype={self.dtype}")
        return f"{type(self).__name__}({self.input_size}, {self.hidden_size}, {', '.join(extras)})"

    @no_autograd
    def forward(self, x, hx=None):
        """``h = cell(x, h)`` (LSTMCell: ``h, c = cell(x, (h, c))``)."""
        self._check_array(x, "x")
        if len(x.shape) != 2:
            raise ValueError(f"x must be 2-D (B, input_size), got a {len(x.shape)}-D array of shape {tuple(x.shape)}")
        if x.shape[1] != self.input_size:
            raise ValueError(f"x has {x.shape[1]} features, expected input_size={self.input_size}")
        state = initial_state(hx, self.cell, (x.shape[0], self.hidden_size), x, names=("h", "c"),
                              expected="shape (B, hidden_size) = {shape}", owner=type(self).__name__,
                              pair="the state as a pair ({0}, {1}) of arrays")
        new, self._cache = self.cell.step_forward(x, state if self.cell.has_cell_state else state[0], self.params,
                                                  **self.cell_options)
        return new

    @no_autograd
    def backward(self, dstate):
        """Backward of the last call: ``dx, dh_prev = cell.backward(dh)`` (LSTMCell:
        ``dx, (dh_prev, dc_prev) = cell.backward((dh, dc))``, ``dc`` optional). Sets ``grads``."""
        cache = self._forward_cache()
        if self.cell.has_cell_state and not isinstance(dstate, (tuple, list)):
            dstate = (dstate, None)
        g = self.cell.step_backward(tuple(dstate) if self.cell.has_cell_state else dstate, cache)
        self.grads = {name: g[name] for name in self.params}
        if self.cell.has_cell_state:
            return g["x"], (g["h_prev"], g["c_prev"])
        return g["x"], g["h_prev"]


class RNNCell(RNNCellBase):
    """h = φ(W_ih x + b_ih + W_hh h_prev + b_hh), like ``torch.nn.RNNCell``: ``x (B, I)``,
    ``h_prev (B, H)`` → ``h (B, H)``; φ = tanh or ReLU (``nonlinearity``)."""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", **kwargs):
        super().__init__(RNN_CELL, input_size, hidden_size, bias, nonlinearity=nonlinearity, **kwargs)

    @property
    def nonlinearity(self):
        return self.cell_options["nonlinearity"]


class GRUCell(RNNCellBase):
    """One GRU step, like ``torch.nn.GRUCell``: ``x (B, I)``, ``h_prev (B, H)`` → ``h (B, H)``
    (equations and the options ``reset_after``, ``update_weighs``, ``simplified``: :class:`GRU`)."""

    def __init__(self, input_size, hidden_size, bias=True, *, reset_after=True, update_weighs="previous",
                 simplified=False, **kwargs):
        cell, options = gru_variant(simplified, reset_after, update_weighs)
        super().__init__(cell, input_size, hidden_size, bias, **options, **kwargs)
        self.simplified = bool(simplified)


class LSTMCell(RNNCellBase):
    """One LSTM step, like ``torch.nn.LSTMCell``: ``x (B, I)``, ``(h_prev, c_prev)`` each
    ``(B, H)`` → ``(h, c)`` (equations: :class:`LSTM`); ``peephole=True`` adds ``weight_ci``,
    ``weight_cf``, ``weight_co``."""

    def __init__(self, input_size, hidden_size, bias=True, *, peephole=False, **kwargs):
        super().__init__(LSTM_CELL, input_size, hidden_size, bias, peephole=peephole, **kwargs)
