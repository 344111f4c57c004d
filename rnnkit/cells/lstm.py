"""The LSTM cell (optionally with Gers & Schmidhuber's peephole connections), by hand.

Gate blocks in torch's order (i, f, g, o): W_ih = [W_ii; W_if; W_ig; W_io] (4H, I),
W_hh (4H, H), b_ih, b_hh (4H,). The state is the pair (h, c):

    i = σ(W_ii x + b_ii + W_hi h_{t−1} + b_hi [+ w_ci ⊙ c_{t−1}])     input gate
    f = σ(W_if x + b_if + W_hf h_{t−1} + b_hf [+ w_cf ⊙ c_{t−1}])     forget gate
    g = tanh(W_ig x + b_ig + W_hg h_{t−1} + b_hg)                      candidate
    c_t = f ⊙ c_{t−1} + i ⊙ g
    o = σ(W_io x + b_io + W_ho h_{t−1} + b_ho [+ w_co ⊙ c_t])         output gate
    h_t = o ⊙ tanh(c_t)

The bracketed peephole terms are present with ``peephole=True``: diagonal weights
``weight_ci``, ``weight_cf``, ``weight_co`` of shape (H,); the input and forget gates
look at the previous cell c_{t−1}, the output gate at the new cell c_t.
"""

from ..backend import device_of, multiply, namespace, no_autograd, sigmoid, tanh, zeros
from .base import Cell, gate_blocks, hidden_projection, input_projection, linear_param_grads

__all__ = ["lstm_step_forward", "lstm_step_backward", "lstm_core_forward", "lstm_core_backward", "LSTM_CELL"]

PEEPHOLE_NAMES = ("weight_ci", "weight_cf", "weight_co")


def _check_lstm(peephole=False):
    if not isinstance(peephole, bool):
        raise TypeError(f"peephole must be True or False, got {peephole!r}")


def lstm_gates(xp, a):
    """``i, f, g, o = σ(a_i), σ(a_f), tanh(a_g), σ(a_o)``, in place in the blocks of ``a (4, B, H)``.

    One σ call over all four blocks costs fewer array operations than σ, tanh and σ apart
    (at B = 32, H = 128 their call overhead is a large part of a step), using
    tanh(a_g) = 2σ(2a_g) − 1.
    """
    i, f, g, o = a
    g *= 2.0
    sigmoid(xp, a, out=a)
    g *= 2.0
    g -= 1.0
    return i, f, g, o


def lstm_core_forward(xw, state_prev, params, peephole=False, out=None):
    """One LSTM step from the input projection ``xw = W_ih x + b_ih``:

        a = xw + W_hh h_prev + b_hh = [a_i, a_f, a_g, a_o]
        i = σ(a_i [+ w_ci ⊙ c_prev]),  f = σ(a_f [+ w_cf ⊙ c_prev]),  g = tanh(a_g)
        c = f ⊙ c_prev + i ⊙ g
        o = σ(a_o [+ w_co ⊙ c]),  h = o ⊙ tanh(c)

    ``a`` is held gate by gate, ``(4, B, H)``, and each gate overwrites its pre-activation
    in it (the cache keeps it: ``i, f, g, o = gates``). ``out=(h, c)`` are arrays to write
    the new state into (a sequence passes its state buffer); by default new arrays.
    """
    h_prev, c_prev = state_prev
    xp = namespace(xw)
    h, c = (xp.empty_like(h_prev), xp.empty_like(c_prev)) if out is None else out
    a = hidden_projection(xp, h_prev, params, 4)  # [W_hk h_prev + b_hk for k = i, f, g, o]
    a += gate_blocks(xp, xw, 4)
    a_i, a_f, a_g, a_o = a
    if peephole:  # o looks at the new c: i, f and g first
        a_i += params["weight_ci"] * c_prev
        a_f += params["weight_cf"] * c_prev
        i, f = sigmoid(xp, a[:2], out=a[:2])
        g = tanh(xp, a_g, out=a_g)
    else:
        i, f, g, o = lstm_gates(xp, a)
    multiply(xp, f, c_prev, out=c)
    c += i * g  # c = f ⊙ c_prev + i ⊙ g
    if peephole:
        a_o += params["weight_co"] * c
        o = sigmoid(xp, a_o, out=a_o)
    tanh_c = tanh(xp, c)
    multiply(xp, o, tanh_c, out=h)  # h = o ⊙ tanh(c)
    peep = tuple(params[k] for k in PEEPHOLE_NAMES) if peephole else None
    return (h, c), (c_prev, a, tanh_c, params["weight_hh"], peep)


