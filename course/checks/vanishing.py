"""Checks for exercise 4, vanishing and exploding gradients: the Jacobian of one step and the norms
‖∂h_T/∂h_k‖ over k (tanh and ReLU cells), the gradient of a loss at the last step carried back to every
state, the factor by which it changes per step, clipping by global norm, and clipping inside a training
loop.

The expected Jacobians and state gradients come from rnnkit's backward pass of the cell
(``rnn_core_backward`` applied to the rows of an identity matrix gives ∂h_t/∂h_{t−1} row by row);
clipping is compared with ``rnnkit.clip``, which equals ``torch.nn.utils.clip_grad_norm_``; the training
loop is replayed with rnnkit (``sequence_forward``/``sequence_backward``, ``squared_error``,
``clip_grad_norm``). Clipping must change the arrays in place: the gradients are handed over in a dict
made on the student's side whose arrays a list there holds too (:class:`HeldGrads`), as an optimizer
would, so a replaced array can be told from a changed one.
"""
from __future__ import annotations

import numpy as np

from rnnkit.cells.rnn import rnn_core_backward as _rnnkit_core_backward
from rnnkit.clip import clip_grad_norm as _rnnkit_clip_norm
from rnnkit.losses import squared_error as _rnnkit_squared_error
from rnnkit.sequence import sequence_backward as _rnnkit_sequence_backward
from rnnkit.sequence import sequence_forward as _rnnkit_sequence_forward

from ..sandbox import Policy
from . import HELPERS
from .expect import (CheckFailure, blame_parts, call_student, copy_params, expect_array, expect_close,
                     expect_tuple, expect_unchanged, kind_of, student_function)
from .vanilla_rnn import random_rnn_params

#: what the student's notebook may import when it is graded (not rnnkit.clip nor the cells and the
#: recurrence, which hold the answers)
POLICY = Policy(packages=("numpy", "matplotlib"), rnnkit=HELPERS)
SPECS = ("step_jacobian", "jacobian_norms", "state_gradients", "factor_per_step", "clip_grad_norm",
         "train_clipped")


def matrix_with_radius(rng, n, radius):
    """A random (non-symmetric) n x n matrix scaled to the given spectral radius."""
    W = rng.normal(size=(n, n)) / np.sqrt(n)
    return W * (radius / np.max(np.abs(np.linalg.eigvals(W))))


def _backward_rows(rows, h, W_hh, nonlinearity="tanh"):
    """rows @ ∂h_t/∂h_{t−1} for one sequence: rnnkit's cell backward applied to each row."""
    H = h.shape[-1]
    cache = (np.broadcast_to(h, (rows.shape[0], H)).copy(), W_hh, nonlinearity)
    return _rnnkit_core_backward(rows, cache)[1]


def _reference_jacobians(h, W_hh, nonlinearity="tanh"):
    """(B, H, H): J[b] = ∂h_t/∂h_{t−1} at the state h[b], from rnnkit's backward pass (row i = e_iᵀ J)."""
    H = h.shape[-1]
    return np.stack([_backward_rows(np.eye(H), h[b], W_hh, nonlinearity) for b in range(h.shape[0])])


def slope(h, nonlinearity):
    """φ'(a) from the state h = φ(a): 1 − h² for tanh, 1 where h > 0 for ReLU."""
    return 1 - h**2 if nonlinearity == "tanh" else (h > 0).astype(np.float64)


def _states(rng, batch, hidden_size, nonlinearity):
    """States after a step: tanh of normal numbers, or ReLU of them (about half the units off)."""
    a = rng.normal(0.0, 1.0, size=(batch, hidden_size))
    return np.tanh(a) if nonlinearity == "tanh" else np.maximum(a, 0.0)


