"""Checks for exercise 2, the vanilla RNN: one step (tanh and ReLU), the unrolled forward pass over a
time-major sequence, the per-step linear head and a numerically stable softmax.

The expected values come from rnnkit (``rnn_step_forward``, ``sequence_forward``, ``linear_forward``,
``softmax``) on fresh random inputs; the ``mistakes`` are the same computations with one typical error
built in, so that a wrong answer is named in the student's terms.
"""
from __future__ import annotations

import numpy as np

from rnnkit.cells import rnn_step_forward as _rnnkit_step
from rnnkit.heads import linear_forward as _rnnkit_linear
from rnnkit.losses import softmax as _rnnkit_softmax
from rnnkit.sequence import sequence_forward as _rnnkit_sequence

from ..sandbox import Policy
from . import HELPERS
from .expect import (CheckFailure, call_student, copy_params, expect_array, expect_close, expect_tuple,
                     expect_unchanged, student_function)

#: what the student's notebook may import when it is graded
POLICY = Policy(packages=("numpy", "matplotlib"), rnnkit=HELPERS)
SPECS = ("step_forward", "forward", "linear_head", "softmax")
PARAM_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


# --------------------------------------------------------------------------------------------
# helpers shared with the other exercises on the vanilla cell (bptt, vanishing)
# --------------------------------------------------------------------------------------------

def random_rnn_params(rng, input_size, hidden_size, bias=True, gain=1.0):
    """torch-named parameters of a vanilla cell, scaled so that tanh is neither linear nor saturated."""
    params = {
        "weight_ih": rng.normal(0.0, gain / np.sqrt(input_size), (hidden_size, input_size)),
        "weight_hh": rng.normal(0.0, gain / np.sqrt(hidden_size), (hidden_size, hidden_size)),
    }
    if bias:
        params["bias_ih"] = rng.normal(0.0, 0.5, hidden_size)
        params["bias_hh"] = rng.normal(0.0, 0.5, hidden_size)
    return params


def _phi(a, nonlinearity):
    return np.tanh(a) if nonlinearity == "tanh" else np.maximum(a, 0.0)


def _sizes_note(**sizes):
    return ", ".join(f"{k}={v}" for k, v in sizes.items())


def _check_nonlinearity(nonlinearity):
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")


# --------------------------------------------------------------------------------------------
# 1. one step
# --------------------------------------------------------------------------------------------

def _step_mistakes(x, h_prev, params, nonlinearity):
    """Known wrong versions of one step, each with the message that names the error."""
    W_ih, W_hh = params["weight_ih"], params["weight_hh"]
    b_ih, b_hh = params.get("bias_ih", 0.0), params.get("bias_hh", 0.0)
    a = x @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh
    other = "relu" if nonlinearity == "tanh" else "tanh"
    names = {"tanh": "tanh", "relu": "ReLU, max(a, 0)"}
    out = {
        f"you applied {names[other]}, but nonlinearity={nonlinearity!r} asks for {names[nonlinearity]}":
            _phi(a, other),
        "no nonlinearity was applied: h_t = φ(a_t), with a_t the sum of the four terms": a,
        "the logistic sigmoid is not the vanilla cell's φ: use tanh (or ReLU when asked)": 1 / (1 + np.exp(-a)),
        "h_prev has no effect: the previous state enters through the term h_prev @ W_hh.T":
            _phi(x @ W_ih.T + b_ih + b_hh, nonlinearity),
    }
    if W_hh.shape[0] == W_hh.shape[1]:
        out["h_prev is multiplied by W_hh instead of its transpose: with one state per row, W_hh h_{t-1} "
            "is h_prev @ W_hh.T"] = _phi(x @ W_ih.T + b_ih + h_prev @ W_hh + b_hh, nonlinearity)
    if W_ih.shape[0] == W_ih.shape[1]:
        out["x is multiplied by W_ih instead of its transpose: with one input per row, W_ih x_t is "
            "x @ W_ih.T"] = _phi(x @ W_ih + b_ih + h_prev @ W_hh.T + b_hh, nonlinearity)
    if "bias_hh" in params:
        out["bias_hh is missing: both biases are added, b_ih and b_hh"] = _phi(a - b_hh, nonlinearity)
        out["bias_ih is missing: both biases are added, b_ih and b_hh"] = _phi(a - b_ih, nonlinearity)
        out["both biases are missing: a_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh"] = _phi(a - b_ih - b_hh,
                                                                                           nonlinearity)
    return out


