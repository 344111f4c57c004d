"""rnnkit.clip: clip_grad_norm / clip_grad_value match torch.nn.utils, in place, on numpy and torch."""

import numpy as np
import pytest
import torch

from rnnkit.clip import clip_grad_norm, clip_grad_value

BACKENDS = ["numpy", "torch"] + (["cuda"] if torch.cuda.is_available() else [])
TOL = {np.float32: dict(rtol=1e-6, atol=1e-7), np.float64: dict(rtol=1e-14, atol=1e-15)}


def to(backend, a):
    if backend == "numpy":
        return a.copy()
    return torch.from_numpy(a.copy()).to("cuda" if backend == "cuda" else "cpu")


def as_numpy(a):
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def grads_and_torch_params(dtype, scale):
    rng = np.random.default_rng(0)
    shapes = {"w": (4, 3), "b": (4,), "u": (2, 2, 2)}
    grads = {k: (scale * rng.standard_normal(shape)).astype(dtype) for k, shape in shapes.items()}
    params = []
    for g in grads.values():
        p = torch.nn.Parameter(torch.zeros(g.shape, dtype=torch.from_numpy(g).dtype))
        p.grad = torch.from_numpy(g.copy())
        params.append(p)
    return grads, params


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("max_norm", [0.5, 3.0, 100.0])  # clipped, clipped, left alone
def test_clip_grad_norm_matches_torch(backend, dtype, max_norm):
    grads, params = grads_and_torch_params(dtype, scale=1.0)
    ours = {k: to(backend, v) for k, v in grads.items()}
    arrays_before = dict(ours)
    total = clip_grad_norm(ours, max_norm)
    expected_total = torch.nn.utils.clip_grad_norm_(params, max_norm, foreach=False)
    np.testing.assert_allclose(float(total), expected_total.item(), **TOL[dtype])
    for (name, g), p in zip(ours.items(), params):
        assert g is arrays_before[name]  # in place
        np.testing.assert_allclose(as_numpy(g), p.grad.numpy(), **TOL[dtype], err_msg=name)
    clipped_norm = np.sqrt(sum(np.sum(as_numpy(g).astype(np.float64) ** 2) for g in ours.values()))
    assert clipped_norm <= max_norm * (1 + 1e-6)


def test_clip_grad_norm_keeps_the_direction_and_reports_the_norm_before():
    g = {"a": np.array([3.0, 0.0]), "b": np.array([[0.0, 4.0]])}
    total = clip_grad_norm(g, 1.0)
    assert float(total) == pytest.approx(5.0)
    np.testing.assert_allclose(g["a"], [3.0 / (5 + 1e-6), 0.0])
    np.testing.assert_allclose(g["b"], [[0.0, 4.0 / (5 + 1e-6)]])


def test_clip_grad_norm_below_the_limit_changes_nothing():
    g = {"a": np.array([0.3, -0.4])}
    before = g["a"].copy()
    clip_grad_norm(g, 1.0)
    np.testing.assert_array_equal(g["a"], before)


def test_clip_grad_norm_accepts_a_list_and_skips_none():
    a = np.array([6.0, 8.0])
    assert float(clip_grad_norm([a, None], 5.0)) == pytest.approx(10.0)
    np.testing.assert_allclose(a, [3.0, 4.0], rtol=1e-6)
    assert clip_grad_norm({}, 1.0) == 0.0


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_grad_value_matches_torch(backend, dtype):
    grads, params = grads_and_torch_params(dtype, scale=2.0)
    ours = {k: to(backend, v) for k, v in grads.items()}
    arrays_before = dict(ours)
    clip_grad_value(ours, 1.5)
    torch.nn.utils.clip_grad_value_(params, 1.5)
    for (name, g), p in zip(ours.items(), params):
        assert g is arrays_before[name]
        np.testing.assert_array_equal(as_numpy(g), p.grad.numpy(), err_msg=name)
    assert max(np.abs(as_numpy(g)).max() for g in ours.values()) == pytest.approx(1.5)


def test_errors():
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm({"a": np.ones(2)}, -1.0)
    with pytest.raises(ValueError, match="clip_value"):
        clip_grad_value({"a": np.ones(2)}, -1.0)
