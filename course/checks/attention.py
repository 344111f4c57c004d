"""Checks for exercise 12, attention: additive (Bahdanau) attention forward and backward with a mask,
and one decoder step that uses it (forward, then backward).

Expected values come from ``rnnkit.attention`` (``additive_attention_forward/backward``,
``attention_step_forward/backward``) and ``rnnkit.heads.linear_forward`` on fresh random inputs. The
values that typical mistakes produce come from the same equations written out below in numpy with
one error built in (softmax over the batch, the mask ignored or applied after the softmax, no tanh;
in the backward pass the softmax's sum term, the tanh derivative or one of the two paths into the
keys left out; in the decoder step the cell's input in the wrong order, logits from the old state,
the query's gradient or the next step's gradient forgotten, the context's gradient cut from the
wrong columns).

Backward checks get caches that the checker builds with rnnkit, in the format the notebook
documents (``ATTENTION_CACHE`` and ``STEP_CACHE``): a wrong forward pass does not fail them. The
decoder step is built from the student's attention; when it fails and the attention does not pass
its own check, the message names the attention first (:func:`~course.checks.expect.blame_parts`).
"""
from __future__ import annotations

import numpy as np

from rnnkit.attention import ATTENTION_PARAMS
from rnnkit.attention import additive_attention_backward as _attention_backward
from rnnkit.attention import additive_attention_forward as _attention_forward
from rnnkit.attention import attention_step_backward as _step_backward
from rnnkit.attention import attention_step_forward as _step_forward
from rnnkit.cells import gru_step_backward as _gru_backward
from rnnkit.cells import gru_step_forward as _gru_forward
from rnnkit.heads import linear_forward as _linear_forward

from ..sandbox import Policy
from . import HELPERS
from .expect import (CheckFailure, blame_parts, call_student, copy_params, expect_tuple, expect_unchanged,
                     student_function)
from .gated import call_backward, expect_grads, expect_output, random_params, with_cases

#: the notebook's imports: numpy, matplotlib and threadpoolctl; one GRU step and its backward pass
#: (rnnkit.cells), and for the ungraded training run the recurrence over the source, the data, the
#: tokenizer and Adam; array_api_compat, which rnnkit.backend imports on first use. Not
#: rnnkit.attention or rnnkit.models (the answer), nor rnnkit.losses (its softmax backward).
POLICY = Policy(packages=("numpy", "matplotlib", "threadpoolctl", "array_api_compat"),
                rnnkit=HELPERS + ("rnnkit.cells", "rnnkit.sequence", "rnnkit.text", "rnnkit.optim"))
SPECS = ("forward", "backward", "step", "step_backward")

ATTENTION_CACHE = ("cache = (query, keys, params, z, weights): the arguments of attention_forward, "
                   "z = tanh(W_q q + W_k h_s + b) of shape (S, B, A) and the weights (S, B)")
STEP_CACHE = ("cache = (attention_cache, gru_cache, h, params): the cache of attention_forward (in its "
              "documented format), the cache that gru_step_forward returned, the new state h (B, H) and "
              "the params dict")
CELL_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
STEP_PARAMS = tuple(f"attention.{n}" for n in ATTENTION_PARAMS) + tuple(f"decoder.{n}" for n in CELL_NAMES) + (
    "head.weight", "head.bias")


# --------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------

def attention_params(rng, query_size, key_size, attention_size, scale=1.0):
    return {"W_q": rng.normal(0.0, scale / np.sqrt(query_size), (attention_size, query_size)),
            "W_k": rng.normal(0.0, scale / np.sqrt(key_size), (attention_size, key_size)),
            "b": rng.normal(0.0, 0.5, attention_size),
            "v": rng.normal(0.0, 2.0 * scale / np.sqrt(attention_size), attention_size)}


def source_mask(rng, source_len, batch, masked):
    """(S, B) of 1 at real source positions: random lengths 1..S with one full row, or all ones."""
    if not masked:
        return np.ones((source_len, batch))
    lengths = rng.integers(1, source_len + 1, size=batch)
    lengths[rng.integers(batch)] = source_len
    if batch > 1 and (lengths == source_len).all():
        lengths[0] = max(1, source_len - 1)
    return (np.arange(source_len)[:, None] < lengths[None, :]).astype(np.float64)


