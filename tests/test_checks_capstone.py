"""Spec-level tests of rnnkit.checks.capstone (exercise 11): the written-out references agree with
rnnkit, the LSTM solution and a GRU version of it both pass, typical mistakes are named, and numpy
calls on torch tensors are caught."""
from __future__ import annotations

import numpy as np
import pytest

from rnnkit.checks import CheckFailure, check
from rnnkit.checks import capstone
from rnnkit.optim import Adam
from test_checks_deep_rnn import solution_source

SPECS = ("step_forward", "step_backward", "lm_loss", "clip", "adam", "train_step", "train", "sample",
         "torch_backend")

GRU_STEP = '''
CELL = "gru"


def sigmoid(xp, a):
    return 1 / (1 + xp.exp(-a))


def cell_step_forward(x, h_prev, params):
    xp = array_namespace(x)
    H = h_prev.shape[1]
    xw = x @ params["weight_ih"].T + params["bias_ih"]
    hw = h_prev @ params["weight_hh"].T + params["bias_hh"]
    r = sigmoid(xp, xw[:, :H] + hw[:, :H])
    z = sigmoid(xp, xw[:, H:2 * H] + hw[:, H:2 * H])
    n = xp.tanh(xw[:, 2 * H:] + r * hw[:, 2 * H:])
    return (1 - z) * n + z * h_prev, (x, h_prev, r, z, n, hw, params)


def cell_step_backward(dh, cache):
    x, h_prev, r, z, n, hw, params = cache
    xp = array_namespace(dh)
    H = h_prev.shape[1]
    da_n = dh * (1 - z) * (1 - n * n)
    da_r = da_n * hw[:, 2 * H:] * r * (1 - r)
    da_z = dh * (h_prev - n) * z * (1 - z)
    dxw = xp.concat([da_r, da_z, da_n], axis=1)
    dhw = xp.concat([da_r, da_z, da_n * r], axis=1)
    return {"x": dxw @ params["weight_ih"], "h_prev": dh * z + dhw @ params["weight_hh"],
            "weight_ih": dxw.T @ x, "weight_hh": dhw.T @ h_prev,
            "bias_ih": xp.sum(dxw, axis=0), "bias_hh": xp.sum(dhw, axis=0)}
'''


def gru_source():
    """The solution with a GRU step: the state is h alone, so lm_loss and sample_names change a little."""
    cells = solution_source("11_capstone").split("\n# ---- next cell ----\n")
    (step,) = [i for i, c in enumerate(cells) if c.startswith('CELL = "lstm"')]
    cells[step] = GRU_STEP
    source = "\n# ---- next cell ----\n".join(cells)
    edits = [
        ("state, hs, caches = (zeros, zeros), [], []", "state, hs, caches = zeros, [], []"),
        ("hs.append(state[0])", "hs.append(state)"),
        ("dstate = (zeros, zeros)                                     # what comes back from step t + 1",
         "dstate = zeros"),
        ("g = cell_step_backward((dstate[0] + dhs[t], dstate[1]), caches[t])\n        dstate = (g[\"h_prev\"], g[\"c_prev\"])",
         "g = cell_step_backward(dstate + dhs[t], caches[t])\n        dstate = g[\"h_prev\"]"),
        ("state = (zeros, zeros)                                  # every name starts afresh", "state = zeros"),
        ("z = (state[0] @ W.T + b)[0, EOS_ID:] / temperature", "z = (state @ W.T + b)[0, EOS_ID:] / temperature"),
    ]
    for old, new in edits:
        assert old in source, old
        source = source.replace(old, new)
    return source


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_written_out_loss_equals_rnnkit(cell):
    rng = np.random.default_rng(0)
    params = capstone.random_lm_params(rng, cell, 5)
    ids = capstone.random_batch(rng, 4, 5)
    loss, grads = capstone.reference_loss(cell, ids, params)
    loss2, grads2 = capstone.lm_reference(cell, ids, params)
    assert np.isclose(loss2, loss, rtol=1e-12)
    for name, g in grads.items():
        np.testing.assert_allclose(grads2[name], g, rtol=1e-9, atol=1e-12)


def test_written_out_adam_equals_rnnkit():
    rng = np.random.default_rng(1)
    params = {"a": rng.normal(size=(3, 2)), "b": rng.normal(size=4)}
    grads = [{k: rng.normal(size=v.shape) for k, v in params.items()} for _ in range(4)]
    mine = capstone.adam_reference(params, grads, lr=0.05)
    theirs = {k: v.copy() for k, v in params.items()}
    opt = Adam(theirs, lr=0.05)
    for step, g in enumerate(grads):
        opt.step(g)
        for k in params:
            np.testing.assert_allclose(mine[step][k], theirs[k], rtol=1e-12)


@pytest.mark.parametrize("source", [solution_source("11_capstone"), gru_source()], ids=["lstm", "gru"])
def test_the_solution_passes_every_spec_with_either_cell(source):
    for spec in SPECS:
        check(f"capstone.{spec}", source=source, seed=0)


@pytest.mark.parametrize("old, new, spec, phrase", [
    ("m_hat = m / (1 - beta1 ** t)\n        v_hat = v / (1 - beta2 ** t)", "m_hat = m\n        v_hat = v",
     "adam", "the bias correction is missing"),
    ("grads, _ = clip_grad_norm(grads, max_norm)\n    adam_update(params, grads, state, lr)",
     "adam_update(params, grads, state, lr)\n    grads, _ = clip_grad_norm(grads, max_norm)",
     "train_step", "clip first, then update"),
    ("g, o = xp.tanh(a[:, 2 * H:3 * H])", "g, o = np.tanh(a[:, 2 * H:3 * H])", "torch_backend",
     "a numpy function was called on a torch tensor"),
    ("zeros = xp.zeros((B, H), dtype=W.dtype, device=device_of(W))", "zeros = np.zeros((B, H))",
     "torch_backend", "a numpy array met a torch tensor"),
])
def test_typical_mistakes_are_named(old, new, spec, phrase):
    source = solution_source("11_capstone")
    assert old in source
    with pytest.raises(CheckFailure, match=phrase):
        check(f"capstone.{spec}", source=source.replace(old, new), seed=0)


def test_an_unknown_cell_is_reported():
    source = solution_source("11_capstone").replace('CELL = "lstm"', 'CELL = "rnn"')
    with pytest.raises(CheckFailure, match='set CELL = "lstm" or CELL = "gru"'):
        check("capstone.step_forward", source=source, seed=0)
