"""The checks of exercise 2 (vanilla RNN forward): correct code passes, typical mistakes are named."""
from __future__ import annotations

import numpy as np
import pytest

from course_helpers import check_source

from course.verdict import CheckFailure

GOOD = """
import numpy as np

def rnn_step_forward(x, h_prev, params, nonlinearity="tanh"):
    a = x @ params["weight_ih"].T + params["bias_ih"] + h_prev @ params["weight_hh"].T + params["bias_hh"]
    h = np.tanh(a) if nonlinearity == "tanh" else np.maximum(a, 0)
    return h, None

def rnn_forward(x, h0, params, nonlinearity="tanh"):
    h = np.zeros((x.shape[1], params["weight_hh"].shape[0])) if h0 is None else h0
    hs = []
    for t in range(x.shape[0]):
        h, _ = rnn_step_forward(x[t], h, params, nonlinearity)
        hs.append(h)
    return np.stack(hs), h, None

def linear_head_forward(hs, params):
    return hs @ params["weight"].T + params["bias"], None

def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)
"""


def run(spec, source, seed=0, **params):
    return check_source(f"vanilla_rnn.{spec}", source, seed, **params)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_correct_code_passes_every_spec(nonlinearity):
    run("step_forward", GOOD, nonlinearity=nonlinearity)
    run("step_forward", GOOD, batch=1, input_size=3, hidden_size=3, nonlinearity=nonlinearity)
    run("forward", GOOD, nonlinearity=nonlinearity)
    run("forward", GOOD, T=1, batch=1, h0=None, nonlinearity=nonlinearity)
    run("linear_head", GOOD)
    run("linear_head", GOOD, leading=[4], hidden_size=3, out_size=3)
    run("softmax", GOOD, scale=1000.0)
    run("softmax", GOOD, shape=[5], scale=1.0)


@pytest.mark.parametrize("old, new, message", [
    ('+ params["bias_hh"]', "", "bias_hh is missing"),
    ('h_prev @ params["weight_hh"].T', 'h_prev @ params["weight_hh"]', "instead of its transpose"),
    ("np.maximum(a, 0)", "np.tanh(a)", "asks for ReLU"),
    ('h = np.tanh(a) if nonlinearity == "tanh" else np.maximum(a, 0)', "h = a", "no nonlinearity"),
])
def test_step_mistakes_are_named(old, new, message):
    wrong = GOOD.replace(old, new, 1)
    assert wrong != GOOD
    with pytest.raises(CheckFailure, match=message):
        run("step_forward", wrong, nonlinearity="relu")


@pytest.mark.parametrize("old, new, message", [
    ("rnn_step_forward(x[t], h, params", "rnn_step_forward(x[t], h0, params", "every step starts from h0"),
    ("rnn_step_forward(x[t], h, params", "rnn_step_forward(x[t], 0 * h0, params", "zero state"),
    ("return np.stack(hs), h, None", "return np.stack(hs, axis=1), h, None", r"has shape \(B, T, H\), expected \(T, B, H\)"),
    ("return np.stack(hs), h, None", "return np.stack([h0] + hs[:-1]), h, None", "state before step t"),
    ("return np.stack(hs), h, None", "return np.stack(hs), hs[0], None", "state after the first step"),
])
def test_forward_mistakes_are_named(old, new, message):
    wrong = GOOD.replace(old, new, 1)
    assert wrong != GOOD
    with pytest.raises(CheckFailure, match=message):
        run("forward", wrong)


def test_forward_failure_points_at_a_wrong_step():
    wrong = GOOD.replace('+ params["bias_hh"]', "", 1)
    with pytest.raises(CheckFailure, match="your rnn_step_forward is not right yet"):
        run("forward", wrong)


def test_changing_the_inputs_in_place_is_reported():
    wrong = GOOD.replace("return np.stack(hs), h, None", "x *= 0\n    return np.stack(hs), h, None", 1)
    with pytest.raises(CheckFailure, match="changed its argument x in place"):
        run("forward", wrong)


def test_softmax_mistakes_are_named():
    overflow = GOOD.replace("np.exp(z - z.max(axis=-1, keepdims=True))", "np.exp(z)")
    with pytest.raises(CheckFailure, match="np.exp overflows"):
        with np.errstate(over="ignore", invalid="ignore"):
            run("softmax", overflow, scale=1000.0)
    axis0 = GOOD.replace("e / e.sum(axis=-1, keepdims=True)", "e / e.sum(axis=0, keepdims=True)")
    with pytest.raises(CheckFailure, match="should sum to 1"):
        run("softmax", axis0)
    no_bias = GOOD.replace('+ params["bias"], None', ", None")
    with pytest.raises(CheckFailure, match="the bias b_y is missing"):
        run("linear_head", no_bias)


def test_a_passing_check_names_what_it_checked():
    assert run("step_forward", GOOD, nonlinearity="relu") == "rnn_step_forward: correct (relu, B=3, I=4, H=5)"
