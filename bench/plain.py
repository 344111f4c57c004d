"""The peer of ``make bench``: recurrent layers written the plain CS231n way, in numpy.

What a careful student writes after CS231n's ``rnn_layers.py``: batch-major ``x (N, T, D)``,
weights stored for right-multiplication (``Wx (D, G*H)``, ``Wh (H, G*H)``), each step's
products computed inside the step (``x_t Wx + h_{t-1} Wh + b``), a Python list of per-step
caches, and a hand-written backward that accumulates the weight gradients step by step.
The gates follow torch's order (LSTM i, f, g, o; GRU r, z, n, with torch's reset gate applied
to ``W_hn h + b_hn``), so the results equal rnnkit's and torch's for the same weights.

``sigmoid`` is the short ``1 / (1 + exp(-a))`` (CS231n's masked "stable" version is slower;
the peer should be a fair one). Nothing here is used by rnnkit or the tests.
"""
import numpy as np


def sigmoid(a):
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-a))


def from_torch_names(params, G):
    """CS231n's weights from torch-named ones (``weight_ih_l0`` (G*H, D), ...)."""
    p = {k.removesuffix("_l0"): v for k, v in params.items()}
    Wx, Wh = np.ascontiguousarray(p["weight_ih"].T), np.ascontiguousarray(p["weight_hh"].T)
    if G == 3:  # torch's GRU: b_hn sits inside r ⊙ (W_hn h + b_hn), it cannot join b_in
        return Wx, Wh, p["bias_ih"].copy(), p["bias_hh"].copy()
    return Wx, Wh, p["bias_ih"] + p["bias_hh"]


# ------------------------------------------------------------------------------------ vanilla


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)
    return next_h, (x, prev_h, Wx, Wh, next_h)


