"""The checks of exercise 12 (attention): the written-out references agree with rnnkit.attention,
the solution passes, an honest variant written differently passes, typical mistakes are named, a
backward check does not depend on the student's forward pass, and a failing decoder step names the
attention when that is what is wrong."""
from __future__ import annotations

import re

import numpy as np
import pytest
from course_helpers import check_source
from test_checks_seq2seq import solution_source

from course.checks import attention
from course.verdict import CheckFailure
from rnnkit.attention import (additive_attention_backward, additive_attention_forward, attention_step_backward,
                              attention_step_forward)


@pytest.fixture(scope="module")
def source():
    return solution_source("12_attention")


def run(spec, source, seed=0, **params):
    return check_source(f"attention.{spec}", source, seed, **params)


def test_written_out_references_equal_rnnkit():
    rng = np.random.default_rng(0)
    query, keys, p, mask = attention._attention_problem(rng, 3, 6, 4, 5, 7, True, 1.0)
    assert (mask == 0).any()
    context, weights, cache = additive_attention_forward(query, keys, p, mask)
    c2, w2 = attention.forward_reference(query, keys, p, mask)
    np.testing.assert_allclose(c2, context, rtol=1e-12)
    np.testing.assert_allclose(w2, weights, rtol=1e-12)
    dcontext = rng.normal(size=context.shape)
    want = additive_attention_backward(dcontext, cache)
    for name, g in attention.backward_reference(dcontext, query, keys, p, mask).items():
        np.testing.assert_allclose(g, want[name], rtol=1e-10, atol=1e-13, err_msg=name)

    x, h_prev, keys, params, mask = attention._step_problem(rng, 3, 5, 3, 4, 5, 6, True)
    h, _, weights, step_cache = attention_step_forward(x, h_prev, keys, attention._flat(params), "gru", mask)
    logits, h2, w2 = attention.step_reference(x, h_prev, keys, params, mask)
    np.testing.assert_allclose(h2, h, rtol=1e-12)
    np.testing.assert_allclose(w2, weights, rtol=1e-12)
    np.testing.assert_allclose(logits, h @ params["head.weight"].T + params["head.bias"], rtol=1e-12)
    dlogits, dh_next = rng.normal(size=logits.shape), rng.normal(size=h.shape)
    g = attention_step_backward(dlogits @ params["head.weight"] + dh_next, step_cache)
    got = attention.step_backward_reference(dlogits, dh_next, x, h_prev, keys, params, mask)
    for name in ("x", "h_prev", "keys"):
        np.testing.assert_allclose(got[name], g[name], rtol=1e-10, atol=1e-13, err_msg=name)
    for name in attention.STEP_PARAMS[:-2]:
        np.testing.assert_allclose(got[name], g[name.split(".", 1)[1]], rtol=1e-10, atol=1e-13, err_msg=name)


def test_every_mistake_differs_from_the_answer():
    """A mistake that gives the right value could never be named: each one must change something."""
    rng = np.random.default_rng(1)
    query, keys, p, mask = attention._attention_problem(rng, 3, 5, 4, 6, 7, True, 1.0)
    _, right = attention.forward_reference(query, keys, p, mask)
    for key in attention.FORWARD_MISTAKES:
        assert not np.allclose(attention.forward_reference(query, keys, p, mask, key)[1], right), key
    dcontext = rng.normal(size=(3, 6))
    want = attention.backward_reference(dcontext, query, keys, p, mask)
    for key in attention.BACKWARD_MISTAKES:
        wrong = attention.backward_reference(dcontext, query, keys, p, mask, key)
        assert any(not np.allclose(wrong[k], want[k]) for k in want), key


def test_the_solution_passes_every_spec(source):
    for spec in attention.SPECS:
        assert "correct" in run(spec, source)
    assert run("forward", source, cases=[{"batch": 1, "source_len": 1}, {"masked": False}, {"scale": 4.0}]) \
        .startswith("attention_forward: correct in all 3 cases")
    assert "correct" in run("step_backward", source, zero_dh_next=True)


