"""Checks for exercise 1, sequence data: padding, masks, one-hot vectors, embeddings and the shapes
of each input/output type."""
from __future__ import annotations

import numpy as np

from rnnkit.checks.core import CheckFailure, call_student, expect_array, expect_close, student_function


def _random_sequences(rng, batch, max_len, vocab=20, allow_empty=False):
    low = 0 if allow_empty else 1
    lengths = rng.integers(low, max_len + 1, size=batch)
    lengths[rng.integers(batch)] = max_len  # the longest sets the padded length
    return [list(map(int, rng.integers(1, vocab, size=n))) for n in lengths]


def _reference_padding(seqs, pad_value):
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    padded = np.full((len(seqs), int(lengths.max(initial=0))), pad_value, dtype=np.int64)
    for b, s in enumerate(seqs):
        padded[b, : len(s)] = s
    return padded, lengths


def pad_sequences(ns, rng, batch=4, max_len=6, pad_value=0, allow_empty=False):
    """``pad_sequences(seqs, pad_value)`` returns ``(padded (B, T_max), lengths (B,))``."""
    fn = student_function(ns, "pad_sequences")
    seqs = _random_sequences(rng, batch, max_len, allow_empty=allow_empty)
    want_padded, want_lengths = _reference_padding(seqs, pad_value)
    out = call_student(fn, [list(s) for s in seqs], pad_value=pad_value)
    if not isinstance(out, tuple) or len(out) != 2:
        raise CheckFailure("pad_sequences should return a tuple (padded, lengths)")
    padded, lengths = out
    expect_close(lengths, want_lengths, "lengths")
    left = np.full_like(want_padded, pad_value)
    for b, s in enumerate(seqs):
        if s:
            left[b, -len(s):] = s
    expect_array(padded, "padded", shape=want_padded.shape, axes=("B", "T"), integer=True)
    expect_close(padded, want_padded, "padded", mistakes={
        "the padding is at the start of each sequence; put it at the end (after the real tokens)": left,
    })
    return f"pad_sequences: correct for {batch} sequences up to length {max_len}"


def make_mask(ns, rng, batch=4, max_len=6, allow_empty=False):
    """``make_mask(lengths, T)`` returns the time-major float mask ``(T, B)``: 1 at real steps."""
    fn = student_function(ns, "make_mask")
    lengths = np.array([len(s) for s in _random_sequences(rng, batch, max_len, allow_empty=allow_empty)])
    T = int(lengths.max()) + int(rng.integers(0, 2))
    want = (np.arange(T)[:, None] < lengths[None, :]).astype(np.float64)
    got = call_student(fn, lengths.copy(), T)
    if isinstance(got, np.ndarray) and got.dtype == bool:
        got = got.astype(np.float64)
    expect_close(got, want, "mask", axes=("T", "B"), mistakes={
        "it is 1 at the padded steps and 0 at the real ones; invert it": 1 - want,
        "each sequence has one step too few (use t < length, not t < length - 1)":
            (np.arange(T)[:, None] < lengths[None, :] - 1).astype(float),
        "each sequence has one step too many (use t < length, not t <= length)":
            (np.arange(T)[:, None] <= lengths[None, :]).astype(float),
    })
    return f"make_mask: correct (T={T}, B={batch})"


def one_hot(ns, rng, vocab=7, shape=(3, 4)):
    """``one_hot(ids, vocab_size)`` returns ``ids.shape + (vocab_size,)`` floats."""
    fn = student_function(ns, "one_hot")
    ids = rng.integers(0, vocab, size=tuple(shape))
    ids.flat[0] = vocab - 1  # the last id must fit too
    want = (ids[..., None] == np.arange(vocab)).astype(np.float64)
    shifted = np.zeros_like(want)
    shifted[..., :-1] = want[..., 1:]
    expect_close(call_student(fn, ids.copy(), vocab), want, "one_hot(ids)", mistakes={
        "each 1 sits one place too early: id k belongs in position k (ids start at 0)": shifted,
    })
    return f"one_hot: correct for ids of shape {tuple(shape)} and {vocab} symbols"


def embed(ns, rng, vocab=9, dim=5, shape=(2, 3)):
    """``embed(ids, E)`` returns the rows of ``E (V, D)`` selected by ``ids``: ``ids.shape + (D,)``."""
    fn = student_function(ns, "embed")
    E = rng.normal(size=(vocab, dim))
    ids = rng.integers(0, vocab, size=tuple(shape))
    expect_close(call_student(fn, ids.copy(), E.copy()), E[ids], "embed(ids, E)", rtol=1e-12)
    return f"embed: correct for a {vocab}x{dim} embedding"


_KINDS = ("one_to_one", "one_to_many", "many_to_one", "many_to_many")


def io_shapes(ns, rng, kinds=_KINDS):
    """``io_shapes(kind, batch, time, features, units)`` returns batch-first (input, output) shapes."""
    fn = student_function(ns, "io_shapes")
    B, T, F, U = (int(v) for v in rng.choice(np.arange(2, 30), size=4, replace=False))
    sequence_in = {"many_to_one": True, "many_to_many": True, "one_to_many": False, "one_to_one": False}
    sequence_out = {"one_to_many": True, "many_to_many": True, "many_to_one": False, "one_to_one": False}
    for kind in kinds:
        want_in = (B, T, F) if sequence_in[kind] else (B, F)
        want_out = (B, T, U) if sequence_out[kind] else (B, U)
        got = call_student(fn, kind, B, T, F, U, what=f"io_shapes({kind!r}, ...)")
        try:
            got_in, got_out = (tuple(int(v) for v in s) for s in got)
        except (TypeError, ValueError):
            raise CheckFailure(f"io_shapes({kind!r}, ...) should return two shape tuples, got {got!r}")
        names = {B: "B", T: "T", F: "F", U: "U"}
        show = lambda s: "(" + ", ".join(names.get(v, str(v)) for v in s) + ")"  # noqa: E731
        if got_in != want_in:
            raise CheckFailure(f"for {kind} the input shape is {show(got_in)}, expected {show(want_in)}")
        if got_out != want_out:
            hint = {"many_to_one": ": only the last step's output is kept",
                    "one_to_many": ": one output per generated step"}.get(kind, "")
            raise CheckFailure(f"for {kind} the output shape is {show(got_out)}, expected {show(want_out)}{hint}")
    return f"io_shapes: correct for {', '.join(kinds)}"
