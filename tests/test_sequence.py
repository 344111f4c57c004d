"""Unrolling and BPTT: gradient checks with masks, reverse and truncation; properties."""

import numpy as np
import pytest
import torch
from conftest import check_grads, rel_error, split_bptt
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit.cells import get_cell
from rnnkit.sequence import sequence_backward, sequence_forward
from rnnkit.sequence import lengths_to_mask

I, H = 3, 4
PROPERTY = settings(max_examples=20, deadline=None, derandomize=True)

from cell_variants import IDS, VARIANTS


def make_params(cell, rng, bias=True, scale=0.6, **options):
    shapes = get_cell(cell).param_shapes(I, H, bias, **options)
    return {name: rng.uniform(-scale, scale, shape) for name, shape in shapes.items()}


def parts(cell, state):
    return tuple(state) if get_cell(cell).has_cell_state else (state,)


def pack(cell, parts_):
    return tuple(parts_) if get_cell(cell).has_cell_state else parts_[0]


def random_problem(name, options, rng, T, B, lengths=None):
    cell = get_cell(name)
    n = 2 if cell.has_cell_state else 1
    return dict(
        params=make_params(cell, rng, **options),
        x=rng.standard_normal((T, B, I)),
        state0=pack(cell, [rng.standard_normal((B, H)) for _ in range(n)]),
        w=rng.standard_normal((T, B, H)),
        w_T=pack(cell, [rng.standard_normal((B, H)) for _ in range(n)]),
        mask=None if lengths is None else lengths_to_mask(np.array(lengths), T),
    )


def scalar_loss(name, hs, state_T, w, w_T):
    return float(np.sum(w * hs)) + sum(float(np.sum(a * b)) for a, b in zip(parts(name, w_T), parts(name, state_T)))


# --------------------------------------------------------------------- gradient checks


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("name, options", VARIANTS, ids=IDS)
def test_sequence_gradcheck_with_mask(name, options, reverse, rng):
    T, lengths = 5, [5, 2, 4]
    p = random_problem(name, options, rng, T, len(lengths), lengths)

    def run():
        return sequence_forward(name, p["x"], p["state0"], p["params"], mask=p["mask"], reverse=reverse, **options)

    def loss():
        hs, state_T, _ = run()
        return scalar_loss(name, hs, state_T, p["w"], p["w_T"])

    _, _, cache = run()
    dx, dstate0, grads = split_bptt(sequence_backward(p["w"], p["w_T"], cache))
    analytic = {"x": dx, **grads}
    arrays = {"x": p["x"], **p["params"]}
    for k, (s, d) in enumerate(zip(parts(name, p["state0"]), parts(name, dstate0))):
        arrays[f"state0_{k}"], analytic[f"state0_{k}"] = s, d
    check_grads(loss, arrays, analytic, entries=40, tol=1e-7)
    # padded steps: no input gradient
    assert np.all(dx[~p["mask"].astype(bool)] == 0.0)


