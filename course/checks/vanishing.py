"""Checks for exercise 4, vanishing and exploding gradients: the one-step Jacobian of a tanh cell, the norms
‖∂h_T/∂h_k‖ over k, the spectral radius, and gradient clipping by global norm and by value.

The expected Jacobians come from rnnkit's backward pass of the cell (``rnn_core_backward`` applied to the
rows of an identity matrix gives ∂h_t/∂h_{t−1} row by row); clipping is compared with ``rnnkit.clip``,
which equals ``torch.nn.utils.clip_grad_norm_`` / ``clip_grad_value_``. Clipping must change the arrays in
place: the gradients are handed over in a dict made on the student's side whose arrays a list there holds
too (:class:`HeldGrads`), as an optimizer would, so a replaced array can be told from a changed one.
"""
from __future__ import annotations

import numpy as np

from rnnkit.cells.rnn import rnn_core_backward as _rnnkit_core_backward
from rnnkit.clip import clip_grad_norm as _rnnkit_clip_norm
from rnnkit.clip import clip_grad_value as _rnnkit_clip_value
from rnnkit.sequence import sequence_forward as _rnnkit_sequence_forward

from ..sandbox import Policy
from . import HELPERS
from .expect import (CheckFailure, blame_parts, call_student, copy_params, expect_close, kind_of,
                     student_function)
from .vanilla_rnn import random_rnn_params

#: what the student's notebook may import when it is graded (not rnnkit.clip, which holds the answers)
POLICY = Policy(packages=("numpy", "matplotlib"), rnnkit=HELPERS)
SPECS = ("step_jacobian", "jacobian_norms", "spectral_radius", "clip_grad_norm", "clip_grad_value")


def matrix_with_radius(rng, n, radius):
    """A random (non-symmetric) n x n matrix scaled to the given spectral radius."""
    W = rng.normal(size=(n, n)) / np.sqrt(n)
    return W * (radius / np.max(np.abs(np.linalg.eigvals(W))))


def _backward_rows(rows, h, W_hh):
    """rows @ ∂h_t/∂h_{t−1} for one sequence: rnnkit's cell backward applied to each row."""
    H = h.shape[-1]
    return _rnnkit_core_backward(rows, (np.broadcast_to(h, (rows.shape[0], H)).copy(), W_hh, "tanh"))[1]


def _reference_jacobians(h, W_hh):
    """(B, H, H): J[b] = ∂h_t/∂h_{t−1} at the state h[b], from rnnkit's backward pass (row i = e_iᵀ J)."""
    H = h.shape[-1]
    return np.stack([_backward_rows(np.eye(H), h[b], W_hh) for b in range(h.shape[0])])


# --------------------------------------------------------------------------------------------
# 1. the Jacobian of one step
# --------------------------------------------------------------------------------------------

def step_jacobian(student, rng, batch=3, hidden_size=4):
    """``step_jacobian(h, params)``: ``h (B, H)`` the states h_t after a tanh step, returns ``(B, H, H)`` with
    ``J[b] = diag(1 − h_t[b]²) W_hh``."""
    fn = student_function(student, "step_jacobian")
    params = random_rnn_params(rng, 2, hidden_size)
    h = np.tanh(rng.normal(0.0, 1.0, size=(batch, hidden_size)))
    want = _reference_jacobians(h, params["weight_hh"])
    W = params["weight_hh"]
    d = 1 - h**2
    got = call_student(fn, h.copy(), copy_params(params))
    if isinstance(got, np.ndarray) and got.shape == (hidden_size, hidden_size) and batch > 1:
        raise CheckFailure(f"step_jacobian returned one ({hidden_size}, {hidden_size}) matrix; return one "
                           f"Jacobian per sequence of the batch, shape (B, H, H) = {want.shape}")
    expect_close(got, want, "step_jacobian(h, params)", mistakes={
        "they are transposed: row i of ∂h_t/∂h_{t−1} holds the derivatives of h_t[i], so J = diag(1 − h_t²) W_hh "
        "(the factor scales the rows)": np.transpose(want, (0, 2, 1)),
        "1 − h_t² scales the columns; it belongs to the rows: J = diag(1 − h_t²) W_hh, i.e. "
        "(1 − h_t²)[:, None] * W_hh": W[None] * d[:, None, :],
        "the derivative factor 1 − h_t² is missing: J = diag(1 − h_t²) W_hh, not W_hh":
            np.broadcast_to(W, want.shape),
        "tanh' is 1 − h², with h squared, not 1 − h": (1 - h)[:, :, None] * W[None],
    })
    return f"step_jacobian: correct (B={batch}, H={hidden_size})"