def step_forward(student, rng, batch=3, input_size=4, hidden_size=5, nonlinearity="tanh"):
    """``rnn_step_forward(x, h_prev, params, nonlinearity)`` returns ``(h (B, H), cache)``."""
    _check_nonlinearity(nonlinearity)
    fn = student_function(student, "rnn_step_forward")
    params = random_rnn_params(rng, input_size, hidden_size)
    x = rng.normal(size=(batch, input_size))
    h_prev = rng.normal(0.0, 0.8, size=(batch, hidden_size))
    want, _ = _rnnkit_step(x, h_prev, params, nonlinearity)

    args = {"x": x.copy(), "h_prev": h_prev.copy()}
    passed = copy_params(params)
    out = call_student(fn, args["x"], args["h_prev"], passed, nonlinearity=nonlinearity)
    h, _cache = expect_tuple(out, 2, "rnn_step_forward", "(h, cache)")
    expect_close(h, want, "h", axes=("B", "H"), mistakes=_step_mistakes(x, h_prev, params, nonlinearity))
    expect_unchanged({"x": x, "h_prev": h_prev}, args, "rnn_step_forward")
    expect_unchanged({f"params[{k!r}]": v for k, v in params.items()},
                     {f"params[{k!r}]": v for k, v in passed.items()}, "rnn_step_forward")
    return f"rnn_step_forward: correct ({nonlinearity}, {_sizes_note(B=batch, I=input_size, H=hidden_size)})"


# --------------------------------------------------------------------------------------------
# 2. the whole sequence
# --------------------------------------------------------------------------------------------

def _step(x_t, h, params, nonlinearity):
    return _rnnkit_step(x_t, h, params, nonlinearity)[0]


def _forward_mistakes(x, h0, params, nonlinearity, hs_want):
    T, B, _ = x.shape
    H = params["weight_hh"].shape[0]
    start = np.zeros((B, H)) if h0 is None else h0
    zeros = np.zeros((B, H))
    out = {}
    if h0 is not None:
        out["every step starts from h0: carry the state, so that step t starts from h_{t-1}, the state "
            "the previous step returned"] = np.stack([_step(x[t], start, params, nonlinearity) for t in range(T)])
    out["every step starts from a zero state: step t must start from h_{t-1}, the state computed at the "
        "previous step (not from h_t, which does not exist yet)"] = np.stack(
        [_step(x[t], zeros, params, nonlinearity) for t in range(T)])
    shifted = np.concatenate([start[None], hs_want[:-1]], axis=0)
    out["hs[t] holds the state before step t (h_{t-1}); store the state after reading x_t, h_t"] = shifted
    if h0 is not None:
        h, ignored = zeros, []
        for t in range(T):
            h = _step(x[t], h, params, nonlinearity)
            ignored.append(h)
        out["h0 was ignored: the first step starts from the given h0"] = np.stack(ignored)
    h, backwards = start, [None] * T
    for t in reversed(range(T)):
        h = _step(x[t], h, params, nonlinearity)
        backwards[t] = h
    out["the steps ran from the last to the first: go forward in time, t = 0, 1, ..., T-1"] = np.stack(backwards)
    return out


def _step_note(student, rng, nonlinearity):
    """A hint appended to a failing sequence check when the student's own step is still wrong."""
    if not student.has("rnn_step_forward"):
        return ""
    params = random_rnn_params(rng, 3, 4)
    x, h_prev = rng.normal(size=(2, 3)), rng.normal(size=(2, 4))
    want, _ = _rnnkit_step(x, h_prev, params, nonlinearity)
    try:
        h = student.function("rnn_step_forward")(x, h_prev, copy_params(params), nonlinearity=nonlinearity)[0]
        if isinstance(h, np.ndarray) and h.shape == want.shape and np.allclose(h, want):
            return ""
    except (CheckFailure, TypeError, IndexError, KeyError):  # any failure: the step is not right yet
        pass
    return f" (note: your rnn_step_forward is not right yet for nonlinearity={nonlinearity!r}; fix it first)"


def forward(student, rng, T=4, batch=3, input_size=2, hidden_size=5, nonlinearity="tanh", h0="random"):
    """``rnn_forward(x, h0, params, nonlinearity)`` returns ``(hs (T, B, H), h_last (B, H), cache)``;
    ``h0=None`` means a zero initial state."""
    _check_nonlinearity(nonlinearity)
    fn = student_function(student, "rnn_forward")
    params = random_rnn_params(rng, input_size, hidden_size)
    x = rng.normal(size=(T, batch, input_size))
    state0 = None if h0 is None else rng.normal(0.0, 0.8, size=(batch, hidden_size))
    hs_want, h_want, _ = _rnnkit_sequence("rnn", x, state0, params, nonlinearity=nonlinearity)

    x_passed, h0_passed, passed = x.copy(), None if state0 is None else state0.copy(), copy_params(params)
    out = call_student(fn, x_passed, h0_passed, passed, nonlinearity=nonlinearity)
    hs, h_last, _cache = expect_tuple(out, 3, "rnn_forward", "(hs, h_last, cache)")
    try:
        expect_close(hs, hs_want, "hs", axes=("T", "B", "H"),
                     mistakes=_forward_mistakes(x, state0, params, nonlinearity, hs_want))
    except CheckFailure as failure:
        raise CheckFailure(str(failure) + _step_note(student, rng, nonlinearity)) from None
    start = np.zeros((batch, hidden_size)) if state0 is None else state0
    last_mistakes = {"h_last is the state after the first step; return the state after the last step, "
                     "h_T = hs[-1]": hs_want[0]}
    if T > 1:
        last_mistakes["h_last is the initial state; return the state after the last step, h_T = hs[-1]"] = start
    expect_close(h_last, h_want, "h_last", axes=("B", "H"), mistakes=last_mistakes if T > 1 else None)
    expect_unchanged({"x": x}, {"x": x_passed}, "rnn_forward")
    if state0 is not None:
        expect_unchanged({"h0": state0}, {"h0": h0_passed}, "rnn_forward")
    expect_unchanged({f"params[{k!r}]": v for k, v in params.items()},
                     {f"params[{k!r}]": v for k, v in passed.items()}, "rnn_forward")
    start_note = "zero h0" if state0 is None else "given h0"
    return (f"rnn_forward: correct ({nonlinearity}, {start_note}, "
            f"{_sizes_note(T=T, B=batch, I=input_size, H=hidden_size)})")


