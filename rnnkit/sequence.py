"""Unrolling any cell over time, and backpropagation through time (BPTT), by hand.

Time-major: ``x (T, B, I)``, outputs ``hs (T, B, H)``, states ``(B, H)`` (LSTM: a pair).

Forward, for t = 0 … T−1 (``reverse=True``: t = T−1 … 0)::

    xw_t        = W_ih x_t + b_ih                       all T steps in one matmul
    state_t     = cell(xw_t, state_{t−1})               the recurrent part, step by step
    hs[t]       = h_t

When b_hh only adds to the pre-activations (every cell but torch's GRU, whose reset gate
scales b_hn), it joins b_ih in that one projection and the steps run without it. The
states live in one (T+1, B, H) buffer per state part: step t reads state_{t−1} from it
and writes state_t into it (``out=``), and the cells' caches hold views of it, so BPTT
keeps every state once.

Backward walks the steps in the opposite order; the gradient of the state flows from
each step into the one before, and the weight gradients of all steps are computed after
the loop in one matmul each (``dW_ih = Σ_t dxw_tᵀ x_t`` is a (G*H, T*B) @ (T*B, I) product).

Masks (variable lengths): ``mask (T, B)`` of 0/1 (from lengths:
``rnnkit.lengths_to_mask(lengths, T)``). A padded step (mask 0) changes neither
the state nor any gradient: the state carries through (state_t = state_{t−1}), the output
there is 0 (like torch's packed sequences padded with 0), the input there is ignored,
and the final state of each sequence is its state after its last valid step. A padded
batch gives what each sequence run alone gives.

Reverse direction (bidirectional layers): ``reverse=True`` runs t = T−1 … 0; with a
length mask the padded tail is skipped, so each sequence is processed backwards within
its own length (like torch's packed sequences) and ``hs[t]`` stays aligned with ``x[t]``.
"""

from dataclasses import dataclass

from .backend import device_of, namespace, no_autograd, zeros
from .cells import get_cell
from .cells.base import input_projection, with_transposed_blocks

__all__ = ["sequence_forward", "sequence_backward", "as_bool_mask", "SequenceCache"]


def as_bool_mask(mask, T, B, xp=None):
    """Check a ``(T, B)`` mask of 0/1 (or booleans) and return it as booleans."""
    xp = namespace(mask) if xp is None else xp
    if tuple(mask.shape) != (T, B):
        raise ValueError(f"mask must have shape (T, B) = ({T}, {B}), got {tuple(mask.shape)}")
    if mask.dtype == xp.bool:
        return mask
    if not bool(xp.all((mask == 0) | (mask == 1))):
        raise ValueError("mask must contain only 0 and 1 (or booleans)")
    return mask != 0


@dataclass
class SequenceCache:
    """What :func:`sequence_backward` needs from :func:`sequence_forward`.

    ``states`` holds one ``(T+1, B, H)`` buffer per state part (h; LSTM: h and c): the
    initial state and the state after every step; ``x`` is the input as ``(T*B, I)`` rows;
    ``core_caches[t]`` is the cell's cache of step t; ``mask`` is ``(T, B, 1)`` booleans.
    """

    cell: object
    options: dict
    params: dict
    x: object
    states: tuple
    core_caches: list
    mask: object
    reverse: bool
    shape: tuple

    def states_prev(self):
        """The state each step started from, as ``(T*B, H)`` rows in time order."""
        return self._rows(slice(1, None) if self.reverse else slice(None, -1))

    def states_after(self):
        """The state after each step, as ``(T*B, H)`` rows in time order."""
        return self._rows(slice(None, -1) if self.reverse else slice(1, None))

    def _rows(self, steps):
        T, B, _ = self.shape
        xp = namespace(self.x)
        return tuple(xp.reshape(s[steps], (T * B, s.shape[-1])) for s in self.states)


def _as_tuple(cell, state):
    return tuple(state) if cell.has_cell_state else (state,)


def _from_tuple(cell, parts):
    return tuple(parts) if cell.has_cell_state else parts[0]