def _chunked_truncated_loss(name, options, p, lengths, k, reverse):
    """Σ over sequences, run alone, of the loss with the state entering every chunk of k
    steps held fixed at its current value: its gradient is truncated BPTT's."""
    boundaries = []
    for b, L in enumerate(lengths):
        order = np.arange(L)[::-1] if reverse else np.arange(L)  # processing order
        x_b = p["x"][order, b : b + 1]
        state = pack(name, [s[b : b + 1] for s in parts(name, p["state0"])])
        starts = list(range(0, L, k))
        fixed = []
        for s in starts:
            fixed.append(tuple(a.copy() for a in parts(name, state)))
            _, state, _ = sequence_forward(name, x_b[s : s + k], state, p["params"], **options)
        boundaries.append((order, x_b, starts, fixed))

    def loss():
        total = 0.0
        for b, (order, x_b, starts, fixed) in enumerate(boundaries):
            x_b = p["x"][order, b : b + 1]  # re-read: p["x"] may be perturbed
            for j, s in enumerate(starts):
                state0 = fixed[j] if j > 0 else parts(name, p["state0"])
                state0 = pack(name, [a[b : b + 1] if j == 0 else a for a in state0])
                hs, state_T, _ = sequence_forward(name, x_b[s : s + k], state0, p["params"], **options)
                total += float(np.sum(p["w"][order[s : s + k], b : b + 1] * hs))
                if j == len(starts) - 1:
                    for wt, st_ in zip(parts(name, p["w_T"]), parts(name, state_T)):
                        total += float(np.sum(wt[b : b + 1] * st_))
        return total

    return loss


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("name, options", [VARIANTS[k] for k in (0, 4, 6, 8)], ids=[IDS[k] for k in (0, 4, 6, 8)])
def test_truncated_bptt_gradcheck(name, options, reverse, rng):
    T, k, lengths = 7, 3, [7, 5, 2]
    p = random_problem(name, options, rng, T, len(lengths), lengths)
    _, _, cache = sequence_forward(name, p["x"], p["state0"], p["params"], mask=p["mask"], reverse=reverse, **options)
    dx, dstate0, grads = split_bptt(sequence_backward(p["w"], p["w_T"], cache, truncate=k))
    loss = _chunked_truncated_loss(name, options, p, lengths, k, reverse)
    analytic = {"x": dx, **grads}
    arrays = {"x": p["x"], **p["params"]}
    for j, (s, d) in enumerate(zip(parts(name, p["state0"]), parts(name, dstate0))):
        arrays[f"state0_{j}"], analytic[f"state0_{j}"] = s, d
    check_grads(loss, arrays, analytic, entries=30, tol=1e-7)
    # and truncation really changed something
    _, _, full = split_bptt(sequence_backward(p["w"], p["w_T"], cache))
    assert rel_error(full["weight_hh"], grads["weight_hh"]) > 1e-6


# ------------------------------------------------------------------------ properties


@PROPERTY
@given(
    variant=st.sampled_from(range(len(VARIANTS))),
    lengths=st.lists(st.integers(1, 6), min_size=1, max_size=4),
    extra=st.integers(0, 2),
    reverse=st.booleans(),
    truncate=st.one_of(st.none(), st.integers(1, 4)),
    seed=st.integers(0, 2**16),
)
def test_padded_batch_equals_sequences_run_one_by_one(variant, lengths, extra, reverse, truncate, seed):
    name, options = VARIANTS[variant]
    rng = np.random.default_rng(seed)
    T = max(lengths) + extra
    p = random_problem(name, options, rng, T, len(lengths), lengths)
    p["x"][~p["mask"].astype(bool)] = np.nan  # padding is ignored, whatever it holds
    hs, state_T, cache = sequence_forward(
        name, p["x"], p["state0"], p["params"], mask=p["mask"], reverse=reverse, **options
    )
    dx, dstate0, grads = split_bptt(sequence_backward(p["w"], p["w_T"], cache, truncate=truncate))

    summed = {k: np.zeros_like(v) for k, v in grads.items()}
    for b, L in enumerate(lengths):
        one = lambda a: a[b : b + 1]  # noqa: E731
        s0 = pack(name, [one(s) for s in parts(name, p["state0"])])
        x_b = p["x"][:L, b : b + 1]
        hs_b, state_b, cache_b = sequence_forward(name, x_b, s0, p["params"], reverse=reverse, **options)
        w_T = pack(name, [one(w) for w in parts(name, p["w_T"])])
        dx_b, dstate0_b, grads_b = split_bptt(sequence_backward(p["w"][:L, b : b + 1], w_T, cache_b, truncate=truncate))
        np.testing.assert_allclose(hs[:L, b : b + 1], hs_b, rtol=1e-12, atol=1e-13)
        assert np.all(hs[L:, b] == 0.0) and np.all(dx[L:, b] == 0.0)
        np.testing.assert_allclose(dx[:L, b : b + 1], dx_b, rtol=1e-12, atol=1e-13)
        for ours, alone in zip(parts(name, state_T), parts(name, state_b)):
            np.testing.assert_allclose(one(ours), alone, rtol=1e-12, atol=1e-13)
        for ours, alone in zip(parts(name, dstate0), parts(name, dstate0_b)):
            np.testing.assert_allclose(one(ours), alone, rtol=1e-12, atol=1e-13)
        for k in summed:
            summed[k] += grads_b[k]
    for k in grads:
        np.testing.assert_allclose(grads[k], summed[k], rtol=1e-11, atol=1e-12)


