"""The checks of exercise 9 (deep RNNs): the layer-by-layer reference that builds the mistakes agrees
with rnnkit's stacked modules, the solution passes, typical mistakes are named, and the backward
checks (stack and head) do not depend on the forward passes."""
from __future__ import annotations

import json

import numpy as np
import pytest
from course_helpers import ROOT, check_source

from course.checks import deep_rnn
from course.sandbox import SiteLayout
from course.verdict import CheckFailure

CELL_BREAK = "\n# ---- next cell ----\n"


def solution_source(assignment="09_deep_rnn", answers_only=False):
    """The code cells of a solution notebook without its test cells, joined by ``CELL_BREAK``.
    ``answers_only``: only the cells before the first answer cell (imports, helpers) and the answer
    cells themselves, not the demonstrations after them. (test_checks_seq2seq and
    test_checks_capstone use it too.)"""
    nb = json.loads((ROOT / "solutions" / assignment / f"{assignment}.ipynb").read_text())
    cells, answered = [], False
    for cell in nb["cells"]:
        meta = (cell.get("metadata") or {}).get("nbgrader") or {}
        text = "".join(cell["source"])
        if cell["cell_type"] != "code" or (meta.get("grade") and not meta.get("solution")):
            continue
        if "from course import check" in text:
            continue
        answered = answered or bool(meta.get("solution"))
        if answers_only and answered and not meta.get("solution"):
            continue
        cells.append(text)
    return CELL_BREAK.join(cells)


@pytest.fixture(scope="module")
def source():
    return solution_source("09_deep_rnn", answers_only=True)


def run(name, source, seed=0, **params):
    return check_source(f"deep_rnn.{name}", source, seed, **params)


@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_layer_by_layer_reference_equals_the_stacked_module(cell):
    rng = np.random.default_rng(0)
    T, B, I, H, L = 5, 3, 2, 4, 3
    params = deep_rnn.random_stack_params(rng, cell, L, I, H)
    x, h0 = rng.normal(size=(T, B, I)), rng.normal(size=(L, B, H))
    module = deep_rnn.reference_module(cell, params, I, H, L)
    out, h_n = module(x, h0)
    out2, h_n2, caches, _ = deep_rnn.stack_forward(x, h0, params, cell)
    np.testing.assert_allclose(out2, out, rtol=1e-12)
    np.testing.assert_allclose(h_n2, h_n, rtol=1e-12)
    d_out, d_hn = rng.normal(size=out.shape), rng.normal(size=h_n.shape)
    dx, dh0 = module.backward(d_out, d_hn)
    dx2, dh02, grads = deep_rnn.stack_backward(d_out, d_hn, caches)
    np.testing.assert_allclose(dx2, dx, rtol=1e-10)
    np.testing.assert_allclose(dh02, dh0, rtol=1e-10)
    for name, g in module.grads.items():
        np.testing.assert_allclose(grads[name], g, rtol=1e-10, atol=1e-12)


def test_the_documented_head_cache_holds_the_reference_values():
    rng = np.random.default_rng(1)
    params = deep_rnn.random_head_params(rng, 3, 4, 2)
    h = rng.normal(size=(5, 2, 3))
    cached_h, a, W0, W1 = deep_rnn.head_cache(h, params)
    assert cached_h is h and W0 is params["layers.0.weight"] and W1 is params["layers.2.weight"]
    head = deep_rnn._reference_head(params, [3, 4, 2])
    np.testing.assert_allclose(a @ W1.T + params["layers.2.bias"], head(h), rtol=1e-12)


def test_the_solution_passes_every_spec(source):
    for spec in ("forward", "backward", "head_forward", "head_backward", "model_loss"):
        run(spec, source, cases=[{}, {"cell": "gru"} if "head" not in spec else {"leading": [3]}])
    assert run("backward", source, d_h_n=False) == ("deep_rnn_backward: correct (rnn, L=2, T=5, B=2, I=3, H=4, "
                                                    "d_h_n=None)")


