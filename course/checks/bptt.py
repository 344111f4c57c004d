"""Checks for exercise 3, backpropagation through time: the t = 3 worked example of chapter 3 (in the
chapter's notation and loss, L_t = ‖d_t − y_t‖²) written as explicit sums of per-step terms, the backward
pass of one step, and BPTT over a whole sequence.

The expected gradients come from rnnkit (``rnn_step_backward`` step by step for the worked example,
``sequence_backward`` for the sequence). The mistakes are computed by small numpy versions of the same
backward passes with one typical error switched on (``_terms`` and ``_bptt`` below); their correct settings
are tested against rnnkit in tests/test_checks_bptt.py.

The backward checks never call the student's forward pass: they build the caches themselves, in the format
the notebook documents for the given forward cell (:func:`step_cache`, :func:`sequence_caches`), so that a
changed forward cell cannot cost the backward points.
"""
from __future__ import annotations

import functools

import numpy as np

from rnnkit.cells import rnn_step_backward as _rnnkit_step_backward
from rnnkit.cells import rnn_step_forward as _rnnkit_step_forward
from rnnkit.sequence import sequence_backward as _rnnkit_sequence_backward
from rnnkit.sequence import sequence_forward as _rnnkit_sequence_forward

from ..sandbox import Policy
from . import HELPERS
from .expect import (CheckFailure, blame_parts, call_student, copy_params, expect_close, expect_grads_dict,
                     expect_tuple, student_function)
from .vanilla_rnn import random_rnn_params

#: what the student's notebook may import when it is graded (rnnkit.gradcheck for the numerical check;
#: not rnnkit.cells nor rnnkit.sequence, which hold the answers)
POLICY = Policy(packages=("numpy", "matplotlib"), rnnkit=HELPERS)
SPECS = ("worked_example", "step_backward", "backward")
STEP_KEYS = ("x", "h_prev", "weight_ih", "weight_hh", "bias_ih", "bias_hh")
SEQUENCE_KEYS = ("x", "h0", "weight_ih", "weight_hh", "bias_ih", "bias_hh")


def step_cache(x, h_prev, h, params, nonlinearity):
    """The cache of one step exactly as the notebook's given ``rnn_step_forward`` returns it:
    ``(x (B, I), h_prev (B, H), h (B, H), params, nonlinearity)``, ``h`` the state after the step."""
    return (x, h_prev, h, params, nonlinearity)


def sequence_caches(x, h0, hs, params, nonlinearity):
    """The caches of ``rnn_forward`` as the notebook documents them: ``caches[t]`` is the step cache of
    step t, ``(x[t], h_{t-1}, h_t, params, nonlinearity)`` with ``h_{-1} = h0``, one ``params`` dict for all."""
    prev = [h0] + list(hs[:-1])
    return [step_cache(x[t], prev[t], hs[t], params, nonlinearity) for t in range(x.shape[0])]


# --------------------------------------------------------------------------------------------
# 1. the worked example: dL_t/dW_y, dL_t/dW_hh, dL_t/dW_ih as sums over k
#    (chapter 3's notation: a_k = W_ih x_k + W_hh h_{k-1}, h_k = tanh(a_k), y_t = W_y h_t,
#    L_t = ‖d_t − y_t‖², so ∂L_t/∂y_t = 2 (y_t − d_t))
# --------------------------------------------------------------------------------------------

WORKED_PARAMS = ("weight_ih", "weight_hh", "weight_y")
WORKED_GRADS = ("weight_y", "weight_hh", "weight_ih")
WORKED_TERMS = ("weight_hh", "weight_ih")
SYMBOL = {"weight_ih": "W_ih", "weight_hh": "W_hh", "weight_y": "W_y"}


