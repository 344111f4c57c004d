"""Helpers shared by the specs of the gated-cell and bidirectional exercises (gru, lstm,
bidirectional): random parameters in torch's layout, gate-block surgery for building the
values that typical mistakes produce, and comparisons of forward outputs and gradient dicts.

Not a spec module itself: no test cell calls ``check("_cells...")``.
"""
from __future__ import annotations

import functools

import numpy as np

from rnnkit.checks.core import CheckFailure, call_student, expect_array, expect_close

# pristine references (student code runs later in the same process)
_allclose = np.allclose
_isinstance = isinstance
_dict = dict
_tuple = tuple
_list = list


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def random_params(rng, input_size, hidden, gates, scale=0.5, bias=True, extra=()):
    """torch-layout parameters: weight_ih (G*H, I), weight_hh (G*H, H), bias_ih/bias_hh (G*H,),
    plus one (H,) vector for each name in ``extra`` (peephole weights)."""
    GH = gates * hidden
    params = {"weight_ih": rng.normal(0.0, scale, (GH, input_size)),
              "weight_hh": rng.normal(0.0, scale, (GH, hidden))}
    if bias:
        params["bias_ih"] = rng.normal(0.0, scale / 2, GH)
        params["bias_hh"] = rng.normal(0.0, scale / 2, GH)
    for name in extra:
        params[name] = rng.normal(0.0, scale, hidden)
    return params


def copy_params(params):
    return {k: np.array(v, copy=True) for k, v in params.items()}


def permute_blocks(params, order, hidden):
    """The parameters with their gate blocks rearranged: block k of the result is block
    ``order[k]`` of ``params`` (only the stacked arrays; (H,) extras are kept)."""
    out = copy_params(params)
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        if name in params:
            blocks = [params[name][k * hidden:(k + 1) * hidden] for k in range(len(order))]
            out[name] = np.concatenate([blocks[k] for k in order], axis=0)
    return out


def negate_block(params, k, hidden, names=("weight_ih", "weight_hh", "bias_ih", "bias_hh")):
    """The parameters with the rows of gate block ``k`` negated in the arrays ``names``."""
    out = copy_params(params)
    for name in names:
        if name in params:
            out[name][k * hidden:(k + 1) * hidden] *= -1
    return out


def unpack_pair(out, fname, what):
    """``out`` must be a pair; ``what`` names it for the message, e.g. "(h, cache)"."""
    if not _isinstance(out, (_tuple, _list)) or len(out) != 2:
        kind = type(out).__name__
        raise CheckFailure(f"{fname} should return a pair {what}, got a {kind}"
                           + (f" of length {len(out)}" if _isinstance(out, (_tuple, _list)) else ""))
    return out[0], out[1]


def close(a, b, rtol=1e-6, atol=1e-8):
    """True when ``a`` is a float numpy array of b's shape and close to it (never raises)."""
    try:
        a = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return a.shape == np.shape(b) and bool(_allclose(a, b, rtol=rtol, atol=atol))


_LEAVE_INPUTS = ("leave the inputs as they are: copy an array (a.copy()) before you change entries of it, "
                 "and write a = a + b rather than a += b")


def expect_unchanged(originals: dict, passed: dict, fname: str):
    """Raise if the student's function changed one of its input arrays in place."""
    for name, (orig, given) in ((n, (originals[n], passed[n])) for n in originals):
        if _isinstance(given, _dict):
            for k in orig:
                if not np.array_equal(orig[k], given[k]):
                    raise CheckFailure(f"{fname} changed {name}[{k!r}] in place; {_LEAVE_INPUTS}")
        elif not np.array_equal(orig, given):
            raise CheckFailure(f"{fname} changed its input {name} in place; {_LEAVE_INPUTS}")


def expect_shaped_mistakes(got, want, name, mistakes):
    """Known mistakes that produce an array of a *different* shape than expected (e.g. mul
    computed as a concatenation): recognise them before the plain shape message."""
    try:
        got_arr = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return
    for message, wrong in (mistakes or {}).items():
        wrong = np.asarray(wrong, dtype=np.float64)
        if wrong.shape != np.shape(want) and got_arr.shape == wrong.shape and _allclose(got_arr, wrong):
            raise CheckFailure(f"{name} is wrong: {message}")