def _run_rnn(rng, T, batch, input_size, hidden_size, radius, nonlinearity):
    """Parameters with ρ(W_hh) = radius and the states h_1 … h_T of a run of rnnkit's forward pass."""
    params = random_rnn_params(rng, input_size, hidden_size)
    params["weight_hh"] = matrix_with_radius(rng, hidden_size, radius)
    x = rng.normal(size=(T, batch, input_size))
    hs, _, _ = _rnnkit_sequence_forward("rnn", x, None, params, nonlinearity=nonlinearity)
    return params, hs


# --------------------------------------------------------------------------------------------
# 1. the Jacobian of one step, and the norms of products of them
# --------------------------------------------------------------------------------------------

def step_jacobian(student, rng, batch=3, hidden_size=4, nonlinearity="tanh"):
    """``step_jacobian(h, params, nonlinearity)``: ``h (B, H)`` the states h_t after a step, returns
    ``(B, H, H)`` with ``J[b] = diag(φ'(a_t[b])) W_hh``."""
    fn = student_function(student, "step_jacobian")
    params = random_rnn_params(rng, 2, hidden_size)
    h = _states(rng, batch, hidden_size, nonlinearity)
    want = _reference_jacobians(h, params["weight_hh"], nonlinearity)
    W = params["weight_hh"]
    d = slope(h, nonlinearity)
    got = call_student(fn, h.copy(), copy_params(params), nonlinearity)
    if isinstance(got, np.ndarray) and got.shape == (hidden_size, hidden_size) and batch > 1:
        raise CheckFailure(f"step_jacobian returned one ({hidden_size}, {hidden_size}) matrix; return one "
                           f"Jacobian per sequence of the batch, shape (B, H, H) = {want.shape}")
    factor = "1 − h_t²" if nonlinearity == "tanh" else "φ'(a_t)"
    mistakes = {
        f"they are transposed: row i of ∂h_t/∂h_{{t−1}} holds the derivatives of h_t[i], so J = diag({factor}) "
        f"W_hh (the factor scales the rows)": np.transpose(want, (0, 2, 1)),
        f"{factor} scales the columns; it belongs to the rows: J = diag({factor}) W_hh, i.e. "
        f"({factor})[:, None] * W_hh": W[None] * d[:, None, :],
        f"the derivative factor {factor} is missing: J = diag({factor}) W_hh, not W_hh":
            np.broadcast_to(W, want.shape),
    }
    if nonlinearity == "tanh":
        mistakes["tanh' is 1 − h², with h squared, not 1 − h"] = (1 - h)[:, :, None] * W[None]
    else:
        mistakes["for ReLU the slope is 1 where h_t > 0 and 0 elsewhere; 1 − h² is tanh's"] = \
            (1 - h**2)[:, :, None] * W[None]
    expect_close(got, want, "step_jacobian(h, params)", mistakes=mistakes)
    return f"step_jacobian: correct ({nonlinearity}, B={batch}, H={hidden_size})"


def _spectral(M):
    return np.linalg.norm(M, ord=2, axis=(-2, -1))


def _reference_norms(hs, W, nonlinearity="tanh"):
    """norms[k, b] = ‖∂h_T/∂h_k‖₂ from rnnkit's backward pass, and three wrong versions of it."""
    T, batch, H = hs.shape
    want = np.ones((T + 1, batch))
    for b in range(batch):
        rows = np.eye(H)                        # rows of ∂h_T/∂h_k, from k = T down to 0
        for k in range(T - 1, -1, -1):
            rows = _backward_rows(rows, hs[k, b], W, nonlinearity)
            want[k, b] = _spectral(rows)
    J = slope(hs, nonlinearity)[:, :, :, None] * W[None, None]    # J[j-1] = ∂h_j/∂h_{j-1}, (T, B, H, H)
    wrong_order, frobenius, of_norms = np.ones((T + 1, batch)), np.ones((T + 1, batch)), np.ones((T + 1, batch))
    for b in range(batch):
        P, Q, prod = np.eye(H), np.eye(H), 1.0
        frobenius[T, b] = np.sqrt(H)
        for k in range(T - 1, -1, -1):
            P = P @ J[k, b]                     # J_T ... J_{k+1}
            Q = J[k, b] @ Q                     # J_{k+1} ... J_T, the wrong order
            prod *= _spectral(J[k, b])
            wrong_order[k, b], frobenius[k, b], of_norms[k, b] = _spectral(Q), np.linalg.norm(P), prod
    return want, wrong_order, frobenius, of_norms


