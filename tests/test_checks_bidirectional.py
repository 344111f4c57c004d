"""The checks of exercise 8 (bidirectional RNNs): reversing within the lengths is what rnnkit's
reverse direction does, the reference is rnnkit's bidirectional RNN (forward and backward), the
documented caches are what the solution's forward passes return, the sandbox holds the vanilla step
but nothing that runs a sequence, the backward checks do not depend on the forward passes, and the
checks name the typical mistakes."""
from __future__ import annotations

import re

import numpy as np
import pytest
from course_helpers import check_source
from test_checks_deep_rnn import solution_source

from course.checks import bidirectional as spec
from course.checks.gated import random_params
from course.sandbox import SiteLayout
from course.verdict import CheckFailure
from rnnkit.sequence import sequence_forward
from rnnkit.sequence import lengths_to_mask


@pytest.fixture(scope="module")
def source():
    return solution_source("08_bidirectional", answers_only=True).replace("help(rnn_step_forward)", "")


def run(name, source, seed=0, **params):
    return check_source(f"bidirectional.{name}", source, seed, **params)


def test_reversing_within_lengths_is_its_own_inverse():
    rng = np.random.default_rng(0)
    x, lengths = rng.normal(size=(6, 4, 2)), np.array([6, 2, 1, 4])
    r = spec.reverse_reference(x, lengths)
    np.testing.assert_array_equal(spec.reverse_reference(r, lengths), x)
    np.testing.assert_array_equal(r[:2, 1], x[:2, 1][::-1])
    np.testing.assert_array_equal(r[2:, 1], x[2:, 1])
    np.testing.assert_array_equal(spec.reverse_reference(x, None), x[::-1])


@pytest.mark.parametrize("mode", spec.MODES)
def test_the_reference_is_the_wrapper_the_students_build(mode):
    """rnnkit's RNN(bidirectional=True) with lengths = forward run + run on the sequences reversed
    within their lengths, flipped back, merged."""
    rng = np.random.default_rng(1)
    T, B, I, H = 6, 4, 3, 5
    pf, pb = random_params(rng, I, H, 1), random_params(rng, I, H, 1)
    x, lengths = rng.normal(size=(T, B, I)), np.array([6, 3, 1, 5])
    mask = lengths_to_mask(lengths, T)
    hs_f, h_f, _ = sequence_forward("rnn", x, None, pf, mask=mask)
    hs_r, h_b, _ = sequence_forward("rnn", spec.reverse_reference(x, lengths), None, pb, mask=mask)
    out, h_n = spec._module_reference(x, pf, pb, mode, lengths)
    np.testing.assert_allclose(out, spec.merge_reference(hs_f, spec.reverse_reference(hs_r, lengths), mode),
                               rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h_n, np.stack([h_f, h_b]), rtol=1e-12)


def test_the_solution_passes(source):
    assert "from rnnkit.cells.rnn import rnn_step_backward, rnn_step_forward" in source
    run("reverse_within_lengths", source)
    run("rnn_forward", source)
    run("merge", source, unknown=True)
    for mode in spec.MODES:
        run("bidirectional_forward", source, mode=mode)
    with_package_import = source.replace("from rnnkit.cells.rnn import rnn_step_backward, rnn_step_forward",
                                         "from rnnkit.cells import rnn_step_backward, rnn_step_forward")
    run("rnn_forward", with_package_import)


def test_the_sandbox_holds_the_vanilla_step_but_no_sequence_runner():
    entries = SiteLayout.for_policy(spec.POLICY).entries
    assert {"rnnkit/cells/rnn.py", "rnnkit/cells/__init__.py", "rnnkit/backend.py", "array_api_compat"} <= set(entries)
    assert not [e for e in entries if e.startswith(("rnnkit/sequence", "rnnkit/modules", "rnnkit/models",
                                                    "rnnkit/text", "torch"))]


def test_typical_mistakes_are_named(source):
    not_flipped = source.replace("hs_b = reverse_within_lengths(hs_b_rev, lengths)", "hs_b = hs_b_rev")
    with pytest.raises(CheckFailure, match="outputs are not reversed back"):
        run("bidirectional_forward", not_flipped)
    whole = source.replace("x_rev = reverse_within_lengths(x, lengths)", "x_rev = x[::-1]").replace(
        "hs_b = reverse_within_lengths(hs_b_rev, lengths)", "hs_b = hs_b_rev[::-1]")
    with pytest.raises(CheckFailure, match="reversed the padded array as a whole"):
        run("bidirectional_forward", whole)


