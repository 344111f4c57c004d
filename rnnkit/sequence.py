"""The recurrence of one layer: any cell over time, with BPTT by hand, masks and truncation.

Time-major: ``x (T, B, I)``, outputs ``hs (T, B, H)``, states ``(B, H)`` (LSTM: a pair).

One layer, one direction (:func:`sequence_forward` / :func:`sequence_backward`), for
t = 0 … T−1 (``reverse=True``: t = T−1 … 0)::

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

Masks (variable lengths): ``mask (T, B)`` of 0/1 (from lengths: :func:`lengths_to_mask`).
A padded step (mask 0) changes neither the state nor any gradient: the state carries
through (state_t = state_{t−1}), the output there is 0 (like torch's packed sequences
padded with 0), the input there is ignored, and the final state of each sequence is its
state after its last valid step. A padded batch gives what each sequence run alone gives.
``reverse=True`` with a mask skips the padded tail, so each sequence is processed backwards
within its own length (like torch's packed sequences) and ``hs[t]`` stays aligned with ``x[t]``.

Layers × directions and what goes between layers are in :mod:`rnnkit.stacked`.

Every ``*_backward`` returns one dict of gradients, keyed by what they are the gradient
of: ``"x"``, the initial state (``"h0"``, LSTM also ``"c0"``) and each parameter by name.
"""

from dataclasses import dataclass

import numpy as np

from .backend import asarray_like, check_like, device_of, namespace, no_autograd, to_numpy, zeros
from .cells import get_cell
from .cells.base import input_projection, with_transposed_blocks

__all__ = [
    "sequence_forward",
    "sequence_backward",
    "lengths_to_mask",
    "as_bool_mask",
    "padding_mask",
    "initial_state",
    "check_input",
    "pack_state",
    "scan",
    "SequenceCache",
]


# ----------------------------------------------------------------------------- masks


def lengths_to_mask(lengths, T=None, batch_first=False, dtype=None):
    r"""Mask of the real (not padded) steps: :math:`m_{t,b} = 1` if :math:`t < \mathrm{length}_b`, else 0.

    Shape ``(T, B)`` (time-major, like the rest of rnnkit), or ``(B, T)`` with ``batch_first=True``.
    ``T`` defaults to the longest length. ``dtype`` defaults to the backend's default float (float64 for
    numpy). Works on numpy arrays, lists, and torch tensors of lengths.
    """
    if isinstance(lengths, (list, tuple)):
        lengths = np.asarray(lengths, dtype=np.int64)
    xp = namespace(lengths)
    if T is None:
        T = int(xp.max(lengths)) if lengths.shape[0] > 0 else 0
    if dtype is None:
        dtype = xp.__array_namespace_info__().default_dtypes(device=device_of(lengths))["real floating"]
    steps = xp.arange(T, device=device_of(lengths))
    mask = xp.astype(steps[:, None] < lengths[None, :], dtype)  # (T, B)
    return mask.T if batch_first else mask


def as_bool_mask(mask, T, B, batch_first=False, hint=""):
    """Check a mask of 0/1 (or booleans), ``(T, B)`` or ``(B, T)`` with ``batch_first``, and
    return it as ``(T, B)`` booleans (``hint`` is added to the shape error)."""
    xp = namespace(mask)
    expected = (B, T) if batch_first else (T, B)
    if tuple(mask.shape) != expected:
        layout = "(B, T)" if batch_first else "(T, B)"
        raise ValueError(f"mask must have shape {layout} = {expected}{hint}, got {tuple(mask.shape)}")
    if mask.dtype != xp.bool:
        if not bool(xp.all((mask == 0) | (mask == 1))):
            raise ValueError("mask must contain only 0 and 1 (or booleans)")
        mask = mask != 0
    return mask.T if batch_first else mask


