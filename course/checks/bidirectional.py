"""Checks for exercise 8, bidirectional RNNs: reversing each sequence within its length, a masked
forward pass, the four merge modes, the bidirectional wrapper with variable lengths, and the backward
passes of all three: masked BPTT, the merge's backward and the bidirectional layer's.

The inner cell is rnnkit's vanilla step (``rnn_step_forward``, exercise 2's topic), which students
may import here: the exercise is about the wrapper around it. Everything that runs a sequence or a
direction (rnnkit.sequence, rnnkit.modules) is not installed where the notebook is graded.

Expected values of the wrapper come from ``rnnkit.RNN(..., bidirectional=True, merge_mode=...)``
run with ``lengths=`` (its ``backward`` for the gradients); the values that typical mistakes produce come from
``rnnkit.sequence_forward`` with the mistake applied (no mask, a whole-array reversal, outputs not
flipped back, ...). The backward checks get caches that the checker builds with rnnkit's step, in
the format the notebook documents (``CACHE_DOC``, ``BIDIRECTIONAL_CACHE_DOC``).
"""
from __future__ import annotations

import numpy as np

from rnnkit.cells.rnn import rnn_step_backward, rnn_step_forward
from rnnkit.modules import RNN
from rnnkit.sequence import lengths_to_mask, sequence_backward, sequence_forward
from rnnkit.stacked import merge_backward as _merge_backward

from ..sandbox import Policy
from . import HELPERS
from .expect import (CheckFailure, blame_parts, call_student, copy_params, expect_array, expect_close,
                     expect_grads_dict, expect_tuple, expect_unchanged, kind_of, student_function)
from .gated import (DH_LAST_MISTAKES, call_backward, expect_output, expect_shaped_mistakes, mistakes_by_key,
                    random_params, with_cases)

#: what the student's notebook may import when it is graded: the vanilla step of exercise 2 (the
#: point here is the wrapper around it; rnnkit.cells comes whole, with its backend), nothing that
#: runs a sequence or a direction (rnnkit.sequence, rnnkit.modules)
POLICY = Policy(packages=("numpy", "matplotlib", "array_api_compat"),
                rnnkit=HELPERS + ("rnnkit.cells.rnn",))
SPECS = ("reverse_within_lengths", "rnn_forward", "merge", "bidirectional_forward", "rnn_backward",
         "merge_backward", "bidirectional_backward")
PARAM_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")

MODES = ("concat", "sum", "mul", "ave")
WHOLE_REVERSAL = ("the backward direction must start at each sequence's own last real step (reverse each "
                  "sequence within its length); you reversed the padded array as a whole")


def _lengths(rng, batch, T, padded):
    if not padded:
        return np.full(batch, T, dtype=np.int64)
    lengths = rng.integers(1, T + 1, size=batch).astype(np.int64)
    lengths[rng.integers(batch)] = T  # the longest sets T
    if batch > 1 and T > 1 and lengths.min() == T:
        lengths[(int(np.argmax(lengths)) + 1) % batch] = rng.integers(1, T)
    return lengths


def reverse_reference(x, lengths):
    """x (T, B, ...) with each sequence's first lengths[b] steps reversed; padding left in place."""
    if lengths is None:
        return x[::-1].copy()
    out = x.copy()
    for b, L in enumerate(lengths):
        out[:L, b] = x[:L, b][::-1]
    return out


# ------------------------------------------------------------------------------------ reversal

@with_cases
def reverse_within_lengths(student, rng, length=6, batch=4, features=3, padded=True, lengths_none=False):
    """``reverse_within_lengths(x, lengths)``: x (T, B, ...) -> same shape."""
    fname = "reverse_within_lengths"
    fn = student_function(student, fname)
    T = length
    shape = (T, batch) if features is None else (T, batch, features)
    x = rng.normal(size=shape)
    lengths = None if lengths_none else _lengths(rng, batch, T, padded)
    want = reverse_reference(x, lengths)
    args = {"x": x.copy(), "lengths": None if lengths is None else lengths.copy()}
    got = call_student(fn, args["x"], args["lengths"])
    expect_unchanged({"x": x}, {"x": args["x"]}, fname)
    axes = ("T", "B") if features is None else ("T", "B", "F")
    mistakes = {}
    if lengths is not None:
        kept_padding = x.copy()
        zeroed = reverse_reference(x, lengths)
        mask = np.arange(T)[:, None] < lengths[None, :]
        zeroed[~mask] = 0.0
        shifted = x.copy()
        for b, L in enumerate(lengths):
            shifted[:L, b] = x[:L, b][::-1]
            shifted[:L, b] = np.roll(shifted[:L, b], 1, axis=0)
        mistakes = {
            "you reversed the padded array as a whole: a sequence shorter than T then starts with its padding "
            "and its first step lands at position T−1. Reverse each sequence within its own length: position "
            "t < L_b gets step L_b − 1 − t": x[::-1],
            "the real steps are not reversed (they should be read from the last to the first)": kept_padding,
            "the padded positions (t ≥ L_b) should keep their values, so that reversing twice gives x back; "
            "you set them to 0": zeroed,
        }
    expect_output(got, want, "the result", axes=axes, mistakes=mistakes)
    return f"{fname}: correct for T={T}, B={batch}" + (" without lengths" if lengths is None else
                                                       f", lengths {lengths.tolist()}")