def jacobian_norms(student, rng, T=6, batch=2, input_size=3, hidden_size=4, radius=0.9, nonlinearity="tanh"):
    """``jacobian_norms(hs, params, nonlinearity)``: ``hs (T, B, H)`` the states h_1 … h_T of an RNN
    (made here by rnnkit's forward pass); returns ``(T+1, B)`` with ``norms[k, b] = ‖∂h_T/∂h_k‖₂``
    (spectral norm), ``norms[T] = 1``."""
    fn = student_function(student, "jacobian_norms")
    params, hs = _run_rnn(rng, T, batch, input_size, hidden_size, radius, nonlinearity)
    want, wrong_order, frobenius, of_norms = _reference_norms(hs, params["weight_hh"], nonlinearity)

    def judge():
        got = call_student(fn, hs.copy(), copy_params(params), nonlinearity)
        if isinstance(got, np.ndarray) and got.shape == (T, batch):
            raise CheckFailure(f"norms has shape (T, B) = {got.shape}; it needs T+1 rows, k = 0 … T, "
                               "with norms[T] = ‖∂h_T/∂h_T‖ = ‖I‖ = 1")
        _expect_norms(got, want, wrong_order, frobenius, of_norms)

    step = lambda student, rng: step_jacobian(student, rng, nonlinearity=nonlinearity)  # noqa: E731
    blame_parts(student, judge, [("step_jacobian", step)], "jacobian_norms")
    return (f"jacobian_norms: correct ({nonlinearity}, T={T}, B={batch}, H={hidden_size}, "
            f"spectral radius {radius})")


def _expect_norms(got, want, wrong_order, frobenius, of_norms):
    mistakes = {
        "the Jacobians are multiplied in the wrong order: ∂h_T/∂h_k = J_T J_{T−1} … J_{k+1}, the latest step "
        "on the left (or each Jacobian is transposed)": wrong_order,
        "that is the Frobenius norm; use the spectral norm, np.linalg.norm(M, 2), the largest singular value":
            frobenius,
        "you multiplied the norms of the single Jacobians; that product is only an upper bound: take the norm "
        "of the product matrix J_T … J_{k+1}": of_norms,
        "the norms run backwards: norms[k] belongs to h_k, so norms[0] is for the initial state and norms[T] = 1":
            want[::-1],
    }
    # the last row (k = T) is 1 or the norm of the identity in any variant: compare the others
    if isinstance(got, np.ndarray) and got.shape == want.shape and got.dtype.kind == "f" \
            and np.isfinite(got).all() and not np.allclose(got, want, rtol=1e-5):
        for message, wrong in mistakes.items():
            if np.allclose(got[:-1], wrong[:-1], rtol=1e-5) and not np.allclose(wrong[:-1], want[:-1], rtol=1e-5):
                raise CheckFailure(f"norms is wrong: {message}")
    expect_close(got, want, "norms", rtol=1e-5, mistakes=mistakes)


# --------------------------------------------------------------------------------------------
# 2. the gradient of a loss at step T, carried back to every state
# --------------------------------------------------------------------------------------------

def reference_state_gradients(hs, W, dh_T, nonlinearity="tanh", mistake=None):
    """grads[k] = ∂L/∂h_k for k = 0 … T from ∂L/∂h_T = dh_T: rnnkit's cell backward, step by step
    (or, with ``mistake``, a typical error built in)."""
    T = hs.shape[0]
    grads = np.zeros((T + 1,) + dh_T.shape)
    grads[T] = dh_T
    for k in range(T - 1, -1, -1):
        g, h = grads[k + 1], hs[k]                       # hs[k] is h_{k+1}
        if mistake is None:
            grads[k] = _rnnkit_core_backward(g, (h, W, nonlinearity))[1]
        elif mistake == "transposed":
            grads[k] = (g * slope(h, nonlinearity)) @ W.T
        elif mistake == "no_slope":
            grads[k] = g @ W
        elif mistake == "slope_after":
            grads[k] = (g @ W) * slope(h, nonlinearity)
        elif mistake == "slope_of_h_k":
            h_k = hs[k - 1] if k > 0 else np.zeros_like(h)
            grads[k] = (g * slope(h_k, nonlinearity)) @ W
    return grads


