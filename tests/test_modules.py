"""torch.nn look-alikes: parity with torch (outputs, states, every gradient), gradient
checks of stacked / bidirectional / masked modules, merge modes, the torch backend."""

import numpy as np
import pytest
import torch
from conftest import check_grads, rel_error
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit.modules import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell

T, B, I, H = 5, 3, 4, 6
PROPERTY = settings(max_examples=15, deadline=None, derandomize=True)

KINDS = {
    "rnn_tanh": (RNN, torch.nn.RNN, {"nonlinearity": "tanh"}),
    "rnn_relu": (RNN, torch.nn.RNN, {"nonlinearity": "relu"}),
    "gru": (GRU, torch.nn.GRU, {}),
    "lstm": (LSTM, torch.nn.LSTM, {}),
}
# (num_layers, bidirectional, batch_first, bias, with h0)
CONFIGS = [
    (1, False, False, True, False),
    (2, True, True, False, True),
    (3, True, False, True, True),
    (2, False, True, True, False),
]


def torch_pair(kind, layers, bidirectional, batch_first, bias, dtype=torch.float64, seed=0):
    ours_cls, torch_cls, extra = KINDS[kind]
    torch.manual_seed(seed)
    tm = torch_cls(I, H, layers, bias=bias, batch_first=batch_first, bidirectional=bidirectional, dtype=dtype, **extra)
    m = ours_cls(
        I, H, layers, bias=bias, batch_first=batch_first, bidirectional=bidirectional, dtype=str(dtype)[6:], **extra
    )
    assert list(m.params) == [n for n, _ in tm.named_parameters()]
    for name, p in tm.named_parameters():
        setattr(m, name, p.detach().numpy().copy())
    return tm, m


def as_tuple(s):
    return tuple(s) if isinstance(s, tuple) else (s,)


def run_parity(kind, layers, bidirectional, batch_first, bias, with_h0, dtype, lengths=None, seed=0):
    """Max relative error over outputs, final states and every gradient, vs torch autograd."""
    tm, m = torch_pair(kind, layers, bidirectional, batch_first, bias, dtype, seed)
    rng = np.random.default_rng(seed)
    D = 2 if bidirectional else 1
    lstm = kind == "lstm"
    shape = (B, T, I) if batch_first else (T, B, I)
    x = torch.tensor(rng.standard_normal(shape), dtype=dtype, requires_grad=True)
    h0 = [
        torch.tensor(rng.standard_normal((layers * D, B, H)), dtype=dtype, requires_grad=True)
        for _ in range(2 if lstm else 1)
    ]
    hx = (tuple(h0) if lstm else h0[0]) if with_h0 else None

    if lengths is None:
        out, hn = tm(x, hx)
    else:
        packed = pack_padded_sequence(x, torch.tensor(lengths), batch_first=batch_first, enforce_sorted=False)
        out, hn = tm(packed, hx)
        out, _ = pad_packed_sequence(out, batch_first=batch_first, total_length=T)
    w_out = torch.tensor(rng.standard_normal(out.shape), dtype=dtype)
    w_hn = [torch.tensor(rng.standard_normal((layers * D, B, H)), dtype=dtype) for _ in as_tuple(hn)]
    ((w_out * out).sum() + sum((w * h).sum() for w, h in zip(w_hn, as_tuple(hn)))).backward()

    np_hx = (tuple(h.detach().numpy() for h in h0) if lstm else h0[0].detach().numpy()) if with_h0 else None
    o, s = m(x.detach().numpy(), np_hx, lengths=lengths)
    d_hn = tuple(w.numpy() for w in w_hn) if lstm else w_hn[0].numpy()
    dx, ds0 = m.backward(w_out.numpy(), d_hn)
    errors = [rel_error(o, out.detach().numpy()), rel_error(dx, x.grad.numpy())]
    errors += [rel_error(a, b.detach().numpy()) for a, b in zip(as_tuple(s), as_tuple(hn))]
    if with_h0:
        errors += [rel_error(a, b.grad.numpy()) for a, b in zip(as_tuple(ds0), h0)]
    errors += [rel_error(m.grads[n], p.grad.numpy()) for n, p in tm.named_parameters()]
    assert o.dtype == dx.dtype == np.dtype(str(dtype)[6:])
    return max(errors)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "L{}-bi{:d}-bf{:d}-bias{:d}-h0{:d}".format(*c))
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_parity_with_torch_float64(kind, config):
    assert run_parity(kind, *config, torch.float64) < 1e-10


