r"""Models for each input/output type, built from a recurrent module and heads.

============  ================================  =====================================================
type          input → output                    model
============  ================================  =====================================================
many-to-one   sequence → one vector              :class:`ManyToOne`: :math:`\hat y = \mathrm{head}(h_T)`
many-to-many  sequence → one output per step     :class:`ManyToMany`: :math:`\hat y_t = \mathrm{head}(h_t)`
one-to-many   one vector → generated sequence    :class:`OneToMany`: :math:`h_0 = \tanh(W_v v + b_v)`, then a decoder
seq2seq       sequence → sequence of any length  :class:`Seq2Seq`: encoder's final state starts the decoder
============  ================================  =====================================================

Every model exposes ``params`` and ``grads`` as one dict with prefixed names (``"rnn.weight_ih_l0"``,
``"head.weight"``), so an optimizer from :mod:`rnnkit.optim` updates all parts at once, and has the
parameter methods of every layer (``state_dict``, ``load_state_dict``, ``to``, ``zero_grad``, …)::

    model = ManyToOne(rnnkit.GRU(8, 32), rnnkit.Linear(32, 10))
    opt = rnnkit.Adam(model.params, lr=1e-2)
    logits = model(x, lengths=lengths)
    loss, grads = rnnkit.cross_entropy(logits, y, reduction="mean")
    model.backward(grads["logits"])
    opt.step(model.grads)

Decoders (one-to-many and seq2seq) read token ids through an :class:`~rnnkit.embedding.Embedding`,
are trained with **teacher forcing** (the input at step t is the true token t−1, starting from
``<BOS>``) and generate by feeding each sampled token back as the next input.
"""
from __future__ import annotations

from .backend import namespace
from .embedding import Embedding
from .heads import Linear, tanh_backward, tanh_forward
from .params import Parameters
from .text import BOS_ID, EOS_ID, sample_from_logits

__all__ = ["ManyToOne", "ManyToMany", "OneToMany", "Seq2Seq", "shift_right"]


class Model(Parameters):
    """Parts (recurrent modules, heads, embeddings) under one ``params`` / ``grads`` dict, named
    ``"{part}.{parameter}"``; the parameter methods act on every part."""

    parts: dict

    @property
    def params(self) -> dict:
        return {f"{name}.{key}": value for name, part in self.parts.items() for key, value in part.params.items()}

    @property
    def grads(self) -> dict:
        return {f"{name}.{key}": value for name, part in self.parts.items() for key, value in part.grads.items()}

    def _set_params(self, params):
        for name, part in self.parts.items():
            prefix = name + "."
            part._set_params({key[len(prefix) :]: value for key, value in params.items() if key.startswith(prefix)})

    def zero_grad(self):
        for part in self.parts.values():
            part.zero_grad()

    def train(self, mode=True):
        self.training = bool(mode)
        for part in self.parts.values():
            part.train(mode)
        return self

    def __repr__(self):
        inner = ", ".join(f"{name}={part!r}" for name, part in self.parts.items())
        return f"{type(self).__name__}({inner})"


class ManyToOne(Model):
    r"""Sequence in, one output: :math:`\hat y = W_y h_T + b_y` from each sequence's last real step
    (sentiment of a review, the class of a digit read row by row). ``head`` may be any head."""

    def __init__(self, rnn, head):
        self.parts = {"rnn": rnn, "head": head}

    def forward(self, x, h0=None, lengths=None, mask=None):
        last, _ = self.parts["rnn"](x, h0, lengths=lengths, mask=mask, return_sequences=False)
        return self.parts["head"](last)

    def backward(self, dy):
        """Gradient of the loss w.r.t. the output; fills ``grads``; returns ``dx``."""
        dx, _ = self.parts["rnn"].backward(self.parts["head"].backward(dy))
        return dx


class ManyToMany(Model):
    r"""Aligned sequence to sequence: :math:`\hat y_t = \mathrm{head}(h_t)` at every step (tagging,
    forecasting the next value). Outputs at padded steps are the head applied to zeros; give them no
    loss (``ignore_index`` or a mask)."""

    def __init__(self, rnn, head):
        self.parts = {"rnn": rnn, "head": head}

    def forward(self, x, h0=None, lengths=None, mask=None):
        out, _ = self.parts["rnn"](x, h0, lengths=lengths, mask=mask)
        return self.parts["head"](out)

    def backward(self, dy):
        dx, _ = self.parts["rnn"].backward(self.parts["head"].backward(dy))
        return dx


def shift_right(targets, bos_id: int = BOS_ID):
    """Teacher-forcing inputs: ``<BOS>`` followed by the targets without their last token.

    ``targets`` is ``(T, B)`` time-major; the decoder reads ``inputs[t] = targets[t-1]`` and must
    predict ``targets[t]``."""
    xp = namespace(targets)
    bos = xp.full((1, targets.shape[1]), bos_id, dtype=targets.dtype)
    return xp.concat([bos, targets[:-1]], axis=0)