# ---------------------------------------------------------------------------- masked forward

def _run(x, params, mask=None, reverse=False, h0=None):
    hs, hT, _ = sequence_forward("rnn", x, h0, params, mask=mask, reverse=reverse)
    return hs, hT


def _masked_run_inputs(rng, T, batch, input_size, hidden, padded, lengths_none):
    """Parameters, x (T, B, I), h0 (B, H), lengths (or None) and the mask of one direction's run."""
    params = random_params(rng, input_size, hidden, 1)
    x = rng.normal(size=(T, batch, input_size))
    h0 = rng.normal(0.0, 0.5, size=(batch, hidden))
    lengths = None if lengths_none else _lengths(rng, batch, T, padded)
    return params, x, h0, lengths, None if lengths is None else lengths_to_mask(lengths, T)


@with_cases
def rnn_forward(student, rng, length=5, batch=3, input_size=4, hidden=6, padded=True, lengths_none=False):
    """``rnn_forward(x, h0, params, lengths)`` returns ``(hs (T, B, H), h_last (B, H))``."""
    fname = "rnn_forward"
    fn = student_function(student, fname)
    T = length
    params, x, h0, lengths, mask = _masked_run_inputs(rng, length, batch, input_size, hidden, padded, lengths_none)
    want_hs, want_h = _run(x, params, mask, h0=h0)
    args = {"x": x.copy(), "h0": h0.copy(), "params": copy_params(params)}
    out = call_student(fn, args["x"], args["h0"], args["params"], None if lengths is None else lengths.copy())
    hs, h_last, cache = expect_tuple(out, 3, fname, "(hs, h_last, cache)")
    expect_unchanged({"x": x, "h0": h0, "params": params}, args, fname)
    free_hs, free_h = _run(x, params, None, h0=h0)
    expect_close(hs, want_hs, "hs", axes=("T", "B", "H"), mistakes={
        "hs must be 0 at the padded steps (t ≥ length), where the sequence has ended": free_hs,
    })
    B = np.arange(batch)
    too_early = want_hs[np.maximum(lengths - 2, 0), B] if lengths is not None else want_hs[-2 % T]
    expect_close(h_last, want_h, "h_last", axes=("B", "H"), mistakes={
        "the state kept changing on the padded steps; it must stay as it was after each sequence's last "
        "real step (use the new state only where t < length)": free_h,
        "h_last is the output at t = T−1, which is 0 for a sequence shorter than T; take each sequence's "
        "state after its own last real step (t = length − 1)": want_hs[-1],
        "h_last is taken one step too early: the last real step of sequence b is t = length_b − 1": too_early,
    })
    _expect_run_cache(cache, step_caches(x, h0, params, lengths), lengths, batch, "cache")
    return f"{fname}: correct for T={T}, B={batch}" + (" without lengths" if lengths is None else
                                                       f", lengths {lengths.tolist()}")


# ------------------------------------------------------------------------------------- merging

def merge_reference(f, b, mode):
    if mode == "concat":
        return np.concatenate([f, b], axis=-1)
    if mode == "sum":
        return f + b
    if mode == "mul":
        return f * b
    return (f + b) / 2


def _merge_mistakes(f, b, mode):
    concat = np.concatenate([f, b], axis=-1)
    mistakes = {
        "concat": {"the backward states come first; the forward direction fills the first H features "
                   "and the backward direction the last H (as in torch)": np.concatenate([b, f], axis=-1)},
        "sum": {"'sum' adds the two directions, (…, H); you returned their concatenation": concat,
                "'sum' adds the two directions; you returned their mean": (f + b) / 2},
        "mul": {"'mul' is the element-wise product, (…, H); you returned the concatenation": concat,
                "'mul' is the element-wise product h_fwd ⊙ h_bwd; you returned the sum": f + b},
        "ave": {"'ave' is the mean (h_fwd + h_bwd) / 2; you returned the sum": f + b,
                "'ave' is the mean of the two directions, (…, H); you returned their concatenation": concat,
                "'ave' averages the two directions entry by entry; you averaged over the feature axis":
                    np.mean(concat, axis=-1, keepdims=True)},
    }
    return mistakes[mode]