@pytest.mark.parametrize("answer, message", [
    ("return None", r"returned a value; an unknown mode should raise ValueError"),
    ("raise KeyError(mode)",
     r"raised KeyError: 'max' \(in cell 1, line \d+\); an unknown mode should raise ValueError"),
    ("raise NotImplementedError", r"^\[failed\] merge\(h_fwd, h_bwd, 'max'\) is not implemented yet"),
])
def test_an_unknown_mode_must_raise_value_error(source, answer, message):
    raising = '    raise ValueError(f"mode must be'
    lenient = source.replace(raising, f"    {answer}\n" + raising)
    assert lenient != source
    run("merge", lenient)
    with pytest.raises(CheckFailure, match=message):
        run("merge", lenient, unknown=True)


def test_a_wrong_part_is_named_when_the_layer_fails(source):
    backward_first = source.replace("return np.concatenate([h_fwd, h_bwd], axis=-1)",
                                    "return np.concatenate([h_bwd, h_fwd], axis=-1)")
    with pytest.raises(CheckFailure, match=r"the backward states come first.*bidirectional_forward uses your merge, "
                                           r"which does not pass its own check yet; fix it first"):
        run("bidirectional_forward", backward_first)
    run("bidirectional_forward", backward_first, mode="sum")  # a layer that does not use the broken mode passes



# ------------------------------------------------------------------------ the backward passes

def _batch(seed=4, T=6, B=4, I=3, H=5):
    rng = np.random.default_rng(seed)
    pf, pb = random_params(rng, I, H, 1), random_params(rng, I, H, 1)
    return rng, pf, pb, rng.normal(size=(T, B, I)), np.array([6, 2, 1, 4])


@pytest.mark.parametrize("with_lengths", [True, False])
def test_the_masked_bptt_variant_without_mistake_is_rnnkit(with_lengths):
    from rnnkit.sequence import sequence_backward

    rng, pf, _, x, lengths = _batch()
    lengths = lengths if with_lengths else None
    h0 = rng.normal(size=(4, 5))
    mask = None if lengths is None else lengths_to_mask(lengths, 6)
    hs, _, cache = sequence_forward("rnn", x, h0, pf, mask=mask)
    dhs, dlast = rng.normal(size=hs.shape), rng.normal(size=h0.shape)
    want = sequence_backward(dhs, dlast, cache)
    got = spec.masked_bptt(x, h0, pf, lengths, dhs, dlast)
    for key in spec.BACKWARD_KEYS:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-10, atol=1e-12)
    mistakes = spec._masked_mistakes(x, h0, pf, lengths, dhs, dlast, want)
    assert sum(len(m) for m in mistakes.values()) >= (10 if with_lengths else 5)


@pytest.mark.parametrize("mode", spec.MODES)
def test_the_composed_backward_is_rnnkits_and_each_mistake_changes_it(mode):
    rng, pf, pb, x, lengths = _batch()
    out, _ = spec._module_reference(x, pf, pb, mode, lengths)
    d_out, d_h_n = rng.normal(size=out.shape), rng.normal(size=(2, 4, 5))
    want = spec._module_gradients(x, pf, pb, mode, lengths, d_out, d_h_n)
    got = spec.bidirectional_reference(x, pf, pb, mode, lengths, d_out, d_h_n)
    for key in spec.BIDIRECTIONAL_KEYS:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-10, atol=1e-12)
    for key in spec.BIDIRECTIONAL_MISTAKES:
        wrong = spec.bidirectional_reference(x, pf, pb, mode, lengths, d_out, d_h_n, key)
        assert any(not np.allclose(wrong[k], want[k]) for k in spec.BIDIRECTIONAL_KEYS), key


def test_the_documented_caches_are_what_the_solution_returns(source):
    """The solution's forward passes return the caches in the documented format, entry by entry."""
    namespace = {}
    exec(source, namespace)
    rng, pf, pb, x, lengths = _batch()
    _, _, cache = namespace["bidirectional_forward"](x, pf, pb, "mul", lengths)
    want = spec.bidirectional_cache(x, pf, pb, "mul", lengths)
    spec._expect_bidirectional_cache(cache, want, 4)
    for t in range(6):
        for got, right in zip(cache[1][0][t][:3], want[1][0][t][:3]):
            np.testing.assert_allclose(got, right)


def test_the_backward_solution_passes(source):
    for name in ("rnn_backward", "bidirectional_backward"):
        run(name, source, seed=None)
        run(name, source, lengths_none=True)
        run(name, source, length=1, batch=1)
    run("rnn_backward", source, d_h_n=False, padded=False)
    run("merge_backward", source, unknown=True)
    for mode in spec.MODES:
        run("bidirectional_backward", source, mode=mode, d_h_n=(mode != "ave"))