def _worked_reference(x, h0, d, W_ih, W_hh, W_y):
    """With rnnkit's cell: the per-k terms are the weight gradients of each step's backward pass.
    Returns ``(dL_t/dW_y, terms of dL_t/dW_hh (t, H, H), terms of dL_t/dW_ih (t, H, I))``."""
    p = {"weight_ih": W_ih, "weight_hh": W_hh}
    states, caches = [h0[None]], []
    for k in range(x.shape[0]):
        h, cache = _rnnkit_step_forward(x[k][None], states[-1], p)
        states.append(h)
        caches.append(cache)
    dy = 2.0 * (W_y @ states[-1][0] - d)
    terms_hh, terms_ih = np.zeros((x.shape[0],) + W_hh.shape), np.zeros((x.shape[0],) + W_ih.shape)
    dh = (W_y.T @ dy)[None]
    for k in reversed(range(x.shape[0])):
        g = _rnnkit_step_backward(dh, caches[k])
        terms_hh[k], terms_ih[k] = g["weight_hh"], g["weight_ih"]
        dh = g["h_prev"]
    return np.outer(dy, states[-1][0]), terms_hh, terms_ih


def _states(x, h0, W_ih, W_hh):
    """h_0 … h_t of the worked example's cell (no biases, tanh)."""
    h = [h0]
    for k in range(x.shape[0]):
        h.append(np.tanh(W_ih @ x[k] + W_hh @ h[-1]))
    return h


def _terms(x, h0, d, W_ih, W_hh, W_y, deriv=True, chain_transposed=True, previous_state=True, transpose=False):
    """The per-k terms (of W_hh, of W_ih) in numpy, with switches for the typical mistakes."""
    h = _states(x, h0, W_ih, W_hh)
    t = x.shape[0]
    terms_hh, terms_ih = np.zeros((t,) + W_hh.shape), np.zeros((t,) + W_ih.shape)
    dh = W_y.T @ (2.0 * (W_y @ h[t] - d))
    for k in range(t, 0, -1):
        delta = (1 - h[k] ** 2) * dh if deriv else dh
        read = h[k - 1] if previous_state else h[k]
        terms_hh[k - 1] = np.outer(read, delta) if transpose else np.outer(delta, read)
        terms_ih[k - 1] = np.outer(delta, x[k - 1])
        dh = (W_hh.T @ delta) if chain_transposed else (W_hh @ delta)
    return terms_hh, terms_ih


LOSS = "for L_t = ‖d_t − y_t‖², ∂L_t/∂y_t = 2 (y_t − d_t)"
FLIP = f"the sign is flipped: {LOSS}"
HALF = f"you used ½‖d − y‖² (the derivative of the course's loss has a factor 2): {LOSS}"
FLIP_HALF = f"the sign is flipped and the factor 2 is missing: {LOSS}"
TWICE = f"the factor 2 is applied twice: {LOSS}, and nothing after it doubles again"
#: the loss-level mistakes scale every gradient of part 1 by the same factor
LOSS_SCALES = {-1: FLIP, 0.5: HALF, 2: TWICE}


def _loss_mistakes(want):
    """The sign flipped together with a missing 2 (expect_close's scales name one factor each)."""
    return {FLIP_HALF: -0.5 * np.asarray(want)}


def _term_mistakes(name, want, wrong_terms, t):
    """Known wrong versions of terms[name]: {message: value}, from ``wrong_terms(**flags)``."""
    variants = {
        "the factor 1 − h_k² (the derivative of tanh) is missing": dict(deriv=False),
        "the gradient is sent back through W_hh instead of W_hhᵀ: ∂L_t/∂h_{k-1} = W_hhᵀ δ_k": dict(
            chain_transposed=False),
    }
    if name == "weight_hh":
        variants["each term multiplies δ_k by h_k; W_hh read h_{k-1} at step k, so the term is "
                 "δ_k h_{k-1}ᵀ"] = dict(previous_state=False)
        variants["the terms are transposed: term k is δ_k h_{k-1}ᵀ, row i for state unit i"] = dict(transpose=True)
    mistakes = _loss_mistakes(want)
    for message, flags in variants.items():
        wrong = wrong_terms(**flags)[WORKED_TERMS.index(name)]
        if not np.allclose(wrong, want):
            mistakes[message] = wrong
    if t > 1:
        only_last = np.zeros_like(want)
        only_last[-1] = want[-1]
        mistakes["only the term k = t is there; the earlier steps used the same matrix, and BPTT adds "
                 "their terms too"] = only_last
    return mistakes