def padding_mask(T, B, lengths=None, mask=None, batch_first=False, like=None):
    """The ``(T, B)`` boolean mask of the real steps from ``lengths`` (B integers in 1 … T) or
    ``mask`` (0/1, see :func:`as_bool_mask`), in the backend of the array ``like``; ``None`` when
    neither is given or nothing is padded."""
    if lengths is not None and mask is not None:
        raise ValueError("give either lengths or mask, not both")
    if mask is not None:
        mask = as_bool_mask(mask, T, B, batch_first, hint=" like x without its feature axis")
        return asarray_like(to_numpy(mask), like)
    if lengths is None:
        return None
    lengths = to_numpy(lengths)
    if lengths.shape != (B,):
        raise ValueError(f"lengths must have one entry per sequence, shape ({B},), got shape {lengths.shape}")
    if not np.issubdtype(lengths.dtype, np.integer):
        raise TypeError(f"lengths must be integers, got dtype {lengths.dtype}")
    if lengths.max() > T:
        raise ValueError(f"lengths must be at most the sequence length T={T}, got a length of {lengths.max()}")
    if lengths.min() < 1:
        raise ValueError(f"lengths must be at least 1, got a length of {lengths.min()}")
    if lengths.min() == T:
        return None  # no padding: the fast path
    return asarray_like(lengths_to_mask(lengths, T) != 0, like)


# ------------------------------------------------------------------------ arguments


def check_input(x, like, features, expected, batch_first=False, layout="(T, B, I)"):
    """``x``'s namespace, after checking that it is a non-empty 3-D array ``layout`` of ``like``'s
    backend, dtype and device with ``features`` features (``expected`` says where that number
    comes from)."""
    xp = check_like(x, "x", like)
    if len(x.shape) != 3:
        hint = " (add a batch axis for a single sequence)" if len(x.shape) == 2 else ""
        raise ValueError(f"x must be 3-D {layout}, got a {len(x.shape)}-D array of shape {tuple(x.shape)}{hint}")
    if x.shape[-1] != features:
        raise ValueError(f"x has {x.shape[-1]} features, expected {expected}")
    T, B = (x.shape[1], x.shape[0]) if batch_first else (x.shape[0], x.shape[1])
    if T == 0:
        raise ValueError("x is an empty sequence (T=0 steps); a sequence needs at least one step")
    if B == 0:
        raise ValueError("x has an empty batch (B=0)")
    return xp


def initial_state(state, cell, shape, like, names=("h0", "c0"), expected="shape (B, H) = {shape}", owner=None,
                  pair="the initial state as a pair ({0}, {1}) of arrays"):
    """``state`` as a tuple of parts (one array, LSTM: two), each of ``shape``, checked: a pair
    for a cell with a cell state, one array otherwise (``state`` or either part may be ``None``
    for zeros), of ``like``'s backend, dtype and device.

    The rest words the errors: ``names`` of the parts, the ``expected`` shape (formatted with
    ``shape``), the ``owner`` (default: the cell's title) and what it expects as a ``pair``, e.g.
    "LSTM expects the initial state as a pair (h0, c0) of arrays, got ndarray" or
    "h0 must have shape (B, H) = (3, 6), got (2, 6)".
    """
    cell = get_cell(cell)
    owner = cell.title if owner is None else owner
    xp = namespace(like)
    if state is None:
        return tuple(zeros(xp, shape, like) for _ in cell.state_names)
    if cell.has_cell_state:
        if not isinstance(state, (tuple, list)) or len(state) != 2:
            raise TypeError(f"{owner} expects {pair.format(*names)}, got {type(state).__name__}")
    elif isinstance(state, (tuple, list)):
        raise TypeError(f"{owner} expects {names[0]} as one array, got a {type(state).__name__}")
    parts = tuple(state) if cell.has_cell_state else (state,)
    checked = []
    for name, part in zip(names, parts):
        if part is None:
            part = zeros(xp, shape, like)
        check_like(part, name, like)
        if tuple(part.shape) != tuple(shape):
            raise ValueError(f"{name} must have {expected.format(shape=tuple(shape))}, got {tuple(part.shape)}")
        checked.append(part)
    return tuple(checked)


def pack_state(cell, parts):
    """A state from its parts: the pair for the LSTM, the one array otherwise."""
    return tuple(parts) if cell.has_cell_state else parts[0]


# ----------------------------------------------------------- one layer, one direction


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
    W_ih = params["weight_ih"]
    check_input(x, W_ih, W_ih.shape[1], f"{W_ih.shape[1]} (weight_ih is {tuple(W_ih.shape)})")
    T, B, _ = x.shape
    state = initial_state(state0, cell, (B, params["weight_hh"].shape[1]), x)
    mask = None if mask is None else as_bool_mask(mask, T, B)
    namespace(x, mask)  # one backend for both
    hs, state_T, cache = scan(cell, options, x, state, params, mask, reverse)
    return hs, pack_state(cell, state_T), cache