def _attention_problem(rng, batch, source_len, query_size, key_size, attention_size, masked, scale):
    query = rng.normal(size=(batch, query_size))
    keys = rng.normal(size=(source_len, batch, key_size))
    return query, keys, attention_params(rng, query_size, key_size, attention_size, scale), \
        source_mask(rng, source_len, batch, masked)


# --------------------------------------------------------------------------------------------
# the equations written out, with the typical mistakes
# --------------------------------------------------------------------------------------------

def forward_reference(query, keys, p, mask, mistake=None):
    """``(context, weights)`` of additive attention; ``mistake`` builds one typical error in."""
    u = keys @ p["W_k"].T + query @ p["W_q"].T + p["b"]
    scores = (u if mistake == "no_tanh" else np.tanh(u)) @ p["v"]
    if mistake not in ("mask_ignored", "mask_after"):
        scores = np.where(mask != 0, scores, -np.inf)
    axis = 1 if mistake == "batch_axis" else 0
    weights = np.exp(scores - scores.max(axis=axis, keepdims=True))
    weights /= weights.sum(axis=axis, keepdims=True)
    if mistake == "mask_after":
        weights = weights * mask
    if mistake == "mean":
        weights = mask / mask.sum(axis=0, keepdims=True)
    return np.einsum("sb,sbk->bk", weights, keys), weights


FORWARD_MISTAKES = {
    "batch_axis": "the softmax ran over the batch axis; the weights of each sequence sum to 1 over its "
                  "source positions s, axis 0 of the (S, B) scores",
    "mask_ignored": "the padded source positions got weight: give their scores -inf before the softmax "
                    "(np.where(mask != 0, e, -np.inf)), so that their weight is exactly 0",
    "mask_after": "the weights were set to 0 at the padded positions after the softmax, so they no longer sum "
                  "to 1; give the padded scores -inf before the softmax instead",
    "no_tanh": "the tanh is missing: z_s = tanh(W_q q + W_k h_s + b), then e_s = v · z_s",
    "mean": "every real position got the same weight: the weights come from the scores e_s, "
            "α = softmax(e) over s",
}


def backward_reference(dcontext, query, keys, p, mask, mistake=None):
    """The gradients of additive attention in plain numpy; ``mistake`` builds one typical error in."""
    _, weights = forward_reference(query, keys, p, mask)
    z = np.tanh(keys @ p["W_k"].T + query @ p["W_q"].T + p["b"])
    dweights = np.einsum("sbk,bk->sb", keys, dcontext)
    if mistake == "no_softmax_sum":
        dscores = weights * dweights
    else:
        dscores = weights * (dweights - (weights * dweights).sum(axis=0, keepdims=True))
    du = dscores[..., None] * p["v"] * (1.0 if mistake == "no_tanh" else 1.0 - z * z)
    du_sum = du.sum(axis=0)
    value_path, score_path = weights[..., None] * dcontext[None], du @ p["W_k"]
    keys_grad = {"value_path_only": value_path, "score_path_only": score_path}.get(mistake, value_path + score_path)
    return {"query": du_sum @ p["W_q"], "keys": keys_grad, "W_q": du_sum.T @ query,
            "W_k": np.einsum("sba,sbk->ak", du, keys), "b": du_sum.sum(axis=0),
            "v": np.einsum("sb,sba->a", dscores, z)}


BACKWARD_MISTAKES = {
    "no_softmax_sum": "the softmax's backward pass lacks its sum term: ∂E/∂e_s = α_s (∂E/∂α_s − Σ_s' α_s' "
                      "∂E/∂α_s'); the weights are coupled, since they sum to 1",
    "no_tanh": "the derivative of tanh is missing: ∂E/∂u_s = (∂E/∂e_s) v ⊙ (1 − z_s²)",
    "value_path_only": "the keys' gradient has only the path through the context, α_s ∂E/∂c; each key also "
                       "sets its own score, which adds W_kᵀ ∂E/∂u_s",
    "score_path_only": "the keys' gradient has only the path through the scores; each key is also a value "
                       "mixed into the context, which adds α_s ∂E/∂c",
}


