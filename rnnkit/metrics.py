r"""Scoring generated sequences against references: exact match and BLEU.

Both take lists of token sequences (lists of ids or of strings), one candidate per reference.

**Exact match** is the fraction of candidates identical to their reference: all or nothing per
sequence.

**BLEU** (Papineni, Roukos, Ward and Zhu, 2002) gives partial credit for shared n-grams. For n = 1 … N (N = 4 by
default), the *modified n-gram precision* of the whole corpus counts each candidate n-gram at most as
often as it occurs in the reference (so that "the the the" cannot score on one "the"):

.. math:: p_n = \frac{\sum_{\text{pairs}} \sum_{g \in \text{n-grams}(c)} \min\big(\#_c(g), \#_r(g)\big)}
                     {\sum_{\text{pairs}} \sum_{g \in \text{n-grams}(c)} \#_c(g)} .

Precision alone rewards short candidates, so a *brevity penalty* compares the total candidate length
:math:`c` with the total reference length :math:`r`:

.. math:: \mathrm{BP} = \begin{cases} 1 & c > r \\ e^{\,1 - r/c} & c \le r \end{cases}, \qquad
          \mathrm{BLEU} = \mathrm{BP} \cdot \exp\Big(\frac1N \sum_{n=1}^{N} \log p_n\Big).

BLEU lies in [0, 1] (often quoted × 100). It is a corpus measure: the counts are summed over all
pairs before dividing, so a short sentence without any 4-gram does not make the score 0 by itself;
but if no candidate shares any n-gram of some order with its reference, :math:`p_n = 0` and BLEU is 0.
This is the single-reference form of Papineni et al.'s definition (with several references, the
clip takes the largest count over the references and :math:`r` the closest reference length).
"""
from __future__ import annotations

import math
from collections import Counter

__all__ = ["exact_match", "ngram_counts", "modified_precision", "brevity_penalty", "bleu"]


def _pairs(candidates, references):
    candidates, references = [list(c) for c in candidates], [list(r) for r in references]
    if len(candidates) != len(references):
        raise ValueError(f"got {len(candidates)} candidates and {len(references)} references; "
                         "expected one reference per candidate")
    if not candidates:
        raise ValueError("no candidates to score")
    return candidates, references


def exact_match(candidates, references) -> float:
    """The fraction of candidates equal to their reference, token for token."""
    candidates, references = _pairs(candidates, references)
    return sum(c == r for c, r in zip(candidates, references)) / len(candidates)


def ngram_counts(tokens, n: int) -> Counter:
    """How often each n-gram (a tuple of n tokens) occurs in ``tokens``."""
    tokens = list(tokens)
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def modified_precision(candidates, references, n: int) -> tuple[int, int]:
    r"""The numerator and denominator of :math:`p_n`: clipped n-gram matches and candidate n-grams,
    summed over the corpus."""
    candidates, references = _pairs(candidates, references)
    matched = total = 0
    for c, r in zip(candidates, references):
        counts, ref_counts = ngram_counts(c, n), ngram_counts(r, n)
        matched += sum(min(k, ref_counts[g]) for g, k in counts.items())
        total += sum(counts.values())
    return matched, total


def brevity_penalty(candidate_length: int, reference_length: int) -> float:
    r""":math:`1` if :math:`c > r`, else :math:`e^{1 - r/c}` (0 for an empty corpus of candidates)."""
    if candidate_length > reference_length:
        return 1.0
    if candidate_length == 0:
        return 0.0
    return math.exp(1.0 - reference_length / candidate_length)


def bleu(candidates, references, max_n: int = 4) -> float:
    r"""Corpus BLEU with n-grams up to ``max_n`` and uniform weights :math:`1/N` (module docstring)."""
    candidates, references = _pairs(candidates, references)
    log_sum = 0.0
    for n in range(1, max_n + 1):
        matched, total = modified_precision(candidates, references, n)
        if matched == 0:
            return 0.0
        log_sum += math.log(matched / total)
    bp = brevity_penalty(sum(map(len, candidates)), sum(map(len, references)))
    return bp * math.exp(log_sum / max_n)