STATE_MISTAKES = {
    "transposed": "W_hh is transposed: a batch holds one gradient per row, so dh_k = (φ' ⊙ dh_{k+1}) @ W_hh "
                  "(W_hhᵀ in the column form of the equations)",
    "no_slope": "the slope φ'(a_{k+1}) is missing: dh_k = (φ'(a_{k+1}) ⊙ dh_{k+1}) @ W_hh",
    "slope_after": "φ' multiplies dh_{k+1} before W_hh, not the result: dh_k = (φ'(a_{k+1}) ⊙ dh_{k+1}) @ W_hh",
    "slope_of_h_k": "the slope belongs to step k+1, whose state is hs[k] (hs[k] holds h_{k+1}); yours is one "
                    "step early",
}


def state_gradients(student, rng, T=5, batch=2, input_size=3, hidden_size=4, radius=1.0, nonlinearity="tanh"):
    """``state_gradients(hs, params, dh_T, nonlinearity)`` returns ``(T+1, B, H)``: ``grads[k] = ∂L/∂h_k``
    for a loss whose gradient at the last state is ``dh_T``; ``grads[T] = dh_T``."""
    fn = student_function(student, "state_gradients")
    params, hs = _run_rnn(rng, T, batch, input_size, hidden_size, radius, nonlinearity)
    dh_T = rng.normal(size=(batch, hidden_size))
    W = params["weight_hh"]
    want = reference_state_gradients(hs, W, dh_T, nonlinearity)
    args = {"hs": hs.copy(), "params": copy_params(params), "dh_T": dh_T.copy()}
    got = call_student(fn, args["hs"], args["params"], args["dh_T"], nonlinearity, what="state_gradients")
    expect_unchanged({"hs": hs, "params": params, "dh_T": dh_T}, args, "state_gradients")
    if isinstance(got, np.ndarray) and got.shape == hs.shape:
        raise CheckFailure(f"grads has shape (T, B, H) = {got.shape}; it needs T+1 entries, k = 0 … T, the "
                           "last one dh_T itself and the first ∂L/∂h_0")
    mistakes = {message: reference_state_gradients(hs, W, dh_T, nonlinearity, key)
                for key, message in STATE_MISTAKES.items()}
    mistakes["the gradients run backwards: grads[k] belongs to h_k, so grads[T] = dh_T and grads[0] = ∂L/∂h_0"] \
        = want[::-1]
    axes = ("T+1", "B", "H") if len({T + 1, batch, hidden_size}) == 3 else None
    expect_close(got, want, "grads", axes=axes, mistakes=mistakes)
    return f"state_gradients: correct ({nonlinearity}, T={T}, B={batch}, H={hidden_size}, spectral radius {radius})"


# --------------------------------------------------------------------------------------------
# 3. the factor per step
# --------------------------------------------------------------------------------------------

def reference_factor(norms):
    """exp of the least-squares slope of ln norms[k] against the distance T − k, one per column."""
    T = norms.shape[0] - 1
    return np.exp(np.polyfit(np.arange(T, -1, -1), np.log(norms), 1)[0])


