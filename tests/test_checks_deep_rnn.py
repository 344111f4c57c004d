"""Spec-level tests of rnnkit.checks.deep_rnn (exercise 9): the layer-by-layer reference that builds the
mistakes agrees with rnnkit's stacked modules, the solution passes, and typical mistakes are named."""
from __future__ import annotations

import json

import numpy as np
import pytest

from nbgrader_course import ROOT
from rnnkit.checks import CheckFailure, check
from rnnkit.checks import deep_rnn
from rnnkit.checks.core import CELL_BREAK


def solution_source(assignment="09_deep_rnn"):
    """The code cells of the solution notebook, as the check collects them (test cells left out)."""
    nb = json.loads((ROOT / "solutions" / assignment / f"{assignment}.ipynb").read_text())
    cells = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    return CELL_BREAK.join(c for c in cells if "rnnkit.checks" not in c)


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


def test_the_solution_passes_every_spec():
    source = solution_source()
    for spec in ("forward", "backward", "head_forward", "head_backward", "model_loss"):
        check(f"deep_rnn.{spec}", source=source, seed=0, cases=[{}, {"cell": "gru"} if "head" not in spec
                                                                       else {"leading": [3]}])


@pytest.mark.parametrize("old, new, spec, phrase", [
    ("sequence_forward(cell, layer_input,", "sequence_forward(cell, x,", "forward",
     "reads the outputs of the layer below, not x"),
    ("np.stack(finals)", "np.stack(finals[::-1])", "forward", "h_n lists the top layer first"),
    ("d_hs = dx                          # gradient of the outputs of the layer below", "d_hs = None",
     "backward", "got no gradient through their outputs"),
    ("rows(dy).T @ rows(a)", "dy[-1].T @ a[-1]", "head_backward", "only the last step was summed"),
])
def test_typical_mistakes_are_named(old, new, spec, phrase):
    source = solution_source()
    assert old in source
    with pytest.raises(CheckFailure, match=phrase):
        check(f"deep_rnn.{spec}", source=source.replace(old, new), seed=0,
              cases=[{"input_size": 4, "hidden_size": 4}] if spec == "forward" else None)


def test_the_model_blames_the_broken_part():
    source = solution_source().replace("dz = (dy @ W1) * (1 - a * a)", "dz = dy @ W1")
    with pytest.raises(CheckFailure, match="built from your mlp_head_backward"):
        check("deep_rnn.model_loss", source=source, seed=0)


def test_using_the_stacked_module_is_refused():
    source = solution_source() + CELL_BREAK + "from rnnkit.modules import RNN\n"
    with pytest.raises(CheckFailure, match="write that part yourself"):
        check("deep_rnn.forward", source=source, seed=0)
