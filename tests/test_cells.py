"""The cells, one step at a time: gradient checks, torch parity, the GRU conventions."""

import warnings

import numpy as np
import pytest
import torch
from conftest import check_grads, rel_error

from rnnkit.backend import namespace, sigmoid
from rnnkit.cells import (
    CELLS,
    GRU_CELL,
    LSTM_CELL,
    get_cell,
    gru_simple_step_backward,
    gru_simple_step_forward,
    gru_step_backward,
    gru_step_forward,
    lstm_step_backward,
    lstm_step_forward,
    rnn_step_backward,
    rnn_step_forward,
)

B, I, H = 3, 4, 5

from cell_variants import VARIANTS


def make_params(cell, rng, bias=True, scale=0.6, **options):
    cell = get_cell(cell)
    shapes = cell.param_shapes(I, H, bias, **options)
    return {name: rng.uniform(-scale, scale, shape) for name, shape in shapes.items()}


def make_state(cell, rng):
    if get_cell(cell).has_cell_state:
        return (rng.standard_normal((B, H)), rng.standard_normal((B, H)))
    return rng.standard_normal((B, H))


def state_parts(cell, state):
    return tuple(state) if get_cell(cell).has_cell_state else (state,)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("name, options", VARIANTS, ids=[f"{n}-{'-'.join(map(str, o.values()))}" for n, o in VARIANTS])
def test_step_gradcheck(name, options, bias, rng):
    cell = get_cell(name)
    params = make_params(cell, rng, bias, **options)
    x = rng.standard_normal((B, I))
    state = make_state(cell, rng)
    parts = state_parts(cell, state)
    weights = [rng.standard_normal((B, H)) for _ in parts]

    def loss():
        new, _ = cell.step_forward(x, state, params, **options)
        return sum(float(np.sum(w * s)) for w, s in zip(weights, state_parts(cell, new)))

    _, cache = cell.step_forward(x, state, params, **options)
    dstate = tuple(weights) if cell.has_cell_state else weights[0]
    grads = cell.step_backward(dstate, cache)
    assert set(grads) == set(params) | {"x", "h_prev"} | ({"c_prev"} if cell.has_cell_state else set())
    arrays = {"x": x, **params, "h_prev": parts[0]}
    if cell.has_cell_state:
        arrays["c_prev"] = parts[1]
    err = check_grads(loss, arrays, grads, tol=1e-7)
    assert err < 1e-7


def test_public_step_functions_are_the_cells():
    assert {c.name for c in CELLS.values()} == {"rnn", "gru", "gru_simple", "lstm"}
    assert get_cell("rnn").step_forward is rnn_step_forward and get_cell("rnn").step_backward is rnn_step_backward
    assert get_cell("gru").step_forward is gru_step_forward and get_cell("gru").step_backward is gru_step_backward
    assert get_cell("gru_simple").step_forward is gru_simple_step_forward
    assert get_cell("gru_simple").step_backward is gru_simple_step_backward
    assert LSTM_CELL.step_forward is lstm_step_forward and LSTM_CELL.step_backward is lstm_step_backward
    assert LSTM_CELL.param_names(True, peephole=True) == (
        "weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_ci", "weight_cf", "weight_co"
    )
    assert GRU_CELL.param_names(False) == ("weight_ih", "weight_hh")
    assert GRU_CELL.param_shapes(I, H)["weight_ih"] == (3 * H, I)
    assert LSTM_CELL.num_gates == 4 and LSTM_CELL.has_cell_state and not GRU_CELL.has_cell_state


def _torch_params(tcell):
    return {k: p.detach().numpy().copy() for k, p in tcell.named_parameters()}


@pytest.mark.parametrize(
    "kind, fn, extra",
    [
        ("RNNCell", "rnn", {"nonlinearity": "tanh"}),
        ("RNNCell", "rnn", {"nonlinearity": "relu"}),
        ("GRUCell", "gru", {}),
        ("LSTMCell", "lstm", {}),
    ],
)
def test_step_matches_torch_cells(kind, fn, extra, rng):
    torch.manual_seed(0)
    tcell = getattr(torch.nn, kind)(I, H, dtype=torch.float64, **extra)
    cell = get_cell(fn)
    params = _torch_params(tcell)
    x = torch.tensor(rng.standard_normal((B, I)), requires_grad=True)
    n = 2 if cell.has_cell_state else 1
    parts = [torch.tensor(rng.standard_normal((B, H)), requires_grad=True) for _ in range(n)]
    tout = tcell(x, tuple(parts) if cell.has_cell_state else parts[0])
    touts = tout if cell.has_cell_state else (tout,)
    ws = [torch.tensor(rng.standard_normal((B, H))) for _ in touts]
    sum((w * o).sum() for w, o in zip(ws, touts)).backward()

    state = tuple(p.detach().numpy() for p in parts) if cell.has_cell_state else parts[0].detach().numpy()
    new, cache = cell.step_forward(x.detach().numpy(), state, params, **extra)
    for ours, theirs in zip(state_parts(cell, new), touts):
        assert rel_error(ours, theirs.detach().numpy()) < 1e-13
    grads = cell.step_backward(tuple(w.numpy() for w in ws) if cell.has_cell_state else ws[0].numpy(), cache)
    assert rel_error(grads["x"], x.grad.numpy()) < 1e-12
    assert rel_error(grads["h_prev"], parts[0].grad.numpy()) < 1e-12
    if cell.has_cell_state:
        assert rel_error(grads["c_prev"], parts[1].grad.numpy()) < 1e-12
    for name, p in tcell.named_parameters():
        assert rel_error(grads[name], p.grad.numpy()) < 1e-12, name


