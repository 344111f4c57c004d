"""The fast paths equal the plain ones.

rnnkit's hot loops take a few shortcuts that the equations in the docstrings do not show:

* ``backend.tanh`` on numpy float64 arrays is computed as 2σ(2a) − 1 (numpy's float64 tanh
  is slow on common CPUs), and the LSTM computes its candidate g the same way
  (``cells.lstm.lstm_gates``), so that one σ call covers all four gates;
* the hidden projection is computed gate block by gate block against a contiguous copy of
  the blocks W_hkᵀ (``cells.base.hidden_projection``);
* the cells write into arrays they are given (``out=``: a step's gate block, the sequence's
  state buffer, the rows of dXW) instead of returning new ones;
* a sequence adds b_hh to the input projection of all steps at once when b_hh only adds to
  the pre-activations, and runs the steps without it;
* the LSTM holds its gates gate by gate, (4, B, H).

Each test here compares a shortcut with the plain computation it replaces. Timings are never
asserted (see bench/run.py); memory is, as a count of bytes.
"""

import warnings

import numpy as np
import pytest
import torch
from conftest import rel_error, split_bptt

from rnnkit import LSTM, GRU, RNN
from rnnkit.backend import matmul, multiply, namespace, sigmoid, tanh
from rnnkit.cells import get_cell
from rnnkit.cells.base import gate_blocks
from rnnkit.sequence import sequence_backward, sequence_forward

B, I, H, T = 3, 4, 5, 6

from cell_variants import IDS, VARIANTS


def make_params(name, rng, bias=True, dtype=np.float64, **options):
    shapes = get_cell(name).param_shapes(I, H, bias, **options)
    return {k: rng.uniform(-0.6, 0.6, s).astype(dtype) for k, s in shapes.items()}


def make_state(name, rng, dtype=np.float64, batch=B):
    parts = [rng.standard_normal((batch, H)).astype(dtype) for _ in range(2 if get_cell(name).has_cell_state else 1)]
    return tuple(parts) if get_cell(name).has_cell_state else parts[0]


def as_parts(name, state):
    return tuple(state) if get_cell(name).has_cell_state else (state,)


# --------------------------------------------------------------------- backend helpers


WIDE = np.concatenate(
    [np.linspace(-25, 25, 20001), np.geomspace(1e-300, 1, 301), -np.geomspace(1e-300, 1, 301),
     [0.0, -0.0, 400.0, -400.0, 1e6, -1e6, np.inf, -np.inf]]
)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tanh_equals_numpys_and_is_quiet(dtype):
    a = WIDE.astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = tanh(namespace(a), a)
    assert t.dtype == dtype
    # float64 goes through 2σ(2a) − 1: within a few units in the last place of 1
    np.testing.assert_allclose(t, np.tanh(a), rtol=0, atol=1e-15 if dtype == np.float64 else 0)
    assert np.all(np.abs(t) <= 1) and t[-2] == 1 and t[-1] == -1
    assert tanh(namespace(a), np.array([0.0], dtype))[0] == 0


@pytest.mark.parametrize("fn", [sigmoid, tanh])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_out_writes_in_place(fn, dtype, rng):
    a = rng.standard_normal((B, 4 * H)).astype(dtype)
    expected = fn(namespace(a), a.copy())
    block = a[:, H : 3 * H]  # a strided view, as the cells use
    got = fn(namespace(a), block, out=block)
    assert got is block
    np.testing.assert_array_equal(a[:, H : 3 * H], expected[:, H : 3 * H])
    t = torch.from_numpy(rng.standard_normal((B, 4 * H)).astype(dtype))
    want = fn(namespace(t), t.clone())
    tb = t[:, H : 3 * H]
    fn(namespace(t), tb, out=tb)
    np.testing.assert_allclose(t[:, H : 3 * H].numpy(), want[:, H : 3 * H].numpy(), rtol=1e-15 if dtype == np.float64 else 1e-6)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_multiply_and_matmul_write_into_strided_views(backend, rng):
    a, b = rng.standard_normal((B, H)), rng.standard_normal((B, H))
    W = rng.standard_normal((H, 2 * H))
    buf = np.zeros((B, 3 * H))
    if backend == "torch":
        a, b, W, buf = (torch.from_numpy(v) for v in (a, b, W, buf))
    xp = namespace(a)
    multiply(xp, a, b, out=buf[:, :H])
    matmul(xp, a, W, out=buf[:, H:])
    buf = np.asarray(buf)
    np.testing.assert_allclose(buf[:, :H], np.asarray(a) * np.asarray(b), rtol=1e-15)
    np.testing.assert_allclose(buf[:, H:], np.asarray(a) @ np.asarray(W), rtol=1e-13)


def test_gate_blocks_is_a_view_of_the_rows(rng):
    a = rng.standard_normal((B, 4 * H))
    blocks = gate_blocks(namespace(a), a, 4)
    assert blocks.shape == (4, B, H)
    for k in range(4):
        np.testing.assert_array_equal(blocks[k], a[:, k * H : (k + 1) * H])
    blocks[2] = 7.0
    assert np.all(a[:, 2 * H : 3 * H] == 7.0)


