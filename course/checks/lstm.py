"""Checks for exercise 7, the LSTM: one step forward and backward in torch's gate order (i, f, g, o),
and the peephole variant (Gers & Schmidhuber) forward and backward.

Expected values come from ``rnnkit.cells.lstm_step_forward`` / ``lstm_step_backward`` on fresh random
inputs. The values that typical mistakes produce come from rnnkit with permuted gate blocks, or from
the numpy step below with the mistake switched on (``mistake=None`` reproduces rnnkit, see
tests/test_checks_lstm.py).
"""
from __future__ import annotations

import numpy as np

from rnnkit.cells import lstm_step_backward as _lstm_backward
from rnnkit.cells import lstm_step_forward as _lstm_forward

from ..sandbox import Policy
from . import HELPERS
from .expect import CheckFailure, call_student, copy_params, expect_tuple, expect_unchanged, kind_of, student_function
from .gated import call_backward, expect_grads, expect_output, permute_blocks, random_params, sigmoid, with_cases

#: what the student's notebook may import when it is graded: no rnnkit.cells
POLICY = Policy(packages=("numpy", "matplotlib"), rnnkit=HELPERS)
SPECS = ("forward", "backward", "peephole_forward", "peephole_backward")
PEEPHOLES = ("weight_ci", "weight_cf", "weight_co")
PARAM_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _inputs(rng, batch, input_size, hidden, scale, zero_state, peephole):
    params = random_params(rng, input_size, hidden, 4, scale=scale, extra=PEEPHOLES if peephole else ())
    x = rng.normal(size=(batch, input_size))
    if zero_state:
        h_prev, c_prev = np.zeros((batch, hidden)), np.zeros((batch, hidden))
    else:
        h_prev, c_prev = rng.normal(0.0, 0.8, size=(batch, hidden)), rng.normal(0.0, 1.0, size=(batch, hidden))
    return x, h_prev, c_prev, params


# --------------------------------------------------------------------- numpy step with mistakes

def step_reference(x, h_prev, c_prev, p, peephole=False, mistake=None):
    """One LSTM step in plain numpy, optionally with one typical mistake. Returns (h, c, parts)."""
    H = h_prev.shape[1]
    a = x @ p["weight_ih"].T + p["bias_ih"] + h_prev @ p["weight_hh"].T + p["bias_hh"]
    a_i, a_f, a_g, a_o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
    if peephole:
        w_ci, w_cf = p["weight_ci"], p["weight_cf"]
        if mistake == "peep_if_swapped":
            w_ci, w_cf = w_cf, w_ci
        if mistake != "no_if_peep":
            a_i, a_f = a_i + w_ci * c_prev, a_f + w_cf * c_prev
    act = {k: sigmoid for k in "ifo"}
    act["g"] = np.tanh
    if mistake in ("tanh_i", "tanh_f", "tanh_o"):
        act[mistake[-1]] = np.tanh
    if mistake == "sigmoid_g":
        act["g"] = sigmoid
    i, f, g = act["i"](a_i), act["f"](a_f), act["g"](a_g)
    c = {
        "f_h_prev": f * h_prev + i * g,
        "f_new": i * g + f * (i * g),
        "no_forget": c_prev + i * g,
        "no_input": f * c_prev + g,
    }.get(mistake, f * c_prev + i * g)
    if peephole:
        if mistake == "o_peep_c_prev":
            a_o = a_o + p["weight_co"] * c_prev
        elif mistake == "o_peep_tanh":
            a_o = a_o + p["weight_co"] * np.tanh(c)
        elif mistake != "no_o_peep":
            a_o = a_o + p["weight_co"] * c
    o = act["o"](a_o)
    tanh_c = np.tanh(c)
    h = {"h_o_c": o * c, "h_c_prev": o * np.tanh(c_prev)}.get(mistake, o * tanh_c)
    return h, c, (i, f, g, o, tanh_c)


