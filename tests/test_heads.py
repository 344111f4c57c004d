"""rnnkit.heads and rnnkit.embedding: parity with torch.nn (forward and autograd), gradient checks, names."""

import numpy as np
import pytest
import torch

from rnnkit.embedding import Embedding, embedding_backward, embedding_forward, one_hot
from rnnkit.gradcheck import grad_check
from rnnkit.heads import (
    Linear,
    MLPHead,
    linear_backward,
    linear_forward,
    softmax_head_backward,
    softmax_head_forward,
)
from rnnkit.losses import cross_entropy, squared_error

BACKENDS = ["numpy", "torch"] + (["cuda"] if torch.cuda.is_available() else [])
TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}
TORCH_DTYPE = {np.float32: torch.float32, np.float64: torch.float64}


def to(backend, a):
    if backend == "numpy":
        return a
    return torch.from_numpy(np.asarray(a)).to("cuda" if backend == "cuda" else "cpu")


def as_numpy(a):
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


# ---------------------------------------------------------------------------------------------------
# linear and softmax heads
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(6, 3, 5), (3, 5)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_head_matches_torch_linear(backend, dtype, shape, bias):
    rng = np.random.default_rng(0)
    h = rng.standard_normal(shape).astype(dtype)
    torch_head = torch.nn.Linear(5, 4, bias=bias).to(TORCH_DTYPE[dtype])
    W = torch_head.weight.detach().numpy()
    b = torch_head.bias.detach().numpy() if bias else None
    dy = rng.standard_normal(shape[:-1] + (4,)).astype(dtype)

    y, cache = linear_forward(to(backend, h), to(backend, W), None if b is None else to(backend, b))
    g = linear_backward(to(backend, dy), cache)
    dh, dW, db = g["h"], g["W"], g.get("b")

    ht = torch.from_numpy(h).requires_grad_(True)
    yt = torch_head(ht)
    yt.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(as_numpy(y), yt.detach().numpy(), **TOL[dtype])
    np.testing.assert_allclose(as_numpy(dh), ht.grad.numpy(), **TOL[dtype])
    np.testing.assert_allclose(as_numpy(dW), torch_head.weight.grad.numpy(), **TOL[dtype])
    if bias:
        np.testing.assert_allclose(as_numpy(db), torch_head.bias.grad.numpy(), **TOL[dtype])
    else:
        assert db is None


def test_linear_head_is_applied_at_every_step_with_the_same_weights():
    rng = np.random.default_rng(1)
    h, W, b = rng.standard_normal((4, 2, 3)), rng.standard_normal((5, 3)), rng.standard_normal(5)
    y, _ = linear_forward(h, W, b)
    for t in range(4):
        for i in range(2):  # y_t = W_y h_t + b_y for every sequence i of the batch
            np.testing.assert_allclose(y[t, i], W @ h[t, i] + b, rtol=1e-13)


def test_linear_and_softmax_heads_gradcheck():
    rng = np.random.default_rng(2)
    h, W, b = rng.standard_normal((4, 2, 3)), rng.standard_normal((5, 3)), rng.standard_normal(5)
    targets = rng.integers(0, 5, (4, 2))
    d = rng.random((4, 2, 5))

    y, cache = linear_forward(h, W, b)
    g = linear_backward(cross_entropy(y, targets)[1]["logits"], cache)
    dh, dW, db = g["h"], g["W"], g["b"]
    report = grad_check(
        lambda: cross_entropy(linear_forward(h, W, b)[0], targets)[0],
        {"h": h, "W": W, "b": b},
        {"h": dh, "W": dW, "b": db},
    )
    assert report.passed, report

    p, cache = softmax_head_forward(h, W, b)  # a loss on the probabilities themselves
    g = softmax_head_backward(squared_error(p, d)[1]["y"], cache)
    dh, dW, db = g["h"], g["W"], g["b"]
    report = grad_check(
        lambda: squared_error(softmax_head_forward(h, W, b)[0], d)[0],
        {"h": h, "W": W, "b": b},
        {"h": dh, "W": dW, "b": db},
    )
    assert report.passed, report


