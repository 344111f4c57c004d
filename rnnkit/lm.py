r"""Language modelling on one long stream of token ids: minibatches for truncated BPTT, and n-gram
baselines to measure a model against.

A corpus is one stream :math:`w_1, \dots, w_N`. To train on it with minibatches, :func:`batchify` cuts it
into :math:`B` equal pieces, the columns of an :math:`(M, B)` array, and :func:`bptt_batches` reads the
columns :math:`T` rows at a time. Chunk :math:`k + 1` of a column continues chunk :math:`k` of the same
column, so the state a recurrent network ends a chunk with is the right initial state for the next
one: carried forward, and cut from the backward pass (*truncated BPTT*). :class:`LanguageModel` is
the network that reads the chunks::

    model = LanguageModel(V, 32, rnnkit.RNN(32, 128))
    opt = rnnkit.Adam(model.params, lr=1e-2)
    state = None
    for x, y in bptt_batches(ids, batch_size=32, seq_len=64):   # (T, B) each
        logits, state = model(x, state)       # starts where the previous chunk ended
        loss, grads = rnnkit.cross_entropy(logits, y, reduction="mean")
        model.backward(grads["logits"])       # BPTT inside the chunk only
        opt.step(model.grads)

:class:`NGram` is the count-based model to beat: the next token from the last :math:`n - 1` only.
"""
from __future__ import annotations

import numpy as np

from .backend import to_numpy
from .embedding import Embedding
from .heads import Linear
from .models import Model, _like_ids
from .text import sample_from_logits

__all__ = ["batchify", "bptt_batches", "LanguageModel", "NGram"]


def _as_ids(ids, what="ids"):
    ids = np.asarray(ids)
    if ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise ValueError(f"{what} must be a 1-d array of integer token ids, got {ids.dtype} of shape {ids.shape}")
    return ids.astype(np.int64, copy=False)


def batchify(ids, batch_size):
    r"""Cut a stream of ``N`` ids into ``batch_size`` contiguous pieces, one per column.

    With :math:`M = \lfloor N / B \rfloor`, column :math:`b` holds :math:`w_{bM+1}, \dots, w_{(b+1)M}`:
    ``columns[:, b] = ids[b*M:(b+1)*M]``; the last :math:`N - BM` ids are dropped. Returns an int64 array
    of shape ``(M, B)``, time-major like the rest of rnnkit.
    """
    ids = _as_ids(ids)
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    rows = ids.shape[0] // batch_size
    if rows < 2:
        raise ValueError(f"{ids.shape[0]} ids make fewer than 2 rows of {batch_size} columns: nothing to predict")
    return ids[: rows * batch_size].reshape(batch_size, rows).T.copy()


def bptt_batches(ids, batch_size, seq_len):
    r"""The chunks of truncated BPTT: pairs ``(inputs, targets)`` of shape ``(T, B)``, in reading order.

    The stream is cut by :func:`batchify` into columns :math:`C` of :math:`M` rows; chunk :math:`k` is

    .. math:: \mathrm{inputs} = C[kT : kT + T], \qquad \mathrm{targets} = C[kT + 1 : kT + T + 1],

    the target of every position being the next id of the same column. The last chunk is shorter when
    :math:`T` does not divide :math:`M - 1`; together the chunks predict rows :math:`1, \dots, M - 1` of
    every column, each once.
    """
    columns = batchify(ids, batch_size)
    if not isinstance(seq_len, (int, np.integer)) or seq_len < 1:
        raise ValueError(f"seq_len must be a positive integer, got {seq_len!r}")
    rows = columns.shape[0]
    starts = range(0, rows - 1, seq_len)
    return [(columns[s : min(s + seq_len, rows - 1)], columns[s + 1 : min(s + seq_len, rows - 1) + 1]) for s in starts]