@PROPERTY
@given(
    variant=st.sampled_from(range(len(VARIANTS))),
    T=st.integers(1, 6),
    more=st.integers(0, 3),
    masked=st.booleans(),
    reverse=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_truncate_at_least_T_is_full_bptt(variant, T, more, masked, reverse, seed):
    name, options = VARIANTS[variant]
    rng = np.random.default_rng(seed)
    lengths = list(rng.integers(1, T + 1, size=3)) if masked else None
    p = random_problem(name, options, rng, T, 3, lengths)
    _, _, cache = sequence_forward(name, p["x"], p["state0"], p["params"], mask=p["mask"], reverse=reverse, **options)
    full = split_bptt(sequence_backward(p["w"], p["w_T"], cache))
    truncated = split_bptt(sequence_backward(p["w"], p["w_T"], cache, truncate=T + more))
    np.testing.assert_array_equal(full[0], truncated[0])
    for a, b in zip(parts(name, full[1]), parts(name, truncated[1])):
        np.testing.assert_array_equal(a, b)
    for k in full[2]:
        np.testing.assert_array_equal(full[2][k], truncated[2][k])


TORCH_CELLS = {"rnn": torch.nn.RNNCell, "gru": torch.nn.GRUCell, "lstm": torch.nn.LSTMCell}


@PROPERTY
@given(
    name=st.sampled_from(sorted(TORCH_CELLS)),
    T=st.integers(1, 8),
    k=st.integers(1, 5),
    seed=st.integers(0, 2**16),
)
def test_truncation_equals_torch_detach_every_k_steps(name, T, k, seed):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    B = 2
    tcell = TORCH_CELLS[name](I, H, dtype=torch.float64)
    lstm = name == "lstm"
    x = torch.tensor(rng.standard_normal((T, B, I)), requires_grad=True)
    s0 = [torch.tensor(rng.standard_normal((B, H)), requires_grad=True) for _ in range(2 if lstm else 1)]
    w = torch.tensor(rng.standard_normal((T, B, H)))
    state = tuple(s0) if lstm else s0[0]
    loss = 0.0
    for t in range(T):
        if t > 0 and t % k == 0:  # h.detach() every k steps
            state = tuple(s.detach() for s in state) if lstm else state.detach()
        state = tcell(x[t], state)
        loss = loss + (w[t] * (state[0] if lstm else state)).sum()
    loss.backward()

    params = {n: p.detach().numpy().copy() for n, p in tcell.named_parameters()}
    s0_np = pack(name, [s.detach().numpy() for s in s0])
    _, _, cache = sequence_forward(name, x.detach().numpy(), s0_np, params)
    dx, dstate0, grads = split_bptt(sequence_backward(w.numpy(), None, cache, truncate=k))
    assert rel_error(dx, x.grad.numpy()) < 1e-12
    for ours, s in zip(parts(name, dstate0), s0):
        assert rel_error(ours, s.grad.numpy()) < 1e-12
    for n, p in tcell.named_parameters():
        assert rel_error(grads[n], p.grad.numpy()) < 1e-12, n


@PROPERTY
@given(
    variant=st.sampled_from(range(len(VARIANTS))),
    T=st.integers(1, 6),
    truncate=st.one_of(st.none(), st.integers(1, 3)),
    seed=st.integers(0, 2**16),
)
def test_reverse_is_forward_on_the_flipped_sequence(variant, T, truncate, seed):
    name, options = VARIANTS[variant]
    rng = np.random.default_rng(seed)
    p = random_problem(name, options, rng, T, 2)
    hs, state_T, cache = sequence_forward(name, p["x"], p["state0"], p["params"], reverse=True, **options)
    hs_f, state_f, cache_f = sequence_forward(name, p["x"][::-1], p["state0"], p["params"], **options)
    np.testing.assert_allclose(hs, hs_f[::-1], rtol=1e-13, atol=1e-14)
    dx, dstate0, grads = split_bptt(sequence_backward(p["w"], p["w_T"], cache, truncate=truncate))
    w_flipped = np.ascontiguousarray(p["w"][::-1])
    dx_f, dstate0_f, grads_f = split_bptt(sequence_backward(w_flipped, p["w_T"], cache_f, truncate=truncate))
    np.testing.assert_allclose(dx, dx_f[::-1], rtol=1e-12, atol=1e-13)
    for k in grads:
        np.testing.assert_allclose(grads[k], grads_f[k], rtol=1e-12, atol=1e-13)


# ------------------------------------------------------------------------- the rest


@pytest.mark.parametrize("name, options", [VARIANTS[k] for k in (1, 5, 6, 8)], ids=[IDS[k] for k in (1, 5, 6, 8)])
def test_torch_backend_gives_the_numpy_results(name, options, rng):
    T, lengths = 5, [5, 3, 1]
    p = random_problem(name, options, rng, T, 3, lengths)
    hs, state_T, cache = sequence_forward(
        name, p["x"], p["state0"], p["params"], mask=p["mask"], reverse=True, **options
    )
    dx, dstate0, grads = split_bptt(sequence_backward(p["w"], p["w_T"], cache, truncate=2))

    tt = torch.from_numpy
    tpack = lambda s: pack(name, [tt(a) for a in parts(name, s)])  # noqa: E731
    t_params = {k: tt(v) for k, v in p["params"].items()}
    t_hs, t_state_T, t_cache = sequence_forward(
        name, tt(p["x"]), tpack(p["state0"]), t_params, mask=tt(p["mask"]), reverse=True, **options
    )
    t_dx, t_dstate0, t_grads = split_bptt(sequence_backward(tt(p["w"]), tpack(p["w_T"]), t_cache, truncate=2))
    for ours, theirs in [(hs, t_hs), (dx, t_dx), *zip(parts(name, state_T), parts(name, t_state_T))]:
        assert isinstance(theirs, torch.Tensor)
        np.testing.assert_allclose(theirs.numpy(), ours, rtol=0, atol=1e-13)
    for k in grads:
        np.testing.assert_allclose(t_grads[k].numpy(), grads[k], rtol=0, atol=1e-12)


def test_missing_gradients_are_zero(rng):
    p = random_problem("lstm", {}, rng, 4, 2)
    _, _, cache = sequence_forward("lstm", p["x"], None, p["params"])
    dx0, ds0, g0 = split_bptt(sequence_backward(None, (None, p["w_T"][1]), cache))
    dx1, ds1, g1 = split_bptt(sequence_backward(np.zeros((4, 2, H)), (np.zeros((2, H)), p["w_T"][1]), cache))
    np.testing.assert_array_equal(dx0, dx1)
    for k in g0:
        np.testing.assert_array_equal(g0[k], g1[k])
    dx2, _, g2 = split_bptt(sequence_backward(None, None, cache))
    assert not dx2.any() and not any(v.any() for v in g2.values())


def test_float32_runs_in_float32(rng):
    p = random_problem("gru", {}, rng, 4, 2)
    params = {k: v.astype(np.float32) for k, v in p["params"].items()}
    hs, h_T, cache = sequence_forward("gru", p["x"].astype(np.float32), None, params)
    dx, dh0, grads = split_bptt(sequence_backward(p["w"].astype(np.float32), None, cache))
    assert hs.dtype == h_T.dtype == dx.dtype == dh0.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads.values())