def test_linear_class_names_init_and_torch_state_dict():
    head = Linear(6, 3, seed=0)
    assert list(head.params) == list(torch.nn.Linear(6, 3).state_dict()) == ["weight", "bias"]
    assert head.params["weight"].shape == (3, 6) and head.params["bias"].shape == (3,)
    bound = 1 / np.sqrt(6)
    assert all(np.abs(p).max() <= bound for p in head.params.values())
    assert np.abs(head.params["weight"]).max() > 0.5 * bound  # uniform on the whole range, like torch

    torch_head = torch.nn.Linear(6, 3, dtype=torch.float64)
    head.load_state_dict(torch_head.state_dict())  # now the head holds torch tensors (copies)
    h = torch.randn(4, 2, 6, dtype=torch.float64)
    torch.testing.assert_close(head(h), torch_head(h).detach())
    with pytest.raises(KeyError, match="missing"):
        head.load_state_dict({"weight": torch_head.weight})
    with pytest.raises(ValueError, match=r"weight has shape \(6, 3\), expected \(3, 6\)"):
        head.load_state_dict({"weight": np.zeros((6, 3)), "bias": np.zeros(3)})


def test_layers_move_between_backends_and_dtypes():
    head = MLPHead([3, 4, 2], seed=0)
    emb = Embedding(5, 3, seed=0)
    weights = {k: v.copy() for k, v in head.params.items()}
    head.to("torch", dtype="float32")
    emb.to("torch", dtype="float32")
    assert all(isinstance(p, torch.Tensor) and p.dtype == torch.float32 for p in head.params.values())
    y = head(emb(torch.tensor([[1, 2]])))
    assert isinstance(y, torch.Tensor) and y.shape == (1, 2, 2) and y.dtype == torch.float32
    head.to("numpy", dtype="float64")
    assert Linear(3, 2, dtype=np.dtype("float32")).params["weight"].dtype == np.float32
    assert Embedding(3, 2, dtype="float32").params["weight"].dtype == np.float32
    for name, w in weights.items():
        assert head.params[name].dtype == np.float64 and np.allclose(head.params[name], w, rtol=1e-6)