def _expect_terms(terms, want, name, wrong_terms, t):
    got = terms[name]
    if isinstance(got, np.ndarray) and got.ndim == 3 and got.shape[0] == t - 1 and t > 1:
        raise CheckFailure(f"terms[{name!r}] has {t - 1} entries, one per k = 1 … t−1; the sum runs over "
                           f"k = 1 … t (here t = {t}): the last step uses {SYMBOL[name]} too and has its own term")
    expect_close(got, want, f"terms[{name!r}]", scales=LOSS_SCALES,
                 mistakes=_term_mistakes(name, want, wrong_terms, t))


def _expect_sum(grads, want, name, t):
    total = want.sum(axis=0)
    mistakes, scales = _loss_mistakes(total), dict(LOSS_SCALES)
    mistakes["the term k = t is missing: the sum runs over k = 1 … t, and the last step itself "
             f"uses {SYMBOL[name]}"] = want[:-1].sum(axis=0)
    if t > 1:
        mistakes[f"it holds only the term k = t; ∂L_t/∂{SYMBOL[name]} adds the terms of every step "
                 "k = 1 … t"] = want[-1]
        mistakes["it holds only the term k = 1; add the terms of every step k = 1 … t"] = want[0]
        # the terms passed their check, so the loss is right: with t = 2 a factor ½ here is an average
        scales[1 / t] = "you averaged the terms; the chain rule adds them (one term per step that used the matrix)"
    expect_close(grads[name], total, f"grads[{name!r}]", scales=scales, mistakes=mistakes)


def worked_example(student, rng, t=3, input_size=2, hidden_size=3, output_size=2):
    """``bptt_worked_example(x (t, I), h0 (H,), d (K,), params)`` with ``params`` weight_ih (H, I),
    weight_hh (H, H), weight_y (K, H) returns ``(grads, terms)``: ``grads`` the three gradients of
    L_t = ‖d_t − y_t‖² (keys WORKED_GRADS), ``terms`` ``{"weight_hh": (t, H, H), "weight_ih": (t, H, I)}``
    with ``terms[name][k-1]`` the term of step k."""
    fn = student_function(student, "bptt_worked_example")
    I, H, K = input_size, hidden_size, output_size
    W_ih = rng.normal(0.0, 1.0 / np.sqrt(I), (H, I))
    W_hh = rng.normal(0.0, 0.9 / np.sqrt(H), (H, H))
    W_y = rng.normal(0.0, 1.0 / np.sqrt(H), (K, H))
    x, h0, d = rng.normal(size=(t, I)), rng.normal(0.0, 0.5, H), rng.normal(size=K)
    dW_y, want_hh, want_ih = _worked_reference(x, h0, d, W_ih, W_hh, W_y)

    params = copy_params(dict(zip(WORKED_PARAMS, (W_ih, W_hh, W_y))))
    out = call_student(fn, x.copy(), h0.copy(), d.copy(), params)
    grads, terms = expect_tuple(out, 2, "bptt_worked_example", "(grads, terms)")
    grads = expect_grads_dict(grads, WORKED_GRADS, "grads")
    terms = expect_grads_dict(terms, WORKED_TERMS, "terms")

    h = _states(x, h0, W_ih, W_hh)
    expect_close(grads["weight_y"], dW_y, "grads['weight_y']", axes=("K", "H") if K != H else None,
                 scales=LOSS_SCALES,
                 mistakes={**_loss_mistakes(dW_y),
                           "it uses h_{t-1}; the output reads the last state: ∂L_t/∂W_y = 2 (y_t − d_t) h_tᵀ":
                           np.outer(2.0 * (W_y @ h[-1] - d), h[-2])})

    def wrong_terms(**flags):
        return _terms(x, h0, d, W_ih, W_hh, W_y, **flags)

    for name, want in zip(WORKED_TERMS, (want_hh, want_ih)):
        _expect_terms(terms, want, name, wrong_terms, t)
    for name, want in zip(WORKED_TERMS, (want_hh, want_ih)):
        _expect_sum(grads, want, name, t)
    return f"bptt_worked_example: correct for t = {t} (I={I}, H={H}, K={K})"