def test_changing_the_outputs_does_not_change_the_gradients(rng):
    p = random_problem("lstm", {}, rng, 4, 2)
    hs, (h_T, c_T), cache = sequence_forward("lstm", p["x"], None, p["params"])
    before = split_bptt(sequence_backward(p["w"], None, cache))
    hs *= 100.0
    h_T *= 100.0
    c_T *= 100.0
    after = split_bptt(sequence_backward(p["w"], None, cache))
    np.testing.assert_array_equal(before[0], after[0])
    for k in before[2]:
        np.testing.assert_array_equal(before[2][k], after[2][k])


# ------------------------------------------------------------ layers × directions (functional)


@pytest.mark.parametrize("mode", ["concat", "sum", "mul", "ave"])
def test_merge_forward_and_backward(mode, rng):
    from rnnkit.stacked import merge_backward, merge_forward

    f, b = rng.standard_normal((2, 4, 3, H))
    out, cache = merge_forward(f, b, mode)
    expected = {"concat": np.concatenate([f, b], -1), "sum": f + b, "mul": f * b, "ave": (f + b) / 2}[mode]
    np.testing.assert_allclose(out, expected, rtol=1e-15)
    w = rng.standard_normal(out.shape)
    grads = merge_backward(w, cache)
    assert set(grads) == {"h_fwd", "h_bwd"}
    check_grads(lambda: float(np.sum(w * merge_forward(f, b, mode)[0])), {"h_fwd": f, "h_bwd": b}, grads)
    with pytest.raises(ValueError, match=r"merge_mode must be 'concat' or 'sum' or 'mul' or 'ave', got 'max'"):
        merge_forward(f, b, "max")


