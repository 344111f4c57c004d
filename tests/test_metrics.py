"""rnnkit.metrics: exact match and BLEU on cases worked out by hand."""
from __future__ import annotations

import math

import pytest

from rnnkit.metrics import bleu, brevity_penalty, exact_match, modified_precision, ngram_counts


def words(text):
    return text.split()


def test_exact_match_is_all_or_nothing_per_sequence():
    candidates = [words("drei hundert"), words("zwei und vierzig"), words("elf")]
    references = [words("drei hundert"), words("zwei und fünfzig"), words("elf")]
    assert exact_match(candidates, references) == 2 / 3
    assert exact_match([[4, 5]], [[4, 5, 6]]) == 0.0


def test_modified_precision_clips_repeated_words():
    """Papineni et al.'s example: seven "the" against a reference with two of them gives 2/7."""
    candidate, reference = words("the the the the the the the"), words("the cat is on the mat")
    assert modified_precision([candidate], [reference], 1) == (2, 7)
    assert ngram_counts(reference, 2)[("the", "cat")] == 1 and sum(ngram_counts(reference, 2).values()) == 5


def test_bleu_of_one_sentence_worked_by_hand():
    """the cat sat on the mat / the cat sat on a mat: p1 = 5/6 (one "the" clipped), p2 = 3/5,
    p3 = 2/4, p4 = 1/3, equal lengths (BP = 1): BLEU = (5/6 * 3/5 * 2/4 * 1/3)^(1/4) = 12^(-1/4)."""
    candidate, reference = [words("the cat sat on the mat")], [words("the cat sat on a mat")]
    assert [modified_precision(candidate, reference, n) for n in (1, 2, 3, 4)] == [(5, 6), (3, 5), (2, 4), (1, 3)]
    assert bleu(candidate, reference) == pytest.approx(12 ** -0.25, rel=1e-12)
    assert bleu(reference, reference) == 1.0


def test_short_candidates_pay_the_brevity_penalty():
    """"the cat" against six words: both precisions are 1, BP = exp(1 - 6/2) = e^-2."""
    candidate, reference = [words("the cat")], [words("the cat sat on the mat")]
    assert bleu(candidate, reference, max_n=2) == pytest.approx(math.exp(-2), rel=1e-12)
    assert brevity_penalty(7, 6) == 1.0 and brevity_penalty(6, 6) == 1.0 and brevity_penalty(0, 3) == 0.0


def test_counts_are_pooled_over_the_corpus():
    """A pair with no trigram does not zero the corpus: p1 = 5/6, p2 = 3/4, p3 = p4 = 1, BP = 1."""
    candidates = [words("a b c d"), words("x y")]
    references = [words("a b c d"), words("x z")]
    assert bleu(candidates, references) == pytest.approx((5 / 6 * 3 / 4) ** 0.25, rel=1e-12)
    assert bleu(candidates[1:], references[1:]) == 0.0  # alone, "x y" shares no bigram with "x z"


def test_errors():
    with pytest.raises(ValueError, match="2 candidates and 1 references"):
        bleu([["a"], ["b"]], [["a"]])
    with pytest.raises(ValueError, match="no candidates"):
        exact_match([], [])
