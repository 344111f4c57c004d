"""The checks of exercise 1 (sequence data): correct code passes, typical mistakes are named, and
answers that are not arrays, missing or unimplemented functions say so."""
from __future__ import annotations

import re

import pytest

from course_helpers import check_source

from course.verdict import CheckFailure

GOOD = """
import numpy as np

def pad_sequences(sequences, pad_value=0):
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    padded = np.full((len(sequences), lengths.max(initial=0)), pad_value, dtype=np.int64)
    for b, seq in enumerate(sequences):
        padded[b, : len(seq)] = seq
    return padded, lengths

def make_mask(lengths, T):
    return (np.arange(T)[:, None] < np.asarray(lengths)[None, :]).astype(np.float64)

def one_hot(ids, vocab_size):
    return (np.asarray(ids)[..., None] == np.arange(vocab_size)).astype(float)

def embed(ids, E):
    return E[np.asarray(ids)]

def io_shapes(kind, B, T, F, U):
    sequence_in = kind in ("many_to_one", "many_to_many")
    sequence_out = kind in ("one_to_many", "many_to_many")
    return ((B, T, F) if sequence_in else (B, F)), ((B, T, U) if sequence_out else (B, U))
"""


def run(spec, source, seed=0, **params):
    return check_source(f"sequence_data.{spec}", source, seed, **params)


def test_correct_code_passes_every_spec():
    run("pad_sequences", GOOD)
    run("pad_sequences", GOOD, batch=7, max_len=9, pad_value=-1)
    run("pad_sequences", GOOD, batch=5, max_len=3, allow_empty=True)
    run("make_mask", GOOD)
    run("make_mask", GOOD, batch=4, max_len=2, allow_empty=True)
    run("one_hot", GOOD)
    run("one_hot", GOOD, vocab=2, shape=[2, 2, 2])
    run("embed", GOOD)
    run("embed", GOOD, vocab=50, dim=8, shape=[5, 7])
    run("io_shapes", GOOD)
    run("io_shapes", GOOD, kinds=["many_to_one"])


def test_a_bool_mask_and_a_helper_lambda_pass():
    variant = GOOD.replace("return (np.arange(T)[:, None] < np.asarray(lengths)[None, :]).astype(np.float64)",
                           "return np.arange(T)[:, None] < np.asarray(lengths)[None, :]")
    variant += "\nSHAPE = dict(B=0)\nrow = lambda ids, E: E[ids]\ndef embed(ids, E):\n    return row(np.asarray(ids), E)\n"
    run("make_mask", variant)
    run("embed", variant)


@pytest.mark.parametrize("spec, old, new, message", [
    ("pad_sequences", "padded[b, : len(seq)] = seq", "padded[b, padded.shape[1] - len(seq):] = seq",
     "padding is at the start"),
    ("pad_sequences", "return padded, lengths", "return padded", "should return a tuple (padded, lengths)"),
    ("pad_sequences", "return padded, lengths", "return padded.T, lengths",
     "has shape (T, B), expected (B, T)"),
    ("make_mask", "np.arange(T)[:, None] < np.asarray(lengths)[None, :]",
     "np.arange(T)[None, :] < np.asarray(lengths)[:, None]", "has shape (B, T), expected (T, B)"),
    ("make_mask", "np.arange(T)[:, None] < np.asarray(lengths)[None, :]",
     "np.arange(T)[:, None] >= np.asarray(lengths)[None, :]", "1 at the padded steps"),
    ("make_mask", "np.arange(T)[:, None] < np.asarray(lengths)[None, :]",
     "np.arange(T)[:, None] <= np.asarray(lengths)[None, :]", "one step too many"),
    ("one_hot", "np.asarray(ids)[..., None] == np.arange", "np.asarray(ids)[..., None] - 1 == np.arange",
     "one place too early"),
    ("embed", "return E[np.asarray(ids)]", "return E[np.asarray(ids)].tolist()", "return a numpy array"),
    ("io_shapes", 'sequence_out = kind in ("one_to_many", "many_to_many")', 'sequence_out = kind != "one_to_one"',
     "only the last step's output is kept"),
    ("io_shapes", "return ((B, T, F)", "return ((T, B, F)", "the input shape is (T, B, F), expected (B, T, F)"),
])
def test_mistakes_are_named(spec, old, new, message):
    wrong = GOOD.replace(old, new, 1)
    assert wrong != GOOD
    with pytest.raises(CheckFailure, match=re.escape(message)):
        run(spec, wrong)


def test_a_wrong_entry_without_a_known_mistake_shows_the_first_difference():
    wrong = GOOD.replace("return E[np.asarray(ids)]", "return 2 * E[np.asarray(ids)]")
    with pytest.raises(CheckFailure, match=r"embed\(ids, E\) differs from the expected value: the first "
                                           r"difference is at index \(0, 0, 0\)"):
        run("embed", wrong)


def test_an_object_that_equals_everything_is_not_an_array():
    source = ("class Yes:\n    def __eq__(self, other):\n        return True\n"
              "def one_hot(ids, vocab_size):\n    return Yes()\n")
    with pytest.raises(CheckFailure, match=r"one_hot\(ids\) should be a numpy array, got a Yes"):
        run("one_hot", source)


def test_missing_and_unimplemented_functions_say_so():
    with pytest.raises(CheckFailure, match="no function named one_hot"):
        run("one_hot", "x = 1")
    stub = "def one_hot(ids, vocab_size):\n    raise NotImplementedError()\n"
    with pytest.raises(CheckFailure, match="not implemented yet"):
        run("one_hot", stub)


def test_a_passing_check_names_what_it_checked():
    assert run("one_hot", GOOD, vocab=5, shape=[4]) == "one_hot: correct for ids of shape (4,) and 5 symbols"