FORWARD_MISTAKES = {
    "f_h_prev": "your forget gate multiplies h_{t−1}; it should multiply the previous cell state c_{t−1}",
    "f_new": "your forget gate multiplies c_t (the new cell value i ⊙ g); it should multiply c_{t−1}",
    "no_forget": "the forget gate is missing: c_t = f ⊙ c_{t−1} + i ⊙ g",
    "no_input": "the input gate is missing: the candidate enters as i ⊙ g",
    "tanh_i": "the input gate i uses tanh; the gates i, f, o need σ (values between 0 and 1)",
    "tanh_f": "the forget gate f uses tanh; the gates i, f, o need σ (values between 0 and 1)",
    "tanh_o": "the output gate o uses tanh; the gates i, f, o need σ (values between 0 and 1)",
    "sigmoid_g": "the candidate g uses σ; it needs tanh (values between −1 and 1)",
    "h_o_c": "h = o ⊙ c; the cell state goes through tanh first: h_t = o ⊙ tanh(c_t)",
    "h_c_prev": "h uses the previous cell state; it is o ⊙ tanh(c_t) with the new c_t",
}
PEEPHOLE_MISTAKES = {
    "o_peep_c_prev": "the output gate's peephole sees c_{t−1}; it must see the new cell state c_t "
                     "(o is computed after c_t)",
    "o_peep_tanh": "the output gate's peephole sees tanh(c_t); it sees c_t itself: w_co ⊙ c_t",
    "peep_if_swapped": "weight_ci and weight_cf are swapped: weight_ci belongs to the input gate i, "
                       "weight_cf to the forget gate f",
    "no_o_peep": "the output gate has no peephole term: add w_co ⊙ c_t to its pre-activation",
    "no_if_peep": "the input and forget gates have no peephole terms: add w_ci ⊙ c_{t−1} and w_cf ⊙ c_{t−1}",
}


def _forward_variants(x, h_prev, c_prev, p, peephole):
    H = h_prev.shape[1]
    variants = {}
    order = {
        "the gates i and f are swapped: rows 0…H−1 belong to the input gate i, rows H…2H−1 to the forget "
        "gate f (torch's order i, f, g, o)": [1, 0, 2, 3],
        "the gate blocks are read in the order i, f, o, g (as in some course notes); torch and rnnkit "
        "stack them as i, f, g, o": [0, 1, 3, 2],
    }
    for message, perm in order.items():
        h, c = _lstm_forward(x, (h_prev, c_prev), permute_blocks(p, perm, H), peephole=peephole)[0]
        variants[message] = (h, c)
    table = {**FORWARD_MISTAKES, **(PEEPHOLE_MISTAKES if peephole else {})}
    for key, message in table.items():
        variants[message] = step_reference(x, h_prev, c_prev, p, peephole, key)[:2]
    return variants


def _check_forward(student, rng, fname, peephole, batch, input_size, hidden, scale, zero_state):
    fn = student_function(student, fname)
    x, h_prev, c_prev, params = _inputs(rng, batch, input_size, hidden, scale, zero_state, peephole)
    (want_h, want_c), _ = _lstm_forward(x, (h_prev, c_prev), params, peephole=peephole)
    args = {"x": x.copy(), "h_prev": h_prev.copy(), "c_prev": c_prev.copy(), "params": copy_params(params)}
    out = call_student(fn, args["x"], (args["h_prev"], args["c_prev"]), args["params"])
    state, _cache = expect_tuple(out, 2, fname, "((h, c), cache)")
    if not isinstance(state, (tuple, list)) or len(state) != 2:
        raise CheckFailure(f"{fname} should return ((h, c), cache): its first item should be the pair (h, c), "
                           f"got a {kind_of(state)}")
    h, c = state
    expect_unchanged({"x": x, "h_prev": h_prev, "c_prev": c_prev, "params": params}, args, fname)
    variants = _forward_variants(x, h_prev, c_prev, params, peephole)
    expect_output(c, want_c, "c", axes=("B", "H"), mistakes={m: v[1] for m, v in variants.items()})
    expect_output(h, want_h, "h", axes=("B", "H"), mistakes={m: v[0] for m, v in variants.items()})
    return f"{fname}: h and c correct (B={batch}, I={input_size}, H={hidden})"