@pytest.mark.parametrize("lengths", [None, [5, 2, 4]])
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_parity_with_torch_float32(kind, lengths):
    assert run_parity(kind, 2, True, True, True, True, torch.float32, lengths=lengths) < 1e-5


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("batch_first", [False, True])
def test_parity_with_torch_packed_sequences(kind, batch_first):
    """lengths= gives what torch gives for packed sequences (reverse direction included)."""
    assert run_parity(kind, 2, True, batch_first, True, True, torch.float64, lengths=[5, 2, 4]) < 1e-10


@pytest.mark.parametrize(
    "kind, cls, extra",
    [("RNNCell", RNNCell, {"nonlinearity": "relu"}), ("GRUCell", GRUCell, {}), ("LSTMCell", LSTMCell, {})],
)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_cell_modules_match_torch(kind, cls, extra, dtype, rng):
    torch.manual_seed(0)
    tc = getattr(torch.nn, kind)(I, H, dtype=dtype, **extra)
    c = cls(I, H, dtype=str(dtype)[6:], **extra)
    assert list(c.params) == [n for n, _ in tc.named_parameters()]
    for n, p in tc.named_parameters():
        setattr(c, n, p.detach().numpy().copy())
    lstm = kind == "LSTMCell"
    x = torch.tensor(rng.standard_normal((B, I)), dtype=dtype, requires_grad=True)
    hx = [torch.tensor(rng.standard_normal((B, H)), dtype=dtype, requires_grad=True) for _ in range(2 if lstm else 1)]
    out = as_tuple(tc(x, tuple(hx) if lstm else hx[0]))
    ws = [torch.tensor(rng.standard_normal((B, H)), dtype=dtype) for _ in out]
    sum((w * o).sum() for w, o in zip(ws, out)).backward()
    ours = as_tuple(c(x.detach().numpy(), tuple(h.detach().numpy() for h in hx) if lstm else hx[0].detach().numpy()))
    dx, dstate = c.backward(tuple(w.numpy() for w in ws) if lstm else ws[0].numpy())
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    for a, b in zip(ours, out):
        assert rel_error(a, b.detach().numpy()) < tol
    assert rel_error(dx, x.grad.numpy()) < tol
    for a, b in zip(as_tuple(dstate), hx):
        assert rel_error(a, b.grad.numpy()) < tol
    for n, p in tc.named_parameters():
        assert rel_error(c.grads[n], p.grad.numpy()) < tol


# -------------------------------------------------------------------- gradient checks

GRADCHECK_CASES = [
    # (class, options, layers, bidirectional, merge_mode, batch_first, lengths, return_sequences)
    (LSTM, {}, 3, True, "concat", False, [4, 2, 3], True),
    (GRU, {"reset_after": False, "update_weighs": "candidate"}, 2, True, "mul", False, [4, 1, 3], True),
    (RNN, {"nonlinearity": "relu"}, 2, True, "ave", True, None, True),
    (GRU, {"simplified": True}, 1, True, "sum", True, [2, 4, 3], True),
    (LSTM, {"peephole": True}, 2, True, "concat", False, [3, 4, 1], False),
    (GRU, {}, 1, False, "concat", True, None, False),
]


