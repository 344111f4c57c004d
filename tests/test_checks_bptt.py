"""The checks of exercise 3 (BPTT): the numpy helpers that build the mistakes agree with rnnkit when no
mistake is switched on, correct code passes, and typical mistakes are named."""
from __future__ import annotations

import re

import numpy as np
import pytest

from course_helpers import check_source

from course.checks import bptt as spec
from course.checks.vanilla_rnn import random_rnn_params
from course.verdict import CheckFailure
from rnnkit.sequence import sequence_backward, sequence_forward

GOOD = """
import numpy as np

def bptt_worked_example(x, h0, d, params):
    W_ih, W_hh, W_y = params["weight_ih"], params["weight_hh"], params["weight_y"]
    t = x.shape[0]
    h = [h0]
    for k in range(t):
        h.append(np.tanh(W_ih @ x[k] + W_hh @ h[-1]))
    dy = 2 * (W_y @ h[t] - d)
    terms = {"weight_hh": np.zeros((t,) + W_hh.shape), "weight_ih": np.zeros((t,) + W_ih.shape)}
    dh = W_y.T @ dy
    for k in range(t, 0, -1):
        delta = (1 - h[k] ** 2) * dh
        terms["weight_hh"][k - 1] = np.outer(delta, h[k - 1])
        terms["weight_ih"][k - 1] = np.outer(delta, x[k - 1])
        dh = W_hh.T @ delta
    grads = {"weight_y": np.outer(dy, h[t]), "weight_hh": terms["weight_hh"].sum(0),
             "weight_ih": terms["weight_ih"].sum(0)}
    return grads, terms

def rnn_step_forward(x, h_prev, params, nonlinearity="tanh"):
    a = x @ params["weight_ih"].T + params["bias_ih"] + h_prev @ params["weight_hh"].T + params["bias_hh"]
    h = np.tanh(a) if nonlinearity == "tanh" else np.maximum(a, 0.0)
    return h, (x, h_prev, h, params, nonlinearity)

def rnn_forward(x, h0, params, nonlinearity="tanh"):
    h = np.zeros((x.shape[1], params["weight_hh"].shape[0])) if h0 is None else h0
    hs, caches = [], []
    for t in range(x.shape[0]):
        h, cache = rnn_step_forward(x[t], h, params, nonlinearity)
        hs.append(h)
        caches.append(cache)
    return np.stack(hs), h, caches

def rnn_step_backward(dh, cache):
    x, h_prev, h, params, nonlinearity = cache
    da = dh * (1 - h**2) if nonlinearity == "tanh" else dh * (h > 0)
    return {"x": da @ params["weight_ih"], "h_prev": da @ params["weight_hh"],
            "weight_ih": da.T @ x, "weight_hh": da.T @ h_prev,
            "bias_ih": da.sum(axis=0), "bias_hh": da.sum(axis=0)}

def rnn_backward(dhs, dh_last, cache):
    grads = {k: np.zeros_like(v) for k, v in cache[0][3].items()}
    dnext = np.zeros_like(dhs[0]) if dh_last is None else dh_last
    dx = [None] * len(cache)
    for t in reversed(range(len(cache))):
        g = rnn_step_backward(dhs[t] + dnext, cache[t])
        for k in grads:
            grads[k] += g[k]
        dx[t] = g["x"]
        dnext = g["h_prev"]
    grads["x"] = np.stack(dx)
    grads["h0"] = dnext
    return grads
"""


def run(spec_fn, source, seed=0, **params):
    return check_source(f"bptt.{spec_fn.__name__}", source, seed, **params)


