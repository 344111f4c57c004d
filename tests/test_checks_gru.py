"""The checks of exercise 6 (GRU): the numpy variants behind the feedback reproduce rnnkit when no
mistake is switched on, every known mistake is distinguishable from the right answer, the checks
name the mistake in a student's code, and the backward check does not depend on the forward pass."""
from __future__ import annotations

import re

import numpy as np
import pytest
from course_helpers import check_source
from test_checks_deep_rnn import solution_source

from course.checks import gru as spec
from course.checks.gated import describe, negate_block, random_params
from course.sandbox import SiteLayout
from course.verdict import CheckFailure
from rnnkit.cells import gru_simple_step_forward, gru_step_backward, gru_step_forward


@pytest.fixture(scope="module")
def source():
    return solution_source("06_gru", answers_only=True)


def run(name, source, seed=0, **params):
    return check_source(f"gru.{name}", source, seed, **params)


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


def test_the_documented_cache_holds_rnnkit_values(inputs):
    x, h_prev, params, _ = inputs
    cx, ch, r, z, n, hn, cp = spec.forward_cache(x, h_prev, params)
    assert cx is x and ch is h_prev and cp is params
    H = h_prev.shape[1]
    np.testing.assert_allclose(hn, h_prev @ params["weight_hh"][2 * H:].T + params["bias_hh"][2 * H:])
    np.testing.assert_allclose((1 - z) * n + z * h_prev, gru_step_forward(x, h_prev, params)[0], rtol=1e-12)


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
    assert "def gru_step_backward" in source and "grad_check(" not in source
    for name in ("simple_forward", "forward", "backward"):
        run(name, source, batch=2, input_size=3, hidden=4)
    run("update_convention", source, bias=False)
    assert run("backward", source, seed=None) == "gru_step_backward: all six gradients correct (B=3, I=4, H=5)"


def test_a_typical_mistake_is_named(source):
    wrong = source.replace("h = (1 - z) * n + z * h_prev", "h = z * n + (1 - z) * h_prev")
    assert wrong != source
    with pytest.raises(CheckFailure, match="z and 1 − z are swapped"):
        run("forward", wrong)
    no_sigmoid = source.replace("da_z = dz * z * (1 - z)", "da_z = dz")
    with pytest.raises(CheckFailure, match="derivative of σ is missing at the update gate"):
        run("backward", no_sigmoid)


def test_a_wrong_forward_does_not_fail_a_right_backward(source):
    """The backward check builds the documented cache itself: the forward pass plays no part."""
    broken = source.replace("n = np.tanh(xw[:, 2 * H:] + r * hn)", "n = sigmoid(xw[:, 2 * H:] + r * hn)")
    assert broken != source
    with pytest.raises(CheckFailure, match="the candidate n uses σ"):
        run("forward", broken)
    run("backward", broken, cases=[{"batch": 1, "hidden": 1}, {"zero_state": True}])
    no_forward = source.replace("def gru_step_forward(", "def renamed_gru_step_forward(")
    run("backward", no_forward)


def test_reading_another_cache_format_names_the_documented_one(source):
    reordered = source.replace("x, h_prev, r, z, n, hn, params = cache", "x, h_prev, z, r, n, hn, params = cache")
    wrong_length = source.replace("x, h_prev, r, z, n, hn, params = cache", "x, h_prev, r, z, n, params = cache")
    assert reordered != source and wrong_length != source
    with pytest.raises(CheckFailure, match=r"grads\['x'\] differs from the expected value: the first difference"):
        run("backward", reordered)
    with pytest.raises(CheckFailure, match=r"raised ValueError.*the cache in the format the notebook documents, "
                                           r"cache = \(x, h_prev, r, z, n, hn, params\)"):
        run("backward", wrong_length)


def test_a_failing_case_says_which_case(source):
    wrong = source.replace("value = value.copy()", "value = value")
    with pytest.raises(CheckFailure, match=r"\[case I=4, H=3, no biases\] convert_update_convention changed"):
        run("update_convention", wrong, cases=[{"input_size": 4, "hidden": 3, "bias": False}])
    assert describe({"batch": 1, "zero_state": True}) == "B=1, zero initial state"


def test_the_sandbox_holds_no_gru_step():
    """Graded, the notebook runs where rnnkit's cells are not installed; the helpers are."""
    entries = SiteLayout.for_policy(spec.POLICY).entries
    assert "rnnkit/gradcheck.py" in entries and "numpy" in entries
    assert not [e for e in entries if e.startswith(("rnnkit/cells", "rnnkit/sequence", "rnnkit/modules"))]


# ------------------------------------------------------------------ the GRU over a sequence

def _run(seed=5, T=4, B=3, I=2, H=5):
    from rnnkit.sequence import sequence_forward

    rng = np.random.default_rng(seed)
    params = random_params(rng, I, H, 3)
    x, h0 = rng.normal(size=(T, B, I)), rng.normal(size=(B, H))
    hs, _, cache = sequence_forward("gru", x, h0, params)
    return rng, params, x, h0, hs, cache


