"""Checks for exercise 1, sequence data: padding, masks, one-hot vectors, embeddings and the shapes
of each input/output type.

The expected values are computed here in a few lines of numpy (they are the definitions the notebook
states); the ``mistakes`` are the same computations with one typical error built in.
"""
from __future__ import annotations

import numpy as np

from ..sandbox import Policy
from . import HELPERS
from .expect import CheckFailure, call_student, expect_array, expect_close, expect_tuple, student_function

#: what the student's notebook may import when it is graded (not rnnkit.text nor rnnkit.embedding,
#: which hold the answers)
POLICY = Policy(packages=("numpy", "matplotlib"), rnnkit=HELPERS)
SPECS = ("pad_sequences", "make_mask", "one_hot", "embed", "io_shapes")


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


# --------------------------------------------------------------------------------------------
# 1. padding and 2. the mask
# --------------------------------------------------------------------------------------------

def pad_sequences(student, rng, batch=4, max_len=6, pad_value=0, allow_empty=False):
    """``pad_sequences(seqs, pad_value)`` returns ``(padded (B, T_max), lengths (B,))``."""
    fn = student_function(student, "pad_sequences")
    seqs = _random_sequences(rng, batch, max_len, allow_empty=allow_empty)
    want_padded, want_lengths = _reference_padding(seqs, pad_value)
    out = call_student(fn, [list(s) for s in seqs], pad_value=pad_value)
    padded, lengths = expect_tuple(out, 2, "pad_sequences", "(padded, lengths)")
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


def make_mask(student, rng, batch=4, max_len=6, allow_empty=False):
    """``make_mask(lengths, T)`` returns the time-major float mask ``(T, B)``: 1 at real steps."""
    fn = student_function(student, "make_mask")
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


# --------------------------------------------------------------------------------------------
# 3. one-hot vectors and 4. embeddings
# --------------------------------------------------------------------------------------------

def one_hot(student, rng, vocab=7, shape=(3, 4)):
    """``one_hot(ids, vocab_size)`` returns ``ids.shape + (vocab_size,)`` floats."""
    fn = student_function(student, "one_hot")
    ids = rng.integers(0, vocab, size=tuple(shape))
    ids.flat[0] = vocab - 1  # the last id must fit too
    want = (ids[..., None] == np.arange(vocab)).astype(np.float64)
    shifted = np.zeros_like(want)
    shifted[..., :-1] = want[..., 1:]
    expect_close(call_student(fn, ids.copy(), vocab), want, "one_hot(ids)", mistakes={
        "each 1 sits one place too early: id k belongs in position k (ids start at 0)": shifted,
    })
    return f"one_hot: correct for ids of shape {tuple(shape)} and {vocab} symbols"


def embed(student, rng, vocab=9, dim=5, shape=(2, 3)):
    """``embed(ids, E)`` returns the rows of ``E (V, D)`` selected by ``ids``: ``ids.shape + (D,)``."""
    fn = student_function(student, "embed")
    E = rng.normal(size=(vocab, dim))
    ids = rng.integers(0, vocab, size=tuple(shape))
    expect_close(call_student(fn, ids.copy(), E.copy()), E[ids], "embed(ids, E)", rtol=1e-12)
    return f"embed: correct for a {vocab}x{dim} embedding"


# --------------------------------------------------------------------------------------------
# 5. shapes of each input/output type
# --------------------------------------------------------------------------------------------

_KINDS = ("one_to_one", "one_to_many", "many_to_one", "many_to_many")
_SEQUENCE_IN = {"many_to_one": True, "many_to_many": True, "one_to_many": False, "one_to_one": False}
_SEQUENCE_OUT = {"one_to_many": True, "many_to_many": True, "many_to_one": False, "one_to_one": False}
_OUTPUT_HINTS = {"many_to_one": ": only the last step's output is kept",
                 "one_to_many": ": one output per generated step"}


def _two_shapes(got, kind):
    try:
        got_in, got_out = (tuple(int(v) for v in s) for s in got)
    except (TypeError, ValueError):
        raise CheckFailure(f"io_shapes({kind!r}, ...) should return two shape tuples, got {got!r}") from None
    return got_in, got_out


def io_shapes(student, rng, kinds=_KINDS):
    """``io_shapes(kind, batch, time, features, units)`` returns batch-first (input, output) shapes."""
    fn = student_function(student, "io_shapes")
    B, T, F, U = (int(v) for v in rng.choice(np.arange(2, 30), size=4, replace=False))
    names = {B: "B", T: "T", F: "F", U: "U"}

    def show(shape):
        return "(" + ", ".join(names.get(v, str(v)) for v in shape) + ")"

    for kind in kinds:
        want_in = (B, T, F) if _SEQUENCE_IN[kind] else (B, F)
        want_out = (B, T, U) if _SEQUENCE_OUT[kind] else (B, U)
        got_in, got_out = _two_shapes(call_student(fn, kind, B, T, F, U, what=f"io_shapes({kind!r}, ...)"), kind)
        if got_in != want_in:
            raise CheckFailure(f"for {kind} the input shape is {show(got_in)}, expected {show(want_in)}")
        if got_out != want_out:
            raise CheckFailure(f"for {kind} the output shape is {show(got_out)}, expected {show(want_out)}"
                               f"{_OUTPUT_HINTS.get(kind, '')}")
    return f"io_shapes: correct for {', '.join(kinds)}"