def expect_grads(grads, want: dict, fname: str, keys, *, axes: dict, variants: dict, scales=None):
    """Compare the student's gradient dict with rnnkit's, key by key.

    ``variants`` maps a message to the whole gradient dict a known mistake produces; each key is
    compared against the same key of every variant, so the message names the mistake whichever
    gradient shows it first.
    """
    if not _isinstance(grads, _dict):
        raise CheckFailure(f"{fname} should return a dict of gradients with keys {list(keys)}, "
                           f"got a {type(grads).__name__}")
    missing = [k for k in keys if k not in grads]
    if missing:
        raise CheckFailure(f"the dict returned by {fname} has no key {', '.join(map(repr, missing))} "
                           f"(it has {sorted(map(str, grads))}; expected {list(keys)})")
    for key in keys:
        mistakes = {msg: var[key] for msg, var in variants.items() if key in var}
        check_array_out(grads[key], want[key], f"grads[{key!r}]", axes=axes.get(key), mistakes=mistakes,
                        scales=scales)


def forward_or_fail(fn, args, want_parts, fname, what, test_name):
    """Call the student's forward pass (for a backward check) and make sure it is right first.

    Returns the cache. ``want_parts`` is a tuple of the arrays the forward returns besides the
    cache, in order (e.g. ``(h,)`` or ``(h, c)``)."""
    out = call_student(fn, *args)
    first, cache = unpack_pair(out, fname, what)
    got_parts = (first,) if len(want_parts) == 1 else first
    ok = _isinstance(got_parts, (_tuple, _list)) and len(got_parts) == len(want_parts) and all(
        close(g, w) for g, w in zip(got_parts, want_parts))
    if not ok:
        raise CheckFailure(f"{fname} is not right yet (see the test of {test_name}); the backward pass "
                           "works from its cache, so fix the forward pass first")
    return cache


def check_array_out(value, want, name, axes=None, mistakes=None, scales=None):
    """expect_close, after recognising mistakes with a different shape."""
    expect_shaped_mistakes(value, want, name, mistakes)
    return expect_close(value, want, name, axes=axes, mistakes=mistakes, scales=scales)


_WORDS = {"batch": "B", "input_size": "I", "hidden": "H", "length": "T", "T": "T"}


_SPECIAL = {("zero_state", True): "zero initial state", ("scale", 3.0): "large weights (saturated gates)",
            ("zero_dc", True): "dc = 0", ("zero_dh", True): "dh = 0", ("lengths_none", True): "lengths=None",
            ("padded", False): "every length = T", ("features", None): "x of shape (T, B)",
            ("unknown", True): "an unknown mode", ("bias", False): "no biases"}


def describe(case: dict) -> str:
    """A test case's parameters in the student's symbols: "B=1, H=1, zero initial state"."""
    words = []
    for key, value in case.items():
        if (key, value) in _SPECIAL:
            words.append(_SPECIAL[(key, value)])
        elif key in _WORDS:
            words.append(f"{_WORDS[key]}={value}")
        elif value is True:
            words.append(key.replace("_", " "))
        else:
            words.append(f"{key}={value}")
    return ", ".join(words)


def with_cases(spec):
    """Let a spec run several cases in one check (one process start instead of several):
    ``check("gru.forward", cases=[{"batch": 1}, {"hidden": 1}])``. Each case's parameters override
    the others; a failure says which case failed."""

    @functools.wraps(spec)
    def run(ns, rng, cases=None, **params):
        if not cases:
            return spec(ns, rng, **params)
        notes = []
        for case in cases:
            try:
                notes.append(spec(ns, rng, **{**params, **case}))
            except CheckFailure as failure:
                raise CheckFailure(f"[case {describe(case)}] {failure}") from None
        return notes[0].split(":")[0] + f": correct in all {len(cases)} cases (" + "; ".join(
            describe(c) for c in cases) + ")"

    return run


__all__ = ["describe", "with_cases", "sigmoid", "random_params", "copy_params", "permute_blocks", "negate_block",
           "unpack_pair", "close", "expect_unchanged", "expect_shaped_mistakes", "expect_grads", "forward_or_fail",
           "check_array_out", "expect_array"]