@with_cases
def forward(student, rng, batch=3, input_size=4, hidden=5, scale=0.5, zero_state=False):
    """``lstm_step_forward(x, (h_prev, c_prev), params)`` returns ``((h, c), cache)``."""
    return _check_forward(student, rng, "lstm_step_forward", False, batch, input_size, hidden, scale, zero_state)


@with_cases
def peephole_forward(student, rng, batch=3, input_size=4, hidden=5, scale=0.5, zero_state=False):
    """``lstm_peephole_step_forward(x, (h_prev, c_prev), params)`` with weight_ci, weight_cf, weight_co."""
    return _check_forward(student, rng, "lstm_peephole_step_forward", True, batch, input_size, hidden, scale,
                          zero_state)


# ------------------------------------------------------------------------------------ backward

#: the cache that both backward passes receive, as the notebook documents it
CACHE_DOC = ("cache = (x, h_prev, c_prev, i, f, g, o, c, tanh_c, params), where i, f, g, o are the gates and "
             "the candidate, c the new cell state and tanh_c = tanh(c), each (B, H)")


def forward_cache(x, h_prev, c_prev, p, peephole=False):
    """The cache of one LSTM step (with or without peepholes) in the format the notebook documents."""
    _, c, (i, f, g, o, tanh_c) = step_reference(x, h_prev, c_prev, p, peephole)
    return (x, h_prev, c_prev, i, f, g, o, c, tanh_c, p)


def backward_reference(x, h_prev, c_prev, p, dh, dc, peephole=False, mistake=None):
    """The gradients of one LSTM step in plain numpy, optionally with one typical mistake."""
    _, _, _, i, f, g, o, c, tanh_c, _ = forward_cache(x, h_prev, c_prev, p, peephole)
    d_tanh = 1 - c * c if mistake == "tanh_c_derivative" else 1 - tanh_c * tanh_c
    dsig = (lambda s: 1.0) if mistake == "no_sigmoid" else (lambda s: s * (1 - s))
    da_o = dh * (c if mistake == "da_o_uses_c" else tanh_c) * dsig(o)
    dc_total = dc if mistake == "no_h_path" else dc + dh * o * d_tanh
    if peephole and mistake != "no_o_peep_path":
        dc_total = dc_total + da_o * p["weight_co"]
    da_i = dc_total * g * dsig(i)
    da_f = dc_total * c_prev * dsig(f)
    da_g = dc_total * i * (1 - g * g)
    dc_prev = {"dc_prev_no_f": dc_total, "dc_prev_incoming_only": dc * f}.get(mistake, dc_total * f)
    if peephole and mistake != "no_if_peep_path":
        dc_prev = dc_prev + da_i * p["weight_ci"] + da_f * p["weight_cf"]
    da = np.concatenate([da_i, da_f, da_g, da_o], axis=1)
    grads = {"x": da @ p["weight_ih"], "h_prev": da @ p["weight_hh"], "c_prev": dc_prev,
             "weight_ih": da.T @ x, "weight_hh": da.T @ h_prev, "bias_ih": da.sum(0), "bias_hh": da.sum(0)}
    if peephole:
        grads["weight_ci"] = (da_i * c_prev).sum(0)
        grads["weight_cf"] = (da_f * c_prev).sum(0)
        grads["weight_co"] = (da_o * (c_prev if mistake == "dw_co_c_prev" else c)).sum(0)
        if mistake == "peep_not_summed":
            grads["weight_ci"], grads["weight_cf"], grads["weight_co"] = da_i * c_prev, da_f * c_prev, da_o * c
    return grads


