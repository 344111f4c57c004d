"""Checks for exercise 8, bidirectional RNNs: reversing each sequence within its length, a masked
forward pass, the four merge modes, and the bidirectional wrapper with variable lengths.

The inner cell is rnnkit's vanilla step (``rnn_step_forward``, exercise 2's topic), which students
may import here: the exercise is about the wrapper around it. Everything that runs a sequence or a
direction (rnnkit.sequence, rnnkit.modules) is not installed where the notebook is graded.

Expected values of the wrapper come from ``rnnkit.RNN(..., bidirectional=True, merge_mode=...)``
run with ``lengths=``; the values that typical mistakes produce come from
``rnnkit.sequence_forward`` with the mistake applied (no mask, a whole-array reversal, outputs not
flipped back, ...).
"""
from __future__ import annotations

import numpy as np

from rnnkit.modules import RNN
from rnnkit.sequence import lengths_to_mask, sequence_forward

from ..sandbox import Policy
from . import HELPERS
from .expect import (CheckFailure, blame_parts, call_student, copy_params, expect_array, expect_close, expect_tuple,
                     expect_unchanged, student_function)
from .gated import expect_output, expect_shaped_mistakes, random_params, with_cases

#: what the student's notebook may import when it is graded: the vanilla step of exercise 2 (the
#: point here is the wrapper around it; rnnkit.cells comes whole, with its backend), nothing that
#: runs a sequence or a direction (rnnkit.sequence, rnnkit.modules)
POLICY = Policy(packages=("numpy", "matplotlib", "array_api_compat"),
                rnnkit=HELPERS + ("rnnkit.cells.rnn",))
SPECS = ("reverse_within_lengths", "rnn_forward", "merge", "bidirectional_forward")

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


@with_cases
def rnn_forward(student, rng, length=5, batch=3, input_size=4, hidden=6, padded=True, lengths_none=False):
    """``rnn_forward(x, h0, params, lengths)`` returns ``(hs (T, B, H), h_last (B, H))``."""
    fname = "rnn_forward"
    fn = student_function(student, fname)
    T = length
    params = random_params(rng, input_size, hidden, 1)
    x = rng.normal(size=(T, batch, input_size))
    h0 = rng.normal(0.0, 0.5, size=(batch, hidden))
    lengths = None if lengths_none else _lengths(rng, batch, T, padded)
    mask = None if lengths is None else lengths_to_mask(lengths, T)
    want_hs, want_h = _run(x, params, mask, h0=h0)
    args = {"x": x.copy(), "h0": h0.copy(), "params": copy_params(params)}
    out = call_student(fn, args["x"], args["h0"], args["params"], None if lengths is None else lengths.copy())
    hs, h_last = expect_tuple(out, 2, fname, "(hs, h_last)")
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


def _check_bidirectional(student, rng, length, batch, input_size, hidden, mode, padded, lengths_none):
    fname = "bidirectional_forward"
    fn = student_function(student, fname)
    T, B, H = length, batch, hidden
    pf, pb = random_params(rng, input_size, H, 1), random_params(rng, input_size, H, 1)
    x = rng.normal(size=(T, B, input_size))
    lengths = None if lengths_none else _lengths(rng, B, T, padded)
    want_out, want_hn = _module_reference(x, pf, pb, mode, lengths)

    args = {"x": x.copy(), "params_fwd": copy_params(pf), "params_bwd": copy_params(pb)}
    out = call_student(fn, args["x"], args["params_fwd"], args["params_bwd"], mode,
                       None if lengths is None else lengths.copy())
    got_out, got_hn = expect_tuple(out, 2, fname, "(out, h_n)")
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
    return (f"{fname}: out and h_n correct (mode {mode!r}, T={T}, B={B}"
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