# --------------------------------------------------------------------------------------------
# 1. attention forward
# --------------------------------------------------------------------------------------------

ATTENTION_DEFAULTS = {"batch": 3, "source_len": 5, "query_size": 4, "key_size": 6, "attention_size": 7,
                      "masked": True, "scale": 1.0}


def _expect_cache(cache, z, weights, what):
    """The forward's cache must hold what the documented format says (the backward tests use it)."""
    if not isinstance(cache, (tuple, list)) or len(cache) != 5:
        raise CheckFailure(f"{what}: the cache is not in the documented format, {ATTENTION_CACHE}")
    expect_output(cache[3], z, "cache[3] (z)", axes=("S", "B", "A"))
    expect_output(cache[4], weights, "cache[4] (the weights)", axes=("S", "B"))


@with_cases
def forward(student, rng, **params):
    """``attention_forward(query, keys, params, mask)`` returns ``(context, weights, cache)``."""
    size = {**ATTENTION_DEFAULTS, **params}
    fname = "attention_forward"
    fn = student_function(student, fname)
    query, keys, p, mask = _attention_problem(rng, **size)
    want_context, want_weights, (_, _, _, z, _) = _attention_forward(query, keys, p, mask)
    args = {"query": query.copy(), "keys": keys.copy(), "params": copy_params(p), "mask": mask.copy()}
    out = call_student(fn, args["query"], args["keys"], args["params"], args["mask"])
    context, weights, cache = expect_tuple(out, 3, fname, "(context, weights, cache)")
    expect_unchanged({"query": query, "keys": keys, "params": p, "mask": mask}, args, fname)
    wrong = {key: forward_reference(query, keys, p, mask, key) for key in FORWARD_MISTAKES}
    expect_output(weights, want_weights, "weights", axes=("S", "B"),
                  mistakes={FORWARD_MISTAKES[k]: w for k, (_, w) in wrong.items()})
    expect_output(context, want_context, "context", axes=("B", "H_k"),
                  mistakes={FORWARD_MISTAKES[k]: c for k, (c, _) in wrong.items()})
    _expect_cache(cache, z, want_weights, fname)
    padded = int((mask == 0).sum())
    return f"{fname}: correct (B={size['batch']}, S={size['source_len']}, {padded} padded positions)"


# --------------------------------------------------------------------------------------------
# 2. attention backward
# --------------------------------------------------------------------------------------------

def _attention_axes():
    return {"query": ("B", "H_q"), "keys": ("S", "B", "H_k"), "W_q": ("A", "H_q"), "W_k": ("A", "H_k")}


@with_cases
def backward(student, rng, **params):
    """``attention_backward(dcontext, cache)`` returns the gradients of query, keys and the four
    parameters; the cache is the checker's (``ATTENTION_CACHE``)."""
    size = {**ATTENTION_DEFAULTS, **params}
    fname = "attention_backward"
    fn = student_function(student, fname)
    query, keys, p, mask = _attention_problem(rng, **size)
    _, _, cache = _attention_forward(query, keys, p, mask)
    dcontext = rng.normal(size=(size["batch"], size["key_size"]))
    want = _attention_backward(dcontext, cache)
    grads = call_backward(fn, dcontext.copy(), cache, what=fname, cache_doc=ATTENTION_CACHE)
    variants = {msg: backward_reference(dcontext, query, keys, p, mask, key) for key, msg in BACKWARD_MISTAKES.items()}
    expect_grads(grads, want, "grads", whole=f"the result of {fname}", keys=("query", "keys") + ATTENTION_PARAMS,
                 axes=_attention_axes(), variants=variants)
    return f"{fname}: all six gradients correct (B={size['batch']}, S={size['source_len']})"


# --------------------------------------------------------------------------------------------
# 3. one decoder step
# --------------------------------------------------------------------------------------------

STEP_DEFAULTS = {"batch": 3, "source_len": 5, "embed": 3, "hidden": 4, "attention_size": 5, "vocab": 6,
                 "masked": True}


