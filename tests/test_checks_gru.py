"""The checks of exercise 6 (GRU): the numpy variants behind the feedback reproduce rnnkit when no
mistake is switched on, every known mistake is distinguishable from the right answer, and the checks
name the mistake in a student's code."""
from __future__ import annotations

import nbformat
import numpy as np
import pytest

from rnnkit.cells import gru_simple_step_forward, gru_step_backward, gru_step_forward
from rnnkit.checks import CheckFailure, check
from rnnkit.checks import gru as spec
from rnnkit.checks._cells import describe, negate_block, random_params
from rnnkit.checks.core import CELL_BREAK, definitions

from nbgrader_course import ROOT


def solution_source(assignment):
    """The code cells of a solution notebook (without its test cells), as a student kernel has them."""
    nb = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", 4)
    return CELL_BREAK.join(c.source for c in nb.cells if c.cell_type == "code" and "rnnkit.checks" not in c.source)


@pytest.fixture(scope="module")
def source():
    return solution_source("06_gru")


@pytest.fixture
def inputs():
    rng = np.random.default_rng(3)
    return rng.normal(size=(3, 4)), rng.normal(size=(3, 5)), random_params(rng, 4, 5, 3), rng.normal(size=(3, 5))


def test_the_backward_variant_without_mistake_is_rnnkit(inputs):
    x, h_prev, params, dh = inputs
    _, cache = gru_step_forward(x, h_prev, params)
    want = gru_step_backward(dh, cache)
    got = spec.backward_reference(x, h_prev, params, dh)
    for key in spec.GRAD_KEYS:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-12, atol=1e-12)


def test_every_known_mistake_changes_the_answer(inputs):
    x, h_prev, params, dh = inputs
    want_h = gru_step_forward(x, h_prev, params)[0]
    for message, wrong in spec._forward_mistakes(x, h_prev, params).items():
        assert not np.allclose(wrong, want_h), message
    p2 = random_params(np.random.default_rng(4), 4, 5, 2)
    want_c = gru_simple_step_forward(x, h_prev, p2)[0]
    for message, wrong in spec._simple_mistakes(x, h_prev, p2).items():
        assert not np.allclose(wrong, want_c), message
    right = spec.backward_reference(x, h_prev, params, dh)
    for key in spec.BACKWARD_MISTAKES:
        wrong = spec.backward_reference(x, h_prev, params, dh, key)
        assert any(not np.allclose(wrong[k], right[k]) for k in spec.GRAD_KEYS), key


def test_the_update_conventions_are_one_model(inputs):
    x, h_prev, params, _ = inputs
    converted = negate_block(params, 1, 5)
    np.testing.assert_allclose(gru_step_forward(x, h_prev, converted)[0],
                               gru_step_forward(x, h_prev, params, update_weighs="candidate")[0], rtol=1e-12)


def test_the_solution_passes(source):
    defs = definitions(source)
    assert "def gru_step_backward" in defs and "grad_check(" not in defs
    for name in ("simple_forward", "forward", "backward"):
        check(f"gru.{name}", source=source, batch=2, input_size=3, hidden=4, seed=0)
    check("gru.update_convention", source=source, bias=False, seed=0)


def test_a_typical_mistake_is_named(source):
    wrong = source.replace("h = (1 - z) * n + z * h_prev", "h = z * n + (1 - z) * h_prev")
    assert wrong != source
    with pytest.raises(CheckFailure, match="z and 1 − z are swapped"):
        check("gru.forward", source=wrong, seed=0)
    with pytest.raises(CheckFailure, match="fix the forward pass first"):
        check("gru.backward", source=wrong, seed=0)


def test_a_failing_case_says_which_case(source):
    wrong = source.replace("value = value.copy()", "value = value")
    with pytest.raises(CheckFailure, match=r"\[case I=4, H=3, no biases\] convert_update_convention changed"):
        check("gru.update_convention", source=wrong, cases=[{"input_size": 4, "hidden": 3, "bias": False}])
    assert describe({"batch": 1, "zero_state": True}) == "B=1, zero initial state"


def test_the_library_step_is_refused(source):
    cheat = source + CELL_BREAK + "from rnnkit.cells import gru_step_forward\n"
    with pytest.raises(CheckFailure, match="write that part yourself"):
        check("gru.forward", source=cheat, seed=0)