@with_cases
def merge(student, rng, length=4, batch=3, hidden=5, modes=MODES, unknown=False):
    """``merge(h_fwd, h_bwd, mode)`` for mode in concat, sum, mul, ave; ValueError otherwise."""
    fn = student_function(student, "merge")
    f, b = rng.normal(size=(2, length, batch, hidden))
    for mode in modes:
        want = merge_reference(f, b, mode)
        got = call_student(fn, f.copy(), b.copy(), mode, what=f"merge(h_fwd, h_bwd, {mode!r})")
        axes = ("T", "B", "2H" if mode == "concat" else "H")
        expect_output(got, want, f"merge(h_fwd, h_bwd, {mode!r})", axes=axes, mistakes=_merge_mistakes(f, b, mode))
    if unknown:
        _expect_value_error(fn, f, b)
    return f"merge: correct for {', '.join(modes)}" + (" and refuses an unknown mode" if unknown else "")


def _expect_value_error(fn, f, b):
    """``merge(f, b, 'max')`` must raise ValueError. The student's exception reaches the checker as
    the message of a CheckFailure, in the words of course.student.student_error: "<what> raised
    <type>: ..." (or "<what> is not implemented yet ...")."""
    what = "merge(h_fwd, h_bwd, 'max')"
    try:
        call_student(fn, f.copy(), b.copy(), "max", what=what)
    except CheckFailure as failure:
        message = str(failure)
        if message.startswith(f"{what} raised ValueError"):
            return
        if message.startswith(f"{what} is not implemented yet"):
            raise
        raise CheckFailure(f"{message}; an unknown mode should raise ValueError naming the modes you "
                           "accept") from None
    raise CheckFailure(f"{what} returned a value; an unknown mode should raise ValueError naming the modes "
                       "you accept (a typo must not pass silently)")


# ------------------------------------------------------------------------------- the wrapper

def _module_reference(x, pf, pb, mode, lengths):
    T, B, I = x.shape
    H = pf["weight_hh"].shape[1]
    m = RNN(I, H, bidirectional=True, merge_mode=mode)
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        m.params[f"{name}_l0"] = pf[name]
        m.params[f"{name}_l0_reverse"] = pb[name]
    return m(x, lengths=lengths)


@with_cases
def bidirectional_forward(student, rng, length=6, batch=4, input_size=3, hidden=5, mode="concat", padded=True,
                          lengths_none=False):
    """``bidirectional_forward(x, params_fwd, params_bwd, merge_mode, lengths)`` returns
    ``(out (T, B, 2H or H), h_n (2, B, H))``. When it is wrong and one of the student's functions of
    sections 1-3 fails its own check, the message names that function too."""
    parts = [("reverse_within_lengths", reverse_within_lengths), ("rnn_forward", rnn_forward), ("merge", merge)]
    return blame_parts(student, lambda: _check_bidirectional(student, rng, length, batch, input_size, hidden, mode,
                                                             padded, lengths_none),
                       parts, "bidirectional_forward")


def _layer_inputs(rng, T, B, input_size, hidden, padded, lengths_none):
    """Both directions' parameters, x (T, B, I) and the lengths (or None) of one layer's test."""
    pf, pb = random_params(rng, input_size, hidden, 1), random_params(rng, input_size, hidden, 1)
    x = rng.normal(size=(T, B, input_size))
    return pf, pb, x, None if lengths_none else _lengths(rng, B, T, padded)


def _check_bidirectional(student, rng, length, batch, input_size, hidden, mode, padded, lengths_none):
    fname = "bidirectional_forward"
    fn = student_function(student, fname)
    T, B = length, batch
    pf, pb, x, lengths = _layer_inputs(rng, length, batch, input_size, hidden, padded, lengths_none)
    want_out, want_hn = _module_reference(x, pf, pb, mode, lengths)

    args = {"x": x.copy(), "params_fwd": copy_params(pf), "params_bwd": copy_params(pb)}
    out = call_student(fn, args["x"], args["params_fwd"], args["params_bwd"], mode,
                       None if lengths is None else lengths.copy())
    got_out, got_hn, got_cache = expect_tuple(out, 3, fname, "(out, h_n, cache)")
    expect_unchanged({"x": x, "params_fwd": pf, "params_bwd": pb}, args, fname)

    mask = None if lengths is None else lengths_to_mask(lengths, T)
    runs = _direction_runs(x, pf, pb, mask)
    real = np.ones((T, B, 1), bool) if mask is None else (mask > 0)[:, :, None]
    out_mistakes = _out_mistakes(runs, x, pb, mask, lengths, mode)
    axes = ("T", "B", "2H" if mode == "concat" else "H")
    # the shape first (recognising shape-changing mistakes), then the real steps, then the padded ones
    expect_shaped_mistakes(got_out, want_out, "out", out_mistakes)
    got_out = expect_array(got_out, "out", shape=want_out.shape, axes=axes)
    expect_close(np.where(real, got_out, 0.0), want_out, "out at the real steps (t < length)", axes=axes,
                 mistakes={m: np.where(real, v, 0.0) for m, v in out_mistakes.items() if v.shape == want_out.shape})
    if not np.allclose(got_out[~real[..., 0]], 0.0):
        raise CheckFailure("out must be 0 at the padded steps (t ≥ length): both directions output 0 there, "
                           "as with torch's packed sequences")
    expect_close(got_hn, want_hn, "h_n", axes=("2", "B", "H"), mistakes=_hn_mistakes(runs, x, pf, pb, lengths, T, B))
    _expect_bidirectional_cache(got_cache, bidirectional_cache(x, pf, pb, mode, lengths), B)
    return (f"{fname}: out, h_n and the cache correct (mode {mode!r}, T={T}, B={B}"
            + (", no lengths)" if lengths is None else f", lengths {lengths.tolist()})"))