# --------------------------------------------------------------------------------------------
# 2. one step backward
# --------------------------------------------------------------------------------------------

def _step_variants(x, h_prev, h, params, dh, nonlinearity):
    """Gradients of one step with a typical mistake switched on: {key: {message: value}}."""
    W_ih, W_hh = params["weight_ih"], params["weight_hh"]
    if nonlinearity == "tanh":
        da = dh * (1 - h**2)
    else:
        da = dh * (h > 0)
    B = x.shape[0]
    out = {k: {} for k in STEP_KEYS}
    no_deriv = "the gradient skips the derivative of φ: da = dh ⊙ φ'(a)" + (
        ", with tanh'(a) = 1 − h²" if nonlinearity == "tanh" else ", with ReLU'(a) = 1 where h > 0, else 0")
    wrong_deriv = {}
    if nonlinearity == "relu":
        wrong_deriv["you used tanh's derivative 1 − h², but this cell is ReLU: its derivative is 1 where h > 0 "
                    "and 0 elsewhere"] = dh * (1 - h**2)
    else:
        wrong_deriv["tanh'(a) is 1 − h², the square of h, not 1 − h"] = dh * (1 - h)
    for message, wrong_da in {no_deriv: dh, **wrong_deriv}.items():
        out["x"][message] = wrong_da @ W_ih
        out["h_prev"][message] = wrong_da @ W_hh
        out["weight_ih"][message] = wrong_da.T @ x
        out["weight_hh"][message] = wrong_da.T @ h_prev
        out["bias_ih"][message] = wrong_da.sum(axis=0)
        out["bias_hh"][message] = wrong_da.sum(axis=0)
    out["h_prev"]["dh_prev is da @ W_hh (the rows form of W_hhᵀ da), not da @ W_hh.T"] = da @ W_hh.T
    out["h_prev"]["the gradient does not flow into h_prev: dh_prev = W_hhᵀ da, not da itself"] = da
    out["weight_hh"]["dW_hh is transposed: dW_hh = daᵀ h_prev in rows, entry (i, j) links unit j of h_prev "
                     "to unit i of h"] = h_prev.T @ da
    out["weight_hh"]["dW_hh uses h, the new state; W_hh multiplied h_prev, so dW_hh = daᵀ h_prev"] = da.T @ h
    if x.shape[1] == h.shape[1]:
        out["weight_ih"]["dW_ih is transposed: dW_ih = daᵀ x in rows"] = x.T @ da
    if B > 1:
        for key in ("bias_ih", "bias_hh"):
            out[key]["you averaged over the batch; the loss adds the sequences of a batch, so sum da over "
                     "axis 0"] = da.mean(axis=0)
    return out