@pytest.mark.parametrize("name, options", [VARIANTS[k] for k in (0, 2, 8)], ids=[IDS[k] for k in (0, 2, 8)])
@pytest.mark.parametrize("mode", ["concat", "mul"])
def test_stacked_forward_is_sequences_layer_by_layer(name, options, mode, rng):
    """Two bidirectional layers with lengths: each layer's directions are sequence_forward runs
    (the reverse one with reverse=True) merged, the layer above reads the merged outputs."""
    from rnnkit.stacked import merge_forward, stacked_forward, stacked_param_shapes

    T, B, L, lengths = 5, 3, 2, [5, 2, 4]
    cell = get_cell(name)
    shapes = stacked_param_shapes(name, I, H, L, True, mode, **options)
    params = {k: rng.uniform(-0.6, 0.6, s) for k, s in shapes.items()}
    x = rng.standard_normal((T, B, I))
    state0 = [rng.standard_normal((2 * L, B, H)) for _ in cell.state_names]
    out, h_n, _ = stacked_forward(name, x, pack(name, state0), params, L, bidirectional=True, merge_mode=mode,
                                  lengths=np.array(lengths), **options)
    mask = lengths_to_mask(np.array(lengths), T)
    layer_input, finals = x, []
    for layer in range(L):
        outs = []
        for d, suffix in enumerate(["", "_reverse"]):
            p = {k[: -len(f"_l{layer}{suffix}")]: v for k, v in params.items() if k.endswith(f"_l{layer}{suffix}")}
            s0 = pack(name, [s[2 * layer + d] for s in state0])
            hs, s_T, _ = sequence_forward(name, layer_input, s0, p, mask=mask, reverse=d == 1, **options)
            outs.append(hs)
            finals.append(parts(name, s_T))
        layer_input, _ = merge_forward(*outs, mode)
    np.testing.assert_array_equal(out, layer_input)
    for k, part in enumerate(parts(name, h_n)):
        np.testing.assert_array_equal(part, np.stack([f[k] for f in finals]))


@pytest.mark.parametrize("batch_first, return_sequences", [(False, True), (True, False)])
def test_stacked_gradcheck(batch_first, return_sequences, rng):
    """stacked_backward's dict is keyed like the arguments it is the gradient of."""
    from rnnkit.stacked import stacked_backward, stacked_forward, stacked_param_shapes

    T, B, L = 4, 3, 2
    params = {k: rng.uniform(-0.8, 0.8, s) for k, s in stacked_param_shapes("lstm", I, H, L, True, "ave").items()}
    x = rng.standard_normal((B, T, I) if batch_first else (T, B, I))
    h0, c0 = rng.standard_normal((2, 2 * L, B, H))
    kw = dict(bidirectional=True, merge_mode="ave", batch_first=batch_first, lengths=np.array([4, 1, 3]),
              return_sequences=return_sequences)
    out, (h_n, c_n), cache = stacked_forward("lstm", x, (h0, c0), params, L, **kw)
    w, w_h, w_c = rng.standard_normal(out.shape), rng.standard_normal(h_n.shape), rng.standard_normal(c_n.shape)

    def loss():
        o, (h, c), _ = stacked_forward("lstm", x, (h0, c0), params, L, **kw)
        return float(np.sum(w * o) + np.sum(w_h * h) + np.sum(w_c * c))

    grads = stacked_backward(w, (w_h, w_c), cache)
    assert set(grads) == {"x", "h0", "c0", *params}
    check_grads(loss, {"x": x, "h0": h0, "c0": c0, **params}, grads, entries=10, tol=1e-7)