def rnn_step_backward(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h = cache
    da = dnext_h * (1 - next_h**2)
    return da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da.sum(axis=0)


def rnn_forward(x, h0, Wx, Wh, b):
    N, T, _ = x.shape
    h, caches, prev_h = np.empty((N, T, h0.shape[1]), x.dtype), [], h0
    for t in range(T):
        prev_h, cache = rnn_step_forward(x[:, t], prev_h, Wx, Wh, b)
        h[:, t] = prev_h
        caches.append(cache)
    return h, caches


def rnn_backward(dh, caches):
    x0, _, Wx, Wh, _ = caches[0]
    N, T, H = dh.shape
    dx = np.empty((N, T, x0.shape[1]), dh.dtype)
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(H, dh.dtype)
    dprev_h = np.zeros((N, H), dh.dtype)
    for t in reversed(range(T)):
        dx[:, t], dprev_h, dWx_t, dWh_t, db_t = rnn_step_backward(dh[:, t] + dprev_h, caches[t])
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    return dx, dprev_h, dWx, dWh, db


# ------------------------------------------------------------------------------------ LSTM


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    H = prev_h.shape[1]
    a = x @ Wx + prev_h @ Wh + b
    i, f, g, o = sigmoid(a[:, :H]), sigmoid(a[:, H : 2 * H]), np.tanh(a[:, 2 * H : 3 * H]), sigmoid(a[:, 3 * H :])
    next_c = f * prev_c + i * g
    tanh_c = np.tanh(next_c)
    next_h = o * tanh_c
    return next_h, next_c, (x, prev_h, prev_c, Wx, Wh, i, f, g, o, tanh_c)


def lstm_step_backward(dnext_h, dnext_c, cache):
    x, prev_h, prev_c, Wx, Wh, i, f, g, o, tanh_c = cache
    dc = dnext_c + dnext_h * o * (1 - tanh_c**2)
    da = np.concatenate(
        [dc * g * i * (1 - i), dc * prev_c * f * (1 - f), dc * i * (1 - g**2), dnext_h * tanh_c * o * (1 - o)], axis=1
    )
    return da @ Wx.T, da @ Wh.T, dc * f, x.T @ da, prev_h.T @ da, da.sum(axis=0)


def lstm_forward(x, h0, Wx, Wh, b):
    N, T, _ = x.shape
    h, caches = np.empty((N, T, h0.shape[1]), x.dtype), []
    prev_h, prev_c = h0, np.zeros_like(h0)
    for t in range(T):
        prev_h, prev_c, cache = lstm_step_forward(x[:, t], prev_h, prev_c, Wx, Wh, b)
        h[:, t] = prev_h
        caches.append(cache)
    return h, caches


def lstm_backward(dh, caches):
    x0, _, _, Wx, Wh = caches[0][:5]
    N, T, H = dh.shape
    dx = np.empty((N, T, x0.shape[1]), dh.dtype)
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(4 * H, dh.dtype)
    dprev_h, dprev_c = np.zeros((N, H), dh.dtype), np.zeros((N, H), dh.dtype)
    for t in reversed(range(T)):
        dx[:, t], dprev_h, dprev_c, dWx_t, dWh_t, db_t = lstm_step_backward(dh[:, t] + dprev_h, dprev_c, caches[t])
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    return dx, dprev_h, dWx, dWh, db


# ------------------------------------------------------------------------------------- GRU


def gru_step_forward(x, prev_h, Wx, Wh, bx, bh):
    H = prev_h.shape[1]
    xw, hw = x @ Wx + bx, prev_h @ Wh + bh
    r = sigmoid(xw[:, :H] + hw[:, :H])
    z = sigmoid(xw[:, H : 2 * H] + hw[:, H : 2 * H])
    hn = hw[:, 2 * H :]
    n = np.tanh(xw[:, 2 * H :] + r * hn)
    next_h = (1 - z) * n + z * prev_h
    return next_h, (x, prev_h, Wx, Wh, r, z, n, hn)


def gru_step_backward(dnext_h, cache):
    x, prev_h, Wx, Wh, r, z, n, hn = cache
    dn = dnext_h * (1 - z) * (1 - n**2)
    dz = dnext_h * (prev_h - n) * z * (1 - z)
    dr = dn * hn * r * (1 - r)
    dxw = np.concatenate([dr, dz, dn], axis=1)
    dhw = np.concatenate([dr, dz, dn * r], axis=1)
    dprev_h = dnext_h * z + dhw @ Wh.T
    return dxw @ Wx.T, dprev_h, x.T @ dxw, prev_h.T @ dhw, dxw.sum(axis=0), dhw.sum(axis=0)


def gru_forward(x, h0, Wx, Wh, bx, bh):
    N, T, _ = x.shape
    h, caches, prev_h = np.empty((N, T, h0.shape[1]), x.dtype), [], h0
    for t in range(T):
        prev_h, cache = gru_step_forward(x[:, t], prev_h, Wx, Wh, bx, bh)
        h[:, t] = prev_h
        caches.append(cache)
    return h, caches


def gru_backward(dh, caches):
    x0, _, Wx, Wh = caches[0][:4]
    N, T, H = dh.shape
    dx = np.empty((N, T, x0.shape[1]), dh.dtype)
    dWx, dWh = np.zeros_like(Wx), np.zeros_like(Wh)
    dbx, dbh = np.zeros(3 * H, dh.dtype), np.zeros(3 * H, dh.dtype)
    dprev_h = np.zeros((N, H), dh.dtype)
    for t in reversed(range(T)):
        dx[:, t], dprev_h, dWx_t, dWh_t, dbx_t, dbh_t = gru_step_backward(dh[:, t] + dprev_h, caches[t])
        dWx += dWx_t
        dWh += dWh_t
        dbx += dbx_t
        dbh += dbh_t
    return dx, dprev_h, dWx, dWh, dbx, dbh


LAYERS = {"RNN": (1, rnn_forward, rnn_backward), "LSTM": (4, lstm_forward, lstm_backward),
          "GRU": (3, gru_forward, gru_backward)}
