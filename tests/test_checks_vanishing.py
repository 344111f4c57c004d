"""The checks of exercise 4 (vanishing gradients, clipping): the reference Jacobians are right, clipping
matches torch, correct code passes and typical mistakes are named."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from course_helpers import check_source

from course.checks import vanishing as spec
from course.verdict import CheckFailure
from rnnkit.clip import clip_grad_norm

GOOD = """
import numpy as np

def step_jacobian(h, params):
    return (1 - h**2)[:, :, None] * params["weight_hh"][None]

def jacobian_norms(hs, params):
    T, B, H = hs.shape
    norms = np.ones((T + 1, B))
    P = np.broadcast_to(np.eye(H), (B, H, H))
    for k in range(T - 1, -1, -1):
        P = P @ step_jacobian(hs[k], params)
        norms[k] = np.linalg.norm(P, ord=2, axis=(1, 2))
    return norms

def spectral_radius(W):
    return float(np.max(np.abs(np.linalg.eigvals(W))))

def clip_grad_norm(grads, max_norm):
    total = float(np.sqrt(sum(np.sum(g * g) for g in grads.values())))
    if total > max_norm:
        for g in grads.values():
            g *= max_norm / (total + 1e-6)
    return total

def clip_grad_value(grads, clip_value):
    for g in grads.values():
        np.clip(g, -clip_value, clip_value, out=g)