def test_stacked_refuses_missing_parameters(rng):
    from rnnkit.stacked import stacked_forward, stacked_param_shapes

    params = {k: rng.uniform(-1, 1, s) for k, s in stacked_param_shapes("gru", I, H, 2).items()}
    with pytest.raises(KeyError, match=r"params has no weight_ih_l0_reverse, weight_ih_l1_reverse"):
        stacked_forward("gru", rng.standard_normal((3, 2, I)), None, params, 2, bidirectional=True)


def test_masks_live_with_the_recurrence():
    import rnnkit.text
    from rnnkit import sequence

    assert rnnkit.lengths_to_mask is sequence.lengths_to_mask
    # rnnkit.text imports nothing of the recurrence: an exercise may allow it without its cells
    assert "lengths_to_mask" not in vars(rnnkit.text)


# ------------------------------------------------ between layers: layer norm, residual, dropout


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_layer_norm_matches_torch(dtype, tol, rng):
    """layer_norm_forward/backward against torch.nn.functional.layer_norm and autograd."""
    from rnnkit.stacked import layer_norm_backward, layer_norm_forward

    x, w, b, dy = (torch.tensor(rng.standard_normal(s), dtype=dtype, requires_grad=r)
                   for s, r in (((5, 3, 7), True), ((7,), True), ((7,), True), ((5, 3, 7), False)))
    y_torch = torch.nn.functional.layer_norm(x, (7,), w, b, eps=1e-5)
    (y_torch * dy).sum().backward()
    y, cache = layer_norm_forward(*(a.detach().numpy() for a in (x, w, b)))
    grads = layer_norm_backward(dy.numpy(), cache)
    assert y.dtype == grads["x"].dtype == np.dtype(str(dtype)[6:])
    assert rel_error(y, y_torch.detach().numpy()) < tol
    for name, t in (("x", x), ("weight", w), ("bias", b)):
        assert rel_error(grads[name], t.grad.numpy()) < tol, name


def test_layer_norm_gradcheck(rng):
    from rnnkit.stacked import layer_norm_backward, layer_norm_forward

    x, w, b = rng.standard_normal((4, 3, 6)), rng.standard_normal(6), rng.standard_normal(6)
    dy = rng.standard_normal((4, 3, 6))
    grads = layer_norm_backward(dy, layer_norm_forward(x, w, b)[1])
    check_grads(lambda: float(np.sum(dy * layer_norm_forward(x, w, b)[0])), {"x": x, "weight": w, "bias": b},
                grads, tol=1e-7)


def test_dropout_mask_is_inverted_dropout():
    from rnnkit.stacked import dropout_mask

    like = np.zeros(1, dtype=np.float32)
    m = dropout_mask(0.3, (200, 50, 20), like, rng=0)
    assert m.dtype == np.float32 and set(np.unique(m)) == {np.float32(0), np.float32(1 / 0.7)}
    assert abs(np.mean(m == 0) - 0.3) < 0.01 and abs(m.mean() - 1) < 0.01  # E[u * m] = u
    np.testing.assert_array_equal(m, dropout_mask(0.3, (200, 50, 20), like, rng=0))  # a seed fixes it
    with pytest.raises(ValueError, match=r"dropout must be a probability in \[0, 1\), got 1.0"):
        dropout_mask(1.0, (2,), like)


BETWEEN_CASES = [
    # (cell, options, layers, bidirectional, merge_mode, batch_first, lengths, between)
    ("lstm", {}, 3, True, "concat", False, [4, 2, 3], dict(dropout=0.4, residual=True, layer_norm=True)),
    ("gru", {}, 2, False, "concat", True, [4, 1, 3], dict(layer_norm=True)),
    ("rnn", {"nonlinearity": "tanh"}, 3, True, "sum", False, None, dict(residual=True, dropout=0.5)),
    ("gru", {"reset_after": False}, 3, False, "concat", False, [2, 4, 3], dict(residual=True, layer_norm=True)),
]