def step_backward(student, rng, batch=3, input_size=4, hidden_size=5, nonlinearity="tanh"):
    """``rnn_step_backward(dh, cache)`` returns a dict of gradients with the keys of STEP_KEYS. The cache
    is built here (:func:`step_cache`), not by the student's forward cell."""
    fn = student_function(student, "rnn_step_backward")
    params = random_rnn_params(rng, input_size, hidden_size)
    x = rng.normal(size=(batch, input_size))
    h_prev = rng.normal(0.0, 0.8, size=(batch, hidden_size))
    dh = rng.normal(size=(batch, hidden_size))
    h, cache = _rnnkit_step_forward(x, h_prev, params, nonlinearity)
    want = _rnnkit_step_backward(dh, cache)

    given = step_cache(x.copy(), h_prev.copy(), h.copy(), copy_params(params), nonlinearity)
    grads = expect_grads_dict(call_student(fn, dh.copy(), given), STEP_KEYS, "the dict rnn_step_backward returns")
    variants = _step_variants(x, h_prev, h, params, dh, nonlinearity)
    axes = {"x": ("B", "I"), "h_prev": ("B", "H"), "weight_ih": ("H", "I"), "weight_hh": None,
            "bias_ih": None, "bias_hh": None}
    for key in STEP_KEYS:
        got = grads[key]
        if key.startswith("bias") and isinstance(got, np.ndarray) and got.shape == (batch, hidden_size) and batch > 1:
            raise CheckFailure(f"grads[{key!r}] has shape (B, H) = {got.shape}; the bias is shared by the whole "
                               "batch, so its gradient is da summed over the batch axis: shape (H,)")
        expect_close(got, want[key], f"grads[{key!r}]", axes=axes[key] if input_size != hidden_size else None,
                     mistakes=variants[key])
    return (f"rnn_step_backward: correct ({nonlinearity}, "
            f"B={batch}, I={input_size}, H={hidden_size})")


# --------------------------------------------------------------------------------------------
# 3. BPTT over a sequence
# --------------------------------------------------------------------------------------------