def _factor_mistakes(norms):
    T = norms.shape[0] - 1
    distance = np.arange(T, -1, -1)
    slope_ln = np.polyfit(distance, np.log(norms), 1)[0]
    slope_10 = np.polyfit(distance, np.log10(norms), 1)[0]
    return {
        "that is the slope of ln ‖∂h_T/∂h_k‖ against the distance; the factor per step is its exponential, "
        "e^slope": slope_ln,
        "the fit runs against k instead of the distance T − k, which turns the factor upside down (1/factor)":
            np.exp(-slope_ln),
        "the fit used log10 but exp to undo it; use the same base both ways (np.log and np.exp)": np.exp(slope_10),
        "that uses only the two ends, (norms[0] / norms[T])^(1/T); fit a straight line through all T + 1 points":
            (norms[0] / norms[T]) ** (1 / T),
        "that is the mean of the ratios of neighbours; fit a straight line through the logarithms instead":
            np.mean(norms[:-1] / norms[1:], axis=0),
    }


def factor_per_step(student, rng, T=8, batch=3, input_size=2, hidden_size=5, radius=0.9):
    """``factor_per_step(norms)``: ``norms (T+1, B)`` as jacobian_norms returns them; returns ``(B,)``,
    the exponential of the least-squares slope of ``ln norms[k]`` against the distance ``T − k``."""
    fn = student_function(student, "factor_per_step")
    params, hs = _run_rnn(rng, T, batch, input_size, hidden_size, radius, "tanh")
    norms = _reference_norms(hs, params["weight_hh"])[0]
    norms = norms * np.exp(rng.normal(0.0, 0.05, size=norms.shape))    # a measurement is never exact
    norms[-1] = 1.0
    want = reference_factor(norms)
    got = call_student(fn, norms.copy(), what="factor_per_step")
    mistakes = {m: v for m, v in _factor_mistakes(norms).items() if not np.allclose(v, want, rtol=1e-6)}
    expect_close(got, want, "the factor per step", rtol=1e-6, mistakes=mistakes)
    return f"factor_per_step: correct (T={T}, B={batch})"


# --------------------------------------------------------------------------------------------
# 4. clipping by global norm
# --------------------------------------------------------------------------------------------

def _one_number(got, what, hint):
    """``got`` as a float; a CheckFailure names what came instead."""
    if np.iscomplexobj(got) or kind_of(got) == "complex":
        raise CheckFailure(f"{what} returned a complex number; {hint}")
    try:
        return float(np.asarray(got, dtype=np.float64).reshape(()))
    except (TypeError, ValueError):
        shape = f" of shape {np.shape(got)}" if isinstance(got, np.ndarray) else ""
        raise CheckFailure(f"{what} should return one real number, got a {kind_of(got)}{shape}") from None


_GRAD_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "head.weight", "head.bias")


def _random_grads(rng, shapes, scale=1.0):
    shapes = [tuple(int(n) for n in s) for s in shapes]
    return {name: rng.normal(0.0, scale, size=s) for name, s in zip(_GRAD_NAMES, shapes)}


class HeldGrads:
    """A dict of gradient arrays made on the student's side, whose arrays a list there holds too, as an
    optimizer or a model would. Pass :attr:`remote` to the student's function; :meth:`after` then says
    what the dict holds and what the holders see, so that ``grads[k] = new`` can be told from a change
    made in the arrays themselves."""

    def __init__(self, student, grads: dict):
        self.student, self.names = student, list(grads)
        self.holders = student.new("builtins.list", [grads[k] for k in self.names])
        self.remote = student.new("builtins.dict", student.new("builtins.zip", self.names, self.holders))

    def after(self) -> tuple[dict, dict]:
        """``(the dict as the function left it, {name: the array the holders see})``; one reply, so
        an array that is still the same object on the student's side is the same object here."""
        pair = self.student.new("builtins.list", [self.remote, self.holders]).method("copy")()
        current, held = pair
        return current, dict(zip(self.names, held))


