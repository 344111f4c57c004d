"""rnnkit.optim: SGD / Adam / AdamW match torch.optim over several steps, on numpy and torch arrays."""

import numpy as np
import pytest
import torch

from rnnkit.optim import SGD, Adam, AdamW

BACKENDS = ["numpy", "torch"] + (["cuda"] if torch.cuda.is_available() else [])
TOL = {np.float32: dict(rtol=2e-6, atol=1e-6), np.float64: dict(rtol=1e-13, atol=1e-14)}
STEPS = 8

CONFIGS = {
    "sgd": (SGD, torch.optim.SGD, dict(lr=0.1)),
    "sgd-weight-decay": (SGD, torch.optim.SGD, dict(lr=0.1, weight_decay=0.05)),
    "sgd-momentum": (SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9)),
    "sgd-momentum-weight-decay": (SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, weight_decay=0.01)),
    "sgd-nesterov": (SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.8, nesterov=True)),
    "adam": (Adam, torch.optim.Adam, dict(lr=0.01)),
    "adam-betas-eps": (Adam, torch.optim.Adam, dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6)),
    "adam-weight-decay": (Adam, torch.optim.Adam, dict(lr=0.01, weight_decay=0.1)),
    "adamw": (AdamW, torch.optim.AdamW, dict(lr=0.01, weight_decay=0.1)),
    "adamw-default-decay": (AdamW, torch.optim.AdamW, dict(lr=0.01)),
}


def to(backend, a):
    if backend == "numpy":
        return a.copy()
    return torch.from_numpy(a.copy()).to("cuda" if backend == "cuda" else "cpu")


def as_numpy(a):
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def run_both(config, backend, dtype, steps=STEPS):
    """Run our optimizer and torch's from the same start with the same gradients; return both params."""
    ours_cls, torch_cls, kwargs = CONFIGS[config]
    rng = np.random.default_rng(0)
    start = {"weight": rng.standard_normal((4, 3)).astype(dtype), "bias": rng.standard_normal(4).astype(dtype)}
    grads = [{k: rng.standard_normal(v.shape).astype(dtype) for k, v in start.items()} for _ in range(steps)]

    params = {k: to(backend, v) for k, v in start.items()}
    ours = ours_cls(params, **kwargs)
    torch_params = {k: torch.nn.Parameter(torch.from_numpy(v.copy())) for k, v in start.items()}
    theirs = torch_cls(list(torch_params.values()), foreach=False, **kwargs)
    for g in grads:
        ours.step({k: to(backend, v) for k, v in g.items()})
        for k, p in torch_params.items():
            p.grad = torch.from_numpy(g[k])
        theirs.step()
    return params, {k: p.detach().numpy() for k, p in torch_params.items()}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("config", list(CONFIGS))
def test_matches_torch_optim_over_several_steps(config, backend, dtype):
    ours, theirs = run_both(config, backend, dtype)
    for name in theirs:
        assert as_numpy(ours[name]).dtype == dtype
        np.testing.assert_allclose(as_numpy(ours[name]), theirs[name], **TOL[dtype], err_msg=name)


def test_updates_in_place_and_skips_missing_gradients():
    w, b = np.ones((2, 2)), np.ones(2)
    params = {"w": w, "b": b}
    opt = SGD(params, lr=0.5)
    opt.step({"w": np.ones((2, 2)), "b": None})
    assert params["w"] is w and np.all(w == 0.5)  # the same array, changed in place
    assert np.all(b == 1.0)  # no gradient: unchanged, like a torch parameter with .grad None


def test_learning_rate_can_change_between_steps():
    params = {"w": np.zeros(3)}
    opt = SGD(params, lr=1.0)
    opt.step({"w": np.ones(3)})
    opt.lr = 0.1
    opt.step({"w": np.ones(3)})
    np.testing.assert_allclose(params["w"], -1.1)


def test_adam_first_step_moves_every_entry_by_lr():
    """Bias correction: after one step, m_hat / sqrt(v_hat) = g / |g| = sign(g) (up to eps)."""
    params = {"w": np.zeros(5)}
    g = np.array([1e-4, -3.0, 2.0, -1e-3, 10.0])
    Adam(params, lr=0.01).step({"w": g})
    np.testing.assert_allclose(params["w"], -0.01 * np.sign(g), rtol=1e-3)


def test_state_uses_torch_names():
    params = {"w": np.zeros(2)}
    opt = Adam(params)
    opt.step({"w": np.ones(2)})
    assert set(opt.state["w"]) == {"step", "exp_avg", "exp_avg_sq"} and opt.state["w"]["step"] == 1
    sgd = SGD(params, lr=0.1, momentum=0.9)
    sgd.step({"w": np.ones(2)})
    assert set(sgd.state["w"]) == {"momentum_buffer"}


def test_errors():
    params = {"w": np.zeros((2, 3))}
    with pytest.raises(KeyError, match="unknown parameter 'v'"):
        SGD(params, lr=0.1).step({"v": np.zeros(2)})
    with pytest.raises(ValueError, match=r"gradient for 'w' has shape \(3, 2\), expected \(2, 3\)"):
        Adam(params).step({"w": np.zeros((3, 2))})
    with pytest.raises(TypeError, match="params must be a dict"):
        SGD([np.zeros(2)], lr=0.1)
    with pytest.raises(ValueError, match="betas"):
        Adam(params, betas=(0.9, 1.0))