class _Decoder(Model):
    """Embedding → recurrent module → linear head over the vocabulary, started from a given state."""

    def _decode(self, state0, targets):
        """Teacher-forced logits ``(T, B, V)`` for time-major target ids ``(T, B)``."""
        inputs = self.parts["embed"](shift_right(targets, self.bos_id))
        out, _ = self.parts["decoder"](inputs, state0)
        return self.parts["head"](out)

    def _decode_backward(self, dlogits):
        """Backward of :meth:`_decode`; returns the gradient w.r.t. the initial state."""
        d_inputs, d_state0 = self.parts["decoder"].backward(self.parts["head"].backward(dlogits))
        self.parts["embed"].backward(d_inputs)
        return d_state0

    def _generate(self, state, batch, max_len, temperature, rng):
        """Feed each sampled token back as the next input; stop when every row has emitted <EOS>.
        Returns a list of token-id lists (without <BOS>/<EOS>)."""
        import numpy as np

        from .backend import to_numpy

        token = np.full((1, batch), self.bos_id, dtype=np.int64)
        out = [[] for _ in range(batch)]
        done = np.zeros(batch, dtype=bool)
        like = next(iter(self.parts["head"].params.values()))
        for _ in range(max_len):
            ids = _like_ids(token, like)
            h, state = self.parts["decoder"](self.parts["embed"](ids), state)
            logits = to_numpy(self.parts["head"](h[0]))
            token = sample_from_logits(logits, temperature, rng).reshape(1, batch)
            for b in np.flatnonzero(~done):
                if token[0, b] == self.eos_id:
                    done[b] = True
                else:
                    out[b].append(int(token[0, b]))
            if done.all():
                break
        return out


def _like_ids(ids, like):
    """Integer ids on the backend (and device) of ``like``."""
    from .backend import is_torch

    if is_torch(like):
        import torch

        return torch.as_tensor(ids, device=like.device)
    return ids


class OneToMany(_Decoder):
    r"""One vector in, a generated sequence out (image features → caption):

    .. math:: h_0 = \tanh(W_v v + b_v), \qquad \hat y_t = \mathrm{softmax}(W_y h_t + b_y),

    where the decoder's input at step t is the embedding of token t−1 (``<BOS>`` at t = 1).
    ``decoder`` is an RNN/GRU/LSTM module (one layer) whose ``input_size`` is ``embedding_dim``.
    """

    def __init__(self, feature_size, vocab_size, embedding_dim, decoder, *, bos_id=BOS_ID, eos_id=EOS_ID,
                 seed=None, dtype="float64"):
        H = decoder.hidden_size
        self.bos_id, self.eos_id = bos_id, eos_id
        self.parts = {
            "init": Linear(feature_size, H, seed=seed, dtype=dtype),
            "embed": Embedding(vocab_size, embedding_dim, seed=seed, dtype=dtype),
            "decoder": decoder,
            "head": Linear(H, vocab_size, seed=seed, dtype=dtype),
        }

    def _initial_state(self, v):
        h0, self._init_cache = tanh_forward(self.parts["init"](v))
        h0 = h0[None]  # (1, B, H): one layer, one direction
        if self.parts["decoder"].cell.has_cell_state:
            return h0, namespace(h0).zeros_like(h0)
        return h0

    def forward(self, v, targets):
        """Teacher-forced logits ``(T, B, V)`` for features ``v (B, F)`` and target ids ``(T, B)``."""
        return self._decode(self._initial_state(v), targets)

    def backward(self, dlogits):
        d_state0 = self._decode_backward(dlogits)
        dh0 = d_state0[0] if isinstance(d_state0, tuple) else d_state0
        return self.parts["init"].backward(tanh_backward(dh0[0], self._init_cache)["z"])

    def generate(self, v, max_len=20, temperature=0.0, rng=None):
        """Token-id lists generated from features ``v (B, F)``; temperature 0 is greedy."""
        return self._generate(self._initial_state(v), v.shape[0], max_len, temperature, rng)


class Seq2Seq(_Decoder):
    r"""Encoder–decoder: the encoder reads the source, its final state starts the decoder, which is
    trained with teacher forcing and generates by feeding samples back (translation, reversing a
    sequence). Encoder and decoder are modules of the same cell type with the same hidden size and
    number of layers (one direction)."""

    def __init__(self, src_vocab, tgt_vocab, embedding_dim, encoder, decoder, *, bos_id=BOS_ID, eos_id=EOS_ID,
                 seed=None, dtype="float64"):
        if encoder.hidden_size != decoder.hidden_size or encoder.num_layers != decoder.num_layers:
            raise ValueError("encoder and decoder need the same hidden_size and num_layers, got "
                             f"{encoder.hidden_size}/{encoder.num_layers} and {decoder.hidden_size}/{decoder.num_layers}")
        if encoder.bidirectional or decoder.bidirectional:
            raise ValueError("Seq2Seq hands the encoder's final state to the decoder: use one direction for both")
        self.bos_id, self.eos_id = bos_id, eos_id
        self.parts = {
            "src_embed": Embedding(src_vocab, embedding_dim, seed=seed, dtype=dtype),
            "encoder": encoder,
            "embed": Embedding(tgt_vocab, embedding_dim, seed=None if seed is None else seed + 1, dtype=dtype),
            "decoder": decoder,
            "head": Linear(decoder.hidden_size, tgt_vocab, seed=seed, dtype=dtype),
        }

    def encode(self, src, lengths=None):
        """The encoder's final state for source ids ``(S, B)`` (time-major)."""
        _, state = self.parts["encoder"](self.parts["src_embed"](src), lengths=lengths)
        return state

    def forward(self, src, targets, src_lengths=None):
        """Teacher-forced logits ``(T, B, V)``."""
        return self._decode(self.encode(src, src_lengths), targets)

    def backward(self, dlogits):
        d_state = self._decode_backward(dlogits)
        d_src, _ = self.parts["encoder"].backward(None, d_state)
        self.parts["src_embed"].backward(d_src)

    def generate(self, src, max_len=20, temperature=0.0, rng=None, src_lengths=None):
        """Token-id lists for each source sequence; temperature 0 is greedy."""
        return self._generate(self.encode(src, src_lengths), src.shape[1], max_len, temperature, rng)