class LanguageModel(Model):
    r"""A recurrent language model that reads a long stream chunk by chunk, carrying its state.

    .. math:: x_t = E_{w_t,:}, \qquad h_t = \mathrm{cell}(x_t, h_{t-1}), \qquad
              z_t = W_y h_t + b_y, \qquad P(w_{t+1} \mid w_{\le t}) = \mathrm{softmax}(z_t)

    Parts: ``embed`` (:class:`~rnnkit.embedding.Embedding`, ``V × D``), ``rnn`` (an RNN, GRU or LSTM module
    of one direction whose ``input_size`` is ``D``; an LSTM's state is the pair ``(h, c)``) and ``head``
    (:class:`~rnnkit.heads.Linear`, ``H → V``).

    ``logits, state = model(ids, state)`` reads ``ids (T, B)`` from ``state`` (``None``: zeros) and returns
    ``(T, B, V)`` logits and the state after the last step, to pass to the next chunk.
    ``model.backward(dlogits)`` runs BPTT through the last chunk only and fills ``grads``; it returns the
    gradient with respect to the chunk's initial state, the part truncated BPTT throws away (the state
    is an input of the chunk, not the output of a graph: nothing connects it to the previous chunk).
    """

    def __init__(self, vocab_size, embedding_dim, rnn, *, seed=None, dtype="float64"):
        if rnn.input_size != embedding_dim:
            raise ValueError(f"the rnn reads {rnn.input_size} features, the embedding gives {embedding_dim}")
        if rnn.bidirectional:
            raise ValueError("a language model reads left to right: give it a module of one direction")
        self.parts = {
            "embed": Embedding(vocab_size, embedding_dim, seed=seed, dtype=dtype),
            "rnn": rnn,
            "head": Linear(rnn.hidden_size, vocab_size, seed=None if seed is None else seed + 1, dtype=dtype),
        }

    def forward(self, ids, state=None):
        out, state = self.parts["rnn"](self.parts["embed"](ids), state)
        return self.parts["head"](out), state

    def backward(self, dlogits):
        dx, dstate = self.parts["rnn"].backward(self.parts["head"].backward(dlogits))
        self.parts["embed"].backward(dx)
        return dstate

    def generate(self, prompt, length, temperature=1.0, rng=None, exclude=()):
        """``length`` ids sampled after ``prompt`` (ids ``(P, B)``, P ≥ 1; B streams at once), each fed back
        as the next input; ``exclude``: ids never drawn. Returns numpy ``(length, B)``."""
        rng = np.random.default_rng(rng)
        like = self.parts["head"].params["weight"]
        prompt = np.asarray(prompt)
        if prompt.ndim != 2 or prompt.shape[0] < 1:
            raise ValueError(f"prompt must be ids of shape (P, B) with P >= 1, got shape {prompt.shape}")
        logits, state = self(_like_ids(prompt, like), None)
        out = np.zeros((length, prompt.shape[1]), dtype=np.int64)
        for t in range(length):
            z = to_numpy(logits[-1]).copy()
            z[:, list(exclude)] = -np.inf
            out[t] = sample_from_logits(z, temperature, rng)
            logits, state = self(_like_ids(out[t : t + 1], like), state)
        return out


def _lookup(keys, values, query):
    """``values`` at the positions of ``query`` in the sorted ``keys``; 0 where a query is absent."""
    at = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
    return np.where(keys[at] == query, values[at], 0)