def test_the_numpy_terms_match_rnnkit(rng):
    for t in (1, 3, 5):
        W_ih, W_hh, W_y = rng.normal(size=(4, 2)), rng.normal(size=(4, 4)) / 2, rng.normal(size=(3, 4))
        x, h0, d = rng.normal(size=(t, 2)), rng.normal(size=4), rng.normal(size=3)
        _, want_hh, want_ih = spec._worked_reference(x, h0, d, W_ih, W_hh, W_y)
        got_hh, got_ih = spec._terms(x, h0, d, W_ih, W_hh, W_y)
        np.testing.assert_allclose(got_hh, want_hh, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(got_ih, want_ih, rtol=1e-10, atol=1e-12)


def test_the_worked_example_reference_is_the_gradient_of_the_chapters_loss(rng):
    """L_t = ‖d_t − y_t‖² (no ½): the reference agrees with central differences of that loss."""
    W_ih, W_hh, W_y = rng.normal(size=(3, 2)), rng.normal(size=(3, 3)) / 2, rng.normal(size=(2, 3))
    x, h0, d = rng.normal(size=(3, 2)), rng.normal(size=3), rng.normal(size=2)
    dW_y, terms_hh, terms_ih = spec._worked_reference(x, h0, d, W_ih, W_hh, W_y)

    def loss(W_ih, W_hh, W_y):
        return np.sum((d - W_y @ spec._states(x, h0, W_ih, W_hh)[-1]) ** 2)

    weights = (W_ih, W_hh, W_y)
    for i, analytic in enumerate((terms_ih.sum(0), terms_hh.sum(0), dW_y)):
        numeric = np.zeros_like(weights[i])
        for idx in np.ndindex(weights[i].shape):
            plus, minus = [w.copy() for w in weights], [w.copy() for w in weights]
            plus[i][idx] += 1e-6
            minus[i][idx] -= 1e-6
            numeric[idx] = (loss(*plus) - loss(*minus)) / 2e-6
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


def test_the_worked_example_terms_sum_to_the_full_gradient(rng):
    """Σ_k terms equals BPTT of the whole sequence (rnnkit.sequence_backward) with dh only at the end."""
    W_ih, W_hh, W_y = rng.normal(size=(4, 2)), rng.normal(size=(4, 4)) / 2, rng.normal(size=(3, 4))
    x, h0, d = rng.normal(size=(3, 2)), rng.normal(size=4), rng.normal(size=3)
    _, terms_hh, terms_ih = spec._worked_reference(x, h0, d, W_ih, W_hh, W_y)
    hs, h_T, cache = sequence_forward("rnn", x[:, None], h0[None], {"weight_ih": W_ih, "weight_hh": W_hh})
    grads = sequence_backward(None, (W_y.T @ (2 * (W_y @ h_T[0] - d)))[None], cache)
    np.testing.assert_allclose(terms_hh.sum(0), grads["weight_hh"], rtol=1e-10)
    np.testing.assert_allclose(terms_ih.sum(0), grads["weight_ih"], rtol=1e-10)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("with_last", [True, False])
def test_the_numpy_bptt_matches_rnnkit(rng, nonlinearity, with_last):
    params = random_rnn_params(rng, 3, 4)
    x, h0 = rng.normal(size=(5, 2, 3)), rng.normal(size=(2, 4))
    dhs = rng.normal(size=(5, 2, 4))
    dlast = rng.normal(size=(2, 4)) if with_last else None
    _, _, cache = sequence_forward("rnn", x, h0, params, nonlinearity=nonlinearity)
    grads = sequence_backward(dhs, dlast, cache)
    mine = spec._bptt(x, h0, params, dhs, dlast, nonlinearity)
    for key, want in grads.items():
        np.testing.assert_allclose(mine[key], want, rtol=1e-10, atol=1e-12)


def test_correct_code_passes_every_spec():
    run(spec.worked_example, GOOD)
    run(spec.worked_example, GOOD, t=1)
    for nonlinearity in ("tanh", "relu"):
        run(spec.step_backward, GOOD, nonlinearity=nonlinearity)
        run(spec.step_backward, GOOD, batch=1, input_size=3, hidden_size=3, nonlinearity=nonlinearity)
        run(spec.backward, GOOD, nonlinearity=nonlinearity)
        run(spec.backward, GOOD, T=1, batch=1, dh_last=False, nonlinearity=nonlinearity)


@pytest.mark.parametrize("spec_fn, old, new, message", [
    (spec.worked_example, 'terms["weight_hh"].sum(0)', 'terms["weight_hh"][:-1].sum(0)',
     "the term k = t is missing"),
    (spec.worked_example, 'terms["weight_hh"].sum(0)', 'terms["weight_hh"][-1]', "only the term k = t"),
    (spec.worked_example, "delta = (1 - h[k] ** 2) * dh", "delta = dh", "1 − h_k²"),
    (spec.worked_example, "np.outer(delta, h[k - 1])", "np.outer(h[k - 1], delta)", "transposed"),
    (spec.worked_example, "np.outer(delta, h[k - 1])", "np.outer(delta, h[k])", "W_hh read h_{k-1}"),
    (spec.worked_example, "dh = W_hh.T @ delta", "dh = W_hh @ delta", "instead of W_hhᵀ"),
    (spec.worked_example, "dy = 2 * (W_y @ h[t] - d)", "dy = 2 * (d - W_y @ h[t])", "the sign is flipped"),
    (spec.worked_example, "dy = 2 * (W_y @ h[t] - d)", "dy = W_y @ h[t] - d",
     "you used ½‖d − y‖² (the derivative of the course's loss has a factor 2)"),
    (spec.worked_example, "dy = 2 * (W_y @ h[t] - d)", "dy = d - W_y @ h[t]",
     "the sign is flipped and the factor 2 is missing"),
    (spec.worked_example, "dy = 2 * (W_y @ h[t] - d)", "dy = 4 * (W_y @ h[t] - d)", "the factor 2 is applied twice"),
    (spec.worked_example, "np.outer(dy, h[t])", "np.outer(dy, h[t - 1])", "it uses h_{t-1}"),
    (spec.step_backward, '"h_prev": da @ params["weight_hh"]', '"h_prev": da @ params["weight_hh"].T',
     "not da @ W_hh.T"),
    (spec.step_backward, '"weight_hh": da.T @ h_prev', '"weight_hh": da.T @ h', "uses h, the new state"),
    (spec.step_backward, '"bias_ih": da.sum(axis=0)', '"bias_ih": da.mean(axis=0)', "averaged over the batch"),
    (spec.step_backward, 'if nonlinearity == "tanh" else dh * (h > 0)', "", "tanh's derivative"),
    (spec.step_backward, 'da = dh * (1 - h**2) if nonlinearity == "tanh" else dh * (h > 0)', "da = dh",
     "derivative of φ"),
    (spec.backward, "grads[k] += g[k]", "grads[k] = g[k]", "only the first step's gradient"),
    (spec.backward, "dhs[t] + dnext", "dhs[t]", "the gradient from step t+1 is not added"),
])
def test_mistakes_are_named(spec_fn, old, new, message):
    wrong = GOOD.replace(old, new, 1)
    assert wrong != GOOD
    with pytest.raises(CheckFailure, match=re.escape(message)):
        relu = spec_fn is spec.step_backward and "derivative" in message
        run(spec_fn, wrong, **({"nonlinearity": "relu"} if relu else {}))


@pytest.mark.parametrize("t", [1, 2, 3])
def test_a_missing_factor_2_is_named_for_every_length(t):
    """½‖d − y‖² halves every gradient; with t = 2 that is also what averaging the two terms gives, and
    the loss is named first (grads['weight_y'] is checked before the sums)."""
    wrong = GOOD.replace("dy = 2 * (W_y @ h[t] - d)", "dy = W_y @ h[t] - d")
    with pytest.raises(CheckFailure, match=re.escape("grads['weight_y'] is 1/2 of the expected value: you used "
                                                     "½‖d − y‖² (the derivative of the course's loss has a "
                                                     "factor 2)")):
        run(spec.worked_example, wrong, t=t)


@pytest.mark.parametrize("t", [2, 3])
def test_averaged_terms_are_named_even_when_the_average_halves(t):
    wrong = GOOD.replace('terms["weight_ih"].sum(0)', 'terms["weight_ih"].mean(0)')
    with pytest.raises(CheckFailure, match=re.escape("grads['weight_ih'] is 1/" + str(t) + " of the expected "
                                                     "value: you averaged the terms")):
        run(spec.worked_example, wrong, t=t)


def test_returning_dh_of_the_first_step_as_dh0_is_named():
    wrong = GOOD.replace("g = rnn_step_backward(dhs[t] + dnext, cache[t])",
                         "dh_first = dhs[t] + dnext\n        g = rnn_step_backward(dh_first, cache[t])")
    wrong = wrong.replace('grads["h0"] = dnext', 'grads["h0"] = dh_first')
    with pytest.raises(CheckFailure, match="is dh of the first step"):
        run(spec.backward, wrong)


def test_dh_last_mistakes_are_named():
    ignored = GOOD.replace("dnext = np.zeros_like(dhs[0]) if dh_last is None else dh_last",
                           "dnext = np.zeros_like(dhs[0])")
    with pytest.raises(CheckFailure, match="dh_last was not used"):
        run(spec.backward, ignored)
    averaged = GOOD.replace('grads["x"] = np.stack(dx)',
                            'grads = {k: v / len(cache) for k, v in grads.items()}\n    grads["x"] = np.stack(dx)')
    with pytest.raises(CheckFailure, match="did you divide by T"):
        run(spec.backward, averaged)


def test_the_caches_are_those_of_the_given_forward(rng):
    """The checker's caches are exactly what the notebook's given forward cell returns."""
    namespace = {}
    exec(GOOD, namespace)
    params = random_rnn_params(rng, 3, 4)
    x, h0 = rng.normal(size=(5, 2, 3)), rng.normal(size=(2, 4))
    hs, _, given = namespace["rnn_forward"](x, h0, params, "relu")
    built = spec.sequence_caches(x, h0, hs, params, "relu")
    assert len(built) == len(given) == 5
    for mine, theirs in zip(built, given):
        assert len(mine) == len(theirs) == 5 and mine[3] is params and mine[4] == theirs[4] == "relu"
        for a, b in zip(mine[:3], theirs[:3]):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("broken", [
    ("h = np.tanh(a) if", "h = 2 * np.tanh(a) if"),
    ("return h, (x, h_prev, h, params, nonlinearity)", "return h, None"),
    ("return np.stack(hs), h, caches", "return np.stack(hs), h, caches[::-1]"),
])
def test_a_wrong_forward_with_a_correct_backward_passes_the_backward_checks(broken):
    wrong = GOOD.replace(*broken, 1)
    assert wrong != GOOD
    for nonlinearity in ("tanh", "relu"):
        run(spec.step_backward, wrong, nonlinearity=nonlinearity)
        run(spec.backward, wrong, nonlinearity=nonlinearity)


def test_a_wrong_step_backward_is_named_when_bptt_fails():
    wrong = GOOD.replace('"weight_hh": da.T @ h_prev', '"weight_hh": da.T @ h', 1)
    with pytest.raises(CheckFailure, match="rnn_backward uses your rnn_step_backward, which does not pass its own "
                                           "check yet; fix it first: grads\\['weight_hh'\\] is wrong: dW_hh uses h"):
        run(spec.backward, wrong)


def test_a_passing_check_names_what_it_checked():
    assert run(spec.backward, GOOD, T=1, batch=1, dh_last=False) == (
        "rnn_backward: correct (tanh, dh_last=None, T=1, B=1, I=2, H=5)")