BACKWARD_MISTAKES = {
    "no_h_path": "dc misses the path through h: h_t = o ⊙ tanh(c_t), so c_t also receives "
                 "dh ⊙ o ⊙ (1 − tanh²(c_t)), added to the dc that comes from step t+1",
    "tanh_c_derivative": "the derivative of tanh(c_t) is 1 − tanh²(c_t), not 1 − c_t²",
    "no_sigmoid": "the derivative of σ is missing at the gates: da = d(gate) ⊙ σ(a) ⊙ (1 − σ(a))",
    "da_o_uses_c": "the output gate receives dh ⊙ tanh(c_t), not dh ⊙ c_t",
    "dc_prev_no_f": "dc_prev lacks the forget gate: c_t = f ⊙ c_{t−1} + …, so dc_prev = dc ⊙ f",
    "dc_prev_incoming_only": "dc_prev uses only the incoming dc; the path through h (dh ⊙ o ⊙ (1 − tanh²(c_t))) "
                             "reaches c_{t−1} as well, so use the total gradient of c_t",
}
PEEPHOLE_BACKWARD_MISTAKES = {
    "dw_co_c_prev": "it is computed with c_{t−1}; the output gate's peephole multiplies the new c_t, so "
                    "the gradient of w_co is Σ over the batch of da_o ⊙ c_t",
    "no_o_peep_path": "dc misses the path through the output gate's peephole: c_t enters o, which adds "
                      "da_o ⊙ w_co to the gradient of c_t",
    "no_if_peep_path": "dc_prev misses the peephole paths: c_{t−1} also enters i and f, which adds "
                       "da_i ⊙ w_ci + da_f ⊙ w_cf",
    "peep_not_summed": "the peephole gradients are not summed over the batch: one weight vector serves "
                       "every row, so its gradient is the sum over the rows",
}


def _check_backward(student, rng, peephole, batch, input_size, hidden, scale, zero_state, zero_dc, zero_dh):
    """The backward pass on the checker's cache (``CACHE_DOC``): a wrong forward pass plays no part."""
    fname = "lstm_peephole_step_backward" if peephole else "lstm_step_backward"
    fn = student_function(student, fname)
    x, h_prev, c_prev, params = _inputs(rng, batch, input_size, hidden, scale, zero_state, peephole)
    (want_h, want_c), ref_cache = _lstm_forward(x, (h_prev, c_prev), params, peephole=peephole)
    dh = np.zeros_like(want_h) if zero_dh else rng.normal(size=want_h.shape)
    dc = np.zeros_like(want_c) if zero_dc else rng.normal(size=want_c.shape)
    cache = forward_cache(x.copy(), h_prev.copy(), c_prev.copy(), copy_params(params), peephole)
    grads = call_backward(fn, (dh.copy(), dc.copy()), cache, what=fname, cache_doc=CACHE_DOC)
    want = _lstm_backward((dh, dc), ref_cache)
    table = {**BACKWARD_MISTAKES, **(PEEPHOLE_BACKWARD_MISTAKES if peephole else {})}
    variants = {msg: backward_reference(x, h_prev, c_prev, params, dh, dc, peephole, key)
                for key, msg in table.items()}
    keys = ("x", "h_prev", "c_prev") + PARAM_NAMES + (PEEPHOLES if peephole else ())
    axes = {"x": ("B", "I"), "h_prev": ("B", "H"), "c_prev": ("B", "H"), "weight_ih": ("4H", "I"),
            "weight_hh": ("4H", "H")}
    expect_grads(grads, want, "grads", whole=f"the result of {fname}", keys=keys, axes=axes, variants=variants)
    return f"{fname}: all {len(keys)} gradients correct (B={batch}, I={input_size}, H={hidden})"


@with_cases
def backward(student, rng, batch=3, input_size=4, hidden=5, scale=0.5, zero_state=False, zero_dc=False,
             zero_dh=False):
    """``lstm_step_backward((dh, dc), cache)`` returns a dict with keys x, h_prev, c_prev and the
    parameter names."""
    return _check_backward(student, rng, False, batch, input_size, hidden, scale, zero_state, zero_dc, zero_dh)


@with_cases
def peephole_backward(student, rng, batch=3, input_size=4, hidden=5, scale=0.5, zero_state=False, zero_dc=False,
                      zero_dh=False):
    """``lstm_peephole_step_backward((dh, dc), cache)``: as ``backward`` plus weight_ci, weight_cf,
    weight_co."""
    return _check_backward(student, rng, True, batch, input_size, hidden, scale, zero_state, zero_dc, zero_dh)