@pytest.mark.parametrize("case", GRADCHECK_CASES, ids=lambda c: f"{c[0].__name__}-{c[2]}L-{c[4]}-{c[1]}")
def test_module_gradcheck(case, rng):
    cls, options, layers, bidirectional, merge_mode, batch_first, lengths, return_sequences = case
    Tm = 4
    m = cls(
        I, H, layers, bidirectional=bidirectional, merge_mode=merge_mode, batch_first=batch_first, seed=3, **options
    )
    for p in m.params.values():
        p *= 2.0  # larger weights than the default init: more curvature to check
    D = 2 if bidirectional else 1
    lstm = cls is LSTM
    x = rng.standard_normal((B, Tm, I) if batch_first else (Tm, B, I))
    h0 = [rng.standard_normal((layers * D, B, H)) for _ in range(2 if lstm else 1)]
    hx = tuple(h0) if lstm else h0[0]
    out, hn = m(x, hx, lengths=lengths, return_sequences=return_sequences)
    w_out = rng.standard_normal(out.shape)
    w_hn = [rng.standard_normal(h.shape) for h in as_tuple(hn)]

    def loss():
        o, s = m(x, hx, lengths=lengths, return_sequences=return_sequences)
        return float(np.sum(w_out * o)) + sum(float(np.sum(w * h)) for w, h in zip(w_hn, as_tuple(s)))

    loss()
    dx, ds0 = m.backward(w_out, tuple(w_hn) if lstm else w_hn[0])
    analytic = {"x": dx, **{f"h0_{k}": d for k, d in enumerate(as_tuple(ds0))}, **m.grads}
    arrays = {"x": x, **{f"h0_{k}": h for k, h in enumerate(h0)}, **m.params}
    check_grads(loss, arrays, analytic, entries=12, tol=1e-7)


def test_module_truncated_bptt_matches_the_functional_layer(rng):
    m = LSTM(I, H, 2, seed=0)
    x = rng.standard_normal((6, B, I))
    out, _ = m(x)
    w = rng.standard_normal(out.shape)
    dx_full, _ = m.backward(w)
    full = dict(m.grads)
    dx_tr, _ = m.backward(w, truncate=2)
    assert rel_error(dx_tr, dx_full) > 1e-6
    assert rel_error(m.grads["weight_hh_l0"], full["weight_hh_l0"]) > 1e-6
    m.backward(w, truncate=6)
    for k in full:
        np.testing.assert_array_equal(m.grads[k], full[k])


# ------------------------------------------------------------------------- behaviour