def _direction_runs(x, pf, pb, mask) -> dict:
    """The two directions as rnnkit computes them: states (T, B, H) and final states (B, H)."""
    fwd_hs, fwd_h = _run(x, pf, mask)
    bwd_hs, bwd_h = _run(x, pb, mask, reverse=True)
    return {"fwd_hs": fwd_hs, "fwd_h": fwd_h, "bwd_hs": bwd_hs, "bwd_h": bwd_h}


def _out_mistakes(runs, x, pb, mask, lengths, mode) -> dict:
    """The outputs that typical mistakes of the wrapper produce, by the message that names each."""
    fwd_hs, bwd_hs = runs["fwd_hs"], runs["bwd_hs"]
    whole_hs, _ = _run(x, pb, None, reverse=True)                  # reads the padding first
    rev_hs, _ = _run(x[::-1], pb, mask)                            # x[::-1] run with the lengths mask

    def merged(f, b):
        return merge_reference(f, b, mode)

    mistakes = {
        "the backward direction's outputs are not reversed back: after running it on the reversed "
        "sequence, reverse its outputs again (within each length) so that position t holds the "
        "backward state of x_t": merged(fwd_hs, reverse_reference(bwd_hs, lengths)),
        WHOLE_REVERSAL + "; here it ran through the padding before the real steps":
            merged(fwd_hs, whole_hs),
        WHOLE_REVERSAL + "; here the lengths then marked the wrong positions of the reversed array as real":
            merged(fwd_hs, rev_hs[::-1]),
        "the backward direction reads the sequence forwards: it must read x_T, …, x_1":
            merged(fwd_hs, _run(x, pb, mask)[0]),
    }
    if mode == "concat":
        mistakes["the backward states come first; torch puts the forward direction in the first H "
                 "features"] = np.concatenate([bwd_hs, fwd_hs], axis=-1)
    if mode == "ave":
        mistakes["'ave' is the mean (h_fwd + h_bwd) / 2; you returned the sum"] = fwd_hs + bwd_hs
    if mode in ("sum", "mul", "ave"):
        mistakes[f"'{mode}' gives (T, B, H); you returned the concatenation"] = np.concatenate(
            [fwd_hs, bwd_hs], axis=-1)
    return mistakes


def _hn_mistakes(runs, x, pf, pb, lengths, T, B) -> dict:
    """The final states that typical mistakes produce, by the message that names each."""
    fwd_hs, fwd_h, bwd_hs, bwd_h = runs["fwd_hs"], runs["fwd_h"], runs["bwd_hs"], runs["bwd_h"]
    rows = np.arange(B)
    last = (lengths if lengths is not None else np.full(B, T)) - 1
    return {
        "h_n[1] must be the backward direction's final state, its state after reading x_1 (position 0); "
        "you took its output at the last position, which has read only the last step":
            np.stack([fwd_h, bwd_hs[last, rows]]),
        "h_n[1] must be the backward direction's final state, its state after reading x_1 (position 0); "
        "you took its output at t = T−1":
            np.stack([fwd_h, bwd_hs[-1]]),
        "h_n is in the wrong order: h_n[0] is the forward direction's final state, h_n[1] the backward one's":
            np.stack([bwd_h, fwd_h]),
        "h_n[0] must be the forward state after each sequence's last real step, not at t = T−1":
            np.stack([fwd_hs[-1], bwd_h]),
        "the final states kept changing on the padded steps; each direction's state must stay as it was "
        "after the sequence's last real step (see rnn_forward)":
            np.stack([_run(x, pf)[1], _run(reverse_reference(x, lengths), pb)[1]]),
    }