def _expect_in_place(current, held, name, want, what):
    """The array object the holders have must carry the new values, not a new array in the dict."""
    if name not in current:
        raise CheckFailure(f"{what} removed grads[{name!r}] from the dict; change the arrays, keep the keys")
    if np.allclose(held[name], want, rtol=1e-10, atol=1e-14):
        return
    replaced = current[name]
    if isinstance(replaced, np.ndarray) and replaced is not held[name] and replaced.shape == want.shape \
            and replaced.dtype.kind == "f" and np.allclose(replaced, want, rtol=1e-10, atol=1e-14):
        raise CheckFailure(f"grads[{name!r}] was replaced by a new array; {what} must change the arrays "
                           "in place (like torch), so that everyone holding them (an optimizer, a model) sees "
                           "the clipped values: write into them, e.g. g *= scale or g[...] = ...")


def _norm_mistakes(g, total, max_norm):
    """Known wrong versions of one clipped array: {message: value}."""
    scale_no_eps = max_norm / total if total > max_norm else 1.0
    return {
        "you clipped each array by its own norm; the norm is global: the square root of the sum of the "
        "squares of every entry of every array": g * min(1.0, max_norm / (np.linalg.norm(g) + 1e-6)),
        f"the gradients were scaled although their total norm {total:.4g} was already below "
        f"max_norm = {max_norm:.4g}: leave them unchanged then": g * max_norm / (total + 1e-6),
        "the scale is max_norm / (total + 1e-6), exactly as in torch; the 1e-6 is missing": g * scale_no_eps,
        "the scale is upside down: multiply by max_norm / (total + 1e-6)": g * (total + 1e-6) / max_norm,
    }


def _max_norm(rng, total, regime):
    if regime == "above":
        return total * float(rng.uniform(0.2, 0.7))
    if regime == "below":
        return total * float(rng.uniform(1.2, 2.0))
    raise ValueError(f"regime must be 'above' or 'below', got {regime!r}")


def clip_grad_norm(student, rng, shapes=((3, 4), (4,), (2, 2)), regime="above"):
    """``clip_grad_norm(grads, max_norm)`` scales all arrays of the dict in place by
    ``max_norm / (total + 1e-6)`` when the global norm ``total > max_norm`` and returns ``total``."""
    fn = student_function(student, "clip_grad_norm")
    grads = _random_grads(rng, shapes, scale=rng.uniform(0.2, 1.0))
    total = float(np.sqrt(sum(np.sum(g * g) for g in grads.values())))
    max_norm = _max_norm(rng, total, regime)
    want = {k: v.copy() for k, v in grads.items()}
    want_total = float(_rnnkit_clip_norm(want, max_norm))

    given = HeldGrads(student, grads)
    returned = call_student(fn, given.remote, max_norm, what="clip_grad_norm")
    if returned is None:
        raise CheckFailure("clip_grad_norm returned None; like torch it should return the total norm of "
                           "all the gradients, measured before clipping")
    value = _one_number(returned, "clip_grad_norm", "return the total norm before clipping, a real number")
    current, held = given.after()
    for name, g in grads.items():
        if not np.allclose(held[name], g) or not np.allclose(want[name], g):
            _expect_in_place(current, held, name, want[name], "clip_grad_norm")
        mistakes = {m: v for m, v in _norm_mistakes(g, total, max_norm).items()
                    if not np.allclose(v, want[name], rtol=1e-10, atol=1e-14)}
        expect_close(held[name], want[name], f"grads[{name!r}] after clipping", rtol=1e-10, atol=1e-14,
                     mistakes=mistakes)
    expect_close(np.asarray(value), np.asarray(want_total), "the returned norm", rtol=1e-9, mistakes={
        "that is the norm after clipping; return the total norm measured before": np.asarray(
            min(total, max_norm * total / (total + 1e-6))),
        "that is the squared norm; the norm is its square root": np.asarray(total**2),
        "that is max_norm; return the total norm of the gradients before clipping": np.asarray(max_norm),
    })
    return f"clip_grad_norm: correct (total norm {total:.3g} {regime} max_norm = {max_norm:.3g})"


# --------------------------------------------------------------------------------------------
# 5. clipping inside a training loop
# --------------------------------------------------------------------------------------------