def lstm_core_backward(dstate, cache, out=None):
    """Backward of :func:`lstm_core_forward`; ``dstate = (dh, dc)``, returns ``(dxw, (dh_prev, dc_prev))``.

        da_o = dh ⊙ tanh(c) ⊙ o ⊙ (1 − o)
        dc  ← dc + dh ⊙ o ⊙ (1 − tanh²(c))  [+ da_o ⊙ w_co]
        da_i = dc ⊙ g ⊙ i ⊙ (1 − i),   da_f = dc ⊙ c_prev ⊙ f ⊙ (1 − f)
        da_g = dc ⊙ i ⊙ (1 − g²)
        dxw = [da_i, da_f, da_g, da_o],   dh_prev = W_hhᵀ dxw
        dc_prev = dc ⊙ f  [+ da_i ⊙ w_ci + da_f ⊙ w_cf]

    ``out`` is a (B, 4H) array to write ``dxw`` into (by default a new one).
    """
    dh, dc = dstate
    c_prev, gates, tanh_c, W_hh, peep = cache
    xp = namespace(dh)
    i, f, g, o = gates
    da = gates * (1.0 - gates)  # σ'(a) = s ⊙ (1 − s) for the four gates at once; g's is replaced below
    da_i, da_f, da_g, da_o = da
    da_o *= dh * tanh_c
    dc = dc + dh * o * (1.0 - tanh_c * tanh_c)
    if peep is not None:
        dc += da_o * peep[2]
    da_i *= dc * g
    da_f *= dc * c_prev
    multiply(xp, dc * i, 1.0 - g * g, out=da_g)
    dc_prev = multiply(xp, dc, f, out=dc)
    if peep is not None:
        dc_prev += da_i * peep[0] + da_f * peep[1]
    dxw = xp.empty((dh.shape[0], 4 * dh.shape[1]), dtype=dh.dtype, device=device_of(dh)) if out is None else out
    gate_blocks(xp, dxw, 4)[...] = da  # [da_i, da_f, da_g, da_o] side by side
    return dxw, (dxw @ W_hh, dc_prev)


def lstm_param_grads(params, x, dxw, states_prev, states, core_caches, peephole=False):
    """dW_ih = daᵀ x, dW_hh = daᵀ h_prev, db_ih = db_hh = Σ da, and with peepholes

        dw_ci = Σ da_i ⊙ c_prev,   dw_cf = Σ da_f ⊙ c_prev,   dw_co = Σ da_o ⊙ c
    (sums over the rows of all steps).
    """
    h_prev, c_prev = states_prev
    grads = linear_param_grads(params, x, dxw, h_prev)
    if peephole:
        xp = namespace(dxw)
        H = h_prev.shape[-1]
        c = states[1]
        grads["weight_ci"] = xp.sum(dxw[:, :H] * c_prev, axis=0)
        grads["weight_cf"] = xp.sum(dxw[:, H : 2 * H] * c_prev, axis=0)
        grads["weight_co"] = xp.sum(dxw[:, 3 * H :] * c, axis=0)
    return grads


@no_autograd
def lstm_step_forward(x, state_prev, params, peephole=False):
    """One LSTM step (gate order i, f, g, o); ``state_prev = (h_prev, c_prev)``:

        i = σ(W_ii x + b_ii + W_hi h_prev + b_hi [+ w_ci ⊙ c_prev])
        f = σ(W_if x + b_if + W_hf h_prev + b_hf [+ w_cf ⊙ c_prev])
        g = tanh(W_ig x + b_ig + W_hg h_prev + b_hg)
        c = f ⊙ c_prev + i ⊙ g
        o = σ(W_io x + b_io + W_ho h_prev + b_ho [+ w_co ⊙ c])
        h = o ⊙ tanh(c)

    ``x (B, I)``, ``h_prev, c_prev (B, H)``, ``weight_ih (4H, I)``, ``weight_hh (4H, H)``,
    ``bias_ih``/``bias_hh (4H,)`` (optional), with ``peephole=True`` also
    ``weight_ci``, ``weight_cf``, ``weight_co (H,)``. Returns ``((h, c), cache)``.
    """
    _check_lstm(peephole)
    h_prev, c_prev = state_prev
    namespace(x, h_prev, c_prev, *params.values())  # one backend for all
    xw = input_projection(x, params)
    state, core = lstm_core_forward(xw, (h_prev, c_prev), params, peephole)
    return state, (x, (h_prev, c_prev), state, params, core, peephole)


@no_autograd
def lstm_step_backward(dstate, cache):
    """Backward of :func:`lstm_step_forward` (equations in :func:`lstm_core_backward`);
    ``dstate = (dh, dc)`` (either may be ``None`` for zero).

    Returns a dict with keys ``'x'``, ``'h_prev'``, ``'c_prev'`` and each parameter name.
    """
    x, state_prev, state, params, core, peephole = cache
    dh, dc = dstate
    xp = namespace(x)
    dh = zeros(xp, state[0].shape, state[0]) if dh is None else dh
    dc = zeros(xp, state[1].shape, state[1]) if dc is None else dc
    dxw, (dh_prev, dc_prev) = lstm_core_backward((dh, dc), core)
    grads = lstm_param_grads(params, x, dxw, state_prev, state, [core], peephole)
    grads["x"] = dxw @ params["weight_ih"]
    grads["h_prev"] = dh_prev
    grads["c_prev"] = dc_prev
    return grads


LSTM_CELL = Cell(
    name="lstm",
    title="LSTM",
    num_gates=4,
    has_cell_state=True,
    step_forward=lstm_step_forward,
    step_backward=lstm_step_backward,
    core_forward=lstm_core_forward,
    core_backward=lstm_core_backward,
    param_grads=lstm_param_grads,
    options={"peephole": False},
    check_options=_check_lstm,
    extra_param_names=lambda peephole=False: PEEPHOLE_NAMES if peephole else (),
)
