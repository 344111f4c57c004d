"""Helpers shared by the checks of exercises 6 to 9 (GRU, LSTM, bidirectional and deep RNNs).

* inputs: random parameters in torch's layout, and gate-block surgery (permuted or negated
  blocks) for building the values that typical mistakes produce;
* comparisons beyond :mod:`course.checks.expect`: mistakes that change an output's shape, and
  gradient dicts compared key by key against whole wrong variants;
* backward checks: the cache a backward pass receives is built by the checker in the format the
  notebook documents, and an error in reading it says so;
* several cases in one check (``cases=[{...}, ...]``), with a failure naming its case.

Not a spec module: no test cell calls ``check("gated...")`` (it has no ``SPECS``).
"""
from __future__ import annotations

import functools

import numpy as np

from .expect import CheckFailure, call_student, copy_params, expect_close, expect_grads_dict

# --------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------


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


STACKED = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def permute_blocks(params, order, hidden):
    """The parameters with their gate blocks rearranged: block k of the result is block
    ``order[k]`` of ``params`` (only the stacked arrays; (H,) extras are kept)."""
    out = copy_params(params)
    for name in STACKED:
        if name in params:
            blocks = [params[name][k * hidden:(k + 1) * hidden] for k in range(len(order))]
            out[name] = np.concatenate([blocks[k] for k in order], axis=0)
    return out


def negate_block(params, k, hidden, names=STACKED):
    """The parameters with the rows of gate block ``k`` negated in the arrays ``names``."""
    out = copy_params(params)
    for name in names:
        if name in params:
            out[name][k * hidden:(k + 1) * hidden] *= -1
    return out


# --------------------------------------------------------------------------------------------
# comparisons
# --------------------------------------------------------------------------------------------

def expect_shaped_mistakes(got, want, name, mistakes):
    """Known mistakes that give an array of a *different* shape than expected (e.g. 'mul'
    computed as a concatenation): name them before the plain shape message would."""
    if not isinstance(got, np.ndarray) or got.dtype.kind not in "biuf":
        return
    for message, wrong in (mistakes or {}).items():
        wrong = np.asarray(wrong, dtype=np.float64)
        if (wrong.shape != np.shape(want) and got.shape == wrong.shape
                and np.allclose(got.astype(np.float64), wrong)):
            raise CheckFailure(f"{name} is wrong: {message}")


def expect_output(value, want, name, *, axes=None, mistakes=None, scales=None, rtol=1e-6, atol=1e-8):
    """:func:`~course.checks.expect.expect_close`, after recognising mistakes of another shape."""
    expect_shaped_mistakes(value, want, name, mistakes)
    return expect_close(value, want, name, axes=axes, mistakes=mistakes, scales=scales, rtol=rtol, atol=atol)


def expect_grads(grads, want: dict, name: str, *, whole: str | None = None, keys=None, axes=None, variants=None,
                 scales=None, shape_hint: str | None = None, rtol=1e-6, atol=1e-8):
    """Compare the student's gradient dict ``grads`` with the reference ``want``, key by key
    (``keys``, or all of ``want`` in its order). ``name`` calls the dict in messages ("grads"
    gives "grads['x']"), ``whole`` when it is missing or incomplete (default: ``name``).

    ``variants`` maps a message to the whole gradient dict that a known mistake produces: each key
    is compared with the same key of every variant, so the message names the mistake whichever
    gradient shows it first. ``shape_hint`` explains a gradient of the wrong shape."""
    keys = tuple(want) if keys is None else tuple(keys)
    expect_grads_dict(grads, keys, whole or name)
    for key in keys:
        label, value = f"{name}[{key!r}]", grads[key]
        if shape_hint and isinstance(value, np.ndarray) and value.shape != np.shape(want[key]):
            raise CheckFailure(f"{label} has shape {value.shape}, expected {np.shape(want[key])}: {shape_hint}")
        mistakes = {msg: var[key] for msg, var in (variants or {}).items() if key in var}
        expect_output(value, want[key], label, axes=(axes or {}).get(key), mistakes=mistakes, scales=scales,
                      rtol=rtol, atol=atol)


# --------------------------------------------------------------------------------------------
# BPTT over a sequence: the gradients that typical mistakes give
# --------------------------------------------------------------------------------------------