def test_gru_candidate_is_a_reparametrization_of_previous(rng):
    """update_weighs='candidate' with the z rows of W and b negated is the torch GRU."""
    params = make_params("gru", rng)
    flipped = {k: v.copy() for k, v in params.items()}
    for v in flipped.values():
        v[H : 2 * H] *= -1.0  # the z block: σ(−a) = 1 − σ(a)
    x, h = rng.standard_normal((B, I)), rng.standard_normal((B, H))
    for reset_after in (True, False):
        h_prev, cache_p = gru_step_forward(x, h, params, reset_after, "previous")
        h_cand, cache_c = gru_step_forward(x, h, flipped, reset_after, "candidate")
        np.testing.assert_allclose(h_cand, h_prev, rtol=0, atol=1e-15)
        dh = rng.standard_normal((B, H))
        gp, gc = gru_step_backward(dh, cache_p), gru_step_backward(dh, cache_c)
        for name in ("x", "h_prev"):
            np.testing.assert_allclose(gc[name], gp[name], rtol=0, atol=1e-14)
        for name in params:
            expected = gp[name].copy()
            expected[H : 2 * H] *= -1.0
            np.testing.assert_allclose(gc[name], expected, rtol=0, atol=1e-14)


def test_gru_reset_after_false_is_a_different_model(rng):
    """Cho's reset (before W_hn) is not torch's (after W_hn): random weights disagree."""
    params = make_params("gru", rng)
    x, h = rng.standard_normal((B, I)), rng.standard_normal((B, H))
    h_torch, _ = gru_step_forward(x, h, params, reset_after=True)
    h_cho, _ = gru_step_forward(x, h, params, reset_after=False)
    assert np.abs(h_torch - h_cho).max() > 1e-2
    # ... while with r = 1 (a huge reset bias) and b_hn = 0 the two coincide: only r differs
    params["bias_ih"][:H] = 50.0
    params["bias_hh"][2 * H :] = 0.0
    h_torch, _ = gru_step_forward(x, h, params, reset_after=True)
    h_cho, _ = gru_step_forward(x, h, params, reset_after=False)
    np.testing.assert_allclose(h_cho, h_torch, atol=1e-12)


def test_simplified_gru_equations(rng):
    params = make_params("gru_simple", rng)
    x, c_prev = rng.standard_normal((B, I)), rng.standard_normal((B, H))
    a = x @ params["weight_ih"].T + params["bias_ih"] + c_prev @ params["weight_hh"].T + params["bias_hh"]
    gamma_u, c_tilde = 1 / (1 + np.exp(-a[:, :H])), np.tanh(a[:, H:])
    c, _ = gru_simple_step_forward(x, c_prev, params)
    np.testing.assert_allclose(c, gamma_u * c_tilde + (1 - gamma_u) * c_prev, rtol=1e-14, atol=1e-15)


def test_peephole_lstm_equations(rng):
    params = make_params("lstm", rng, peephole=True)
    x, h, c = rng.standard_normal((B, I)), rng.standard_normal((B, H)), rng.standard_normal((B, H))
    a = x @ params["weight_ih"].T + params["bias_ih"] + h @ params["weight_hh"].T + params["bias_hh"]
    s = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    i = s(a[:, :H] + params["weight_ci"] * c)
    f = s(a[:, H : 2 * H] + params["weight_cf"] * c)
    c_new = f * c + i * np.tanh(a[:, 2 * H : 3 * H])
    o = s(a[:, 3 * H :] + params["weight_co"] * c_new)
    (h_out, c_out), _ = lstm_step_forward(x, (h, c), params, peephole=True)
    np.testing.assert_allclose(c_out, c_new, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(h_out, o * np.tanh(c_new), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("name, options", [VARIANTS[1], VARIANTS[4], VARIANTS[6], VARIANTS[8]])
def test_torch_backend_gives_the_numpy_results(name, options, rng):
    cell = get_cell(name)
    params = make_params(cell, rng, **options)
    x = rng.standard_normal((B, I))
    state = make_state(cell, rng)
    new, cache = cell.step_forward(x, state, params, **options)
    dstate = tuple(np.ones((B, H)) for _ in state_parts(cell, state)) if cell.has_cell_state else np.ones((B, H))
    grads = cell.step_backward(dstate, cache)

    T = torch.from_numpy
    tparams = {k: T(v).requires_grad_() for k, v in params.items()}  # requires_grad is fine
    tstate = tuple(map(T, state)) if cell.has_cell_state else T(state)
    tnew, tcache = cell.step_forward(T(x), tstate, tparams, **options)
    tdstate = tuple(map(T, dstate)) if cell.has_cell_state else T(dstate)
    tgrads = cell.step_backward(tdstate, tcache)
    for ours, theirs in zip(state_parts(cell, new), state_parts(cell, tnew)):
        assert isinstance(theirs, torch.Tensor) and not theirs.requires_grad
        np.testing.assert_allclose(theirs.numpy(), ours, rtol=0, atol=1e-14)
    for k in grads:
        np.testing.assert_allclose(tgrads[k].numpy(), grads[k], rtol=0, atol=1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_is_exact_and_quiet_at_the_extremes(dtype):
    a = np.array([-1e4, -100.0, -20.0, 0.0, 20.0, 100.0, 1e4], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = sigmoid(namespace(a), a)
    assert s.dtype == dtype
    with np.errstate(over="ignore"):
        expected = 1 / (1 + np.exp(-a.astype(np.float64)))
    rtol = 1e-6 if dtype == np.float32 else 1e-15
    np.testing.assert_allclose(s, expected, rtol=rtol, atol=1e-37)
    assert s[0] == 0.0 and s[3] == 0.5 and s[-1] == 1.0
    t = torch.from_numpy(a)
    np.testing.assert_allclose(sigmoid(namespace(t), t).numpy(), s, rtol=rtol, atol=1e-37)