# ------------------------------------------------------------------------------ the caches

#: what rnn_backward receives, as the notebook documents it
CACHE_DOC = ("cache = (step_caches, lengths): step_caches[t] is the cache that rnn_step_forward returned at "
             "step t (for the whole batch, padded rows included), and lengths the (B,) int array of the lengths "
             "(all T when none were given)")
#: what bidirectional_backward receives
BIDIRECTIONAL_CACHE_DOC = ("cache = (cache_fwd, cache_bwd, hs_fwd, hs_bwd, merge_mode, lengths): the rnn_forward "
                           "caches of the forward direction (on x) and of the backward one (on x reversed within "
                           "the lengths), the two directions' outputs in the positions of x, the merge mode and "
                           "the (B,) lengths")


def _full_lengths(lengths, T, B):
    return np.full(B, T, dtype=np.int64) if lengths is None else np.asarray(lengths, dtype=np.int64)


def step_caches(x, h0, params, lengths):
    """``(step_caches, lengths)`` of a masked run, in the documented format (rnnkit's step)."""
    T, B = x.shape[0], x.shape[1]
    lengths = _full_lengths(lengths, T, B)
    caches, h = [], h0
    for t in range(T):
        h_new, cache = rnn_step_forward(x[t], h, params)
        caches.append(cache)
        h = np.where((t < lengths)[:, None], h_new, h)
    return caches, lengths


def bidirectional_cache(x, pf, pb, mode, lengths):
    """The cache of the bidirectional layer in the documented format (``BIDIRECTIONAL_CACHE_DOC``)."""
    T, B = x.shape[0], x.shape[1]
    full = _full_lengths(lengths, T, B)
    mask = lengths_to_mask(full, T)
    h0 = np.zeros((B, pf["weight_hh"].shape[1]))
    runs = _direction_runs(x, pf, pb, mask)
    return (step_caches(x, h0, pf, full), step_caches(reverse_reference(x, full), h0, pb, full),
            runs["fwd_hs"], runs["bwd_hs"], mode, full)


def _expect_run_cache(cache, want, lengths, B, name):
    """A student's ``(step_caches, lengths)``: the format, the lengths and each step's x, h_prev, h."""
    caches, full = want
    if not isinstance(cache, (tuple, list)) or len(cache) != 2:
        raise CheckFailure(f"{name} should be the pair (step_caches, lengths), got a {kind_of(cache)}"
                           + (f" of {len(cache)} values" if isinstance(cache, (tuple, list)) else ""))
    got_steps, got_lengths = cache
    if not isinstance(got_steps, (tuple, list)) or len(got_steps) != len(caches):
        raise CheckFailure(f"{name}[0] should be the list of the T = {len(caches)} step caches that rnn_step_forward "
                           f"returned, got a {kind_of(got_steps)}")
    got_lengths = expect_array(np.asarray(got_lengths) if isinstance(got_lengths, list) else got_lengths,
                               f"{name}[1], the lengths", shape=(B,), integer=True)
    if not np.array_equal(got_lengths, full):
        raise CheckFailure(f"{name}[1] should be the lengths, {full.tolist()}"
                           + (" (every sequence has length T when lengths is None)" if lengths is None else "")
                           + f"; got {got_lengths.tolist()}")
    for t, (got, right) in enumerate(zip(got_steps, caches)):
        if not isinstance(got, (tuple, list)) or len(got) != len(right):
            raise CheckFailure(f"{name}[0][{t}] should be the cache that rnn_step_forward returned at step {t}")
        for k, what in enumerate(("x[t]", "h_prev", "h")):
            expect_close(got[k], right[k], f"{name}[0][{t}] entry {k} ({what})")


def _expect_bidirectional_cache(cache, want, B):
    if not isinstance(cache, (tuple, list)) or len(cache) != 6:
        raise CheckFailure("the cache of bidirectional_forward should be the tuple (cache_fwd, cache_bwd, hs_fwd, "
                           f"hs_bwd, merge_mode, lengths), got a {kind_of(cache)}")
    _expect_run_cache(cache[0], want[0], want[5], B, "cache_fwd")
    _expect_run_cache(cache[1], want[1], want[5], B, "cache_bwd")
    expect_close(cache[2], want[2], "hs_fwd in the cache", axes=("T", "B", "H"))
    expect_close(cache[3], want[3], "hs_bwd in the cache", axes=("T", "B", "H"), mistakes={
        "hs_bwd holds the backward direction's outputs in the positions of x (reversed back), the ones that "
        "were merged": reverse_reference(want[3], want[5])})
    if cache[4] != want[4]:
        raise CheckFailure(f"the cache's merge_mode should be {want[4]!r}, got {cache[4]!r}")