@pytest.mark.parametrize("dh_last", [True, False])
def test_the_bptt_variant_without_mistake_is_rnnkit(dh_last):
    from rnnkit.sequence import sequence_backward

    rng, params, x, h0, hs, cache = _run()
    dhs = rng.normal(size=hs.shape)
    dlast = rng.normal(size=h0.shape) if dh_last else None
    want = sequence_backward(dhs, dlast, cache)
    got = spec.bptt_reference(x, h0, hs, params, dhs, dlast)
    for key in spec.SEQUENCE_KEYS:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-10, atol=1e-12)
    right = got
    for flags in (dict(carry=False), dict(accumulate="first"), dict(accumulate="last"), dict(reverse_dx=True),
                  dict(h0_grad="first")):
        wrong = spec.bptt_reference(x, h0, hs, params, dhs, dlast, **flags)
        assert any(not np.allclose(wrong[k], right[k]) for k in spec.SEQUENCE_KEYS), flags


def test_the_documented_caches_are_the_steps_of_the_run():
    _, params, x, h0, hs, _ = _run()
    caches = spec.sequence_caches(x, h0, hs, params)
    assert len(caches) == len(x) and caches[0][1] is h0
    for t, cache in enumerate(caches):
        np.testing.assert_allclose(cache[1], h0 if t == 0 else hs[t - 1])
        h_prev, z, n = cache[1], cache[3], cache[4]
        np.testing.assert_allclose((1 - z) * n + z * h_prev, hs[t], rtol=1e-12)


def test_the_sequence_solution_passes(source):
    assert "def gru_backward" in source
    run("sequence_forward", source, T=1, batch=1, input_size=2, hidden=3)
    run("sequence_forward", source, seed=None, zero_state=True)
    run("sequence_backward", source, T=1, batch=2, d_h_n=False)
    assert run("sequence_backward", source, seed=None, scale=3.0) == (
        "gru_backward: all six gradients correct (with dh_last, T=4, B=3, I=2, H=5)")


@pytest.mark.parametrize("name, old, new, message", [
    ("sequence_forward", "h, cache = gru_step_forward(x[t], h, params)",
     "h, cache = gru_step_forward(x[t], h0, params)", "every step starts from h0"),
    ("sequence_forward", "        hs.append(h)\n", "        hs.append(cache[1])\n", "holds the state before it"),
    ("sequence_forward", "return np.stack(hs), h, caches", "return np.stack(hs), h, caches[::-1]",
     "caches[0] entry 'x' differs"),
    ("sequence_forward", "return np.stack(hs), h, caches", "return np.stack(hs), h, caches[0]",
     "caches should be a list of the T = 4 step caches"),
    ("sequence_forward", "h = (1 - z) * n + z * h_prev", "h = z * n + (1 - z) * h_prev",
     "gru_forward uses your gru_step_forward, which does not pass its own check yet"),
    ("sequence_backward", "step = gru_step_backward(dhs[t] + dh_next, caches[t])",
     "step = gru_step_backward(dhs[t], caches[t])", "the gradient from step t+1 is not added"),
    ("sequence_backward", "grads[name] += step[name]", "grads[name] = step[name]",
     "only the first step's gradient is in it"),
    ("sequence_backward", "dxs[t] = step[\"x\"]", "dxs[len(caches) - 1 - t] = step[\"x\"]",
     "reverse time order"),
    ("sequence_backward", "dh_next = np.zeros_like(dhs[0]) if dh_last is None else dh_last",
     "dh_next = np.zeros_like(dhs[0])", "dh_last was not used"),
    ("sequence_backward", "    grads[\"h0\"] = dh_next\n", "    grads[\"h0\"] = dhs[0] + dh_next * 0\n",
     "grads['h0'] differs"),
    ("sequence_backward", "da_z = dz * z * (1 - z)", "da_z = dz",
     "gru_backward uses your gru_step_backward, which does not pass its own check yet"),
])
def test_sequence_mistakes_are_named(source, name, old, new, message):
    wrong = source.replace(old, new, 1)
    assert wrong != source, old
    with pytest.raises(CheckFailure, match=re.escape(message)):
        run(name, wrong)


def test_a_wrong_sequence_forward_does_not_fail_a_right_backward(source):
    """gru_backward gets the checker's caches: the student's forward passes play no part."""
    broken = source.replace("h, cache = gru_step_forward(x[t], h, params)",
                            "h, cache = gru_step_forward(x[t], h0, params)")
    broken = broken.replace("n = np.tanh(xw[:, 2 * H:] + r * hn)", "n = sigmoid(xw[:, 2 * H:] + r * hn)")
    with pytest.raises(CheckFailure):
        run("sequence_forward", broken)
    run("sequence_backward", broken)


def test_reading_other_caches_names_the_documented_format(source):
    wrong = source.replace("params = caches[0][-1]", "params = caches[\"params\"]")
    with pytest.raises(CheckFailure, match=re.escape("caches = the list of the T step caches")):
        run("sequence_backward", wrong)
