"""The checks of exercise 7 (LSTM): the numpy step behind the feedback reproduces rnnkit (with and
without peepholes) when no mistake is switched on, every known mistake is distinguishable from the
right answer, and the checks name the mistake in a student's code."""
from __future__ import annotations

import numpy as np
import pytest
from test_checks_gru import solution_source

from rnnkit.cells import lstm_step_backward, lstm_step_forward
from rnnkit.checks import CheckFailure, check
from rnnkit.checks import lstm as spec
from rnnkit.checks._cells import random_params


@pytest.fixture(scope="module")
def source():
    return solution_source("07_lstm")


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
        check(f"lstm.{name}", source=source, batch=2, input_size=3, hidden=4, seed=1)


def test_typical_mistakes_are_named(source):
    forget_new = source.replace("c = f * c_prev + i * g\n    tanh_c", "c = i * g\n    c = c + f * c\n    tanh_c", 1)
    assert forget_new != source
    with pytest.raises(CheckFailure, match="your forget gate multiplies c_t"):
        check("lstm.forward", source=forget_new, seed=0)
    no_h_path = source.replace("dc = dc + dh * o * (1 - tanh_c ** 2)          #", "dc = dc  #", 1)
    with pytest.raises(CheckFailure, match="dc misses the path through h"):
        check("lstm.backward", source=no_h_path, seed=0)
    # only dc = 0: the path through h is then the whole gradient of c_t
    with pytest.raises(CheckFailure, match=r"\[case dc = 0\]"):
        check("lstm.backward", source=no_h_path, cases=[{"zero_dc": True}])


def test_the_library_step_is_refused(source):
    with pytest.raises(CheckFailure, match="write that part yourself"):
        check("lstm.peephole_forward", source=source + "\nimport rnnkit.cells.lstm as L\n", seed=0)