def _step_problem(rng, batch, source_len, embed, hidden, attention_size, vocab, masked):
    """Decoder-step inputs; the keys have the decoder's size H (an encoder of the same size)."""
    params = {f"attention.{k}": v for k, v in attention_params(rng, hidden, hidden, attention_size).items()}
    params.update({f"decoder.{k}": v for k, v in random_params(rng, embed + hidden, hidden, 3).items()})
    params["head.weight"] = rng.normal(0.0, 1.0 / np.sqrt(hidden), (vocab, hidden))
    params["head.bias"] = rng.normal(0.0, 0.3, vocab)
    x, h_prev = rng.normal(size=(batch, embed)), rng.normal(0.0, 0.8, size=(batch, hidden))
    keys = rng.normal(size=(source_len, batch, hidden))
    return x, h_prev, keys, params, source_mask(rng, source_len, batch, masked)


def part(params, name):
    prefix = name + "."
    return {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)}


def _flat(params):
    """The step's parameters under the names rnnkit's attention_step_forward reads."""
    return {**part(params, "attention"), **part(params, "decoder")}


def step_reference(x, h_prev, keys, params, mask, mistake=None):
    """``(logits, h, weights)`` of one decoder step; ``mistake`` builds one typical error in."""
    context, weights = forward_reference(h_prev, keys, part(params, "attention"), mask)
    inputs = [context, x] if mistake == "concat_order" else [x, context]
    h, _ = _gru_forward(np.concatenate(inputs, axis=1), h_prev, part(params, "decoder"))
    state = h_prev if mistake == "logits_from_h_prev" else h
    return state @ params["head.weight"].T + params["head.bias"], h, weights


STEP_MISTAKES = {
    "concat_order": "the cell read [c_t; x_t]; it reads [x_t; c_t]: the first D columns of "
                    "decoder.weight_ih belong to the token's vector x, the last H_k to the context",
    "logits_from_h_prev": "the logits came from h_prev; they are W_y h_t + b_y, from the new state",
}


def _check_step(fn, rng, size):
    fname = "decoder_step"
    x, h_prev, keys, params, mask = _step_problem(rng, **size)
    h, _, want_weights, _ = _step_forward(x, h_prev, keys, _flat(params), "gru", mask)
    want_logits, _ = _linear_forward(h, params["head.weight"], params["head.bias"])
    args = {"x": x.copy(), "h_prev": h_prev.copy(), "keys": keys.copy(), "params": copy_params(params)}
    out = call_student(fn, args["x"], args["h_prev"], args["keys"], args["params"], mask.copy())
    logits, new_h, weights, _cache = expect_tuple(out, 4, fname, "(logits, h, weights, cache)")
    expect_unchanged({"x": x, "h_prev": h_prev, "keys": keys, "params": params}, args, fname)
    wrong = {STEP_MISTAKES[k]: step_reference(x, h_prev, keys, params, mask, k) for k in STEP_MISTAKES}
    expect_output(weights, want_weights, "weights", axes=("S", "B"))
    expect_output(new_h, h, "h", axes=("B", "H"), mistakes={m: v[1] for m, v in wrong.items()})
    expect_output(logits, want_logits, "logits", axes=("B", "V"), mistakes={m: v[0] for m, v in wrong.items()})
    return f"{fname}: correct (B={size['batch']}, S={size['source_len']}, D={size['embed']}, H={size['hidden']})"


@with_cases
def step(student, rng, **params):
    """``decoder_step(x, h_prev, keys, params, mask)`` returns ``(logits, h, weights, cache)``."""
    size = {**STEP_DEFAULTS, **params}
    fn = student_function(student, "decoder_step")
    return blame_parts(student, lambda: _check_step(fn, rng, size), [("attention_forward", forward)],
                       "decoder_step")


# --------------------------------------------------------------------------------------------
# 4. the decoder step's backward pass
# --------------------------------------------------------------------------------------------