def random_stack(name, options, L, bidirectional, mode, batch_first, between, rng, T=4, B=3, norm_scale=0.5):
    from rnnkit.stacked import stacked_param_shapes

    shapes = stacked_param_shapes(name, I, H, L, bidirectional, mode, layer_norm=between.get("layer_norm", False),
                                  **options)
    params = {k: rng.uniform(-0.6, 0.6, s) for k, s in shapes.items()}
    for k in params:  # a gain near 1, a shift near 0, as a trained norm would have
        if k.startswith(("weight_ln", "bias_ln")):
            params[k] = float(k.startswith("weight")) + norm_scale * rng.standard_normal(shapes[k])
    D = 2 if bidirectional else 1
    x = rng.standard_normal((B, T, I) if batch_first else (T, B, I))
    state0 = [rng.standard_normal((L * D, B, H)) for _ in get_cell(name).state_names]
    return params, x, state0


@pytest.mark.parametrize("case", BETWEEN_CASES, ids=lambda c: f"{c[0]}-L{c[2]}-{'-'.join(sorted(c[7]))}")
def test_stacked_gradcheck_between_layers(case, rng):
    """Layer norm, residual connections and dropout (the same masks: a fixed seed), with padding."""
    from rnnkit.stacked import stacked_backward, stacked_forward

    name, options, L, bidirectional, mode, batch_first, lengths, between = case
    params, x, state0 = random_stack(name, options, L, bidirectional, mode, batch_first, between, rng)
    kw = dict(bidirectional=bidirectional, merge_mode=mode, batch_first=batch_first, rng=0, **between, **options,
              lengths=None if lengths is None else np.array(lengths))
    out, h_n, cache = stacked_forward(name, x, pack(name, state0), params, L, **kw)
    w, w_n = rng.standard_normal(out.shape), [rng.standard_normal(s.shape) for s in state0]

    def loss():
        o, s, _ = stacked_forward(name, x, pack(name, state0), params, L, **kw)
        return float(np.sum(w * o)) + sum(float(np.sum(a * b)) for a, b in zip(w_n, parts(name, s)))

    grads = stacked_backward(w, pack(name, w_n), cache)
    inputs = {"x": x, **dict(zip(("h0", "c0"), state0)), **params}
    assert list(grads) == list(inputs)  # x, the initial state, then the parameters in their order
    check_grads(loss, inputs, grads, entries=12, tol=1e-7)
    if lengths is not None:  # padded steps stay 0 through the norm, the residual sum and dropout
        pad = ~lengths_to_mask(np.array(lengths), out.shape[1] if batch_first else out.shape[0], batch_first).astype(bool)
        assert np.all(out[pad] == 0)


def torch_stack(name, options, params, x, state0, L, bidirectional, cache, between):
    """The same stack in torch: one torch.nn module per layer (torch.func.functional_call on
    rnnkit's parameters), F.layer_norm, the residual sum, and rnnkit's dropout masks."""
    from torch.func import functional_call

    cls = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[name]
    D = 2 if bidirectional else 1
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    tx = torch.tensor(x, requires_grad=True)
    ts = [torch.tensor(s, requires_grad=True) for s in state0]
    u, finals = tx, []
    for layer in range(L):
        m = cls(u.shape[-1], H, 1, bidirectional=bidirectional, dtype=torch.float64, **options)
        weights = {n: tp[n.replace("_l0", f"_l{layer}")] for n, _ in m.named_parameters()}
        rows = slice(layer * D, (layer + 1) * D)
        hx = tuple(s[rows] for s in ts) if name == "lstm" else ts[0][rows]
        h, state = functional_call(m, weights, (u, hx))
        finals.append(state if name == "lstm" else (state,))
        if between.get("layer_norm"):
            h = torch.nn.functional.layer_norm(h, (h.shape[-1],), tp[f"weight_ln_l{layer}"], tp[f"bias_ln_l{layer}"])
        if between.get("residual") and layer > 0:
            h = h + u
        keep = cache.between[layer].keep
        u = h * torch.tensor(keep) if keep is not None else h
    h_n = [torch.cat([f[k] for f in finals]) for k in range(len(ts))]
    return tx, ts, tp, u, h_n


