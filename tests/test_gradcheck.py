"""rnnkit.gradcheck: the numerical gradient, the report, and catching wrong gradients (and wrong usage)."""

import numpy as np
import pytest

from rnnkit.gradcheck import GradCheckReport, grad_check, numerical_gradient, relative_error


def test_numerical_gradient_of_a_known_function_and_x_is_restored():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4))
    before = x.copy()
    grad = numerical_gradient(lambda: np.sum(x**3) + np.sum(np.sin(x)), x)
    np.testing.assert_allclose(grad, 3 * before**2 + np.cos(before), rtol=1e-8, atol=1e-9)
    np.testing.assert_array_equal(x, before)  # every entry put back exactly


def test_x_is_restored_even_when_f_raises():
    x = np.array([1.0, 2.0])
    calls = []

    def f():
        calls.append(x.copy())
        if len(calls) == 2:
            raise RuntimeError("boom")
        return float(np.sum(x))

    with pytest.raises(RuntimeError, match="boom"):
        numerical_gradient(f, x)
    np.testing.assert_array_equal(x, [1.0, 2.0])


def tanh_rnn(x, Wx, Wh):
    """h_t = tanh(W_x x_t + W_h h_{t-1}), h_0 = 0; returns all h_t, (T, B, H)."""
    h, hs = np.zeros((x.shape[1], Wh.shape[0])), []
    for t in range(x.shape[0]):
        h = np.tanh(x[t] @ Wx.T + h @ Wh.T)
        hs.append(h)
    return np.stack(hs)


def tanh_rnn_backward(dhs, x, hs, Wx, Wh, forget_recurrent_path=False):
    """BPTT; ``forget_recurrent_path`` is the classic mistake of dropping dE/dh_t from step t+1."""
    dWx, dWh, dnext = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(hs[0])
    for t in reversed(range(x.shape[0])):
        dz = (dhs[t] + (0 if forget_recurrent_path else dnext)) * (1 - hs[t] ** 2)
        h_prev = hs[t - 1] if t > 0 else np.zeros_like(hs[0])
        dWx += dz.T @ x[t]
        dWh += dz.T @ h_prev
        dnext = dz @ Wh
    return dWx, dWh


@pytest.fixture
def rnn_problem():
    rng = np.random.default_rng(1)
    T, B, I, H = 6, 2, 3, 4
    x, d = rng.standard_normal((T, B, I)), rng.standard_normal((T, B, H))
    Wx, Wh = 0.7 * rng.standard_normal((H, I)), 0.7 * rng.standard_normal((H, H))

    def loss():
        return 0.5 * np.sum((tanh_rnn(x, Wx, Wh) - d) ** 2)

    hs = tanh_rnn(x, Wx, Wh)
    return loss, x, hs, hs - d, Wx, Wh


def test_correct_bptt_passes(rnn_problem):
    loss, x, hs, dhs, Wx, Wh = rnn_problem
    dWx, dWh = tanh_rnn_backward(dhs, x, hs, Wx, Wh)
    report = grad_check(loss, {"Wx": Wx, "Wh": Wh}, {"Wx": dWx, "Wh": dWh})
    assert report.passed and bool(report), report
    assert report.max_rel_error < 1e-6
    assert "all passed" in str(report)


def test_bptt_without_the_recurrent_path_fails(rnn_problem):
    loss, x, hs, dhs, Wx, Wh = rnn_problem
    dWx, dWh = tanh_rnn_backward(dhs, x, hs, Wx, Wh, forget_recurrent_path=True)
    report = grad_check(loss, {"Wx": Wx, "Wh": Wh}, {"Wx": dWx, "Wh": dWh})
    assert not report.passed and not report
    assert not report["Wx"].passed and not report["Wh"].passed
    assert report["Wh"].max_rel_error > 1e-3
    assert "FAILED: Wx, Wh" in str(report)