# ---------------------------------------------------------------------- masked BPTT

BACKWARD_KEYS = ("x", "h0") + PARAM_NAMES


def masked_bptt(x, h0, params, lengths, dhs, dh_last, mask_dhs=True, carry_padded=True, carry=True,
                dh_last_mode="last", accumulate="all"):
    """BPTT through a masked run with rnnkit's step backward, with switches for the typical mistakes
    (all off: rnnkit's ``sequence_backward`` with the mask, tested in tests/test_checks_bidirectional.py)."""
    T = x.shape[0]
    caches, full = step_caches(x, h0, params, lengths)
    grads = {k: np.zeros_like(params[k]) for k in PARAM_NAMES}
    dx = np.zeros_like(x)
    dh = np.zeros_like(h0) if dh_last is None or dh_last_mode != "last" else dh_last
    for t in reversed(range(T)):
        real = (t < full)[:, None]
        if dh_last_mode == "every" and dh_last is not None:
            dh = dh + dh_last
        incoming = dhs[t] + (dh if carry else 0.0)
        step = rnn_step_backward(np.where(real, incoming, 0.0) if mask_dhs else incoming, caches[t])
        if accumulate == "all" or (accumulate == "first" and t == 0):
            for k in PARAM_NAMES:
                grads[k] = grads[k] + step[k]
        dx[t] = step["x"]
        dh = np.where(real, step["h_prev"], dh) if carry_padded else step["h_prev"]
    grads["x"], grads["h0"] = dx, dh
    return grads


def _masked_mistakes(x, h0, params, lengths, dhs, dlast, want):
    padded = lengths is not None and (np.asarray(lengths) < x.shape[0]).any()
    messages = [
        ("the gradient from step t+1 is not added: dh_t = dhs[t] + (the 'h_prev' gradient that step t+1 sends "
         "back, or, at a padded step, the carried gradient)", dict(carry=False)),
        ("only the first step's gradient is in it: every step uses the same weights, so add (+=) the gradients "
         "of all T steps", dict(accumulate="first")),
    ]
    if padded:
        messages += [
            ("dhs at the padded steps must be ignored: out_t is 0 there whatever the state, so no gradient flows "
             "from it (multiply by the mask, or use np.where)", dict(mask_dhs=False)),
            ("at a padded step the state is copied unchanged, h_t = h_{t−1}, so its gradient passes through "
             "unchanged too; yours stops there, and dh_last never reaches a shorter sequence's last real step",
             dict(carry_padded=False)),
            ("the padded steps are treated as real: the mask decides which steps count, in the backward pass as "
             "in the forward one", dict(mask_dhs=False, carry_padded=False)),
        ]
    if dlast is not None:
        messages += DH_LAST_MISTAKES
    return mistakes_by_key(lambda **flags: masked_bptt(x, h0, params, lengths, dhs, dlast, **flags), messages, want,
                           BACKWARD_KEYS)


@with_cases
def rnn_backward(student, rng, length=5, batch=3, input_size=4, hidden=6, padded=True, lengths_none=False,
                 d_h_n=True):
    """``rnn_backward(dhs (T, B, H), dh_last (B, H) or None, cache)`` returns a dict with the keys
    BACKWARD_KEYS: BPTT through a run of rnn_forward with lengths. The cache is the checker's
    (``CACHE_DOC``)."""
    fname = "rnn_backward"
    fn = student_function(student, fname)
    T = length
    params, x, h0, lengths, mask = _masked_run_inputs(rng, length, batch, input_size, hidden, padded, lengths_none)
    hs, _, cache = sequence_forward("rnn", x, h0, params, mask=mask)
    dhs = rng.normal(size=hs.shape)
    dlast = rng.normal(size=h0.shape) if d_h_n else None
    want = dict(sequence_backward(dhs, dlast, cache))
    given = step_caches(x.copy(), h0.copy(), copy_params(params), lengths)
    mistakes = _masked_mistakes(x, h0, params, lengths, dhs, dlast, want)
    axes = {"x": ("T", "B", "I") if len({T, batch, input_size}) == 3 else None, "h0": ("B", "H")}
    grads = call_backward(fn, dhs.copy(), None if dlast is None else dlast.copy(), given, what=fname,
                          cache_doc=CACHE_DOC)
    grads = expect_grads_dict(grads, BACKWARD_KEYS, f"the dict {fname} returns")
    for key in BACKWARD_KEYS:
        expect_close(grads[key], want[key], f"grads[{key!r}]", axes=axes.get(key), mistakes=mistakes[key])
    return f"{fname}: all six gradients correct (T={T}, B={batch}" + (
        ", no lengths)" if lengths is None else f", lengths {lengths.tolist()})")


# ------------------------------------------------------------------------ merge backward