# --------------------------------------------------------------------------------------------
# 2. ‖∂h_T/∂h_k‖ for k = 0 … T
# --------------------------------------------------------------------------------------------

def _spectral(M):
    return np.linalg.norm(M, ord=2, axis=(-2, -1))


def _reference_norms(hs, W):
    """norms[k, b] = ‖∂h_T/∂h_k‖₂ from rnnkit's backward pass, and three wrong versions of it."""
    T, batch, H = hs.shape
    want = np.ones((T + 1, batch))
    for b in range(batch):
        rows = np.eye(H)                        # rows of ∂h_T/∂h_k, from k = T down to 0
        for k in range(T - 1, -1, -1):
            rows = _backward_rows(rows, hs[k, b], W)
            want[k, b] = _spectral(rows)
    J = (1 - hs**2)[:, :, :, None] * W[None, None]    # J[j-1] = ∂h_j/∂h_{j-1}, (T, B, H, H)
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


def jacobian_norms(student, rng, T=6, batch=2, input_size=3, hidden_size=4, radius=0.9):
    """``jacobian_norms(hs, params)``: ``hs (T, B, H)`` the states h_1 … h_T of a tanh RNN (made here by
    rnnkit's forward pass); returns ``(T+1, B)`` with ``norms[k, b] = ‖∂h_T/∂h_k‖₂`` (spectral norm),
    ``norms[T] = 1``."""
    fn = student_function(student, "jacobian_norms")
    params = random_rnn_params(rng, input_size, hidden_size)
    params["weight_hh"] = matrix_with_radius(rng, hidden_size, radius)
    x = rng.normal(size=(T, batch, input_size))
    hs, _, _ = _rnnkit_sequence_forward("rnn", x, None, params)
    want, wrong_order, frobenius, of_norms = _reference_norms(hs, params["weight_hh"])

    def judge():
        got = call_student(fn, hs.copy(), copy_params(params))
        if isinstance(got, np.ndarray) and got.shape == (T, batch):
            raise CheckFailure(f"norms has shape (T, B) = {got.shape}; it needs T+1 rows, k = 0 … T, "
                               "with norms[T] = ‖∂h_T/∂h_T‖ = ‖I‖ = 1")
        _expect_norms(got, want, wrong_order, frobenius, of_norms)

    blame_parts(student, judge, [("step_jacobian", step_jacobian)], "jacobian_norms")
    return f"jacobian_norms: correct (T={T}, B={batch}, H={hidden_size}, spectral radius {radius})"


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
# 3. the spectral radius
# --------------------------------------------------------------------------------------------

def _matrix(rng, size, kind):
    """A random square matrix whose dominant eigenvalue is of the given kind."""
    if kind == "random":
        return rng.normal(size=(size, size))
    Q = rng.normal(size=(size, size)) + size * np.eye(size)
    if kind == "negative":  # the dominant eigenvalue is negative and real
        lam = np.concatenate([[-2.0 - rng.random()], rng.uniform(-0.9, 1.5, size - 1)])
        return Q @ np.diag(lam) @ np.linalg.inv(Q)
    if kind == "rotation":  # a complex pair dominates
        angle = rng.uniform(0.3, 1.2)
        W = np.zeros((size, size))
        W[:2, :2] = 1.5 * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        W[2:, 2:] = np.diag(rng.uniform(-1.0, 1.0, size - 2))
        return Q @ W @ np.linalg.inv(Q)
    raise ValueError(f"kind must be 'random', 'negative' or 'rotation', got {kind!r}")