# ------------------------------------------------------------------------------- cells


def plain_lstm(x, state, p, peephole):
    """The LSTM equations, written out without any shortcut."""

    def sig(v):
        return 1 / (1 + np.exp(-v))

    h_prev, c_prev = state
    a = x @ p["weight_ih"].T + p["bias_ih"] + h_prev @ p["weight_hh"].T + p["bias_hh"]
    a_i, a_f, a_g, a_o = np.split(a, 4, axis=1)
    if peephole:
        a_i, a_f = a_i + p["weight_ci"] * c_prev, a_f + p["weight_cf"] * c_prev
    i, f, g = sig(a_i), sig(a_f), np.tanh(a_g)
    c = f * c_prev + i * g
    if peephole:
        a_o = a_o + p["weight_co"] * c
    return sig(a_o) * np.tanh(c), c


@pytest.mark.parametrize("peephole", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lstm_step_equals_the_plain_equations(peephole, dtype, rng):
    p = make_params("lstm", rng, peephole=peephole)
    x, state = rng.standard_normal((B, I)), make_state("lstm", rng)
    want = plain_lstm(x, state, p, peephole)
    cell = get_cell("lstm")
    cast = {k: v.astype(dtype) for k, v in p.items()}
    got, _ = cell.step_forward(x.astype(dtype), tuple(s.astype(dtype) for s in state), cast, peephole=peephole)
    tol = 1e-13 if dtype == np.float64 else 1e-6
    for g, w in zip(got, want):
        assert g.dtype == dtype
        assert rel_error(g, w) < tol


@pytest.mark.parametrize("name, options", VARIANTS, ids=IDS)
@pytest.mark.parametrize("bias", [True, False])
def test_core_with_out_equals_core_without(name, options, bias, rng):
    """Writing into given arrays changes nothing; the given arrays are the results."""
    cell = get_cell(name)
    p = make_params(name, rng, bias=bias, **options)
    xw = rng.standard_normal((B, cell.num_gates * H))
    state = make_state(name, rng)
    new, cache = cell.core_forward(xw, state, p, **options)
    out = tuple(np.full((B, H), np.nan) for _ in as_parts(name, state))
    new_out, cache_out = cell.core_forward(xw.copy(), state, p, out=out if cell.has_cell_state else out[0], **options)
    for a, b, o in zip(as_parts(name, new), as_parts(name, new_out), out):
        np.testing.assert_array_equal(a, b)
        assert b is o
    dstate = make_state(name, rng)
    dxw, dprev = cell.core_backward(dstate, cache)
    buf = np.full((B, cell.num_gates * H), np.nan)
    dxw_out, dprev_out = cell.core_backward(dstate, cache_out, out=buf)
    assert dxw_out is buf
    np.testing.assert_array_equal(dxw, dxw_out)
    for a, b in zip(as_parts(name, dprev), as_parts(name, dprev_out)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name, options", VARIANTS, ids=IDS)
def test_steps_do_not_change_their_inputs(name, options, rng):
    cell = get_cell(name)
    p = make_params(name, rng, **options)
    x, state, dstate = rng.standard_normal((B, I)), make_state(name, rng), make_state(name, rng)
    copies = [a.copy() for a in (x, *as_parts(name, state), *as_parts(name, dstate), *p.values())]
    _, cache = cell.step_forward(x, state, p, **options)
    cell.step_backward(dstate, cache)
    for a, b in zip((x, *as_parts(name, state), *as_parts(name, dstate), *p.values()), copies):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- sequences


def loop_of_steps(name, x, state0, params, dhs, dstate_T, options):
    """Forward and BPTT as a plain loop of the public step functions (no bias folding, no
    buffers): the weight gradients are summed step by step."""
    cell = get_cell(name)
    state, caches, hs = state0, [], []
    for t in range(x.shape[0]):
        state, cache = cell.step_forward(x[t], state, params, **options)
        caches.append(cache)
        hs.append(as_parts(name, state)[0])
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    d = as_parts(name, dstate_T)
    dx = np.zeros_like(x)
    for t in reversed(range(x.shape[0])):
        d = (d[0] + dhs[t],) + d[1:]
        g = cell.step_backward(d if cell.has_cell_state else d[0], caches[t])
        for k in grads:
            grads[k] += g[k]
        dx[t] = g["x"]
        d = (g["h_prev"], g["c_prev"]) if cell.has_cell_state else (g["h_prev"],)
    return np.stack(hs), state, dx, (d if cell.has_cell_state else d[0]), grads


@pytest.mark.parametrize("name, options", VARIANTS, ids=IDS)
@pytest.mark.parametrize("bias", [True, False])
def test_sequence_equals_a_loop_of_steps(name, options, bias, rng):
    """sequence_forward/backward (buffers, b_hh folded into the projection) against stepping
    the public step functions by hand."""
    p = make_params(name, rng, bias=bias, **options)
    x = rng.standard_normal((T, B, I))
    state0, dstate_T = make_state(name, rng), make_state(name, rng)
    dhs = rng.standard_normal((T, B, H))
    hs, state_T, cache = sequence_forward(name, x, state0, p, **options)
    dx, dstate0, grads = split_bptt(sequence_backward(dhs, dstate_T, cache))
    w_hs, w_state_T, w_dx, w_dstate0, w_grads = loop_of_steps(name, x, state0, p, dhs, dstate_T, options)
    assert rel_error(hs, w_hs) < 1e-13
    for a, b in zip(as_parts(name, state_T), as_parts(name, w_state_T)):
        assert rel_error(a, b) < 1e-13
    assert rel_error(dx, w_dx) < 1e-12
    for a, b in zip(as_parts(name, dstate0), as_parts(name, w_dstate0)):
        assert rel_error(a, b) < 1e-12
    assert grads.keys() == w_grads.keys()
    for k in grads:
        assert rel_error(grads[k], w_grads[k]) < 1e-12, k


@pytest.mark.parametrize("name, options", VARIANTS, ids=IDS)
def test_outputs_do_not_share_memory_with_the_cache(name, options, rng):
    """hs and the final state are new arrays: changing them must not change the gradients."""
    p = make_params(name, rng, **options)
    x, state0 = rng.standard_normal((T, B, I)), make_state(name, rng)
    dhs = rng.standard_normal((T, B, H))
    hs, state_T, cache = sequence_forward(name, x, state0, p, **options)
    before = split_bptt(sequence_backward(dhs, None, cache))[2]
    hs[...] = 1e3
    for part in as_parts(name, state_T):
        part[...] = -1e3
    after = split_bptt(sequence_backward(dhs, None, cache))[2]
    for k in before:
        np.testing.assert_array_equal(before[k], after[k])


@pytest.mark.parametrize("name, options", VARIANTS, ids=IDS)
def test_float32_stays_float32(name, options, rng):
    """No Python scalar, mask or helper turns float32 work into float64."""
    p = make_params(name, rng, dtype=np.float32, **options)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    mask = np.ones((T, B))
    mask[4:, 0] = 0
    hs, state_T, cache = sequence_forward(name, x, None, p, mask=mask, **options)
    dx, dstate0, grads = split_bptt(sequence_backward(rng.standard_normal((T, B, H)).astype(np.float32), None, cache, truncate=2))
    arrays = [hs, dx, *as_parts(name, state_T), *as_parts(name, dstate0), *grads.values(), *cache.states]
    for step in cache.core_caches:
        arrays += [a for a in step if isinstance(a, np.ndarray)]
    assert {a.dtype for a in arrays} == {np.dtype(np.float32)}


# ------------------------------------------------------------------------------ memory


def kept_bytes(obj, skip, seen=None):
    """Bytes of the distinct numpy buffers reachable from obj (views count their base once)."""
    seen = set(skip) if seen is None else seen
    if isinstance(obj, np.ndarray):
        base = obj if obj.base is None else obj.base
        if id(base) in seen:
            return 0
        seen.add(id(base))
        return base.nbytes
    if isinstance(obj, dict):
        return sum(kept_bytes(v, skip, seen) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(kept_bytes(v, skip, seen) for v in obj)
    if hasattr(obj, "__dict__") and not isinstance(obj, type):
        return kept_bytes(vars(obj), skip, seen)
    return 0


# what BPTT keeps per step, in (B, H) arrays, and what torch's autograd saves for the same
# modules (bench/run.py measures it: LSTM 16, GRU 7, RNN 1; plus the initial state)
KEPT_PER_STEP = {RNN: 1, GRU: 5, LSTM: 7}
TORCH_PER_STEP = {RNN: 1, GRU: 7, LSTM: 16}


@pytest.mark.parametrize("module", [RNN, GRU, LSTM])
def test_bptt_keeps_each_array_once(module, rng):
    """The cache of a module holds the states once (the cells' caches are views of the
    sequence's state buffer), not the outputs, and no more per step than torch saves."""
    m = module(I, H, seed=0)
    x = rng.standard_normal((T, B, I))
    m(x)
    skip = {id(a if a.base is None else a.base) for a in (*m.params.values(), x)}
    per_bh = B * H * 8
    parts = 2 if module is LSTM else 1
    expected = (KEPT_PER_STEP[module] * T + parts) * per_bh  # + the initial state(s)
    assert kept_bytes(m._cache, skip) == expected
    assert KEPT_PER_STEP[module] <= TORCH_PER_STEP[module]



def test_gate_blocks_of_any_layout_is_a_view():
    a = np.zeros((4 * H, B)).T  # (B, 4H) in column-major order: still a view (an axis is only split)
    gate_blocks(namespace(a), a, 4)[3] = 1.0
    assert np.all(a[:, 3 * H :] == 1.0) and np.all(a[:, : 3 * H] == 0.0)