def _merge_backward_mistakes(d, f, b, mode):
    """{message: (d_fwd, d_bwd)} of typical mistakes."""
    H = f.shape[-1]
    if mode == "concat":
        return {"the halves are swapped: the first H features of out are the forward direction's":
                (d[..., H:], d[..., :H])}
    if mode == "sum":
        return {"out = h_fwd + h_bwd passes d_out unchanged to both directions; you halved it": (d / 2, d / 2)}
    if mode == "ave":
        return {"out = (h_fwd + h_bwd) / 2, so each direction gets d_out / 2; you passed d_out whole": (d, d)}
    return {"out = h_fwd ⊙ h_bwd: the gradient of h_fwd is d_out ⊙ h_bwd (the other factor), and the other way "
            "round; you multiplied by the same direction": (d * f, d * b),
            "out = h_fwd ⊙ h_bwd is a product, not a sum: d_fwd = d_out ⊙ h_bwd": (d, d)}


@with_cases
def merge_backward(student, rng, length=4, batch=3, hidden=5, modes=MODES, unknown=False):
    """``merge_backward(d_out, h_fwd, h_bwd, mode)`` returns ``(d_fwd, d_bwd)``; ValueError for an
    unknown mode."""
    fname = "merge_backward"
    fn = student_function(student, fname)
    f, b = rng.normal(size=(2, length, batch, hidden))
    for mode in modes:
        d = rng.normal(size=merge_reference(f, b, mode).shape)
        want = _merge_backward(d, (mode, (f, b)))
        what = f"merge_backward(d_out, h_fwd, h_bwd, {mode!r})"
        out = call_student(fn, d.copy(), f.copy(), b.copy(), mode, what=what)
        got_f, got_b = expect_tuple(out, 2, what, "(d_fwd, d_bwd)")
        wrong = _merge_backward_mistakes(d, f, b, mode)
        axes = ("T", "B", "H") if len({length, batch, hidden}) == 3 else None
        for k, (name, got) in enumerate((("d_fwd", got_f), ("d_bwd", got_b))):
            expect_close(got, want["h_fwd" if k == 0 else "h_bwd"], f"{name} for {mode!r}", axes=axes,
                         mistakes={m: v[k] for m, v in wrong.items()})
    if unknown:
        what = "merge_backward(d_out, h_fwd, h_bwd, 'max')"
        try:
            call_student(fn, f.copy(), f.copy(), b.copy(), "max", what=what)
        except CheckFailure as failure:
            if not str(failure).startswith(f"{what} raised ValueError"):
                raise CheckFailure(f"{failure}; an unknown mode should raise ValueError naming the modes you "
                                   "accept") from None
        else:
            raise CheckFailure(f"{what} returned a value; an unknown mode should raise ValueError")
    return f"{fname}: correct for {', '.join(modes)}" + (" and refuses an unknown mode" if unknown else "")


# ---------------------------------------------------------------- the bidirectional backward

BIDIRECTIONAL_KEYS = ("x",) + PARAM_NAMES + tuple(f"{k}_reverse" for k in PARAM_NAMES)


def _module_gradients(x, pf, pb, mode, lengths, d_out, d_h_n):
    """The gradients of rnnkit's bidirectional RNN, under the exercise's names."""
    T, B, I = x.shape
    m = RNN(I, pf["weight_hh"].shape[1], bidirectional=True, merge_mode=mode)
    for name in PARAM_NAMES:
        m.params[f"{name}_l0"], m.params[f"{name}_l0_reverse"] = pf[name], pb[name]
    m(x, lengths=lengths)
    dx, _ = m.backward(d_out, d_h_n)
    grads = {"x": dx}
    for name in PARAM_NAMES:
        grads[name], grads[f"{name}_reverse"] = m.grads[f"{name}_l0"], m.grads[f"{name}_l0_reverse"]
    return grads


def bidirectional_reference(x, pf, pb, mode, lengths, d_out, d_h_n, mistake=None):
    """The gradients of the bidirectional layer composed from its parts (masked BPTT, merge backward,
    reversal), with one typical mistake switched on when ``mistake`` is given."""
    T, B = x.shape[0], x.shape[1]
    full = _full_lengths(lengths, T, B)
    _, _, hs_f, hs_b, _, _ = bidirectional_cache(x, pf, pb, mode, lengths)
    d = _merge_backward(d_out, (mode, (hs_f, hs_b)))
    d_f, d_b = d["h_fwd"], d["h_bwd"]
    last_f, last_b = (None, None) if d_h_n is None else (d_h_n[0], d_h_n[1])
    if mistake == "d_h_n_swapped":
        last_f, last_b = last_b, last_f
    if mistake == "d_h_n_ignored":
        last_f = last_b = None
    h0 = np.zeros((B, pf["weight_hh"].shape[1]))
    g_f = masked_bptt(x, h0, pf, full, d_f, last_f)
    x_rev = reverse_reference(x, full)
    d_b_rev = {"not_reversed": d_b, "whole": d_b[::-1]}.get(mistake, reverse_reference(d_b, full))
    g_b = masked_bptt(x_rev, h0, pb, full, d_b_rev, last_b)
    dx_b = {"dx_not_reversed": g_b["x"], "whole": g_b["x"][::-1]}.get(mistake, reverse_reference(g_b["x"], full))
    grads = {"x": g_f["x"] + dx_b}
    for name in PARAM_NAMES:
        grads[name], grads[f"{name}_reverse"] = g_f[name], g_b[name]
    return grads


