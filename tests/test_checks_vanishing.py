"""The checks of exercise 4 (vanishing gradients, clipping, a training loop): the references are right
(torch autograd, torch's clipping, the notebook's given loss), the solution and an honest variant pass,
and typical mistakes are named."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from course_helpers import ROOT, check_source
from test_checks_deep_rnn import CELL_BREAK, solution_source

from course.checks import vanishing as spec
from course.sandbox import SiteLayout
from course.verdict import CheckFailure
from rnnkit.clip import clip_grad_norm

NAME = "04_vanishing_gradients"


@pytest.fixture(scope="module")
def source():
    """The answers, the given forward pass and the given loss (a cell after the first answer)."""
    return solution_source(NAME, answers_only=True) + CELL_BREAK + given("given_training")


def run(name, source, seed=0, **params):
    return check_source(f"vanishing.{name}", source, seed, **params)


def given(grade_id):
    nb = json.loads((ROOT / "solutions" / NAME / f"{NAME}.ipynb").read_text())
    (cell,) = [c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == grade_id]
    return "".join(cell["source"])


def _torch_step(nonlinearity, xw, W):
    act = torch.tanh if nonlinearity == "tanh" else torch.relu
    return lambda hp: act(torch.from_numpy(xw) + torch.from_numpy(W) @ hp)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_reference_jacobian_is_the_autograd_jacobian(rng, nonlinearity):
    W = rng.normal(size=(4, 4))
    h_prev, xw = rng.normal(size=4), rng.normal(size=4)
    step = _torch_step(nonlinearity, xw, W)
    h = step(torch.from_numpy(h_prev)).numpy()
    auto = torch.autograd.functional.jacobian(step, torch.from_numpy(h_prev))
    np.testing.assert_allclose(spec._reference_jacobians(h[None], W, nonlinearity)[0], auto.numpy(), rtol=1e-10)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_reference_state_gradients_are_autograds(rng, nonlinearity):
    T, H = 5, 4
    W, xs = rng.normal(size=(H, H)) * 0.6, rng.normal(size=(T, H))
    h0 = torch.tensor(rng.normal(size=H), requires_grad=True)
    states, h = [h0], h0
    for t in range(T):
        h = _torch_step(nonlinearity, xs[t], W)(h)
        h.retain_grad()
        states.append(h)
    w = torch.tensor(rng.normal(size=H))
    (w * states[-1]).sum().backward()
    hs = torch.stack(states[1:]).detach().numpy()[:, None, :]
    got = spec.reference_state_gradients(hs, W, w.numpy()[None], nonlinearity)[:, 0]
    want = np.stack([s.grad.numpy() for s in states])
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-14)


def test_reference_clipping_is_torchs(rng):
    grads = {"a": rng.normal(size=(3, 4)), "b": rng.normal(size=5)}
    tensors = [torch.tensor(g) for g in grads.values()]
    for t in tensors:
        t.grad = t.clone()
    total = torch.nn.utils.clip_grad_norm_(tensors, max_norm=1.0)
    mine = {k: v.copy() for k, v in grads.items()}
    assert float(clip_grad_norm(mine, 1.0)) == pytest.approx(float(total), rel=1e-12)
    for g, t in zip(mine.values(), tensors):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-12)


def test_the_given_loss_is_the_reference_and_autograds(rng):
    """The notebook's loss_and_grads (what students train with) equals the checker's rnnkit replay, and
    torch autograd on the same loss."""
    namespace = {}
    exec("import numpy as np\n" + given("given_forward") + "\n" + given("given_training"), namespace)
    params = spec.training_params(rng, 4)
    (x, target), = spec.training_data(rng, 1, 6, 3)
    loss, grads = namespace["loss_and_grads"](spec.copy_params(params), x, target)
    want_loss, want = spec.reference_loss_and_grads(params, x, target)
    assert loss == pytest.approx(want_loss, rel=1e-12)
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    h, hs = torch.zeros(3, 4, dtype=torch.float64), []
    for t in range(6):
        h = torch.relu(torch.from_numpy(x[t]) @ tp["weight_ih"].T + tp["bias_ih"] + h @ tp["weight_hh"].T
                       + tp["bias_hh"])
        hs.append(h)
    y = torch.stack(hs) @ tp["weight_y"].T + tp["bias_y"]
    (0.5 * ((y - torch.from_numpy(target)) ** 2).mean()).backward()
    for name in params:
        np.testing.assert_allclose(grads[name], want[name], rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(want[name], tp[name].grad.numpy(), rtol=1e-10, atol=1e-14)


def test_matrix_with_radius(rng):
    W = spec.matrix_with_radius(rng, 6, 1.3)
    assert np.max(np.abs(np.linalg.eigvals(W))) == pytest.approx(1.3)


def test_the_reference_factor_of_a_geometric_curve_is_its_ratio():
    norms = 0.8 ** np.arange(6, -1, -1)[:, None] * np.array([[2.0, 5.0]])
    np.testing.assert_allclose(spec.reference_factor(norms), [0.8, 0.8])


def test_the_solution_passes_every_spec(source):
    assert "def train_clipped" in source and "sine_waves" not in source
    run("step_jacobian", source, batch=1, hidden_size=2, nonlinearity="relu")
    run("jacobian_norms", source, T=1, batch=1, radius=1.5)
    run("jacobian_norms", source, T=5, batch=2, nonlinearity="relu", seed=None)
    run("state_gradients", source, T=1, batch=1)
    run("state_gradients", source, T=7, batch=3, radius=1.3, nonlinearity="relu", seed=None)
    run("factor_per_step", source, T=2, batch=1)
    for regime in ("above", "below"):
        run("clip_grad_norm", source, regime=regime)
    run("train_clipped", source, seed=None)
    run("train_clipped", source, steps=3, T=1, batch=1, hidden_size=2, clip=False)


VARIANT = '''
import numpy as np

def step_jacobian(h, params, nonlinearity="tanh"):
    W = params["weight_hh"]
    d = np.where(h > 0, 1.0, 0.0) if nonlinearity == "relu" else 1.0 - h * h
    return np.einsum("bi,ij->bij", d, W)

def jacobian_norms(hs, params, nonlinearity="tanh"):
    T, B, H = hs.shape
    out = [np.ones(B)]
    P = np.stack([np.eye(H)] * B)
    for k in reversed(range(T)):
        P = np.einsum("bij,bjk->bik", P, step_jacobian(hs[k], params, nonlinearity))
        out.append(np.array([np.linalg.svd(m, compute_uv=False)[0] for m in P]))
    return np.array(out[::-1])

def state_gradients(hs, params, dh_T, nonlinearity="tanh"):
    g, out = dh_T, [dh_T]
    for k in reversed(range(len(hs))):
        J = step_jacobian(hs[k], params, nonlinearity)
        g = np.einsum("bi,bij->bj", g, J)
        out.insert(0, g)
    return np.array(out)

def factor_per_step(norms):
    T = len(norms) - 1
    u = np.arange(T, -1, -1.0)
    v = np.log(norms)
    slope = ((u - u.mean())[:, None] * (v - v.mean(0))).sum(0) / ((u - u.mean()) ** 2).sum()
    return np.exp(slope)

def clip_grad_norm(grads, max_norm):
    total = np.linalg.norm(np.concatenate([g.ravel() for g in grads.values()]))
    scale = min(1.0, max_norm / (total + 1e-6))
    if scale < 1.0:
        for g in grads.values():
            g[...] = g * scale
    return total

def train_clipped(params, batches, lr, max_norm=None):
    history = []
    for x, target in batches:
        loss, grads = loss_and_grads(params, x, target)
        norm = clip_grad_norm(grads, float("inf") if max_norm is None else max_norm)
        for name, g in grads.items():
            params[name] -= lr * g
        history.append((loss, norm))
    losses, norms = zip(*history)
    return list(losses), list(norms)
'''


def test_an_honest_variant_written_differently_passes():
    variant = "import numpy as np\n" + given("given_forward") + "\n" + given("given_training") + VARIANT
    for name in spec.SPECS:
        run(name, variant)
    run("jacobian_norms", variant, nonlinearity="relu", seed=None)
    run("state_gradients", variant, nonlinearity="relu", seed=None)


@pytest.mark.parametrize("name, params, old, new, message", [
    ("step_jacobian", {}, 'slope[:, :, None] * params["weight_hh"][None, :, :]',
     'params["weight_hh"].T[None, :, :] * slope[:, None, :]', "they are transposed"),
    ("step_jacobian", {}, "slope[:, :, None]", "slope[:, None, :]", "scales the columns"),
    ("step_jacobian", {}, "1 - h**2 if", "1 - h if", "not 1 − h"),
    ("step_jacobian", {"nonlinearity": "relu"}, 'if nonlinearity == "tanh" else (h > 0).astype(float)', "",
     "1 − h² is tanh's"),
    ("jacobian_norms", {}, "P = P @ step_jacobian(hs[k], params, nonlinearity)",
     "P = step_jacobian(hs[k], params, nonlinearity) @ P", "wrong order"),
    ("jacobian_norms", {}, "np.linalg.norm(P, ord=2, axis=(1, 2))", "np.linalg.norm(P, axis=(1, 2))", "Frobenius"),
    ("jacobian_norms", {}, "    return norms\n", "    return norms[:-1]\n", "it needs T+1 rows"),
    ("jacobian_norms", {}, "1 - h**2 if", "1 - h if", "jacobian_norms uses your step_jacobian, which does not pass"),
    ("state_gradients", {}, '@ params["weight_hh"]\n', '@ params["weight_hh"].T\n', "W_hh is transposed"),
    ("state_gradients", {}, '(slope * grads[k + 1]) @ params["weight_hh"]',
     'slope * (grads[k + 1] @ params["weight_hh"])', "φ' multiplies dh_{k+1} before W_hh"),
    ("state_gradients", {}, '(slope * grads[k + 1]) @ params["weight_hh"]', 'grads[k + 1] @ params["weight_hh"]',
     "the slope φ'(a_{k+1}) is missing"),
    ("state_gradients", {}, "    return grads\n", "    return grads[::-1]\n", "the gradients run backwards"),
    ("state_gradients", {}, "    return grads\n", "    return grads[:-1]\n", "it needs T+1 entries"),
    ("state_gradients", {}, "grads[k] = (slope", "grads[k + 1] *= 1\n        grads[k] = (slope", None),
    ("factor_per_step", {}, "return np.exp(slope)", "return slope", "its exponential"),
    ("factor_per_step", {}, "distance = np.arange(T, -1, -1)", "distance = np.arange(T + 1)", "upside down"),
    ("factor_per_step", {}, "np.polyfit(distance, np.log(norms), 1)[0]", "np.log(norms[0] / norms[T]) / T",
     "uses only the two ends"),
    ("clip_grad_norm", {"regime": "below"}, "if total > max_norm:", "if True:", "already below"),
    ("clip_grad_norm", {}, "(total + 1e-6)", "total", "the 1e-6 is missing"),
    ("clip_grad_norm", {}, "    return total\n", "    return total ** 2\n", "squared norm"),
    ("clip_grad_norm", {}, "        for g in grads.values():\n            g *= scale",
     "        for k in grads:\n            grads[k] = grads[k] * scale", "was replaced by a new array"),
    ("train_clipped", {}, "        norm = clip_grad_norm(grads, np.inf if max_norm is None else max_norm)\n"
                          "        for name in params:\n            params[name] -= lr * grads[name]\n",
     "        for name in params:\n            params[name] -= lr * grads[name]\n"
     "        norm = clip_grad_norm(grads, np.inf if max_norm is None else max_norm)\n",
     "updated with the unclipped gradient"),
    ("train_clipped", {}, "np.inf if max_norm is None else max_norm", "np.inf", "updated with the unclipped gradient"),
    ("train_clipped", {}, "        losses.append(loss)\n",
     "        losses.append(loss)\n        norm = min(norm, max_norm or np.inf)\n", "the norm after clipping"),
    ("train_clipped", {}, "params[name] -= lr * grads[name]", "params[name] += lr * grads[name]", "goes uphill"),
    ("train_clipped", {}, "        for name in params:\n            params[name] -= lr * grads[name]\n",
     "        params = {name: p - lr * grads[name] for name, p in params.items()}\n", "params did not change"),
    ("train_clipped", {}, "if total > max_norm:", "if True:",
     "train_clipped uses your clip_grad_norm, which does not pass"),
])
def test_mistakes_are_named(source, name, params, old, new, message):
    wrong = source.replace(old, new, 1)
    assert wrong != source, old
    if message is None:      # a harmless change: still right
        run(name, wrong, **params)
        return
    with pytest.raises(CheckFailure, match=re.escape(message)):
        run(name, wrong, **params)


def test_per_array_clipping_is_named(source):
    wrong = source.replace("""    if total > max_norm:
        scale = max_norm / (total + 1e-6)
        for g in grads.values():
            g *= scale""", """    for g in grads.values():
        n = np.linalg.norm(g)
        if n > max_norm:
            g *= max_norm / (n + 1e-6)""")
    assert wrong != source
    with pytest.raises(CheckFailure, match="by its own norm"):
        run("clip_grad_norm", wrong, seed=3)


def test_every_known_mistake_changes_the_answer(rng):
    params, hs = spec._run_rnn(rng, 6, 2, 3, 4, 1.1, "tanh")
    dh = rng.normal(size=(2, 4))
    right = spec.reference_state_gradients(hs, params["weight_hh"], dh)
    for key in spec.STATE_MISTAKES:
        assert not np.allclose(spec.reference_state_gradients(hs, params["weight_hh"], dh, mistake=key), right), key
    norms = spec._reference_norms(hs, params["weight_hh"])[0] * np.exp(rng.normal(0, 0.05, (7, 2)))
    for message, wrong in spec._factor_mistakes(norms).items():
        assert not np.allclose(wrong, spec.reference_factor(norms)), message
    tp, batches, max_norm = spec.training_case(rng, 5, 6, 2, 4, 0.05, clip=True)
    losses, norms, after = spec.reference_training(tp, batches, 0.05, max_norm)
    assert (norms > max_norm).any() and (norms <= max_norm).any()
    for key in spec.TRAIN_MISTAKES:
        wrong = spec.reference_training(tp, batches, 0.05, max_norm, key)
        assert not (np.allclose(wrong[0], losses) and np.allclose(wrong[1], norms)), key


def test_the_training_check_says_when_the_given_loss_is_missing(source):
    without = source.replace("def loss_and_grads(", "def renamed_loss_and_grads(")
    with pytest.raises(CheckFailure, match="uses the given loss_and_grads: run the cell that defines it"):
        run("train_clipped", without)


def test_the_sandbox_holds_no_clipping_and_no_cells():
    entries = SiteLayout.for_policy(spec.POLICY).entries
    assert "rnnkit/gradcheck.py" in entries and "numpy" in entries
    assert not [e for e in entries if e.startswith(("rnnkit/clip", "rnnkit/cells", "rnnkit/sequence"))]
