"""from_torch / to_torch: exact round trips for the six torch.nn recurrent modules."""

import numpy as np
import pytest
import torch

from rnnkit.interop import from_torch, to_torch
from rnnkit.modules import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell

I, H = 3, 5

TORCH_MODULES = [
    lambda dt: torch.nn.RNN(I, H, 2, nonlinearity="relu", bidirectional=True, dtype=dt),
    lambda dt: torch.nn.GRU(I, H, 3, bias=False, batch_first=True, dtype=dt),
    lambda dt: torch.nn.LSTM(I, H, 2, bidirectional=True, batch_first=True, dtype=dt),
    lambda dt: torch.nn.RNNCell(I, H, nonlinearity="tanh", dtype=dt),
    lambda dt: torch.nn.GRUCell(I, H, dtype=dt),
    lambda dt: torch.nn.LSTMCell(I, H, bias=False, dtype=dt),
]
IDS = ["RNN", "GRU", "LSTM", "RNNCell", "GRUCell", "LSTMCell"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("make", TORCH_MODULES, ids=IDS)
def test_round_trip_is_exact(make, dtype):
    torch.manual_seed(0)
    tm = make(dtype)
    m = from_torch(tm)
    assert type(m).__name__ == type(tm).__name__
    assert m.dtype == str(dtype)[6:]
    for name, p in tm.named_parameters():
        ours = m.params[name]
        assert isinstance(ours, np.ndarray) and ours.dtype == p.detach().numpy().dtype
        assert np.array_equal(ours, p.detach().numpy())
        assert not np.shares_memory(ours, p.detach().numpy())  # a copy
    back = to_torch(m)
    assert type(back) is type(tm)
    for (n1, p1), (n2, p2) in zip(tm.named_parameters(), back.named_parameters()):
        assert n1 == n2 and p1.dtype == p2.dtype and torch.equal(p1, p2)
    for attr in ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "bidirectional", "nonlinearity"):
        if hasattr(tm, attr):
            assert getattr(back, attr) == getattr(tm, attr), attr


@pytest.mark.parametrize("make", TORCH_MODULES[:3], ids=IDS[:3])
def test_converted_module_computes_the_same(make):
    torch.manual_seed(1)
    tm = make(torch.float64)
    m = from_torch(tm)
    x = torch.randn(2, 4, I, dtype=torch.float64)
    out, _ = tm(x)
    ours, _ = m(x.numpy())
    np.testing.assert_allclose(ours, out.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_from_torch_to_the_torch_backend():
    tm = torch.nn.GRU(I, H, dtype=torch.float64)
    m = from_torch(tm, backend="torch")
    assert m.backend == "torch"
    for name, p in tm.named_parameters():
        assert torch.equal(m.params[name], p.detach()) and not m.params[name].requires_grad


@pytest.mark.parametrize(
    "m, message",
    [
        (GRU(I, H, reset_after=False), "reset_after"),
        (GRU(I, H, update_weighs="candidate"), "update_weighs"),
        (GRU(I, H, simplified=True), "simplified"),
        (LSTM(I, H, peephole=True), "peephole"),
        (RNN(I, H, bidirectional=True, merge_mode="sum"), "merge_mode"),
        (GRUCell(I, H, reset_after=False), "reset_after"),
        (LSTMCell(I, H, peephole=True), "peephole"),
        (GRU(I, H, 2, residual=True), "residual"),
        (LSTM(I, H, 2, layer_norm=True), "layer_norm"),
    ],
)
def test_to_torch_refuses_variants_torch_does_not_have(m, message):
    with pytest.raises(ValueError, match=message):
        to_torch(m)


def test_from_torch_refuses_other_modules():
    with pytest.raises(TypeError, match="expects torch.nn.RNN, GRU, LSTM.*got torch.nn.modules.linear.Linear"):
        from_torch(torch.nn.Linear(2, 3))
    with pytest.raises(ValueError, match="proj_size"):
        from_torch(torch.nn.LSTM(I, H, proj_size=2))
    with pytest.raises(TypeError, match="got list"):
        to_torch([1, 2])


def test_dropout_carries_over_both_ways():
    m = from_torch(torch.nn.LSTM(I, H, 2, dropout=0.5))
    assert isinstance(m, LSTM) and m.dropout == 0.5
    assert to_torch(m).dropout == 0.5


def test_cells_round_trip_keep_the_nonlinearity():
    m = from_torch(torch.nn.RNNCell(I, H, nonlinearity="relu"))
    assert isinstance(m, RNNCell) and m.nonlinearity == "relu" and m.dtype == "float32"
    assert to_torch(m).nonlinearity == "relu"