@no_autograd
def sequence_forward(cell, x, state0, params, mask=None, reverse=False, **options):
    """Run ``cell`` over the sequence ``x (T, B, I)`` from ``state0``.

        xw_t = W_ih x_t + b_ih  (all t at once),   state_t = cell(xw_t, state_{t−1}),   hs[t] = h_t
        masked (mask[t, b] = 0):  state_t = state_{t−1},  hs[t] = 0

    ``cell`` is a :class:`rnnkit.cells.Cell` or its name ('rnn', 'gru', 'gru_simple',
    'lstm'); ``state0`` is ``(B, H)`` (LSTM: ``(h0, c0)``) or ``None`` for zeros; ``options``
    are the cell's (``nonlinearity``, ``reset_after``, ``update_weighs``, ``peephole``).
    ``reverse=True`` processes t = T−1 … 0 (within each sequence's length when masked).

    Returns ``(hs, state_T, cache)``: ``hs (T, B, H)``, the final state (for each sequence
    its state after its last valid step) and the cache for :func:`sequence_backward`.
    """
    cell = get_cell(cell)
    options = cell.resolve_options(options)
    xp = namespace(x, *params.values())
    if len(x.shape) != 3:
        raise ValueError(f"x must be 3-D (T, B, I), got {len(x.shape)}-D with shape {tuple(x.shape)}")
    T, B, I = x.shape
    if T == 0:
        raise ValueError("x is an empty sequence (T=0 steps); a sequence needs at least one step")
    H = params["weight_hh"].shape[1]
    if params["weight_ih"].shape[1] != I:
        expected = params["weight_ih"].shape[1]
        raise ValueError(f"x has {I} features, expected {expected} (weight_ih is {tuple(params['weight_ih'].shape)})")

    state = _initial_state(cell, state0, xp, B, H, x)
    if mask is not None:
        mask = as_bool_mask(mask, T, B, namespace(x, mask))[:, :, None]
        x = xp.where(mask, x, 0.0)  # inputs at padded steps are ignored

    x_rows = xp.reshape(x, (T * B, I))
    # b_hh is the same at every step: when it only adds to the pre-activations, it joins
    # b_ih in the input projection of all steps, and the steps run without it
    fold = params.get("bias_hh") is not None and cell.bias_hh_adds(**options)
    XW = xp.reshape(input_projection(x_rows, params, with_bias_hh=fold), (T, B, cell.num_gates * H))
    step_params = with_transposed_blocks({**params, "bias_hh": None} if fold else params, cell.num_gates)

    states = tuple(xp.empty((T + 1, B, H), dtype=x.dtype, device=device_of(x)) for _ in state)
    first, shift = (T, 0) if reverse else (0, 1)  # state after step t is states[t + shift]
    for buffer, part in zip(states, state):
        buffer[first] = part
    core_caches = [None] * T
    steps = range(T - 1, -1, -1) if reverse else range(T)
    for t in steps:
        # the cell reads the state before step t from the buffer and writes the new one into it
        prev = tuple(buffer[t + 1 - shift] for buffer in states)
        new = tuple(buffer[t + shift] for buffer in states)
        _, core_caches[t] = cell.core_forward(
            XW[t], _from_tuple(cell, prev), step_params, out=_from_tuple(cell, new), **options
        )
        if mask is not None:
            for part, before in zip(new, prev):
                part[...] = xp.where(mask[t], part, before)

    hs = states[0][:-1] if reverse else states[0][1:]
    # a new array, not a view of the cache: changing the output must not change the gradients
    hs = xp.where(mask, hs, 0.0) if mask is not None else xp.asarray(hs, copy=True)
    # the final state, a copy for the same reason (each sequence's state after its last valid step)
    last = 0 if reverse else T
    state_T = tuple(xp.asarray(buffer[last], copy=True) for buffer in states)
    cache = SequenceCache(cell, options, params, x_rows, states, core_caches, mask, reverse, (T, B, I))
    return hs, _from_tuple(cell, state_T), cache