RNN_KEYS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def reference_loss_and_grads(params, x, target):
    """What the notebook's given ``loss_and_grads`` computes, with rnnkit: a ReLU RNN, the head
    y_t = W_y h_t + b_y, L = squared_error(y, target, "mean") (with its ½), and every gradient."""
    rnn = {k: params[k] for k in RNN_KEYS}
    hs, _, cache = _rnnkit_sequence_forward("rnn", x, None, rnn, nonlinearity="relu")
    y = hs @ params["weight_y"].T + params["bias_y"]
    loss, d = _rnnkit_squared_error(y, target, reduction="mean")
    dy = d["y"]
    grads = dict(_rnnkit_sequence_backward(dy @ params["weight_y"], None, cache))
    grads = {k: grads[k] for k in RNN_KEYS}
    grads["weight_y"] = np.einsum("tbk,tbh->kh", dy, hs)
    grads["bias_y"] = dy.sum(axis=(0, 1))
    return float(loss), grads


def reference_training(params, batches, lr, max_norm, mistake=None):
    """``(losses, norms, params after)`` of SGD with clipping by global norm (``mistake``: a typical
    error built in)."""
    params = copy_params(params)
    losses, norms = [], []
    limit = np.inf if max_norm is None else max_norm
    for x, target in batches:
        loss, grads = reference_loss_and_grads(params, x, target)
        if mistake == "clip_after_update":
            for name in params:
                params[name] -= lr * grads[name]
            norm = float(_rnnkit_clip_norm(grads, limit))
        else:
            norm = float(_rnnkit_clip_norm(grads, limit))
            if mistake == "norm_after_clip":
                norm = float(np.sqrt(sum(np.sum(g * g) for g in grads.values())))
            sign = -1.0 if mistake == "ascent" else 1.0
            for name in params:
                params[name] -= sign * lr * grads[name]
        losses.append(loss)
        norms.append(norm)
    return np.array(losses), np.array(norms), params


TRAIN_MISTAKES = {
    "clip_after_update": "the parameters were updated with the unclipped gradient (some steps had a norm above "
                         "max_norm = {max_norm:.3g}): clip first, then step, w ← w − lr · (clipped g)",
    "norm_after_clip": "norms holds the norm after clipping; record the norm clip_grad_norm returns, the one "
                       "measured before",
    "ascent": "the update goes uphill: gradient descent subtracts, w ← w − lr · g",
}


def training_data(rng, steps, T, batch):
    """``steps`` batches ``(x, target)`` of noisy sine waves, each (T, B, 1); the target is the next value."""
    out = []
    for _ in range(steps):
        t = np.arange(T + 1)[:, None]
        freq, phase = rng.uniform(0.1, 0.4, size=batch), rng.uniform(0, 2 * np.pi, size=batch)
        wave = np.sin(freq * t + phase) + rng.normal(0.0, 0.05, size=(T + 1, batch))
        out.append((wave[:-1, :, None], wave[1:, :, None]))
    return out


def training_params(rng, hidden_size):
    """A ReLU RNN that starts from W_hh = I (chapter 4's IRNN), with a head of one output."""
    H = hidden_size
    return {"weight_ih": rng.normal(0.0, 1.0, (H, 1)), "weight_hh": np.eye(H) + rng.normal(0.0, 0.05, (H, H)),
            "bias_ih": rng.normal(0.0, 0.1, H), "bias_hh": rng.normal(0.0, 0.1, H),
            "weight_y": rng.normal(0.0, 1.0, (1, H)), "bias_y": np.zeros(1)}


def _finite(*arrays):
    return all(np.isfinite(a).all() for a in arrays)