@pytest.mark.parametrize("name, options", [("lstm", {}), ("gru", {}), ("rnn", {"nonlinearity": "relu"})])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_stacked_between_layers_matches_torch(name, options, bidirectional, rng):
    """Dropout (with rnnkit's masks), layer norm and residual connections against torch autograd."""
    from rnnkit.stacked import stacked_backward, stacked_forward

    L, between = 3, dict(dropout=0.3, residual=True, layer_norm=True)
    params, x, state0 = random_stack(name, options, L, bidirectional, "concat", False, between, rng, T=5)
    out, h_n, cache = stacked_forward(name, x, pack(name, state0), params, L, bidirectional=bidirectional, rng=1,
                                      **between, **options)
    assert cache.between[0].keep is not None and cache.between[L - 1].keep is None  # not after the top layer
    tx, ts, tp, t_out, t_h_n = torch_stack(name, options, params, x, state0, L, bidirectional, cache, between)
    w, w_n = rng.standard_normal(out.shape), [rng.standard_normal(s.shape) for s in state0]
    ((t_out * torch.tensor(w)).sum() + sum((h * torch.tensor(v)).sum() for h, v in zip(t_h_n, w_n))).backward()
    grads = stacked_backward(w, pack(name, w_n), cache)
    errors = [rel_error(out, t_out.detach().numpy()), rel_error(grads["x"], tx.grad.numpy())]
    errors += [rel_error(a, b.detach().numpy()) for a, b in zip(parts(name, h_n), t_h_n)]
    errors += [rel_error(grads[k], t.grad.numpy()) for k, t in zip(("h0", "c0"), ts)]
    errors += [rel_error(grads[k], t.grad.numpy()) for k, t in tp.items()]
    assert max(errors) < 1e-10


def test_between_layers_padded_batch_equals_sequences_one_by_one(rng):
    """With lengths, layer norm and residual connections give each sequence what it gives alone."""
    from rnnkit.stacked import stacked_forward

    between, lengths = dict(residual=True, layer_norm=True), [5, 2, 4]
    params, x, state0 = random_stack("gru", {}, 3, True, "concat", False, between, rng, T=5)
    out, h_n, _ = stacked_forward("gru", x, state0[0], params, 3, bidirectional=True, lengths=np.array(lengths),
                                  **between)
    for b, n in enumerate(lengths):
        alone, h_alone, _ = stacked_forward("gru", x[:n, b : b + 1], state0[0][:, b : b + 1], params, 3,
                                            bidirectional=True, **between)
        np.testing.assert_allclose(out[:n, b : b + 1], alone, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(h_n[:, b : b + 1], h_alone, rtol=1e-12, atol=1e-12)


def test_between_layers_defaults_change_nothing(rng):
    """dropout=0, residual=False, layer_norm=False is the plain stack, bit for bit."""
    from rnnkit.stacked import stacked_forward

    params, x, state0 = random_stack("lstm", {}, 2, True, "concat", False, {}, rng)
    plain = stacked_forward("lstm", x, pack("lstm", state0), params, 2, bidirectional=True)
    off = stacked_forward("lstm", x, pack("lstm", state0), params, 2, bidirectional=True, dropout=0.0,
                          residual=False, layer_norm=False, rng=0)
    np.testing.assert_array_equal(plain[0], off[0])
    assert all(link.norm is None and link.keep is None and not link.residual for link in off[2].between)


def test_between_layers_errors(rng):
    from rnnkit.stacked import stacked_forward, stacked_param_shapes

    params = {k: rng.uniform(-1, 1, s) for k, s in stacked_param_shapes("gru", I, H, 2).items()}
    x = rng.standard_normal((3, 2, I))
    with pytest.raises(KeyError, match=r"params has no weight_ln_l0, bias_ln_l0, weight_ln_l1, bias_ln_l1"):
        stacked_forward("gru", x, None, params, 2, layer_norm=True)
    with pytest.raises(ValueError, match=r"dropout must be a probability in \[0, 1\), got 1.5"):
        stacked_forward("gru", x, None, params, 2, dropout=1.5)
    with pytest.raises(ValueError, match=r"return_sequences=False reads the last outputs from h_n"):
        stacked_forward("gru", x, None, params, 2, residual=True, return_sequences=False)