@no_autograd
def sequence_backward(dhs, dstate_T, cache, truncate=None):
    """BPTT through :func:`sequence_forward`.

    ``dhs (T, B, H)`` is the gradient of the outputs (or ``None``), ``dstate_T`` that of the
    final state (``None``, or for the LSTM a pair whose parts may be ``None``).

    Walking the steps backwards, the state gradient of step t is ``dhs[t] + (what flows
    back from step t+1)``; the cell turns it into ``dxw_t`` and the gradient of the state
    before the step. Masked steps pass the state gradient through unchanged. After the
    loop, with the rows of all steps stacked (N = T*B):

        dx = dxw W_ih,    dW_ih = dxwᵀ x,    dW_hh = dxwᵀ h_prev, …   (one matmul each)

    ``truncate=k``: truncated BPTT as done in practice — the gradient that flows from step
    t into the state before it is cut when t is a positive multiple of k, counted in
    processing order and, with a mask, in valid steps of each sequence. This equals
    calling ``h.detach()`` before steps k, 2k, … in torch. ``truncate >= T`` is full BPTT
    (the gradient into ``state0`` is never cut).

    Returns ``(dx, dstate0, grads)``: ``dx (T, B, I)``, the gradient of ``state0`` and a
    dict of parameter gradients.
    """
    c = cache
    cell, xp = c.cell, namespace(c.x)
    T, B, I = c.shape
    H = c.states[0].shape[-1]
    if truncate is not None and (not isinstance(truncate, int) or isinstance(truncate, bool) or truncate < 1):
        raise ValueError(f"truncate must be a positive integer or None, got {truncate!r}")

    like = c.states[0][0]
    dstate = _as_tuple(cell, dstate_T) if dstate_T is not None else (None,) * len(c.states)
    dstate = tuple(zeros(xp, (B, H), like) if d is None else d for d in dstate)
    if dhs is not None and c.mask is not None:
        dhs = xp.where(c.mask, dhs, 0.0)  # outputs at padded steps are constant 0
    cut = _truncation_cuts(xp, c.mask, c.reverse, T, truncate)

    dXW = xp.empty((T, B, cell.num_gates * H), dtype=like.dtype, device=device_of(like))
    steps = range(T) if c.reverse else range(T - 1, -1, -1)
    for t in steps:
        if dhs is not None:
            dstate = (dstate[0] + dhs[t],) + dstate[1:]
        # the cell writes dxw_t straight into its rows of dXW
        dxw, dprev = cell.core_backward(_from_tuple(cell, dstate), c.core_caches[t], out=dXW[t])
        dprev = _as_tuple(cell, dprev)
        if c.mask is not None:
            # padded rows: dxw is 0 (their dstate part was not used) and dstate passes through
            valid = c.mask[t]
            dXW[t] = xp.where(valid, dxw, 0.0)
            dprev = tuple(xp.where(valid, dp, d) for dp, d in zip(dprev, dstate))
        if cut is not None and cut[t] is not None:
            dprev = tuple(xp.zeros_like(dp) if cut[t] is True else xp.where(cut[t], 0.0, dp) for dp in dprev)
        dstate = dprev

    dxw_rows = xp.reshape(dXW, (T * B, cell.num_gates * H))
    grads = cell.param_grads(
        c.params, c.x, dxw_rows, c.states_prev(), c.states_after(), c.core_caches, **c.options
    )
    dx = xp.reshape(dxw_rows @ c.params["weight_ih"], (T, B, I))
    return dx, _from_tuple(cell, dstate), grads


def _initial_state(cell, state0, xp, B, H, like):
    if state0 is None:
        return tuple(zeros(xp, (B, H), like) for _ in range(2 if cell.has_cell_state else 1))
    parts = _as_tuple(cell, state0)
    names = ("h0", "c0") if cell.has_cell_state else ("h0",)
    out = []
    for name, part in zip(names, parts):
        if part is None:
            part = zeros(xp, (B, H), like)
        namespace(like, part)
        if tuple(part.shape) != (B, H):
            raise ValueError(f"{name} must have shape (B, H) = ({B}, {H}), got {tuple(part.shape)}")
        out.append(part)
    return tuple(out)


def _truncation_cuts(xp, mask, reverse, T, truncate):
    """For each step t, where the gradient into the state before t is cut (or None).

    Without a mask: every row, when the step's position in processing order is a positive
    multiple of ``truncate``. With a mask: the rows for which step t is valid and the
    number of valid steps processed before it is a positive multiple of ``truncate``.
    """
    if truncate is None or truncate >= T:
        return None
    order = range(T - 1, -1, -1) if reverse else range(T)
    cuts = [None] * T
    if mask is None:
        for q, t in enumerate(order):
            if q > 0 and q % truncate == 0:
                cuts[t] = True
        return cuts
    done = xp.zeros(mask.shape[1:], dtype=xp.int64, device=device_of(mask))  # (B, 1) valid steps so far
    for t in order:
        valid = mask[t]
        cuts[t] = valid & (done > 0) & (done % truncate == 0)
        done = done + xp.astype(valid, xp.int64)
    return cuts
