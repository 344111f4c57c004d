"""rnnkit.losses: parity with torch (values and autograd gradients), numerical gradient checks, errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnnkit.gradcheck import grad_check
from rnnkit.losses import cross_entropy, log_softmax, softmax, softmax_backward, squared_error

BACKENDS = ["numpy", "torch"] + (["cuda"] if torch.cuda.is_available() else [])
TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}


def to(backend, a):
    """numpy array -> the backend's array (same dtype)."""
    if backend == "numpy":
        return a
    return torch.from_numpy(a).to("cuda" if backend == "cuda" else "cpu")


def as_numpy(a):
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def torch_ce(logits, targets, ignore_index, reduction):
    """torch's cross-entropy on (..., V) logits and its gradient."""
    z = torch.from_numpy(logits).requires_grad_(True)
    V = logits.shape[-1]
    kwargs = {} if ignore_index is None else {"ignore_index": ignore_index}
    loss = F.cross_entropy(z.reshape(-1, V), torch.from_numpy(targets).reshape(-1), reduction=reduction, **kwargs)
    loss.backward()
    return loss.item(), z.grad.numpy()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("ignore_index", [None, -100, 2])
def test_cross_entropy_matches_torch(backend, dtype, reduction, ignore_index):
    rng = np.random.default_rng(0)
    T, B, V = 5, 3, 7
    logits = (3 * rng.standard_normal((T, B, V))).astype(dtype)
    targets = rng.integers(0, V, (T, B))
    if ignore_index == -100:
        targets[3:, 1] = -100  # padded steps of sequence 1
    loss, grads = cross_entropy(to(backend, logits), to(backend, targets), ignore_index, reduction)
    dlogits = grads["logits"]
    expected_loss, expected_grad = torch_ce(logits, targets, ignore_index, reduction)
    assert type(dlogits) is type(to(backend, logits)) and dlogits.dtype == to(backend, logits).dtype
    np.testing.assert_allclose(float(loss), expected_loss, **TOL[dtype])
    np.testing.assert_allclose(as_numpy(dlogits), expected_grad, **TOL[dtype])


def test_ignored_positions_get_no_gradient_and_do_not_count_in_the_mean():
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((4, 2, 5))
    targets = rng.integers(0, 5, (4, 2))
    targets[2:, 0] = -1
    loss, grads = cross_entropy(logits, targets, ignore_index=-1, reduction="mean")
    dlogits = grads["logits"]
    assert np.all(dlogits[2:, 0] == 0)
    kept = targets != -1
    manual = -np.mean(log_softmax(logits)[kept, targets[kept]])
    assert loss == pytest.approx(manual, rel=1e-14)


def test_all_ignored_mean_is_nan_like_torch():
    logits = np.zeros((2, 3))
    targets = np.array([-100, -100])
    with np.errstate(invalid="ignore"):
        loss, _ = cross_entropy(logits, targets, ignore_index=-100, reduction="mean")
    assert np.isnan(loss) and np.isnan(torch_ce(logits, targets, -100, "mean")[0])


def test_cross_entropy_is_the_sum_of_per_step_losses():
    """E = sum_t E_t: the loss of a sequence is the sum of the losses of its steps."""
    rng = np.random.default_rng(2)
    logits, targets = rng.standard_normal((6, 2, 4)), rng.integers(0, 4, (6, 2))
    total, _ = cross_entropy(logits, targets)
    assert total == pytest.approx(sum(cross_entropy(logits[t], targets[t])[0] for t in range(6)), rel=1e-14)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_cross_entropy_gradcheck(reduction):
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((4, 3, 6))
    targets = rng.integers(0, 6, (4, 3))
    targets[0, 0] = -100
    _, grads = cross_entropy(logits, targets, -100, reduction)

    def f():
        return cross_entropy(logits, targets, -100, reduction)[0]

    report = grad_check(f, {"logits": logits}, grads)  # the gradient dict is keyed like the inputs
    assert report.passed, report