def step_backward_reference(dlogits, dh_next, x, h_prev, keys, params, mask, mistake=None):
    """The decoder step's gradients written out; ``mistake`` builds one typical error in."""
    att, W_y = part(params, "attention"), params["head.weight"]
    context, _ = forward_reference(h_prev, keys, att, mask)
    h, gru_cache = _gru_forward(np.concatenate([x, context], axis=1), h_prev, part(params, "decoder"))
    dh = dlogits @ W_y + (0.0 if mistake == "no_dh_next" else dh_next)
    cell = _gru_backward(dh, gru_cache)
    D, H_k = x.shape[1], keys.shape[2]
    dcontext = cell["x"][:, :H_k] if mistake == "context_slice" else cell["x"][:, D:]
    a = backward_reference(dcontext, h_prev, keys, att, mask)
    grads = {"x": cell["x"][:, :D], "h_prev": cell["h_prev"] + (0.0 if mistake == "no_query_path" else a["query"]),
             "keys": a["keys"], "head.weight": dlogits.T @ h, "head.bias": dlogits.sum(axis=0)}
    grads.update({f"attention.{n}": a[n] for n in ATTENTION_PARAMS})
    grads.update({f"decoder.{n}": cell[n] for n in CELL_NAMES})
    return grads


STEP_BACKWARD_MISTAKES = {
    "no_query_path": "the gradient of h_prev misses the attention's path: h_prev is also the query, so add "
                     "the query's gradient from attention_backward to the cell's",
    "no_dh_next": "dh_next was not added: the new state also feeds the next step, so its gradient is "
                  "W_yᵀ dlogits + dh_next",
    "context_slice": "the context's gradient is the LAST H_k columns of the cell's input gradient (the input "
                     "is [x_t; c_t]); x gets the first D",
}


def _step_axes():
    return {"x": ("B", "D"), "h_prev": ("B", "H"), "keys": ("S", "B", "H_k"), "head.weight": ("V", "H")}


def _check_step_backward(fn, rng, size, zero_dh_next):
    fname = "decoder_step_backward"
    x, h_prev, keys, params, mask = _step_problem(rng, **{k: size[k] for k in STEP_DEFAULTS})
    h, _, _, ref_cache = _step_forward(x, h_prev, keys, _flat(params), "gru", mask)
    attention_cache, gru_cache = ref_cache[0], ref_cache[1]
    cache = (attention_cache, gru_cache, h, copy_params(params))
    dlogits = rng.normal(size=(size["batch"], size["vocab"]))
    dh_next = np.zeros_like(h) if zero_dh_next else rng.normal(size=h.shape)
    g = _step_backward(dlogits @ params["head.weight"] + dh_next, ref_cache)
    want = {"x": g["x"], "h_prev": g["h_prev"], "keys": g["keys"], "head.weight": dlogits.T @ h,
            "head.bias": dlogits.sum(axis=0)}
    want.update({f"attention.{n}": g[n] for n in ATTENTION_PARAMS})
    want.update({f"decoder.{n}": g[n] for n in CELL_NAMES})
    grads = call_backward(fn, dlogits.copy(), dh_next.copy(), cache, what=fname, cache_doc=STEP_CACHE)
    variants = {msg: step_backward_reference(dlogits, dh_next, x, h_prev, keys, params, mask, key)
                for key, msg in STEP_BACKWARD_MISTAKES.items() if not (zero_dh_next and key == "no_dh_next")}
    expect_grads(grads, want, "grads", whole=f"the result of {fname}", keys=("x", "h_prev", "keys") + STEP_PARAMS,
                 axes=_step_axes(), variants=variants)
    return f"{fname}: all {3 + len(STEP_PARAMS)} gradients correct (B={size['batch']}, S={size['source_len']})"


@with_cases
def step_backward(student, rng, zero_dh_next=False, **params):
    """``decoder_step_backward(dlogits, dh_next, cache)`` returns the gradients of x, h_prev, keys and
    every parameter; the cache is the checker's (``STEP_CACHE``)."""
    size = {**STEP_DEFAULTS, **params}
    fn = student_function(student, "decoder_step_backward")
    return blame_parts(student, lambda: _check_step_backward(fn, rng, size, zero_dh_next),
                       [("attention_backward", backward)], "decoder_step_backward")
