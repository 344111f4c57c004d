"""The vanilla (Elman) RNN cell, forward and backward by hand.

    a_t = W_ih x_t + b_ih + W_hh h_{t−1} + b_hh
    h_t = φ(a_t),          φ = tanh or ReLU

Shapes: ``x (B, I)``, ``h (B, H)``, ``weight_ih (H, I)``, ``weight_hh (H, H)``,
``bias_ih``/``bias_hh (H,)`` (exactly torch.nn.RNNCell's; biases may be absent).
"""

from ..backend import multiply, namespace, no_autograd, tanh
from .base import Cell, check_choice, hidden_projection, input_projection, linear_param_grads

__all__ = ["rnn_step_forward", "rnn_step_backward", "rnn_core_forward", "rnn_core_backward", "RNN_CELL"]

NONLINEARITIES = ("tanh", "relu")


def _check_rnn(nonlinearity="tanh"):
    check_choice("nonlinearity", nonlinearity, NONLINEARITIES)


def relu(xp, a, out=None):
    """max(a, 0), into ``out`` if given."""
    r = xp.where(a > 0, a, 0.0)
    if out is None:
        return r
    out[...] = r
    return out


def rnn_core_forward(xw, h_prev, params, nonlinearity="tanh", out=None):
    """One step from the input projection ``xw = W_ih x + b_ih``:

        a = xw + W_hh h_prev + b_hh,    h = φ(a)

    ``a`` and then ``h`` are computed in place in ``out`` (a sequence passes its state
    buffer; by default a new array).
    """
    xp = namespace(xw)
    h = xp.empty_like(h_prev) if out is None else out
    a = hidden_projection(xp, h_prev, params, 1, blocks=0, out=h)  # W_hh h_prev + b_hh, in h
    a += xw
    h = tanh(xp, a, out=h) if nonlinearity == "tanh" else relu(xp, a, out=h)
    return h, (h, params["weight_hh"], nonlinearity)


def rnn_core_backward(dh, cache, out=None):
    """Backward of :func:`rnn_core_forward`:

        da = dh ⊙ φ'(a)    (tanh: 1 − h²;  ReLU: 1 where h > 0, else 0)
        dxw = da,          dh_prev = W_hhᵀ da   (rows: da @ W_hh)

    ``out`` is an array to write ``da`` into (by default a new one).
    """
    h, W_hh, nonlinearity = cache
    xp = namespace(h)
    if nonlinearity == "tanh":
        da = multiply(xp, dh, 1.0 - h * h, out=out)
    else:
        da = xp.where(h > 0, dh, 0.0)
        if out is not None:
            out[...] = da
            da = out
    return da, da @ W_hh


def rnn_param_grads(params, x, dxw, states_prev, states, core_caches, nonlinearity="tanh"):
    """dW_ih = daᵀ x, dW_hh = daᵀ h_prev, db_ih = db_hh = Σ da (rows of all steps)."""
    return linear_param_grads(params, x, dxw, states_prev[0])


@no_autograd
def rnn_step_forward(x, h_prev, params, nonlinearity="tanh"):
    """One step of the vanilla RNN:

        h = φ(W_ih x + b_ih + W_hh h_prev + b_hh),    φ = tanh or ReLU

    ``x (B, I)``, ``h_prev (B, H)``, ``params`` with ``weight_ih (H, I)``,
    ``weight_hh (H, H)`` and optionally ``bias_ih``, ``bias_hh (H,)``.
    Returns ``(h, cache)``.
    """
    _check_rnn(nonlinearity)
    namespace(x, h_prev, *params.values())  # one backend for all
    xw = input_projection(x, params)
    h, core = rnn_core_forward(xw, h_prev, params, nonlinearity)
    return h, (x, h_prev, h, params, core)


@no_autograd
def rnn_step_backward(dh, cache):
    """Backward of :func:`rnn_step_forward`. With da = dh ⊙ φ'(a):

        dx = W_ihᵀ da,  dh_prev = W_hhᵀ da,  dW_ih = da xᵀ,  dW_hh = da h_prevᵀ,
        db_ih = db_hh = da          (summed over the batch)

    Returns a dict with keys ``'x'``, ``'h_prev'`` and each parameter name.
    """
    x, h_prev, h, params, core = cache
    dxw, dh_prev = rnn_core_backward(dh, core)
    grads = rnn_param_grads(params, x, dxw, (h_prev,), (h,), [core])
    grads["x"] = dxw @ params["weight_ih"]
    grads["h_prev"] = dh_prev
    return grads


RNN_CELL = Cell(
    name="rnn",
    title="RNN",
    num_gates=1,
    has_cell_state=False,
    step_forward=rnn_step_forward,
    step_backward=rnn_step_backward,
    core_forward=rnn_core_forward,
    core_backward=rnn_core_backward,
    param_grads=rnn_param_grads,
    options={"nonlinearity": "tanh"},
    check_options=_check_rnn,
)