def test_linear_class_softmax_output():
    rng = np.random.default_rng(3)
    head = Linear(4, 5, output="softmax", seed=1)
    h, d = rng.standard_normal((3, 2, 4)), rng.random((3, 2, 5))
    p = head.forward(h)
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-14)
    dh = head.backward(squared_error(p, d)[1]["y"])

    def f():
        return squared_error(head.forward(h), d)[0]

    report = grad_check(f, {"h": h, **head.params}, {"h": dh, **head.grads})
    assert report.passed, report


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("output", ["linear", "softmax"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_mlp_head_matches_torch_sequential(activation, output, backend):
    torch.manual_seed(0)
    act = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}[activation]
    layers = [torch.nn.Linear(5, 8), act(), torch.nn.Linear(8, 6), act(), torch.nn.Linear(6, 4)]
    if output == "softmax":
        layers.append(torch.nn.Softmax(dim=-1))
    torch_head = torch.nn.Module()
    torch_head.layers = torch.nn.Sequential(*layers).double()

    head = MLPHead([5, 8, 6, 4], activation=activation, output=output, seed=0)
    assert list(head.params) == list(torch_head.state_dict())  # layers.0.weight, layers.0.bias, layers.2...
    head.load_state_dict({k: to(backend, v.numpy()) for k, v in torch_head.state_dict().items()})

    rng = np.random.default_rng(4)
    h, dy = rng.standard_normal((6, 3, 5)), rng.standard_normal((6, 3, 4))
    y = head.forward(to(backend, h))
    dh = head.backward(to(backend, dy))

    ht = torch.from_numpy(h).requires_grad_(True)
    yt = torch_head.layers(ht)
    yt.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(as_numpy(y), yt.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(as_numpy(dh), ht.grad.numpy(), rtol=1e-11, atol=1e-14)
    for name, p in torch_head.named_parameters():
        np.testing.assert_allclose(as_numpy(head.grads[name]), p.grad.numpy(), rtol=1e-11, atol=1e-14, err_msg=name)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_mlp_head_gradcheck(activation):
    rng = np.random.default_rng(5)
    head = MLPHead([4, 7, 5, 3], activation=activation, seed=6)
    h, targets = rng.standard_normal((5, 2, 4)), rng.integers(0, 3, (5, 2))
    dh = head.backward(cross_entropy(head.forward(h), targets)[1]["logits"])

    def f():
        return cross_entropy(head.forward(h), targets)[0]

    report = grad_check(f, {"h": h, **head.params}, {"h": dh, **head.grads})
    assert report.passed, report


def test_head_errors():
    with pytest.raises(ValueError, match="h has 4 features, expected in_features=5"):
        linear_forward(np.zeros((2, 4)), np.zeros((3, 5)))
    with pytest.raises(ValueError, match="activation"):
        MLPHead([3, 4, 2], activation="sigmoid")
    with pytest.raises(RuntimeError, match="before forward"):
        Linear(3, 2).backward(np.zeros((1, 2)))


# ---------------------------------------------------------------------------------------------------
# embedding
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("padding_idx", [None, 0, -1])
def test_embedding_matches_torch(backend, dtype, padding_idx):
    rng = np.random.default_rng(7)
    V, D = 6, 4
    W = rng.standard_normal((V, D)).astype(dtype)
    ids = rng.integers(0, V, (7, 3))
    ids[0, :] = 2  # a repeated id accumulates
    ids[1, 0] = V - 1
    ids[2, 1] = 0
    dout = rng.standard_normal((7, 3, D)).astype(dtype)

    out, cache = embedding_forward(to(backend, ids), to(backend, W), padding_idx)
    dW = embedding_backward(to(backend, dout), cache)["W"]

    Wt = torch.from_numpy(W).requires_grad_(True)
    out_t = torch.nn.functional.embedding(torch.from_numpy(ids), Wt, padding_idx=padding_idx)
    out_t.backward(torch.from_numpy(dout))
    np.testing.assert_array_equal(as_numpy(out), out_t.detach().numpy())
    np.testing.assert_allclose(as_numpy(dW), Wt.grad.numpy(), **TOL[dtype])
    if padding_idx is not None:
        assert np.all(as_numpy(dW)[padding_idx] == 0)


def test_embedding_backward_in_blocks_equals_one_block(monkeypatch):
    """Many positions and a large table: the block-wise scatter-add gives the same sum."""
    rng = np.random.default_rng(8)
    V, D = 50_000, 3
    W = rng.standard_normal((V, D))
    ids = rng.integers(0, V, (200, 4))
    ids[:, 0] = 7
    dout = rng.standard_normal((200, 4, D))
    _, cache = embedding_forward(ids, W)
    expected = np.zeros((V, D))
    np.add.at(expected, ids.reshape(-1), dout.reshape(-1, D))
    np.testing.assert_allclose(embedding_backward(dout, cache)["W"], expected, rtol=1e-12, atol=1e-14)


def test_embedding_gradcheck():
    rng = np.random.default_rng(9)
    W, ids, d = rng.standard_normal((5, 3)), rng.integers(0, 5, (4, 2)), rng.standard_normal((4, 2, 3))
    out, cache = embedding_forward(ids, W)
    dW = embedding_backward(squared_error(out, d)[1]["y"], cache)["W"]
    report = grad_check(lambda: squared_error(embedding_forward(ids, W)[0], d)[0], {"W": W}, {"W": dW})
    assert report.passed, report


def test_embedding_class_like_torch():
    emb = Embedding(10, 4, padding_idx=0, seed=0)
    assert list(emb.params) == list(torch.nn.Embedding(10, 4).state_dict()) == ["weight"]
    assert np.all(emb.params["weight"][0] == 0)
    ids = np.array([[0, 3], [3, 9]])
    np.testing.assert_array_equal(emb(ids)[1, 0], emb.params["weight"][3])
    assert emb.backward(np.ones((2, 2, 4))) is None
    np.testing.assert_array_equal(emb.grads["weight"][3], 2.0)  # id 3 appears twice
    np.testing.assert_array_equal(emb.grads["weight"][0], 0.0)  # padding
    with pytest.raises(ValueError, match=r"id 10 is out of range.*\[0, 9\]"):
        emb(np.array([10]))
    with pytest.raises(TypeError, match="ids must be integers"):
        emb(np.array([1.0]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_hot(backend):
    ids = np.array([[0, 2], [1, 2]])
    expected = torch.nn.functional.one_hot(torch.from_numpy(ids), 3).numpy()
    encoded = one_hot(to(backend, ids), 3)
    np.testing.assert_array_equal(as_numpy(encoded), expected)
    assert encoded.dtype == (np.float64 if backend == "numpy" else torch.float32)  # the backend's default float