@PROPERTY
@given(
    kind=st.sampled_from(["rnn", "gru", "lstm"]),
    lengths=st.lists(st.integers(1, 5), min_size=1, max_size=3),
    seed=st.integers(0, 2**16),
)
def test_bidirectional_sum_is_forward_plus_reversed_input_run(kind, lengths, seed):
    rng = np.random.default_rng(seed)
    cls = {"rnn": RNN, "gru": GRU, "lstm": LSTM}[kind]
    Tm, Bm = max(lengths), len(lengths)
    bi = cls(I, H, bidirectional=True, merge_mode="sum", seed=seed)
    fwd, bwd = cls(I, H, seed=0), cls(I, H, seed=0)
    for name in fwd.params:
        fwd.params[name] = bi.params[name]
        bwd.params[name] = bi.params[name + "_reverse"]
    x = rng.standard_normal((Tm, Bm, I))
    flip = np.array([[(L - 1 - t if t < L else t) for L in lengths] for t in range(Tm)])  # reverse within length
    cols = np.arange(Bm)[None, :]
    x_rev = x[flip, cols]

    out, hn = bi(x, lengths=lengths)
    out_f, hn_f = fwd(x, lengths=lengths)
    out_b, hn_b = bwd(x_rev, lengths=lengths)
    np.testing.assert_allclose(out, out_f + out_b[flip, cols], rtol=1e-12, atol=1e-14)
    for a, f, b in zip(as_tuple(hn), as_tuple(hn_f), as_tuple(hn_b)):
        np.testing.assert_allclose(a, np.concatenate([f, b]), rtol=1e-12, atol=1e-14)

    w = rng.standard_normal(out.shape)
    dx, _ = bi.backward(w)
    dx_f, _ = fwd.backward(w)
    dx_b, _ = bwd.backward(w[flip, cols])
    np.testing.assert_allclose(dx, dx_f + dx_b[flip, cols], rtol=1e-11, atol=1e-13)
    for name in fwd.params:
        np.testing.assert_allclose(bi.grads[name], fwd.grads[name], rtol=1e-11, atol=1e-13)
        np.testing.assert_allclose(bi.grads[name + "_reverse"], bwd.grads[name], rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("merge_mode, features", [("concat", 2 * H), ("sum", H), ("mul", H), ("ave", H)])
def test_merge_modes_shapes(merge_mode, features, rng):
    m = GRU(I, H, 2, bidirectional=True, merge_mode=merge_mode, seed=0)
    assert m.params["weight_ih_l1"].shape == (3 * H, features)
    x = rng.standard_normal((T, B, I))
    out, hn = m(x)
    assert out.shape == (T, B, features) and hn.shape == (4, B, H)
    dx, dh0 = m.backward(np.ones_like(out))
    assert dx.shape == x.shape and dh0.shape == (4, B, H)


def test_return_sequences_false_is_the_last_valid_output(rng):
    m = LSTM(I, H, 2, bidirectional=True, batch_first=True, seed=1)
    x = rng.standard_normal((B, T, I))
    lengths = [5, 2, 4]
    out, (hn, cn) = m(x, lengths=lengths)
    last, (hn2, _) = m(x, lengths=lengths, return_sequences=False)
    assert last.shape == (B, 2 * H)
    for b, L in enumerate(lengths):
        np.testing.assert_array_equal(last[b, :H], out[b, L - 1, :H])  # forward: last valid step
        np.testing.assert_array_equal(last[b, H:], out[b, 0, H:])  # reverse: position 0 (Keras)
    np.testing.assert_array_equal(hn, hn2)


def test_parameters_like_torch(rng):
    m = LSTM(I, H, 2, bidirectional=True, seed=7)
    tm = torch.nn.LSTM(I, H, 2, bidirectional=True)
    assert [n for n, _ in m.named_parameters()] == [n for n, _ in tm.named_parameters()]
    assert [tuple(p.shape) for p in m.parameters()] == [tuple(p.shape) for p in tm.parameters()]
    assert m.weight_hh_l1_reverse is m.params["weight_hh_l1_reverse"]
    bound = 1 / np.sqrt(H)
    assert all(np.abs(p).max() <= bound for p in m.parameters())
    assert all(p.dtype == np.float64 for p in m.parameters())
    again = LSTM(I, H, 2, bidirectional=True, seed=7)
    assert all(np.array_equal(a, b) for a, b in zip(m.parameters(), again.parameters()))
    assert set(m.grads) == set(m.params) and not any(g.any() for g in m.grads.values())
    peep = LSTM(I, H, peephole=True, bias=False)
    assert list(peep.params) == ["weight_ih_l0", "weight_hh_l0", "weight_ci_l0", "weight_cf_l0", "weight_co_l0"]
    assert "LSTM(4, 6" in repr(m) and "bidirectional=True" in repr(m)
    assert LSTM(I, H, dtype="float32").weight_ih_l0.dtype == np.float32


def test_torch_backend_module_gives_the_numpy_results(rng):
    m = GRU(I, H, 2, bidirectional=True, batch_first=True, seed=0)
    x = rng.standard_normal((B, T, I))
    w = rng.standard_normal((B, T, 2 * H))
    out, hn = m(x, lengths=[5, 1, 3])
    dx, dh0 = m.backward(w)
    grads = dict(m.grads)
    assert m.to(backend="torch") is m and m.backend == "torch"
    assert all(isinstance(p, torch.Tensor) and p.dtype == torch.float64 for p in m.parameters())
    t_out, t_hn = m(torch.from_numpy(x), lengths=torch.tensor([5, 1, 3]))
    t_dx, t_dh0 = m.backward(torch.from_numpy(w))
    for a, b in [(out, t_out), (hn, t_hn), (dx, t_dx), (dh0, t_dh0)]:
        assert isinstance(b, torch.Tensor)
        np.testing.assert_allclose(b.numpy(), a, rtol=0, atol=1e-13)
    for k in grads:
        np.testing.assert_allclose(m.grads[k].numpy(), grads[k], rtol=0, atol=1e-12)
    m.to(backend="numpy", dtype="float32")
    assert m.backend == "numpy" and m.dtype == "float32"


def test_inputs_that_require_grad_are_accepted(rng):
    m = RNN(I, H, seed=0).to(backend="torch")
    x = torch.tensor(rng.standard_normal((T, B, I)), requires_grad=True)
    out, hn = m(x)
    assert not out.requires_grad
    dx, _ = m.backward(torch.ones_like(out))
    assert not dx.requires_grad and x.grad is None


def test_lstm_partial_state_gradients(rng):
    m = LSTM(I, H, seed=0)
    x = rng.standard_normal((T, B, I))
    out, (hn, cn) = m(x)
    d_cn = rng.standard_normal(cn.shape)
    dx_a, (dh0_a, dc0_a) = m.backward(None, (None, d_cn))
    dx_b, (dh0_b, dc0_b) = m.backward(np.zeros_like(out), (np.zeros_like(hn), d_cn))
    np.testing.assert_array_equal(dx_a, dx_b)
    np.testing.assert_array_equal(dc0_a, dc0_b)


def test_generic_base_and_torch_keyword(rng):
    from rnnkit.modules import RNNBase

    m = RNNBase("gru_simple", I, H, 2, seed=0)
    assert m.weight_hh_l1.shape == (2 * H, H)
    x, h0 = rng.standard_normal((T, B, I)), rng.standard_normal((2, B, H))
    out_a, hn_a = m(x, h0)
    out_b, hn_b = m(x, hx=h0)
    np.testing.assert_array_equal(out_a, out_b)
    np.testing.assert_array_equal(hn_a, hn_b)


def test_import_rnnkit_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, rnnkit; rnnkit.LSTM(2, 3)(__import__('numpy').zeros((4, 1, 2))); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_cell_base_takes_a_cell_name(rng):
    from rnnkit.modules import RNNCellBase

    c = RNNCellBase("lstm", I, H, seed=0)
    assert list(c.params) == ["weight_ih", "weight_hh", "bias_ih", "bias_hh"] and c.weight_ih.shape == (4 * H, I)
    h, cs = c(rng.standard_normal((B, I)))
    assert h.shape == cs.shape == (B, H)


def test_every_layer_has_torchs_parameter_methods(rng):
    """One base for modules, cells, heads, embeddings and models: the same methods on all."""
    from rnnkit import Embedding, Linear, ManyToOne, MLPHead

    layers = [LSTM(I, H, 2, seed=0), GRUCell(I, H, seed=0), Linear(H, 3, seed=0), MLPHead([H, 5, 3], seed=0),
              Embedding(7, I, seed=0), ManyToOne(GRU(I, H, seed=0), Linear(H, 3, seed=1))]
    for layer in layers:
        names = list(layer.params)
        assert list(layer.state_dict()) == names == [n for n, _ in layer.named_parameters()]
        assert all(a is b for a, b in zip(layer.parameters(), layer.params.values()))
        assert set(layer.grads) == set(names) and not any(g.any() for g in layer.grads.values())
        state = {k: np.full(v.shape, 0.5) for k, v in layer.state_dict().items()}
        assert layer.load_state_dict(state) is layer
        assert all(np.all(layer.params[k] == 0.5) and layer.params[k] is not state[k] for k in names)
        layer.to(backend="torch", dtype="float32")
        assert layer.backend == "torch" and layer.dtype == "float32"
        with pytest.raises(KeyError, match="state dict mismatch"):
            layer.load_state_dict({})


def test_load_state_dict_from_a_torch_module(rng):
    tm = torch.nn.GRU(I, H, 2, bidirectional=True, dtype=torch.float64)
    m = GRU(I, H, 2, bidirectional=True).load_state_dict(tm.state_dict())
    assert m.backend == "torch"  # the arrays keep their backend, like Linear's
    x = torch.from_numpy(rng.standard_normal((T, B, I)))
    with torch.no_grad():
        expected, _ = tm(x)
    np.testing.assert_allclose(m(x)[0].numpy(), expected.numpy(), rtol=1e-12, atol=1e-14)


# ------------------------------------------------ between layers: dropout, residual, layer norm


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_dropout_module_in_eval_mode_matches_torch(kind):
    """dropout= is torch's argument; in eval() mode both modules drop nothing and agree."""
    from rnnkit.interop import from_torch

    _, torch_cls, extra = KINDS[kind]
    torch.manual_seed(0)
    tm = torch_cls(I, H, 3, dropout=0.5, bidirectional=True, dtype=torch.float64, **extra).eval()
    m = from_torch(tm).eval()
    assert m.dropout == 0.5 and not m.training
    x = np.random.default_rng(0).standard_normal((T, B, I))
    out, _ = m(x)
    assert rel_error(out, tm(torch.from_numpy(x))[0].detach().numpy()) < 1e-12


def test_dropout_module_draws_masks_in_training_only(rng):
    m = GRU(I, H, 3, dropout=0.4, seed=0)
    x = rng.standard_normal((T, B, I))
    assert m.training and m.train() is m
    first, second = m(x)[0], m(x)[0]
    assert rel_error(first, second) > 1e-3  # new masks at every call
    np.testing.assert_array_equal(first, GRU(I, H, 3, dropout=0.4, seed=0)(x)[0])  # the seed fixes them
    plain = GRU(I, H, 3, seed=0)
    assert m.eval() is m and not m.training
    np.testing.assert_array_equal(m(x)[0], plain(x)[0])


def test_module_gradcheck_between_layers(rng):
    """The module's backward with dropout (its masks fixed by reseeding), residual and layer norm."""
    m = LSTM(I, H, 3, bidirectional=True, dropout=0.3, residual=True, layer_norm=True, seed=2)
    for p in m.params.values():
        p += 0.3 * rng.standard_normal(p.shape)  # gains and shifts away from 1 and 0
    x = rng.standard_normal((4, B, I))
    lengths = [4, 2, 3]

    def run():
        m._rng = np.random.default_rng(5)  # the same dropout masks at every call
        return m(x, lengths=lengths)

    out, (hn, cn) = run()
    w_out, w_hn, w_cn = (rng.standard_normal(a.shape) for a in (out, hn, cn))

    def loss():
        o, (h, c) = run()
        return float(np.sum(w_out * o) + np.sum(w_hn * h) + np.sum(w_cn * c))

    loss()
    dx, _ = m.backward(w_out, (w_hn, w_cn))
    assert list(m.grads) == list(m.params)
    check_grads(loss, {"x": x, **m.params}, {"x": dx, **m.grads}, entries=10, tol=1e-7)


def test_layer_norm_and_residual_options(rng):
    m = GRU(I, H, 2, bidirectional=True, residual=True, layer_norm=True, seed=4)
    plain = GRU(I, H, 2, bidirectional=True, seed=4)
    assert list(m.params) == list(plain.params) + ["weight_ln_l0", "bias_ln_l0", "weight_ln_l1", "bias_ln_l1"]
    assert all(np.array_equal(m.params[k], p) for k, p in plain.params.items())  # the same draws
    np.testing.assert_array_equal(m.weight_ln_l1, np.ones(2 * H))
    np.testing.assert_array_equal(m.bias_ln_l0, np.zeros(2 * H))
    assert "residual=True" in repr(m) and "layer_norm=True" in repr(m) and "dropout" not in repr(m)
    assert m(rng.standard_normal((T, B, I)))[0].shape == (T, B, 2 * H)
    with pytest.raises(ValueError, match=r"return_sequences=False reads the last outputs from h_n"):
        m(rng.standard_normal((T, B, I)), return_sequences=False)
    with pytest.raises(ValueError, match=r"dropout must be a probability in \[0, 1\), got 1"):
        RNN(I, H, 2, dropout=1)
    with pytest.warns(UserWarning, match="with num_layers=1 it does nothing"):
        RNN(I, H, dropout=0.2)


def test_layer_norm_normalises_each_layers_output(rng):
    """With gain 1 and shift 0, each step of a layer's output becomes (h − mean) / √(var + ε)."""
    x = rng.standard_normal((T, B, I))
    h, _ = LSTM(I, H, seed=0)(x)
    out, _ = LSTM(I, H, layer_norm=True, seed=0)(x)
    mean, var = h.mean(axis=-1, keepdims=True), h.var(axis=-1, keepdims=True)
    np.testing.assert_allclose(out, (h - mean) / np.sqrt(var + 1e-5), rtol=0, atol=1e-12)
    out2, _ = LSTM(I, H, 2, layer_norm=True, seed=0)(x)
    np.testing.assert_allclose(out2.mean(axis=-1), 0, atol=1e-12)


def test_models_pass_train_and_eval_to_their_parts():
    from rnnkit import Linear, ManyToMany

    model = ManyToMany(GRU(I, H, 2, dropout=0.5), Linear(H, 2))
    assert model.eval() is model and not model.parts["rnn"].training and not model.parts["head"].training
    assert model.train().parts["rnn"].training