@pytest.mark.parametrize("name, params, old, new, message", [
    ("rnn_backward", {}, "np.where(real, dhs[t] + dh, 0.0)", "dhs[t] + dh", "dhs at the padded steps must be ignored"),
    ("rnn_backward", {}, 'dh = np.where(real, step["h_prev"], dh)', 'dh = step["h_prev"]',
     "its gradient passes through unchanged too"),
    ("rnn_backward", {}, "np.where(real, dhs[t] + dh, 0.0)", "np.where(real, dhs[t], 0.0)",
     "the gradient from step t+1 is not added"),
    ("rnn_backward", {}, "grads[name] += step[name]", "grads[name] = step[name]", "only the first step's gradient"),
    ("rnn_backward", {}, "dh = np.zeros_like(dhs[0]) if dh_last is None else dh_last", "dh = np.zeros_like(dhs[0])",
     "dh_last was not used"),
    ("rnn_backward", {}, "step_caches, lengths = cache\n", "step_caches, lengths = cache[1], cache[0]\n",
     "the cache in the format the notebook documents, cache = (step_caches, lengths)"),
    ("merge_backward", {}, "return d_out[..., :H], d_out[..., H:]", "return d_out[..., H:], d_out[..., :H]",
     "the halves are swapped"),
    ("merge_backward", {}, "return d_out * h_bwd, d_out * h_fwd", "return d_out * h_fwd, d_out * h_bwd",
     "you multiplied by the same direction"),
    ("merge_backward", {}, "return d_out / 2, d_out / 2", "return d_out, d_out", "each direction gets d_out / 2"),
    ("bidirectional_backward", {}, "rnn_backward(reverse_within_lengths(d_bwd, lengths), dh_b, cache_bwd)",
     "rnn_backward(d_bwd, dh_b, cache_bwd)", "its gradients must be reversed too"),
    ("bidirectional_backward", {}, 'g_f["x"] + reverse_within_lengths(g_b["x"], lengths)', 'g_f["x"] + g_b["x"]',
     "reverse them back"),
    ("bidirectional_backward", {}, "(d_h_n[0], d_h_n[1])", "(d_h_n[1], d_h_n[0])", "they are swapped"),
    ("bidirectional_backward", {}, "(None, None) if d_h_n is None else (d_h_n[0], d_h_n[1])", "(None, None)",
     "d_h_n was not used"),
    ("bidirectional_backward", {}, 'grads[name + "_reverse"] = g_b[name]', 'grads[name] = grads[name] + g_b[name]',
     "has no entry 'weight_ih_reverse'"),
    ("bidirectional_backward", {}, "return d_out * h_bwd, d_out * h_fwd", "return d_out * h_fwd, d_out * h_bwd",
     "bidirectional_backward uses your merge_backward, which does not pass its own check yet"),
])
def test_backward_mistakes_are_named(source, name, params, old, new, message):
    wrong = source.replace(old, new, 1)
    assert wrong != source, old
    with pytest.raises(CheckFailure, match=re.escape(message)):
        run(name, wrong, mode="mul", **params) if name == "bidirectional_backward" else run(name, wrong, **params)


def test_an_unknown_mode_must_raise_value_error_backwards_too(source):
    raising = '    raise ValueError(f"mode must be'
    start = source.index("def merge_backward")
    lenient = source[:start] + source[start:].replace(raising, "    return None, None\n" + raising, 1)
    run("merge_backward", lenient)
    with pytest.raises(CheckFailure, match="returned a value; an unknown mode should raise ValueError"):
        run("merge_backward", lenient, unknown=True)


def test_wrong_forward_passes_do_not_fail_the_backward_checks(source):
    """The backward checks build the caches themselves: broken forward passes play no part."""
    broken = source.replace("h = np.where(real, h_new, h)           # padded steps leave the state as it was",
                            "h = h_new").replace("hs_b = reverse_within_lengths(hs_b_rev, lengths)", "hs_b = hs_b_rev")
    assert broken != source
    with pytest.raises(CheckFailure):
        run("bidirectional_forward", broken)
    run("rnn_backward", broken)
    run("bidirectional_backward", broken)


def test_a_forward_without_its_cache_says_what_it_must_return(source):
    no_cache = source.replace("    return hs, h, (step_caches, lengths)", "    return hs, h")
    with pytest.raises(CheckFailure, match=re.escape("rnn_forward should return a tuple (hs, h_last, cache)")):
        run("rnn_forward", no_cache)
    unordered = source.replace("(step_caches, lengths)", "(step_caches[::-1], lengths)")
    with pytest.raises(CheckFailure, match=re.escape("cache[0][0] entry 0 (x[t]) differs")):
        run("rnn_forward", unordered)