def scan(cell, options, x, state, params, mask, reverse):
    """The loop of :func:`sequence_forward`, on checked arguments (``state`` a tuple of parts,
    ``mask`` ``(T, B)`` booleans or None); the final state comes back as a tuple of parts.
    :mod:`rnnkit.stacked` runs each layer and direction with it, after checking the whole stack."""
    xp = namespace(x)
    T, B, I = x.shape
    H = params["weight_hh"].shape[1]
    if mask is not None:
        mask = mask[:, :, None]
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
    for t in range(T - 1, -1, -1) if reverse else range(T):
        # the cell reads the state before step t from the buffer and writes the new one into it
        prev = tuple(buffer[t + 1 - shift] for buffer in states)
        new = tuple(buffer[t + shift] for buffer in states)
        _, core_caches[t] = cell.core_forward(XW[t], pack_state(cell, prev), step_params, out=pack_state(cell, new), **options)
        if mask is not None:
            for part, before in zip(new, prev):
                part[...] = xp.where(mask[t], part, before)

    hs = states[0][:-1] if reverse else states[0][1:]
    # a new array, not a view of the cache: changing the output must not change the gradients
    hs = xp.where(mask, hs, 0.0) if mask is not None else xp.asarray(hs, copy=True)
    # the final state, a copy for the same reason (each sequence's state after its last valid step)
    last = 0 if reverse else T
    state_T = tuple(xp.asarray(buffer[last], copy=True) for buffer in states)
    return hs, state_T, SequenceCache(cell, options, params, x_rows, states, core_caches, mask, reverse, (T, B, I))


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

    Returns a dict: ``"x"`` ``(T, B, I)``, ``"h0"`` (LSTM also ``"c0"``) ``(B, H)``, and the
    gradient of each parameter under its name.
    """
    if truncate is not None and (not isinstance(truncate, int) or isinstance(truncate, bool) or truncate < 1):
        raise ValueError(f"truncate must be a positive integer or None, got {truncate!r}")
    c = cache
    cell, xp = c.cell, namespace(c.x)
    T, B, I = c.shape
    H = c.states[0].shape[-1]
    like = c.states[0][0]
    dstate = initial_state(dstate_T, cell, (B, H), like, names=("dh_T", "dc_T"), owner="sequence_backward",
                           expected="the shape of the final state, {shape}", pair="dstate_T=({0}, {1})")
    if dhs is not None:
        check_like(dhs, "dhs", like)
        if tuple(dhs.shape) != (T, B, H):
            raise ValueError(f"dhs must have the shape of hs, {(T, B, H)}, got {tuple(dhs.shape)}")
        if c.mask is not None:
            dhs = xp.where(c.mask, dhs, 0.0)  # outputs at padded steps are constant 0
    cut = _truncation_cuts(xp, c.mask, c.reverse, T, truncate)

    dXW = xp.empty((T, B, cell.num_gates * H), dtype=like.dtype, device=device_of(like))
    for t in range(T) if c.reverse else range(T - 1, -1, -1):
        if dhs is not None:
            dstate = (dstate[0] + dhs[t],) + dstate[1:]
        # the cell writes dxw_t straight into its rows of dXW
        dxw, dprev = cell.core_backward(pack_state(cell, dstate), c.core_caches[t], out=dXW[t])
        dprev = dprev if cell.has_cell_state else (dprev,)
        if c.mask is not None:
            # padded rows: dxw is 0 (their dstate part was not used) and dstate passes through
            valid = c.mask[t]
            dXW[t] = xp.where(valid, dxw, 0.0)
            dprev = tuple(xp.where(valid, dp, d) for dp, d in zip(dprev, dstate))
        if cut is not None and cut[t] is not None:
            dprev = tuple(xp.zeros_like(dp) if cut[t] is True else xp.where(cut[t], 0.0, dp) for dp in dprev)
        dstate = dprev

    dxw_rows = xp.reshape(dXW, (T * B, cell.num_gates * H))
    grads = {"x": xp.reshape(dxw_rows @ c.params["weight_ih"], (T, B, I))}
    grads.update(zip(("h0", "c0"), dstate))
    grads.update(cell.param_grads(c.params, c.x, dxw_rows, c.states_prev(), c.states_after(), c.core_caches,
                                  **c.options))
    return grads


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