def _one_number(got, what, hint):
    """``got`` as a float; a CheckFailure names what came instead."""
    if np.iscomplexobj(got) or kind_of(got) == "complex":
        raise CheckFailure(f"{what} returned a complex number; {hint}")
    try:
        return float(np.asarray(got, dtype=np.float64).reshape(()))
    except (TypeError, ValueError):
        shape = f" of shape {np.shape(got)}" if isinstance(got, np.ndarray) else ""
        raise CheckFailure(f"{what} should return one real number, got a {kind_of(got)}{shape}") from None


def spectral_radius(student, rng, size=5, kind="random"):
    """``spectral_radius(W)`` returns ρ(W) = max_i |λ_i| as a real number."""
    fn = student_function(student, "spectral_radius")
    W = _matrix(rng, size, kind)
    eig = np.linalg.eigvals(W)
    want = float(np.max(np.abs(eig)))
    value = _one_number(call_student(fn, W.copy()), "spectral_radius",
                        "the radius is the largest modulus |λ| of the eigenvalues, a real number (np.abs of a "
                        "complex number is its modulus)")
    mistakes = {
        "that is the largest real eigenvalue; the radius compares moduli, max_i |λ_i|, so a large negative "
        "or complex eigenvalue counts too": float(np.max(eig.real)),
        "that is the largest |real part|; for a complex eigenvalue λ = a + ib the modulus is "
        "sqrt(a² + b²), np.abs(λ)": float(np.max(np.abs(eig.real))),
        "that is the largest singular value (the spectral norm); the spectral radius is max_i |λ_i| of the "
        "eigenvalues, np.linalg.eigvals": float(np.linalg.norm(W, 2)),
        "that is the largest entry of W in absolute value; the radius comes from the eigenvalues":
            float(np.max(np.abs(W))),
    }
    expect_close(np.asarray(value), np.asarray(want), "spectral_radius(W)",
                 mistakes={m: np.asarray(v) for m, v in mistakes.items() if not np.isclose(v, want)})
    return f"spectral_radius: correct for a {size}x{size} matrix ({kind}, ρ = {want:.4g})"


# --------------------------------------------------------------------------------------------
# 4. and 5. clipping
# --------------------------------------------------------------------------------------------

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


def _value_mistakes(g, c):
    """Known wrong versions of one array clipped by value: {message: value}."""
    return {
        f"entries below −clip_value = {-c:g} were not clipped: every entry goes into [−c, c]": np.minimum(g, c),
        f"entries above clip_value = {c:g} were not clipped: every entry goes into [−c, c]": np.maximum(g, -c),
        "entries were clipped into [0, c]; the interval is [−c, c], negative gradients keep their sign":
            np.clip(g, 0.0, c),
        "that rescales by the norm; clipping by value caps each entry on its own at ±c":
            g * min(1.0, c / (np.linalg.norm(g) + 1e-6)),
    }


def clip_grad_value(student, rng, shapes=((3, 4), (4,)), clip_value=0.5):
    """``clip_grad_value(grads, clip_value)`` clips every entry into [−c, c], in place."""
    fn = student_function(student, "clip_grad_value")
    grads = _random_grads(rng, shapes, scale=1.0)
    want = {k: v.copy() for k, v in grads.items()}
    _rnnkit_clip_value(want, clip_value)
    given = HeldGrads(student, grads)
    call_student(fn, given.remote, clip_value, what="clip_grad_value")
    current, held = given.after()
    for name, g in grads.items():
        _expect_in_place(current, held, name, want[name], "clip_grad_value")
        if isinstance(held[name], np.ndarray) and np.array_equal(held[name], g) and not np.array_equal(want[name], g):
            raise CheckFailure(f"grads[{name!r}] did not change: np.clip (like most numpy functions) returns a new "
                               "array; write the result back into the array, g[...] = np.clip(g, -c, c), or use "
                               "np.clip(g, -c, c, out=g)")
        expect_close(held[name], want[name], f"grads[{name!r}] after clipping", rtol=1e-12,
                     mistakes=_value_mistakes(g, clip_value))
    return f"clip_grad_value: correct (clip_value = {clip_value:g})"