def test_a_single_wrong_entry_is_found_and_named():
    rng = np.random.default_rng(2)
    W, h = rng.standard_normal((3, 5)), rng.standard_normal((4, 5))

    def f():
        return np.sum(np.tanh(h @ W.T))

    dW = (1 - np.tanh(h @ W.T) ** 2).T @ h
    dW[1, 3] += 1e-3  # one entry slightly wrong
    report = grad_check(f, {"W": W}, {"W": dW})
    result = report["W"]
    assert not result.passed and result.worst_index == (1, 3)
    assert result.analytic == pytest.approx(dW[1, 3]) and result.numerical == pytest.approx(dW[1, 3] - 1e-3, rel=1e-6)
    table = str(report)
    assert "(1, 3)" in table and "FAIL" in table and "(3, 5)" in table
    assert repr(report) == table


def test_tiny_gradients_in_a_large_loss_are_judged_against_the_rounding_noise():
    """f is only known to ~1e-16 |f|; a gradient entry of 1e-5 in a loss of ~1e4 cannot be resolved to 1e-6
    relative. By default such differences pass; the plain rule (tiny=1e-8) flags them; real errors still fail."""
    x = np.array([100.0, 0.5])

    def f():
        return x[0] ** 2 + 1e-5 * x[1]

    analytic = np.array([200.0, 1e-5])
    assert grad_check(f, {"x": x}, {"x": analytic}).passed
    assert not grad_check(f, {"x": x}, {"x": analytic}, tiny=1e-8).passed
    assert not grad_check(f, {"x": x}, {"x": np.array([200.0, 1e-4])}).passed


def test_refuses_float32_with_an_explanation():
    x = np.ones(3, dtype=np.float32)
    with pytest.raises(TypeError, match="float32.*rounding noise.*float64"):
        numerical_gradient(lambda: float(np.sum(x**2)), x)
    with pytest.raises(TypeError, match=r"inputs\['x'\] is float32"):
        grad_check(lambda: float(np.sum(x**2)), {"x": x}, {"x": 2 * x})
    y = np.ones(3)
    with pytest.raises(TypeError, match="f returned a float32 value"):
        numerical_gradient(lambda: np.sum(y.astype(np.float32)), y)


def test_usage_errors_say_what_went_wrong():
    W = np.ones((2, 3))

    def f():
        return float(np.sum(W**2))

    with pytest.raises(ValueError, match=r"for 'W' has shape \(3, 2\), expected \(2, 3\).*transposed"):
        grad_check(f, {"W": W}, {"W": np.ones((3, 2))})
    with pytest.raises(ValueError, match=r"analytic has no gradient for \['W'\]"):
        grad_check(f, {"W": W}, {})
    with pytest.raises(ValueError, match=r"not in inputs"):
        grad_check(f, {"W": W}, {"W": 2 * W, "b": np.ones(2)})
    with pytest.raises(ValueError, match="is None"):
        grad_check(f, {"W": W}, {"W": None})
    with pytest.raises(TypeError, match="f returned a tuple of 2 values"):
        grad_check(lambda: (f(), 2 * W), {"W": W}, {"W": 2 * W})
    with pytest.raises(TypeError, match="scalar loss, got an array of shape"):
        numerical_gradient(lambda: W**2, W)
    with pytest.raises(TypeError, match="numpy float64"):
        numerical_gradient(f, [1.0, 2.0])


def test_a_copy_of_the_input_is_noticed():
    W = np.ones((2, 2))
    W_copy = W.copy()
    report = grad_check(lambda: float(np.sum(W_copy**2)), {"W": W}, {"W": 2 * W})
    assert not report.passed and "not a copy" in str(report)


def test_num_checks_samples_entries():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((20, 30))
    calls = []

    def f():
        calls.append(1)
        return np.sum(x**2)

    report = grad_check(f, {"x": x}, {"x": 2 * x}, num_checks=10)
    assert report.passed and report["x"].checked == 10
    assert len(calls) == 1 + 2 * 10  # one call for the noise estimate, two per checked entry


def test_relative_error_formula():
    np.testing.assert_allclose(relative_error([1.0, 0.0, 0.0], [1.1, 0.0, 1e-9]), [0.1 / 2.1, 0.0, 1e-9 / 1e-8])
    assert isinstance(grad_check(lambda: 0.0, {}, {}), GradCheckReport)
