r"""Decoding: turning a decoder's next-token distributions into an output sequence.

A decoder is given here as a **step function** ``step(tokens, state) -> (logits, state)``: it reads
the previous token of every hypothesis (``tokens``, integer ids ``(K,)``) and returns the logits of
the next one ``(K, V)`` and the new state. The state is an array, or a tuple (list, dict) of arrays,
whose axis ``axis`` runs over the hypotheses; what the step closes over (encoder states, weights)
is its own business. Every model of :mod:`rnnkit.models` decodes through these two functions.

* :func:`generate` runs the hypotheses of a batch side by side and takes, at every step, the most
  likely token (greedy, ``temperature=0``) or a sample; each row ends at its own ``<EOS>``.
* :func:`beam_search` keeps, for one sequence, the ``beam_size`` most likely prefixes at every step:

  .. math:: \log P(w_1, \dots, w_t) = \sum_{i \le t} \log p(w_i \mid w_{<i}),

  extends each by every token, and keeps the ``beam_size`` best of the ``beam_size · V`` candidates.
  A candidate that ends with ``<EOS>`` is finished. The search stops when ``beam_size`` hypotheses
  have finished, when no unfinished prefix can still beat the best finished one (log-probabilities
  only fall as tokens are added, so with ``length_penalty=0`` this stop is exact), or after
  ``max_len`` steps. Hypotheses are ranked by

  .. math:: \mathrm{score} = \frac{\log P(w_1, \dots, w_n)}{n^{\lambda}}

  with :math:`n` the number of tokens including ``<EOS>`` and :math:`\lambda` = ``length_penalty``
  (0: the plain log-probability, which favours short outputs; 1: the mean per token).
  ``beam_size=1`` is greedy decoding; a beam as large as the number of prefixes is an exhaustive
  search.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .backend import to_numpy
from .text import sample_from_logits

__all__ = ["Hypothesis", "generate", "beam_search", "take"]


def take(state, index, axis=0):
    """The hypotheses ``index`` (integer ids) of ``state``: every array of it indexed along ``axis``
    (tuples, lists and dicts are followed)."""
    if isinstance(state, (tuple, list)):
        return type(state)(take(s, index, axis) for s in state)
    if isinstance(state, dict):
        return {k: take(s, index, axis) for k, s in state.items()}
    where = (slice(None),) * axis + (index,)
    return state[where]


def _log_softmax(logits):
    """``log softmax`` of ``(K, V)`` logits, as a float64 numpy array."""
    z = to_numpy(logits).astype(np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def generate(step, state, batch, max_len, bos_id, eos_id, temperature=0.0, rng=None):
    """Token-id lists for ``batch`` rows decoded side by side: greedy (``temperature=0``, the argmax
    at every step) or sampled. Each row starts from ``<BOS>``, feeds its choice back as the next
    input and ends at its own ``<EOS>`` (not included); the loop ends when every row has ended, or
    after ``max_len`` steps."""
    token = np.full(batch, bos_id, dtype=np.int64)
    out = [[] for _ in range(batch)]
    done = np.zeros(batch, dtype=bool)
    for _ in range(max_len):
        logits, state = step(token, state)
        token = np.asarray(sample_from_logits(to_numpy(logits), temperature, rng), dtype=np.int64).reshape(batch)
        for b in np.flatnonzero(~done):
            if token[b] == eos_id:
                done[b] = True
            else:
                out[b].append(int(token[b]))
        if done.all():
            break
    return out


@dataclass(order=True)
class Hypothesis:
    """One output of :func:`beam_search`: ``tokens`` (without ``<BOS>``/``<EOS>``), its
    log-probability ``log_prob``, its ranking ``score`` and whether it ``finished`` with ``<EOS>``."""

    score: float
    tokens: list = field(compare=False)
    log_prob: float = field(compare=False)
    finished: bool = field(compare=False)


def _score(log_prob, n, length_penalty):
    return log_prob / (max(n, 1) ** length_penalty)


def beam_search(step, state, beam_size, max_len, bos_id, eos_id, length_penalty=0.0, axis=0):
    """Beam search for one sequence (see the module docstring): ``state`` holds one hypothesis
    along ``axis``. Returns the finished hypotheses, best first (:class:`Hypothesis`), or, when none
    finished within ``max_len`` steps, the unfinished ones."""
    if not isinstance(beam_size, (int, np.integer)) or beam_size < 1:
        raise ValueError(f"beam_size must be a positive integer, got {beam_size!r}")
    prefixes, log_probs = [[]], np.zeros(1)
    tokens = np.full(1, bos_id, dtype=np.int64)
    finished = []
    for _ in range(max_len):
        logits, state = step(tokens, state)
        total = log_probs[:, None] + _log_softmax(logits)  # (K, V): log P of every extension
        V = total.shape[1]
        order = np.argsort(-total, axis=None, kind="stable")[: 2 * beam_size]
        keep = []
        for rank, flat in enumerate(order):
            k, w = divmod(int(flat), V)
            if w == eos_id:
                if rank < beam_size:  # a finished candidate counts only among the best beam_size
                    n = len(prefixes[k]) + 1
                    finished.append(Hypothesis(_score(total[k, w], n, length_penalty), prefixes[k],
                                               float(total[k, w]), True))
            elif len(keep) < beam_size:
                keep.append((k, w))
        best_finished = max((h.score for h in finished), default=-np.inf)
        if len(finished) >= beam_size or not keep:
            break
        if length_penalty == 0 and best_finished >= max(total[k, w] for k, w in keep):
            break  # no unfinished prefix can overtake the best finished hypothesis
        parents = np.array([k for k, _ in keep])
        tokens = np.array([w for _, w in keep], dtype=np.int64)
        prefixes = [prefixes[k] + [int(w)] for k, w in keep]
        log_probs = np.array([total[k, w] for k, w in keep])
        state = take(state, parents, axis)
    else:
        if not finished:
            return sorted((Hypothesis(_score(lp, len(p), length_penalty), p, float(lp), False)
                           for p, lp in zip(prefixes, log_probs)), reverse=True)
    return sorted(finished, reverse=True)