# --------------------------------------------------------------------------------------------
# 3. the output head
# --------------------------------------------------------------------------------------------

def linear_head(student, rng, leading=(3, 2), hidden_size=4, out_size=6):
    """``linear_head_forward(hs, params)`` with ``params = {"weight": (K, H), "bias": (K,)}`` returns
    ``(ys, cache)``, ``ys`` of shape ``hs.shape[:-1] + (K,)``."""
    fn = student_function(student, "linear_head_forward")
    leading = tuple(int(n) for n in leading)
    hs = rng.uniform(-1.0, 1.0, size=leading + (hidden_size,))
    W = rng.normal(0.0, 1.0 / np.sqrt(hidden_size), (out_size, hidden_size))
    b = rng.normal(0.0, 0.5, out_size)
    want, _ = _rnnkit_linear(hs, W, b)

    hs_passed, passed = hs.copy(), {"weight": W.copy(), "bias": b.copy()}
    out = call_student(fn, hs_passed, passed)
    ys, _cache = expect_tuple(out, 2, "linear_head_forward", "(ys, cache)")
    axes = {1: ("B", "K"), 2: ("T", "B", "K")}.get(len(leading))
    mistakes = {"the bias b_y is missing: y_t = W_y h_t + b_y": hs @ W.T}
    if out_size == hidden_size:
        mistakes["hs is multiplied by W_y instead of its transpose: y_t = W_y h_t is hs @ W.T in rows"] = hs @ W + b
    if len(leading) >= 2:
        got = np.asarray(ys) if isinstance(ys, np.ndarray) else ys
        if isinstance(got, np.ndarray) and got.shape == leading[1:] + (out_size,):
            raise CheckFailure(f"ys has shape {got.shape}, expected {want.shape}: the head is applied at "
                               "every step, not only to the last state")
    expect_close(ys, want, "ys", axes=axes, mistakes=mistakes)
    expect_unchanged({"hs": hs}, {"hs": hs_passed}, "linear_head_forward")
    return f"linear_head_forward: correct for hs of shape {leading + (hidden_size,)} and K={out_size}"


# --------------------------------------------------------------------------------------------
# 4. softmax
# --------------------------------------------------------------------------------------------

def softmax(student, rng, shape=(3, 2, 5), scale=3.0):
    """``softmax(z)`` normalises over the last axis, stably (large logits must not give NaN)."""
    fn = student_function(student, "softmax")
    shape = tuple(int(n) for n in shape)
    z = rng.normal(0.0, scale, size=shape)
    if scale > 100:  # make sure some logits would overflow exp (exp(710) is inf)
        z.flat[int(rng.integers(z.size))] = 1.5 * scale
    want = _rnnkit_softmax(z, axis=-1)
    z_passed = z.copy()
    p = call_student(fn, z_passed)
    if isinstance(p, np.ndarray) and p.dtype.kind == "f" and not np.isfinite(p).all():
        raise CheckFailure(f"softmax(z) contains NaN or inf for logits as large as {np.abs(z).max():.3g}: "
                           "np.exp overflows; subtract the maximum of each row first "
                           "(softmax(z) = softmax(z - max z), and then the largest exponent is 0)")
    expect_array(p, "softmax(z)", shape=shape)
    e = np.exp(z - z.max())
    mistakes = {"you normalised by the sum over all entries; each row (the last axis, the K classes) "
                "must sum to 1 on its own": e / e.sum()}
    if len(shape) > 1:
        e0 = np.exp(z - z.max(axis=0, keepdims=True))
        mistakes["you normalised over the first axis; normalise over the last axis (the K classes), "
                 "so that each row sums to 1"] = e0 / e0.sum(axis=0, keepdims=True)
    try:
        expect_close(p, want, "softmax(z)", mistakes=mistakes)
    except CheckFailure as failure:
        sums = np.asarray(p, dtype=np.float64).sum(axis=-1)
        if "differs from the expected value" in str(failure) and not np.allclose(sums, 1.0):
            worst = float(sums.flat[int(np.argmax(np.abs(sums - 1.0)))])
            raise CheckFailure(f"the entries of softmax(z) along the last axis (the K classes) should sum to 1, "
                               f"but one row sums to {worst:.6g}: normalise each row by its own sum "
                               "(np.sum(..., axis=-1, keepdims=True))") from None
        raise
    expect_unchanged({"z": z}, {"z": z_passed}, "softmax")
    return f"softmax: correct for logits of shape {shape} (up to |z| = {np.abs(z).max():.3g})"
