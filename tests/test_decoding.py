"""rnnkit.decoding: greedy generation and beam search on decoders whose probabilities are known, so
that the best sequence can be found by brute force."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import rnnkit
from rnnkit.decoding import beam_search, generate, take
from rnnkit.models import OneToMany, Seq2Seq

BOS, EOS, V = 0, 1, 4


def table_decoder(seed, V=V):
    """A decoder whose next-token logits depend on the whole prefix (through a hash of it): the
    state is the prefix, one row per hypothesis."""
    def logits_of(prefix):
        rng = np.random.default_rng([seed, *prefix])
        return 2.0 * rng.standard_normal(V)

    def step(tokens, state):
        prefixes = [tuple(p) + (int(t),) for p, t in zip(state, tokens)]
        return np.stack([logits_of(p) for p in prefixes]), np.array(prefixes, dtype=object)

    return step, logits_of


def log_prob(logits_of, tokens, finished=True):
    total, prefix = 0.0, (BOS,)
    for token in list(tokens) + ([EOS] if finished else []):
        z = logits_of(prefix)
        total += z[token] - np.log(np.exp(z).sum())
        prefix += (token,)
    return total


def brute_force_best(logits_of, max_len):
    """The most probable finished sequence of at most max_len tokens (its <EOS> included)."""
    best = None
    for n in range(max_len):
        for tokens in itertools.product([t for t in range(V) if t != EOS], repeat=n):
            lp = log_prob(logits_of, tokens)
            if best is None or lp > best[0]:
                best = (lp, list(tokens))
    return best


def start():
    return np.empty((1, 0), dtype=object)  # one hypothesis, the empty prefix


@pytest.mark.parametrize("seed", range(6))
def test_beam_of_one_is_greedy(seed):
    step, _ = table_decoder(seed)
    (greedy,) = generate(step, start(), 1, 6, BOS, EOS)
    (best, *_) = beam_search(step, start(), 1, 6, BOS, EOS)
    assert best.tokens == greedy


@pytest.mark.parametrize("seed", range(6))
def test_a_wide_beam_finds_the_most_probable_sequence(seed):
    """With a beam as wide as every prefix, beam search is an exhaustive search."""
    step, logits_of = table_decoder(seed)
    max_len = 5
    hyps = beam_search(step, start(), 200, max_len, BOS, EOS)
    lp, tokens = brute_force_best(logits_of, max_len)
    assert hyps[0].tokens == tokens and hyps[0].log_prob == pytest.approx(lp, abs=1e-12)
    assert all(h.finished for h in hyps) and [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)


def test_beam_search_beats_greedy_somewhere_and_never_loses_with_a_wide_beam():
    better = 0
    for seed in range(30):
        step, logits_of = table_decoder(seed)
        (greedy,) = generate(step, start(), 1, 5, BOS, EOS)
        best = beam_search(step, start(), 3, 5, BOS, EOS)[0]
        assert best.log_prob == pytest.approx(log_prob(logits_of, best.tokens, best.finished), abs=1e-12)
        if len(greedy) < 5:  # greedy finished: compare what both found
            better += best.log_prob > log_prob(logits_of, greedy) + 1e-9
    assert better >= 3, better


def test_length_penalty_ranks_by_mean_log_probability():
    step, logits_of = table_decoder(3)
    hyps = beam_search(step, start(), 8, 5, BOS, EOS, length_penalty=1.0)
    for h in hyps:
        assert h.score == pytest.approx(h.log_prob / (len(h.tokens) + 1), abs=1e-12)
    assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)


def test_take_follows_nested_states():
    state = (np.arange(6).reshape(1, 3, 2), {"c": np.arange(3)[None]})
    picked = take(state, np.array([2, 2, 0]), axis=1)
    assert picked[0][0, :, 0].tolist() == [4, 4, 0]
    assert take(state[1], [1], axis=1)["c"].tolist() == [[1]]
    with pytest.raises(ValueError, match="beam_size"):
        beam_search(lambda t, s: (None, s), start(), 0, 3, BOS, EOS)


def test_models_decode_through_the_same_functions():
    """Seq2Seq and OneToMany: beam size 1 equals their greedy generation, row by row."""
    rng = np.random.default_rng(0)
    s2s = Seq2Seq(7, 9, 3, rnnkit.GRU(3, 6, seed=0), rnnkit.GRU(3, 6, seed=1), seed=2)
    src = rng.integers(4, 7, size=(4, 5))
    assert [h[0].tokens for h in s2s.beam_search(src, beam_size=1, max_len=6)] == s2s.generate(src, max_len=6)
    one = OneToMany(4, 9, 3, rnnkit.LSTM(3, 5, seed=3), seed=4)
    v = rng.standard_normal((3, 4))
    assert [h[0].tokens for h in one.beam_search(v, beam_size=1, max_len=6)] == one.generate(v, max_len=6)
    wide = [h[0].log_prob for h in s2s.beam_search(src, beam_size=5, max_len=6)]
    narrow = [h[0].log_prob for h in s2s.beam_search(src, beam_size=1, max_len=6)]
    assert all(w >= n - 1e-12 for w, n in zip(wide, narrow))
