"""The checks of exercise 7 (LSTM): the numpy step behind the feedback reproduces rnnkit (with and
without peepholes) when no mistake is switched on, every known mistake is distinguishable from the
right answer, the checks name the mistake in a student's code, and the backward checks do not
depend on the forward passes."""
from __future__ import annotations

import numpy as np
import pytest
from course_helpers import check_source
from test_checks_deep_rnn import solution_source

from course.checks import lstm as spec
from course.checks.gated import random_params
from course.sandbox import SiteLayout
from course.verdict import CheckFailure
from rnnkit.cells import lstm_step_backward, lstm_step_forward


@pytest.fixture(scope="module")
def source():
    return solution_source("07_lstm", answers_only=True)


def run(name, source, seed=0, **params):
    return check_source(f"lstm.{name}", source, seed, **params)


def _inputs(peephole, seed=5):
    rng = np.random.default_rng(seed)
    params = random_params(rng, 4, 5, 4, extra=spec.PEEPHOLES if peephole else ())
    x, h, c = rng.normal(size=(3, 4)), rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
    dh, dc = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
    return x, h, c, params, dh, dc


@pytest.mark.parametrize("peephole", [False, True])
def test_the_numpy_step_without_mistake_is_rnnkit(peephole):
    x, h, c, params, dh, dc = _inputs(peephole)
    (want_h, want_c), cache = lstm_step_forward(x, (h, c), params, peephole=peephole)
    got_h, got_c, _ = spec.step_reference(x, h, c, params, peephole)
    np.testing.assert_allclose(got_h, want_h, rtol=1e-12)
    np.testing.assert_allclose(got_c, want_c, rtol=1e-12)
    want = lstm_step_backward((dh, dc), cache)
    got = spec.backward_reference(x, h, c, params, dh, dc, peephole)
    assert set(got) == set(want)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("peephole", [False, True])
def test_the_documented_cache_holds_rnnkit_values(peephole):
    x, h, c, params, _, _ = _inputs(peephole)
    (want_h, want_c), _ = lstm_step_forward(x, (h, c), params, peephole=peephole)
    cx, ch, cc, i, f, g, o, c_new, tanh_c, cp = spec.forward_cache(x, h, c, params, peephole)
    assert cx is x and ch is h and cc is c and cp is params
    np.testing.assert_allclose(c_new, want_c, rtol=1e-12)
    np.testing.assert_allclose(f * c + i * g, want_c, rtol=1e-12)
    np.testing.assert_allclose(o * tanh_c, want_h, rtol=1e-12)
    np.testing.assert_allclose(tanh_c, np.tanh(c_new))


@pytest.mark.parametrize("peephole", [False, True])
def test_every_known_mistake_changes_the_answer(peephole):
    x, h, c, params, dh, dc = _inputs(peephole)
    (want_h, want_c), _ = lstm_step_forward(x, (h, c), params, peephole=peephole)
    for message, (wrong_h, wrong_c) in spec._forward_variants(x, h, c, params, peephole).items():
        assert not (np.allclose(wrong_h, want_h) and np.allclose(wrong_c, want_c)), message
    right = spec.backward_reference(x, h, c, params, dh, dc, peephole)
    table = {**spec.BACKWARD_MISTAKES, **(spec.PEEPHOLE_BACKWARD_MISTAKES if peephole else {})}
    for key in table:
        wrong = spec.backward_reference(x, h, c, params, dh, dc, peephole, key)
        assert any(np.shape(wrong[k]) != np.shape(right[k]) or not np.allclose(wrong[k], right[k])
                   for k in right), key


def test_the_solution_passes(source):
    for name in ("forward", "backward", "peephole_forward", "peephole_backward"):
        run(name, source, batch=2, input_size=3, hidden=4, seed=1)
    assert run("peephole_backward", source) == ("lstm_peephole_step_backward: all 10 gradients correct "
                                                "(B=3, I=4, H=5)")


def test_typical_mistakes_are_named(source):
    forget_new = source.replace("c = f * c_prev + i * g\n    tanh_c", "c = i * g\n    c = c + f * c\n    tanh_c", 1)
    assert forget_new != source
    with pytest.raises(CheckFailure, match="your forget gate multiplies c_t"):
        run("forward", forget_new)
    no_h_path = source.replace("dc = dc + dh * o * (1 - tanh_c ** 2)          #", "dc = dc  #", 1)
    with pytest.raises(CheckFailure, match="dc misses the path through h"):
        run("backward", no_h_path)
    # only dc = 0: the path through h is then the whole gradient of c_t
    with pytest.raises(CheckFailure, match=r"\[case dc = 0\]"):
        run("backward", no_h_path, seed=None, cases=[{"zero_dc": True}])
    not_summed = source.replace('"weight_ci": (da_i * c_prev).sum(axis=0)', '"weight_ci": da_i * c_prev')
    with pytest.raises(CheckFailure, match="the peephole gradients are not summed over the batch"):
        run("peephole_backward", not_summed)


@pytest.mark.parametrize("peephole", [False, True])
def test_a_wrong_forward_does_not_fail_a_right_backward(source, peephole):
    """The backward checks build the documented cache themselves: the forward passes play no part."""
    broken = source.replace("h = o * tanh_c", "h = o * c")
    assert broken.count("h = o * c\n") == 2
    prefix = "peephole_" if peephole else ""
    with pytest.raises(CheckFailure, match="the cell state goes through tanh first"):
        run(f"{prefix}forward", broken)
    run(f"{prefix}backward", broken, cases=[{"batch": 1, "hidden": 1}, {"zero_dh": True}, {"scale": 3.0}])


def test_reading_another_cache_format_names_the_documented_one(source):
    short = source.replace("x, h_prev, c_prev, i, f, g, o, c, tanh_c, params = cache\n    do",
                           "x, h_prev, c_prev, i, f, g, o, c, params = cache\n    tanh_c = np.tanh(c)\n    do")
    assert short != source
    documented = r"cache = \(x, h_prev, c_prev, i, f, g, o, c, tanh_c, params\)"
    with pytest.raises(CheckFailure, match=r"lstm_step_backward raised ValueError: too many values to unpack .*"
                                           r"the notebook documents, " + documented):
        run("backward", short)


def test_the_sandbox_holds_no_lstm_step():
    """Graded, the notebook runs where rnnkit's cells are not installed; the helpers are."""
    entries = SiteLayout.for_policy(spec.POLICY).entries
    assert "rnnkit/gradcheck.py" in entries and "matplotlib" in entries
    assert not [e for e in entries if e.startswith(("rnnkit/cells", "rnnkit/sequence", "rnnkit/modules"))]