def _bptt(x, h0, params, dhs, dh_last, nonlinearity, carry=True, accumulate="all", deriv=True,
          dh_last_mode="last", h0_grad="through"):
    """BPTT in numpy (sum of the per-step losses), with switches for the typical mistakes."""
    T, B, _ = x.shape
    H = params["weight_hh"].shape[0]
    hs, h = [], h0
    for t in range(T):
        h = _rnnkit_step_forward(x[t], h, params, nonlinearity)[0]
        hs.append(h)
    prev = [h0] + hs[:-1]
    grads = {k: np.zeros_like(params[k]) for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    dx = np.zeros_like(x)
    dnext = np.zeros((B, H))
    extra = np.zeros((B, H)) if dh_last is None else dh_last
    dh_first = None
    for t in reversed(range(T)):
        dh = dhs[t] + (dnext if carry else 0.0)
        if (dh_last_mode == "last" and t == T - 1) or dh_last_mode == "every":
            dh = dh + extra
        if t == 0:
            dh_first = dh
        if not deriv:
            da = dh
        elif nonlinearity == "tanh":
            da = dh * (1 - hs[t] ** 2)
        else:
            da = dh * (hs[t] > 0)
        step = {"weight_ih": da.T @ x[t], "weight_hh": da.T @ prev[t], "bias_ih": da.sum(0), "bias_hh": da.sum(0)}
        use = accumulate == "all" or (accumulate == "first" and t == 0) or (accumulate == "last" and t == T - 1)
        if use:
            for k in grads:
                grads[k] = grads[k] + step[k]
        dx[t] = da @ params["weight_ih"]
        dnext = da @ params["weight_hh"]
    grads["x"] = dx
    grads["h0"] = dnext if h0_grad == "through" else dh_first
    return grads


def _sequence_mistakes(x, h0, params, dhs, dlast, nonlinearity, want):
    """Known wrong versions of each gradient of rnn_backward: {key: {message: value}}."""
    T = x.shape[0]
    not_carried = ("the gradient from step t+1 is not added: dh_t = dhs[t] + (the gradient that step t+1 "
                   "sends back to h_t, its 'h_prev' gradient)")
    deriv = "the factor φ'(a_t) is missing" + (" (1 − h_t² for tanh)" if nonlinearity == "tanh" else
                                                " (1 where h_t > 0 for ReLU)")
    messages = [
        (not_carried, dict(carry=False)),
        (not_carried + "; dh_last is missing too", dict(carry=False, dh_last_mode="none")),
        (deriv, dict(deriv=False)),
        ("only the first step's gradient is in it: every step uses the same weights, so add (+=) the "
         "gradients of all T steps instead of overwriting them", dict(accumulate="first")),
        ("only the last step's gradient is in it: every step uses the same weights, so add (+=) the "
         "gradients of all T steps", dict(accumulate="last")),
    ]
    if dlast is not None:
        messages.append(("dh_last was not used: the gradient of the final state joins dh at the last step",
                         dict(dh_last_mode="none")))
        if T > 1:
            messages.append(("dh_last was added at every step; it is the gradient of h_T only, so it joins at "
                             "the last step and reaches earlier steps through the chain",
                             dict(dh_last_mode="every")))
    mistakes = {k: {} for k in SEQUENCE_KEYS}
    for message, flags in messages:
        wrong = _bptt(x, h0, params, dhs, dlast, nonlinearity, **flags)
        for key in SEQUENCE_KEYS:
            if not np.allclose(wrong[key], want[key]) and message not in mistakes[key]:
                mistakes[key][message] = wrong[key]
    mistakes["h0"]["grads['h0'] is dh of the first step; pass it back through that step: ∂L/∂h_0 = W_hhᵀ da_1, "
                   "the 'h_prev' gradient of the first step"] = _bptt(x, h0, params, dhs, dlast, nonlinearity,
                                                                      h0_grad="first")["h0"]
    return mistakes


def backward(student, rng, T=4, batch=3, input_size=2, hidden_size=5, nonlinearity="tanh", dh_last=True):
    """``rnn_backward(dhs (T, B, H), dh_last (B, H) or None, cache)`` returns a dict with the keys of
    SEQUENCE_KEYS: the gradients of L = Σ_t L_t (dhs[t] = ∂L/∂h_t through the outputs; dh_last an extra
    gradient of the final state). The caches are built here (:func:`sequence_caches`)."""
    fn = student_function(student, "rnn_backward")
    params = random_rnn_params(rng, input_size, hidden_size)
    x = rng.normal(size=(T, batch, input_size))
    h0 = rng.normal(0.0, 0.5, size=(batch, hidden_size))
    dhs = rng.normal(size=(T, batch, hidden_size))
    dlast = rng.normal(size=(batch, hidden_size)) if dh_last else None
    hs, _, cache = _rnnkit_sequence_forward("rnn", x, h0, params, nonlinearity=nonlinearity)
    want = dict(_rnnkit_sequence_backward(dhs, dlast, cache))   # "x", "h0" and the parameters

    given = sequence_caches(x.copy(), h0.copy(), hs.copy(), copy_params(params), nonlinearity)
    mistakes = _sequence_mistakes(x, h0, params, dhs, dlast, nonlinearity, want)
    scales = {}
    if T > 1:
        scales = {1 / T: "did you divide by T? The loss is the sum of the per-step losses, so its gradients "
                         "are sums over the steps, not averages",
                  T: "did you add one gradient T times?"}
    axes = {"x": ("T", "B", "I"), "h0": ("B", "H"), "weight_ih": ("H", "I"), "weight_hh": None,
            "bias_ih": None, "bias_hh": None}
    distinct = len({T, batch, input_size, hidden_size}) == 4

    def judge():
        grads = call_student(fn, dhs.copy(), None if dlast is None else dlast.copy(), given)
        grads = expect_grads_dict(grads, SEQUENCE_KEYS, "the dict rnn_backward returns")
        for key in SEQUENCE_KEYS:
            expect_close(grads[key], want[key], f"grads[{key!r}]", axes=axes[key] if distinct else None,
                         scales=scales if key not in ("x", "h0") else None, mistakes=mistakes[key])

    step = functools.partial(step_backward, nonlinearity=nonlinearity)
    blame_parts(student, judge, [("rnn_step_backward", step)], "rnn_backward")
    last = "with dh_last" if dlast is not None else "dh_last=None"
    return f"rnn_backward: correct ({nonlinearity}, {last}, T={T}, B={batch}, I={input_size}, H={hidden_size})"
