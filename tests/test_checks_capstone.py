"""The checks of exercise 13 (capstone): the written-out references agree with rnnkit, the LSTM
solution and a GRU version of it both pass, the backward step is scored on a cache the checker made
(a wrong forward step does not cost its points), typical mistakes are named, and numpy calls on
torch tensors are caught while the torch check runs (and only then)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from course_helpers import check_source
from test_checks_seq2seq import CELL_BREAK, solution_source

from course.checks import capstone
from course.verdict import CheckFailure
from rnnkit.cells import gru_step_forward, lstm_step_forward
from rnnkit.optim import Adam

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
    hn = hw[:, 2 * H:]
    n = xp.tanh(xw[:, 2 * H:] + r * hn)
    return (1 - z) * n + z * h_prev, (x, h_prev, r, z, n, hn, params)


def cell_step_backward(dh, cache):
    x, h_prev, r, z, n, hn, params = cache
    xp = array_namespace(dh)
    da_n = dh * (1 - z) * (1 - n * n)
    da_r = da_n * hn * r * (1 - r)
    da_z = dh * (h_prev - n) * z * (1 - z)
    dxw = xp.concat([da_r, da_z, da_n], axis=1)
    dhw = xp.concat([da_r, da_z, da_n * r], axis=1)
    return {"x": dxw @ params["weight_ih"], "h_prev": dh * z + dhw @ params["weight_hh"],
            "weight_ih": dxw.T @ x, "weight_hh": dhw.T @ h_prev,
            "bias_ih": xp.sum(dxw, axis=0), "bias_hh": xp.sum(dhw, axis=0)}
'''


def gru_source():
    """The solution with a GRU step: the state is h alone, so lm_loss and sample_names change a little."""
    cells = solution_source("13_capstone").split(CELL_BREAK)
    (step,) = [i for i, c in enumerate(cells) if c.startswith('CELL = "lstm"')]
    cells[step] = GRU_STEP
    source = CELL_BREAK.join(cells)
    edits = [
        ("state, hs, caches = (zeros, zeros), [], []", "state, hs, caches = zeros, [], []"),
        ("hs.append(state[0])", "hs.append(state)"),
        ("dstate = (zeros, zeros)                                     # what comes back from step t + 1",
         "dstate = zeros"),
        ("g = cell_step_backward((dstate[0] + dhs[t], dstate[1]), caches[t])\n"
         "        dstate = (g[\"h_prev\"], g[\"c_prev\"])",
         "g = cell_step_backward(dstate + dhs[t], caches[t])\n        dstate = g[\"h_prev\"]"),
        ("state = (zeros, zeros)                                  # every name starts afresh", "state = zeros"),
        ("z = (state[0] @ W.T + b)[0, EOS_ID:] / temperature", "z = (state @ W.T + b)[0, EOS_ID:] / temperature"),
    ]
    for old, new in edits:
        assert old in source, old
        source = source.replace(old, new)
    return source


SOURCES = {"lstm": solution_source("13_capstone"), "gru": gru_source()}


def run(spec, source, seed=0, **params):
    return check_source(f"capstone.{spec}", source, seed, **params)


@pytest.fixture(autouse=True)
def numpy_reads_tensors_afterwards():
    """Every test leaves numpy able to read tensors, as it found it."""
    yield
    assert np.allclose(np.asarray(torch.ones(2, dtype=torch.float64)), 1.0)


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


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_the_documented_cache_gives_rnnkit_step_and_gradients(cell):
    rng = np.random.default_rng(2)
    params, x, state = capstone._step_problem(rng, cell, 3, 4, 5)
    new_state, cache = capstone.reference_cache(cell, x, state, params)
    assert len(cache) == len(capstone.CACHE_FIELDS[cell])
    step = lstm_step_forward if cell == "lstm" else gru_step_forward
    want_state, rnnkit_cache = step(x, state, params)
    np.testing.assert_allclose(np.concatenate(new_state if cell == "lstm" else [new_state]),
                               np.concatenate(want_state if cell == "lstm" else [want_state]), rtol=1e-12)
    dstate = (rng.normal(size=(3, 5)), rng.normal(size=(3, 5))) if cell == "lstm" else rng.normal(size=(3, 5))
    want = (capstone._lstm_step_backward if cell == "lstm" else capstone._gru_step_backward)(dstate, rnnkit_cache)
    got = capstone.backward_reference(cell, dstate, cache)
    for key in capstone.GRAD_KEYS[cell]:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-10, atol=1e-12)


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


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_the_solution_passes_every_spec_with_either_cell(cell):
    for spec in capstone.SPECS:
        note = run(spec, SOURCES[cell])
        assert "correct" in note or note.endswith("give the numpy results"), note
        if spec in ("step_forward", "step_backward", "lm_loss", "train_step"):
            assert f"({cell}," in note, note


@pytest.mark.parametrize("cell, old, new", [
    ("lstm", 'a = x @ params["weight_ih"].T + params["bias_ih"] + h_prev @ params["weight_hh"].T + params["bias_hh"]',
     'a = x @ params["weight_ih"].T + h_prev @ params["weight_hh"].T'),
    ("gru", 'xw = x @ params["weight_ih"].T + params["bias_ih"]', 'xw = x @ params["weight_ih"].T'),
])
def test_a_wrong_forward_step_keeps_the_backward_points(cell, old, new):
    """The backward check feeds the checker's cache, never the student's forward: a forward step that
    forgets a bias fails its own check, and a correct backward step still passes."""
    wrong = SOURCES[cell].replace(old, new, 1)
    assert wrong != SOURCES[cell]
    with pytest.raises(CheckFailure, match="differs from the expected value"):
        run("step_forward", wrong)
    assert run("step_backward", wrong).startswith(f"cell_step_backward: correct ({cell}")


def test_a_cache_in_another_format_is_explained():
    source = SOURCES["lstm"].replace("(x, h_prev, c_prev, i, f, g, o, c, tanh_c, params)",
                                     "(x, h_prev, c_prev, i, f, g, o, tanh_c, params)", 1)
    source = source.replace("x, h_prev, c_prev, i, f, g, o, _c, tanh_c, params = cache",
                            "x, h_prev, c_prev, i, f, g, o, tanh_c, params = cache", 1)
    with pytest.raises(CheckFailure, match=r"the cache should be the tuple \(x, h_prev, c_prev, i, f, g, o, c, "
                                           r"tanh_c, params\) that section 1 describes"):
        run("step_forward", source)
    with pytest.raises(CheckFailure, match=r"ValueError.*Its cache is the tuple \(x, h_prev, c_prev, i, f, g, o, c, "
                                           r"tanh_c, params\) of section 1"):
        run("step_backward", source)


@pytest.mark.parametrize("cell, old, new, phrase", [
    ("lstm", "dc = dc + dh * o * (1 - tanh_c * tanh_c)", "dc = dc", "c_t reaches the loss along two paths"),
    ("lstm", "dc = dc + dh * o * (1 - tanh_c * tanh_c)", "dc = dc + dh * o * (1 - _c * _c)",
     r"1 − tanh²\(c_t\), not 1 − c_t²"),
    ("gru", '"h_prev": dh * z + dhw @ params["weight_hh"]', '"h_prev": dhw @ params["weight_hh"]',
     "the direct path is missing"),
    ("gru", "dhw = xp.concat([da_r, da_z, da_n * r], axis=1)", "dhw = xp.concat([da_r, da_z, da_n], axis=1)",
     "r ⊙ da_n, not da_n"),
])
def test_backward_mistakes_are_named(cell, old, new, phrase):
    assert old in SOURCES[cell]
    with pytest.raises(CheckFailure, match=phrase):
        run("step_backward", SOURCES[cell].replace(old, new, 1))


def test_forward_mistakes_are_named():
    swapped = SOURCES["lstm"].replace("g, o = xp.tanh(a[:, 2 * H:3 * H]), sigmoid(xp, a[:, 3 * H:])",
                                      "o, g = sigmoid(xp, a[:, 2 * H:3 * H]), xp.tanh(a[:, 3 * H:])", 1)
    assert swapped != SOURCES["lstm"]
    with pytest.raises(CheckFailure, match="the gate blocks are in the order i, f, o, g"):
        run("step_forward", swapped)
    z_swapped = SOURCES["gru"].replace("return (1 - z) * n + z * h_prev,", "return z * n + (1 - z) * h_prev,", 1)
    with pytest.raises(CheckFailure, match="z weighs the candidate"):
        run("step_forward", z_swapped)


@pytest.mark.parametrize("old, new, spec, phrase", [
    ("m_hat = m / (1 - beta1 ** t)\n        v_hat = v / (1 - beta2 ** t)", "m_hat = m\n        v_hat = v",
     "adam", "the bias correction is missing"),
    ("grads, _ = clip_grad_norm(grads, max_norm)\n    adam_update(params, grads, state, lr)",
     "adam_update(params, grads, state, lr)\n    grads, _ = clip_grad_norm(grads, max_norm)",
     "train_step", "clip first, then update"),
    ("g, o = xp.tanh(a[:, 2 * H:3 * H])", "g, o = np.tanh(a[:, 2 * H:3 * H])", "torch_backend",
     "a numpy function was given a torch tensor"),
    ("zeros = xp.zeros((B, H), dtype=W.dtype, device=device_of(W))", "zeros = np.zeros((B, H))",
     "torch_backend", "a numpy array met a torch tensor"),
    ("state, cache = cell_step_forward(x[t], state, cell)",
     "state, cache = cell_step_forward(x[t], (zeros, zeros), cell)", "lm_loss", "not carried from step to step"),
])
def test_typical_mistakes_are_named(old, new, spec, phrase):
    source = SOURCES["lstm"]
    assert old in source
    with pytest.raises(CheckFailure, match=phrase):
        run(spec, source.replace(old, new))


def test_a_composite_names_its_wrong_part():
    """train_step on a wrong adam_update: the message says to fix adam_update first."""
    wrong = SOURCES["lstm"].replace("params[name] = params[name] - lr", "params[name] = params[name] + lr", 1)
    with pytest.raises(CheckFailure, match="train_step uses your adam_update, which does not pass its own check "
                                           "yet; fix it first: after step 1: .*moved up the gradient"):
        run("train_step", wrong)


def test_an_unknown_cell_is_reported():
    source = SOURCES["lstm"].replace('CELL = "lstm"', 'CELL = "rnn"')
    with pytest.raises(CheckFailure, match='set CELL = "lstm" or CELL = "gru"'):
        run("step_forward", source)


def test_an_honest_variant_written_differently_passes():
    """A lambda for the sigmoid, a constant built with a call, and gates cut with a helper."""
    source = SOURCES["lstm"].replace(
        "def sigmoid(xp, a):\n    return 1 / (1 + xp.exp(-a))",
        "sigmoid = lambda xp, a: 1 / (1 + xp.exp(-a))\nBLOCKS = dict(i=0, f=1, g=2, o=3)\n"
        "block = lambda a, name, H: a[:, BLOCKS[name] * H:(BLOCKS[name] + 1) * H]", 1)
    source = source.replace("i, f = sigmoid(xp, a[:, :H]), sigmoid(xp, a[:, H:2 * H])",
                            "i, f = sigmoid(xp, block(a, 'i', H)), sigmoid(xp, block(a, 'f', H))", 1)
    assert "BLOCKS" in source and "block(a, 'i', H)" in source
    for spec in ("step_forward", "step_backward", "lm_loss", "sample", "torch_backend"):
        run(spec, source)


def test_tensors_cross_the_wire_as_tensors():
    """A tensor sent to the student's side arrives as a tensor, and comes back as one."""
    from course.session import LoopbackChannel
    from course.student import Student

    student = Student(LoopbackChannel({"__name__": "__main__", "double": lambda t: (t * 2, type(t).__name__)}))
    out, kind = student.function("double")(torch.arange(3, dtype=torch.float64))
    assert kind == "Tensor"
    assert isinstance(out, torch.Tensor) and out.tolist() == [0.0, 2.0, 4.0]