BIDIRECTIONAL_MISTAKES = {
    "not_reversed": "the backward direction ran on the reversed sequence, so its gradients must be reversed too "
                    "(within each length) before they go into its rnn_backward: d_bwd[t] belongs to position t "
                    "of x, which that run read at step length − 1 − t",
    "dx_not_reversed": "the backward direction's grads['x'] are in the order of the reversed sequence; reverse "
                       "them back (within each length) before you add them to the forward direction's",
    "whole": "reverse within each sequence's length, not the padded array as a whole (reverse_within_lengths, "
             "with the lengths of the cache)",
    "d_h_n_swapped": "d_h_n[0] is the gradient of the forward direction's final state and d_h_n[1] the backward "
                     "one's; they are swapped",
    "d_h_n_ignored": "d_h_n was not used: d_h_n[0] joins the forward direction's rnn_backward as its dh_last, "
                     "d_h_n[1] the backward direction's",
}


@with_cases
def bidirectional_backward(student, rng, length=6, batch=4, input_size=3, hidden=5, mode="concat", padded=True,
                           lengths_none=False, d_h_n=True):
    """``bidirectional_backward(d_out, d_h_n, cache)`` returns a dict with the keys BIDIRECTIONAL_KEYS.
    The cache is the checker's (``BIDIRECTIONAL_CACHE_DOC``). When it is wrong and one of the student's
    rnn_backward, merge_backward, reverse_within_lengths fails its own check, the message says so."""
    parts = [("reverse_within_lengths", reverse_within_lengths), ("rnn_backward", rnn_backward),
             ("merge_backward", merge_backward)]
    return blame_parts(student, lambda: _check_bidirectional_backward(
        student, rng, length, batch, input_size, hidden, mode, padded, lengths_none, d_h_n), parts,
        "bidirectional_backward")


def _check_bidirectional_backward(student, rng, length, batch, input_size, hidden, mode, padded, lengths_none,
                                  d_h_n):
    fname = "bidirectional_backward"
    fn = student_function(student, fname)
    T, B, H = length, batch, hidden
    pf, pb, x, lengths = _layer_inputs(rng, length, batch, input_size, hidden, padded, lengths_none)
    out, _ = _module_reference(x, pf, pb, mode, lengths)
    d_out = rng.normal(size=out.shape)
    dhn = rng.normal(size=(2, B, H)) if d_h_n else None
    want = _module_gradients(x, pf, pb, mode, lengths, d_out, dhn)
    cache = bidirectional_cache(x.copy(), copy_params(pf), copy_params(pb), mode, lengths)
    grads = call_backward(fn, d_out.copy(), None if dhn is None else dhn.copy(), cache, what=fname,
                          cache_doc=BIDIRECTIONAL_CACHE_DOC)
    if isinstance(grads, dict) and "x" in grads and "weight_ih_reverse" not in grads and "weight_ih" in grads:
        raise CheckFailure(f"the dict {fname} returns has no entry 'weight_ih_reverse': the backward direction's "
                           "gradients go under the same names with '_reverse' added, as torch names them")
    grads = expect_grads_dict(grads, BIDIRECTIONAL_KEYS, f"the dict {fname} returns")
    variants = {message: bidirectional_reference(x, pf, pb, mode, lengths, d_out, dhn, key)
                for key, message in BIDIRECTIONAL_MISTAKES.items()
                if (dhn is not None or not key.startswith("d_h_n"))}
    axes = {"x": ("T", "B", "I") if len({T, B, input_size}) == 3 else None}
    for key in BIDIRECTIONAL_KEYS:
        mistakes = {m: v[key] for m, v in variants.items() if not np.allclose(v[key], want[key])}
        expect_close(grads[key], want[key], f"grads[{key!r}]", axes=axes.get(key), mistakes=mistakes)
    return (f"{fname}: all nine gradients correct (mode {mode!r}, T={T}, B={B}"
            + (", no lengths)" if lengths is None else f", lengths {lengths.tolist()})"))