@pytest.mark.parametrize("backend", BACKENDS)
def test_softmax_matches_torch_and_is_stable(backend):
    rng = np.random.default_rng(4)
    z = rng.standard_normal((3, 4, 5)) * 10
    z[0, 0, 0] = 1000.0  # would overflow exp() without the max shift
    for axis in (-1, 0, 1):
        p = as_numpy(softmax(to(backend, z), axis=axis))
        np.testing.assert_allclose(p, torch.softmax(torch.from_numpy(z), dim=axis).numpy(), rtol=1e-13, atol=1e-300)
    assert np.all(np.isfinite(softmax(z)))


def test_softmax_backward_matches_torch_autograd():
    rng = np.random.default_rng(5)
    z, dp = rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
    zt = torch.from_numpy(z).requires_grad_(True)
    torch.softmax(zt, dim=-1).backward(torch.from_numpy(dp))
    np.testing.assert_allclose(softmax_backward(dp, softmax(z))["logits"], zt.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("masked", [False, True])
def test_squared_error_matches_torch(backend, dtype, reduction, masked):
    """E = 1/2 sum m (y - d)^2, so 2 E equals torch's mse_loss on the entries that count."""
    rng = np.random.default_rng(6)
    y, d = rng.standard_normal((5, 3, 2)).astype(dtype), rng.standard_normal((5, 3, 2)).astype(dtype)
    mask = (rng.random((5, 3)) < 0.7).astype(dtype) if masked else None
    loss, grads = squared_error(to(backend, y), to(backend, d), reduction, None if mask is None else to(backend, mask))
    dy = grads["y"]
    yt = torch.from_numpy(y).requires_grad_(True)
    keep = torch.ones(5, 3, dtype=torch.bool) if mask is None else torch.from_numpy(mask).bool()
    expected = 0.5 * F.mse_loss(yt[keep], torch.from_numpy(d)[keep], reduction=reduction)
    expected.backward()
    np.testing.assert_allclose(float(loss), expected.item(), **TOL[dtype])
    np.testing.assert_allclose(as_numpy(dy), yt.grad.numpy(), **TOL[dtype])


def test_squared_error_gradient_is_the_error():
    y, d = np.array([[1.0, 2.0], [3.0, -1.0]]), np.array([[0.5, 2.0], [1.0, 1.0]])
    loss, grads = squared_error(y, d)
    dy = grads["y"]
    assert loss == pytest.approx(0.5 * (0.25 + 4 + 4))
    np.testing.assert_array_equal(dy, y - d)


def test_squared_error_gradcheck_with_mask():
    rng = np.random.default_rng(7)
    y, d = rng.standard_normal((4, 2, 3)), rng.standard_normal((4, 2, 3))
    mask = np.array([[1, 1], [1, 0], [0, 1], [1, 0]])
    _, grads = squared_error(y, d, "mean", mask)
    report = grad_check(lambda: squared_error(y, d, "mean", mask)[0], {"y": y}, grads)
    assert report.passed, report


def test_errors_say_what_was_expected():
    logits = np.zeros((4, 3, 5))
    with pytest.raises(ValueError, match=r"targets have shape \(3, 4\), expected \(4, 3\)"):
        cross_entropy(logits, np.zeros((3, 4), dtype=np.int64))
    with pytest.raises(ValueError, match=r"target 5 is out of range.*\[0, 4\]"):
        cross_entropy(logits, np.full((4, 3), 5))
    with pytest.raises(TypeError, match="integer class indices"):
        cross_entropy(logits, np.zeros((4, 3)))
    with pytest.raises(ValueError, match="reduction"):
        cross_entropy(logits, np.zeros((4, 3), dtype=np.int64), reduction="avg")
    with pytest.raises(ValueError, match=r"mask has shape \(3,\), expected the leading axes of y, \(4,\)"):
        squared_error(np.zeros((4, 2)), np.zeros((4, 2)), mask=np.ones(3))