#: the two ways to get the gradient of the final state wrong, as switches of a BPTT variant
DH_LAST_MISTAKES = (
    ("dh_last was not used: the gradient of the final state joins dh at the last step", dict(dh_last_mode="none")),
    ("dh_last was added at every step; it is the gradient of the final state only, so it joins at the last step "
     "and reaches earlier steps through the chain", dict(dh_last_mode="every")),
)


def mistakes_by_key(variant, messages, want, keys):
    """``{key: {message: value}}`` for a backward pass whose result is a dict: ``variant(**flags)`` is
    the result with a mistake switched on, for each ``(message, flags)`` of ``messages``; a message is
    kept for the keys where that mistake changes the value."""
    mistakes = {k: {} for k in keys}
    for message, flags in messages:
        wrong = variant(**flags)
        for key in keys:
            if not np.allclose(wrong[key], want[key]) and message not in mistakes[key]:
                mistakes[key][message] = wrong[key]
    return mistakes


# --------------------------------------------------------------------------------------------
# backward passes: the checker's cache, in the documented format
# --------------------------------------------------------------------------------------------

#: errors of code that reads a cache in another format than it got (in course.student.student_error's
#: words, "<what> raised <type>: <message>")
_READING_ERRORS = ("IndexError", "KeyError", "AttributeError", "TypeError")


def call_backward(fn, *args, what: str, cache_doc: str):
    """Call the student's backward pass on a cache that the checker built (``cache_doc`` says what
    it holds, as the notebook documents it): a backward check does not depend on the student's
    forward pass. When the student's code fails the way code that expects another cache fails
    (unpacking, indexing, attributes), the message recalls that format."""
    try:
        return call_student(fn, *args, what=what)
    except CheckFailure as failure:
        message = str(failure)
        if not (message.startswith(tuple(f"{what} raised {kind}" for kind in _READING_ERRORS))
                or (message.startswith(f"{what} raised ValueError") and "values to unpack" in message)):
            raise
        raise CheckFailure(f"{message}. The test gives {what} the cache in the format the notebook documents, "
                           f"{cache_doc}; make your forward pass return exactly that, and read it in that "
                           "order") from None


# --------------------------------------------------------------------------------------------
# several cases in one check
# --------------------------------------------------------------------------------------------

_WORDS = {"batch": "B", "input_size": "I", "hidden": "H", "hidden_size": "H", "length": "T", "T": "T",
          "num_layers": "L", "mid_size": "M", "out_size": "K"}
_SPECIAL = {("zero_state", True): "zero initial state", ("scale", 3.0): "large weights (saturated gates)",
            ("zero_dc", True): "dc = 0", ("zero_dh", True): "dh = 0", ("lengths_none", True): "lengths=None",
            ("padded", False): "every length = T", ("features", None): "x of shape (T, B)",
            ("unknown", True): "an unknown mode", ("bias", False): "no biases", ("h0_kind", "zeros"): "zero h0",
            ("d_h_n", False): "d_h_n=None"}


def describe(case: dict) -> str:
    """A test case's parameters in the student's symbols: "B=1, H=1, zero initial state"."""
    words = []
    for key, value in case.items():
        if not isinstance(value, (list, dict)) and (key, value) in _SPECIAL:
            words.append(_SPECIAL[(key, value)])
        elif key in _WORDS:
            words.append(f"{_WORDS[key]}={value}")
        elif value is True:
            words.append(key.replace("_", " "))
        else:
            words.append(f"{key}={value}")
    return ", ".join(words)


def with_cases(spec):
    """Let a spec run several cases in one check: ``check("gru.forward", cases=[{"batch": 1},
    {"hidden": 1}])``. Each case's parameters override the others; a failure says which case
    failed."""

    @functools.wraps(spec)
    def run(student, rng, cases=None, **params):
        if not cases:
            return spec(student, rng, **params)
        notes = []
        for case in cases:
            try:
                notes.append(spec(student, rng, **{**params, **case}))
            except CheckFailure as failure:
                raise CheckFailure(f"[case {describe(case)}] {failure}") from None
        return notes[0].split(":")[0] + f": correct in all {len(cases)} cases (" + "; ".join(
            describe(c) for c in cases) + ")"

    return run