def test_an_honest_variant_written_differently_passes(source):
    """einsum for the context, a large negative number instead of -inf, the softmax through exp(e - logsumexp)."""
    variant = source.replace(
        "    scores = np.where(mask != 0, scores, -np.inf)                         # padded: weight 0\n"
        "    weights = np.exp(scores - scores.max(axis=0, keepdims=True))\n"
        "    weights = weights / weights.sum(axis=0, keepdims=True)\n"
        "    context = np.sum(weights[..., None] * keys, axis=0)                   # (B, H_k)\n",
        "    scores = np.where(mask.astype(bool), scores, -1e30)\n"
        "    top = scores.max(axis=0)\n"
        "    log_norm = top + np.log(np.exp(scores - top).sum(axis=0))\n"
        "    weights = np.exp(scores - log_norm)\n"
        "    context = np.einsum('sb,sbk->bk', weights, keys)\n")
    assert variant != source
    for spec in attention.SPECS:
        assert "correct" in run(spec, variant)


@pytest.mark.parametrize("old, new, spec, phrase", [
    ("scores = np.where(mask != 0, scores, -np.inf)", "scores = scores", "forward",
     "the padded source positions got weight"),
    ('du = dscores[..., None] * params["v"] * (1 - z ** 2)', 'du = dscores[..., None] * params["v"]', "backward",
     "the derivative of tanh is missing"),
    ('"keys": weights[..., None] * dcontext[None] + du @ params["W_k"],', '"keys": du @ params["W_k"],', "backward",
     "each key is also a value"),
    ("np.concatenate([x, context], axis=1)", "np.concatenate([context, x], axis=1)", "step", "the cell read [c_t; x_t]"),
    ('logits = h @ params["head.weight"].T', 'logits = h_prev @ params["head.weight"].T', "step",
     "the logits came from h_prev"),
    ('attention_backward(cell["x"][:, D:], attention_cache)',
     'attention_backward(cell["x"][:, :attention_cache[1].shape[2]], attention_cache)', "step_backward",
     "the LAST H_k columns"),
])
def test_typical_mistakes_are_named(source, old, new, spec, phrase):
    assert old in source
    with pytest.raises(CheckFailure, match=re.escape(phrase)):
        run(spec, source.replace(old, new))


def test_a_wrong_forward_does_not_fail_the_backward_check(source):
    """The backward checks build their caches themselves: a forward pass with a wrong softmax (and a
    decoder step whose logits use the old state) leaves the backward passes' scores intact."""
    wrong = source.replace("scores.max(axis=0, keepdims=True)", "scores.max(axis=1, keepdims=True)").replace(
        "weights.sum(axis=0, keepdims=True)", "weights.sum(axis=1, keepdims=True)").replace(
        'logits = h @ params["head.weight"].T', 'logits = h_prev @ params["head.weight"].T')
    assert wrong != source
    with pytest.raises(CheckFailure):
        run("forward", wrong)
    with pytest.raises(CheckFailure):
        run("step", wrong)
    assert "correct" in run("backward", wrong)
    assert "correct" in run("step_backward", wrong)


def test_a_failing_step_names_the_attention(source):
    wrong = source.replace("scores = np.where(mask != 0, scores, -np.inf)", "scores = scores")
    with pytest.raises(CheckFailure) as failure:
        run("step", wrong)
    assert "decoder_step uses your attention_forward, which does not pass its own check yet" in str(failure.value)


def test_a_cache_read_in_another_format_is_explained(source):
    wrong = source.replace("    query, keys, params, z, weights = cache\n",
                           "    query, keys, z, weights = cache\n    params = {}\n")
    assert wrong != source
    with pytest.raises(CheckFailure, match=r"cache = \(query, keys, params, z, weights\)"):
        run("backward", wrong)


def test_a_forward_cache_in_another_format_is_reported(source):
    wrong = source.replace("return context, weights, (query, keys, params, z, weights)",
                           "return context, weights, (z, weights)")
    with pytest.raises(CheckFailure, match="the cache is not in the documented format"):
        run("forward", wrong)