@pytest.mark.parametrize("old, new, spec, phrase", [
    ("sequence_forward(cell, layer_input,", "sequence_forward(cell, x,", "forward",
     "reads the outputs of the layer below, not x"),
    ("np.stack(finals)", "np.stack(finals[::-1])", "forward", "h_n lists the top layer first"),
    ("d_hs = dx                          # gradient of the outputs of the layer below", "d_hs = None",
     "backward", "got no gradient through their outputs"),
    ("rows(dy).T @ rows(a)", "dy[-1].T @ a[-1]", "head_backward", "only the last step was summed"),
    ('"layers.0.bias": rows(dz).sum(axis=0)', '"layers.0.bias": dz.sum(axis=0)', "head_backward",
     r"grads\['layers.0.bias'\] has shape \(3, 6\), expected \(6,\): a gradient has the shape of its parameter"),
    ("rows(dz).T @ rows(h)", "dz.T @ h", "head_backward", r"mlp_head_backward raised ValueError: matmul: .*\)$"),
])
def test_typical_mistakes_are_named(source, old, new, spec, phrase):
    assert old in source
    with pytest.raises(CheckFailure, match=phrase):
        run(spec, source.replace(old, new), cases=[{"input_size": 4, "hidden_size": 4}] if spec == "forward" else None)


@pytest.mark.parametrize("old, new", [
    ("np.stack(finals)", "np.stack(finals[::-1])"),            # h_n top-first
    ("layer_input = hs                   #", "layer_input = hs[-1:]              #"),
    ("return hs, np.stack(finals), caches", "return hs, np.stack(finals), caches[::-1]"),  # cache top-first
])
def test_a_wrong_forward_does_not_fail_a_right_backward(source, old, new):
    """The backward check builds the documented cache itself, on the student's side: the forward
    pass plays no part."""
    broken = source.replace(old, new)
    assert broken != source
    if "caches[::-1]" not in new:
        with pytest.raises(CheckFailure):
            run("forward", broken)
    run("backward", broken, cases=[{}, {"cell": "gru", "num_layers": 3, "d_h_n": False}, {"T": 1, "batch": 1}])


def test_a_wrong_head_forward_does_not_fail_a_right_head_backward(source):
    broken = source.replace("a = np.tanh(h @ W0.T + b0)", "a = np.maximum(h @ W0.T + b0, 0)")
    assert broken != source
    with pytest.raises(CheckFailure, match="a ReLU was used"):
        run("head_forward", broken)
    run("head_backward", broken, cases=[{}, {"leading": [3]}, {"leading": [1, 1]}])


def test_the_stack_cache_is_the_list_of_rnnkit_layer_caches(source):
    strict = source.replace("    L = len(cache)\n",
                            "    from rnnkit.sequence import SequenceCache\n"
                            "    assert type(cache) is list and all(type(c) is SequenceCache for c in cache), cache\n"
                            "    assert [c.shape[1:] for c in cache] == [(2, 3), (2, 4)]\n"
                            "    L = len(cache)\n")
    assert strict != source
    run("backward", strict)


def test_reading_another_cache_format_names_the_documented_one(source):
    own_format = source.replace("L = len(cache)", "caches, cell = cache\n    L = len(caches)")
    with pytest.raises(CheckFailure, match=r"deep_rnn_backward raised ValueError.*the notebook documents, cache = "
                                           r"\[cache_0, \.\.\., cache_\{L-1\}\]"):
        run("backward", own_format, num_layers=3)


def test_the_model_blames_the_broken_part(source):
    broken = source.replace("dz = (dy @ W1) * (1 - a * a)", "dz = dy @ W1")
    with pytest.raises(CheckFailure, match="deep_model_loss uses your mlp_head_backward, which does not pass its "
                                           "own check yet; fix it first: dh is wrong: the tanh derivative is missing"):
        run("model_loss", broken)


def test_the_sandbox_holds_one_layer_but_not_the_stacked_module():
    entries = SiteLayout.for_policy(deep_rnn.POLICY).entries
    assert {"rnnkit/sequence.py", "rnnkit/cells/gru.py", "rnnkit/data.py", "threadpoolctl.py"} <= set(entries)
    assert not [e for e in entries if e.startswith(("rnnkit/modules", "rnnkit/heads", "rnnkit/models", "torch"))]