"""


def run(spec_fn, source, seed=0, **params):
    return check_source(f"vanishing.{spec_fn.__name__}", source, seed, **params)


def test_reference_jacobian_is_the_autograd_jacobian(rng):
    W = rng.normal(size=(4, 4))
    h_prev, xw = rng.normal(size=4), rng.normal(size=4)
    h = np.tanh(xw + W @ h_prev)
    auto = torch.autograd.functional.jacobian(
        lambda hp: torch.tanh(torch.from_numpy(xw) + torch.from_numpy(W) @ hp), torch.from_numpy(h_prev))
    np.testing.assert_allclose(spec._reference_jacobians(h[None], W)[0], auto.numpy(), rtol=1e-10)


def test_reference_clipping_is_torchs(rng):
    grads = {"a": rng.normal(size=(3, 4)), "b": rng.normal(size=5)}
    tensors = [torch.tensor(g) for g in grads.values()]
    for t in tensors:
        t.grad = t.clone()
    total = torch.nn.utils.clip_grad_norm_(tensors, max_norm=1.0)
    mine = {k: v.copy() for k, v in grads.items()}
    assert float(clip_grad_norm(mine, 1.0)) == pytest.approx(float(total), rel=1e-12)
    for g, t in zip(mine.values(), tensors):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-12)


def test_matrix_with_radius(rng):
    W = spec.matrix_with_radius(rng, 6, 1.3)
    assert np.max(np.abs(np.linalg.eigvals(W))) == pytest.approx(1.3)


def test_correct_code_passes_every_spec():
    run(spec.step_jacobian, GOOD)
    run(spec.step_jacobian, GOOD, batch=1, hidden_size=2)
    run(spec.jacobian_norms, GOOD)
    run(spec.jacobian_norms, GOOD, T=1, batch=1, radius=1.5)
    for kind in ("random", "negative", "rotation"):
        run(spec.spectral_radius, GOOD, kind=kind)
    run(spec.spectral_radius, GOOD, size=1)
    for regime in ("above", "below"):
        run(spec.clip_grad_norm, GOOD, regime=regime)
    run(spec.clip_grad_value, GOOD)


@pytest.mark.parametrize("spec_fn, params, old, new, message", [
    (spec.step_jacobian, {}, '(1 - h**2)[:, :, None] * params["weight_hh"][None]',
     'params["weight_hh"].T[None] * (1 - h**2)[:, None, :]', "they are transposed"),
    (spec.step_jacobian, {}, "(1 - h**2)[:, :, None]", "(1 - h**2)[:, None, :]", "scales the columns"),
    (spec.step_jacobian, {}, "(1 - h**2)[:, :, None]", "(1 - h)[:, :, None]", "not 1 − h"),
    (spec.jacobian_norms, {}, "P = P @ step_jacobian(hs[k], params)", "P = step_jacobian(hs[k], params) @ P",
     "wrong order"),
    (spec.jacobian_norms, {}, "np.linalg.norm(P, ord=2, axis=(1, 2))", "np.linalg.norm(P, axis=(1, 2))",
     "Frobenius"),
    (spec.jacobian_norms, {}, "return norms", "return norms[:-1]", "it needs T+1 rows"),
    (spec.spectral_radius, {"kind": "negative"}, "np.max(np.abs(np.linalg.eigvals(W)))",
     "np.max(np.linalg.eigvals(W).real)", "largest real eigenvalue"),
    (spec.spectral_radius, {}, "np.max(np.abs(np.linalg.eigvals(W)))", "np.linalg.norm(W, 2)",
     "largest singular value"),
    (spec.spectral_radius, {"kind": "rotation"}, "float(np.max(np.abs(np.linalg.eigvals(W))))",
     "np.linalg.eigvals(W)[np.argmax(np.abs(np.linalg.eigvals(W)))]", "complex number"),
    (spec.clip_grad_norm, {"regime": "below"}, "if total > max_norm:", "if True:", "already below"),
    (spec.clip_grad_norm, {}, "(total + 1e-6)", "total", "the 1e-6 is missing"),
    (spec.clip_grad_norm, {}, "    return total\n", "    return total ** 2\n", "squared norm"),
    (spec.clip_grad_norm, {}, "            g *= max_norm / (total + 1e-6)\n    return total",
     "            g *= max_norm / (total + 1e-6)\n    return np.sqrt(sum(np.sum(g * g) for g in grads.values()))",
     "the norm after clipping"),
    (spec.clip_grad_norm, {}, "        for g in grads.values():\n            g *= max_norm / (total + 1e-6)",
     "        for k in grads:\n            grads[k] = grads[k] * max_norm / (total + 1e-6)", "was replaced by a new array"),
    (spec.clip_grad_value, {}, "np.clip(g, -clip_value, clip_value, out=g)",
     "pass\n    for k in grads:\n        grads[k] = np.clip(grads[k], -clip_value, clip_value)",
     "was replaced by a new array"),
    (spec.clip_grad_value, {}, "np.clip(g, -clip_value, clip_value, out=g)",
     "pass\n    grads.clear()", "removed grads['weight_ih'] from the dict"),
    (spec.clip_grad_value, {}, "np.clip(g, -clip_value, clip_value, out=g)",
     "np.minimum(g, clip_value, out=g)", "entries below −clip_value"),
    (spec.clip_grad_value, {}, "np.clip(g, -clip_value, clip_value, out=g)",
     "g = np.clip(g, -clip_value, clip_value)", "did not change"),
])
def test_mistakes_are_named(spec_fn, params, old, new, message):
    wrong = GOOD.replace(old, new, 1)
    assert wrong != GOOD
    with pytest.raises(CheckFailure, match=re.escape(message)):
        run(spec_fn, wrong, **params)


def test_per_array_clipping_is_named():
    wrong = GOOD.replace(
        """    if total > max_norm:
        for g in grads.values():
            g *= max_norm / (total + 1e-6)""",
        """    for g in grads.values():
        n = np.linalg.norm(g)
        if n > max_norm:
            g *= max_norm / (n + 1e-6)""")
    with pytest.raises(CheckFailure, match="by its own norm"):
        run(spec.clip_grad_norm, wrong, seed=3)


def test_a_wrong_step_jacobian_is_named_when_the_norms_fail():
    wrong = GOOD.replace("(1 - h**2)[:, :, None]", "(1 - h)[:, :, None]", 1)
    with pytest.raises(CheckFailure, match="jacobian_norms uses your step_jacobian, which does not pass its own "
                                           "check yet; fix it first: .*not 1 − h"):
        run(spec.jacobian_norms, wrong)


def test_a_python_complex_is_named_and_a_list_is_not_a_number():
    complex_radius = GOOD.replace("return float(np.max(np.abs(np.linalg.eigvals(W))))",
                                  "return complex(np.linalg.eigvals(W)[0])")
    with pytest.raises(CheckFailure, match="spectral_radius returned a complex number"):
        run(spec.spectral_radius, complex_radius, kind="rotation")
    listed = GOOD.replace("return float(np.max(np.abs(np.linalg.eigvals(W))))",
                          "return list(np.abs(np.linalg.eigvals(W)))")
    with pytest.raises(CheckFailure, match="spectral_radius should return one real number, got a list"):
        run(spec.spectral_radius, listed)


def test_clipping_a_copy_of_the_dict_in_place_passes():
    """The arrays, not the dict, are what must change: working on dict(grads) is fine."""
    variant = GOOD.replace("    for g in grads.values():\n        np.clip(g, -clip_value, clip_value, out=g)",
                           "    for g in dict(grads).values():\n        g[...] = np.clip(g, -clip_value, clip_value)")
    assert variant != GOOD
    run(spec.clip_grad_value, variant)