class NGram:
    r"""An n-gram language model: the next token from the :math:`n - 1` before it, by counting.

    Counts alone give probability 0 to every continuation never seen in training (and perplexity
    :math:`\infty`), so the estimate of order :math:`k` is interpolated with the one of order
    :math:`k - 1` (Witten–Bell smoothing). For a history :math:`h` of :math:`k - 1` tokens, :math:`h^-` the
    same without its oldest token:

    .. math::
        P_k(w \mid h) = \frac{c(h\,w) + u(h)\, P_{k-1}(w \mid h^-)}{c(h) + u(h)}, \qquad
        P_0(w) = \frac{1}{V},

    where :math:`c(h\,w)` counts :math:`h` followed by :math:`w` in the training stream, :math:`c(h)` counts
    :math:`h` followed by anything, and :math:`u(h)` is the number of different tokens seen after :math:`h`:
    a history followed by many different tokens keeps more weight for the lower order. A history never
    seen (:math:`c(h) = 0`) falls back to :math:`P_{k-1}`. Each :math:`P_k(\cdot \mid h)` sums to 1 over the
    :math:`V` tokens. ``NGram(1, V)`` is the unigram model (token frequencies, smoothed toward uniform).

    ``fit(ids)`` counts a stream of ids in ``0 … V-1``; ``log_probs(ids)`` scores another stream;
    ``next_probs(history)`` is the whole distribution of the next token.
    """

    def __init__(self, order, vocab_size):
        if not isinstance(order, (int, np.integer)) or order < 1:
            raise ValueError(f"order must be a positive integer (1 = unigram), got {order!r}")
        if not isinstance(vocab_size, (int, np.integer)) or vocab_size < 1:
            raise ValueError(f"vocab_size must be a positive integer, got {vocab_size!r}")
        if float(vocab_size) ** order >= 2.0**62:
            raise ValueError(f"vocab_size**order = {vocab_size}**{order} n-grams do not fit int64 keys")
        self.order, self.vocab_size = int(order), int(vocab_size)
        self._tables = None

    def _keys(self, grams):
        """Each row of ``grams`` (n, k) as one integer, its digits in base V."""
        return grams @ (self.vocab_size ** np.arange(grams.shape[1] - 1, -1, -1, dtype=np.int64))

    def _check(self, ids, what):
        ids = _as_ids(ids, what)
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(f"{what} must lie in [0, {self.vocab_size - 1}], found {ids.min()} … {ids.max()}")
        return ids

    def fit(self, ids):
        """Count every k-gram of the stream ``ids``, for k = 1 … order. Returns ``self``."""
        ids = self._check(ids, "ids")
        if ids.shape[0] < self.order:
            raise ValueError(f"a stream of {ids.shape[0]} ids has no {self.order}-gram")
        self._tables = []
        for k in range(1, self.order + 1):
            grams, counts = np.unique(self._keys(np.lib.stride_tricks.sliding_window_view(ids, k)),
                                      return_counts=True)
            histories, first = np.unique(grams // self.vocab_size, return_index=True)  # grams are sorted
            self._tables.append((grams, counts, histories, np.add.reduceat(counts, first),
                                 np.diff(np.append(first, len(grams)))))
        return self

    def _probs(self, histories, targets, order=None):
        """P(targets[i] | histories[i]) of the model of ``order`` (default: the fitted order);
        histories (n, order-1), -1 where they reach before the start of the stream."""
        if self._tables is None:
            raise RuntimeError("NGram: call fit(ids) before scoring")
        order = self.order if order is None else order
        if not 1 <= order <= self.order:
            raise ValueError(f"order={order}: this model holds the counts of orders 1 … {self.order}")
        p = np.full(targets.shape[0], 1.0 / self.vocab_size)
        for k, (grams, counts, seen, seen_counts, followers) in enumerate(self._tables[:order], start=1):
            history = histories[:, histories.shape[1] - (k - 1):]
            known = (history >= 0).all(axis=1)
            h = self._keys(history[known])
            c_h, u_h = _lookup(seen, seen_counts, h), _lookup(seen, followers, h)
            c_hw = _lookup(grams, counts, h * self.vocab_size + targets[known])
            lower = p[known]
            p[known] = np.where(c_h > 0, (c_hw + u_h * lower) / np.maximum(c_h + u_h, 1), lower)
        return p

    def log_probs(self, ids, order=None):
        r"""``log P(ids[t] | ids[t-n+1:t])`` for t = 1 … N-1, shape ``(N-1,)``: every id but the first,
        each from the ids before it in the same stream (fewer than :math:`n - 1` at its start). The
        perplexity on the stream is ``exp(-log_probs(ids).mean())``.

        ``order=k`` (1 … n) scores with :math:`P_k` instead of :math:`P_n`: the model of order ``k`` fitted
        on the same stream, whose counts are the first ``k`` tables of this one."""
        ids = self._check(ids, "ids")
        padded = np.concatenate([np.full(self.order - 1, -1, dtype=np.int64), ids])
        histories = np.lib.stride_tricks.sliding_window_view(padded[:-1], self.order - 1)[1:] \
            if self.order > 1 else np.zeros((ids.shape[0] - 1, 0), dtype=np.int64)
        return np.log(self._probs(histories, ids[1:], order))

    def next_probs(self, history):
        """The distribution of the next token after ``history`` (its last order-1 ids count), shape (V,)."""
        history = self._check(history, "history")[-(self.order - 1):] if self.order > 1 else np.zeros(0, np.int64)
        history = np.concatenate([np.full(self.order - 1 - history.shape[0], -1, dtype=np.int64), history])
        V = self.vocab_size
        return self._probs(np.tile(history, (V, 1)), np.arange(V, dtype=np.int64))

    def __repr__(self):
        state = "fitted" if self._tables is not None else "not fitted"
        return f"NGram(order={self.order}, vocab_size={self.vocab_size}, {state})"