def training_case(rng, steps, T, batch, hidden_size, lr, clip):
    """``(params, batches, max_norm)`` for a run that stays finite and, when clipped, clips some steps
    and not others, with no norm within 0.01 % of max_norm: there the ``+ 1e-6`` of the scale makes
    clipping jump, and rounding alone could decide which side a step falls on."""
    for _ in range(50):
        params, batches = training_params(rng, hidden_size), training_data(rng, steps, T, batch)
        losses, free, _ = reference_training(params, batches, lr, None)
        if not clip:
            if _finite(losses, free):
                return params, batches, None
            continue
        ranked = np.sort(free[np.isfinite(free)])
        middle = len(ranked) // 2
        pairs = sorted(zip(ranked[:-1], ranked[1:]), key=lambda ab: abs(np.searchsorted(ranked, ab[1]) - middle))
        for low, high in pairs:                      # between two neighbours, nearest the median first
            max_norm = float(np.sqrt(low * high))
            losses, norms, after = reference_training(params, batches, lr, max_norm)
            if _finite(losses, norms, *after.values()) and (norms > max_norm).any() and (norms < max_norm).any() \
                    and np.abs(norms / max_norm - 1).min() > 1e-4:
                return params, batches, max_norm
    raise RuntimeError(f"no finite training run with clipping found for T={T}, B={batch}, H={hidden_size}, lr={lr}")


def train_clipped(student, rng, steps=6, T=8, batch=3, hidden_size=5, lr=0.05, clip=True):
    """``train_clipped(params, batches, lr, max_norm)`` runs one SGD step per batch with the given
    ``loss_and_grads`` and the student's ``clip_grad_norm``, changes ``params`` in place and returns
    ``(losses, norms)``, the loss and the gradient norm before clipping of each step."""
    fn = student_function(student, "train_clipped")
    if not student.has("loss_and_grads"):
        raise CheckFailure("train_clipped uses the given loss_and_grads: run the cell that defines it first")
    params, batches, max_norm = training_case(rng, steps, T, batch, hidden_size, lr, clip)
    want_losses, want_norms, want_params = reference_training(params, batches, lr, max_norm)

    def judge():
        passed = copy_params(params)
        out = call_student(fn, passed, [(x.copy(), y.copy()) for x, y in batches], lr, max_norm,
                           what="train_clipped")
        losses, norms = expect_tuple(out, 2, "train_clipped", "(losses, norms)")
        wrong = {key: reference_training(params, batches, lr, max_norm, key) for key in TRAIN_MISTAKES
                 if clip or key not in ("clip_after_update", "norm_after_clip")}
        names = {key: message.format(max_norm=max_norm or 0) for key, message in TRAIN_MISTAKES.items()}
        losses = expect_array(np.asarray(losses) if isinstance(losses, list) else losses, "losses",
                              shape=(steps,))
        norms = expect_array(np.asarray(norms) if isinstance(norms, list) else norms, "norms", shape=(steps,))
        if clip and not np.allclose(norms, want_norms, rtol=1e-6) \
                and np.allclose(norms, wrong["norm_after_clip"][1], rtol=1e-5):   # max_norm, or about it
            raise CheckFailure(f"norms is wrong: {names['norm_after_clip']}")
        expect_close(norms, want_norms, "norms", rtol=1e-6,
                     mistakes={names[k]: w[1] for k, w in wrong.items()})
        expect_close(losses, want_losses, "losses", rtol=1e-6,
                     mistakes={names[k]: w[0] for k, w in wrong.items()})
        if all(np.array_equal(passed[k], params[k]) for k in params):
            raise CheckFailure("params did not change: update the arrays in place, params[name] -= lr * "
                               "grads[name], so that the caller's model is trained")
        for name in params:
            expect_close(passed[name], want_params[name], f"params[{name!r}] after training", rtol=1e-6,
                         mistakes={names[k]: w[2][name] for k, w in wrong.items()})

    def clipping(student, rng):       # both sides of the threshold, as the training loop meets them
        for regime in ("above", "below"):
            clip_grad_norm(student, rng, regime=regime)

    blame_parts(student, judge, [("clip_grad_norm", clipping)], "train_clipped")
    how = f"max_norm = {max_norm:.3g}" if clip else "max_norm = None"
    return f"train_clipped: correct ({steps} steps, {how})"
