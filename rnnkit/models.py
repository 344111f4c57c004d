r"""Models for each input/output type, built from a recurrent module and heads.

============  ================================  =====================================================
type          input → output                    model
============  ================================  =====================================================
many-to-one   sequence → one vector              :class:`ManyToOne`: :math:`\hat y = \mathrm{head}(h_T)`
many-to-many  sequence → one output per step     :class:`ManyToMany`: :math:`\hat y_t = \mathrm{head}(h_t)`
one-to-many   one vector → generated sequence    :class:`OneToMany`: :math:`h_0 = \tanh(W_v v + b_v)`, then a decoder
seq2seq       sequence → sequence of any length  :class:`Seq2Seq`: encoder's final state starts the decoder;
                                                 :class:`AttentionSeq2Seq`: the decoder also attends to every encoder state
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
``<BOS>``) and generate by feeding each sampled token back as the next input (``generate``: greedy or
sampled) or by keeping the most likely prefixes (``beam_search``); both come from :mod:`rnnkit.decoding`.
"""
from __future__ import annotations

from .attention import AdditiveAttention, attention_decoder_backward, attention_decoder_forward, attention_step_forward
from .backend import asarray_like, namespace, to_numpy
from .decoding import beam_search, generate, take
from .embedding import Embedding
from .heads import Linear, tanh_backward, tanh_forward
from .params import Parameters
from .sequence import lengths_to_mask
from .text import BOS_ID, EOS_ID

__all__ = ["ManyToOne", "ManyToMany", "OneToMany", "Seq2Seq", "AttentionSeq2Seq", "shift_right"]


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

    def _step(self, tokens, state):
        """One decoding step: previous token ids ``(K,)`` and the decoder's state -> logits ``(K, V)``
        and the new state (the hypotheses run along axis 1 of the module's states)."""
        like = next(iter(self.parts["head"].params.values()))
        h, state = self.parts["decoder"](self.parts["embed"](_like_ids(tokens[None], like)), state)
        return self.parts["head"](h[0]), state

    def _generate(self, state, batch, max_len, temperature, rng):
        """Feed each chosen token back as the next input; stop when every row has emitted <EOS>.
        Returns a list of token-id lists (without <BOS>/<EOS>)."""
        return generate(self._step, state, batch, max_len, self.bos_id, self.eos_id, temperature, rng)

    def _beam_search(self, state, batch, beam_size, max_len, length_penalty):
        """:func:`rnnkit.decoding.beam_search` for each row of the decoder state: a list (one entry per
        row) of hypotheses, best first."""
        return [beam_search(self._step, take(state, [b], axis=1), beam_size, max_len, self.bos_id, self.eos_id,
                            length_penalty, axis=1) for b in range(batch)]


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

    def beam_search(self, v, beam_size=4, max_len=20, length_penalty=0.0):
        """Beam search from each row of ``v (B, F)``: per row, the hypotheses best first
        (:class:`rnnkit.decoding.Hypothesis`; ``[0].tokens`` is the output)."""
        return self._beam_search(self._initial_state(v), v.shape[0], beam_size, max_len, length_penalty)


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

    def beam_search(self, src, beam_size=4, max_len=20, length_penalty=0.0, src_lengths=None):
        """Beam search for each source sequence: per sequence, the hypotheses best first
        (:class:`rnnkit.decoding.Hypothesis`; ``[0].tokens`` is the output)."""
        return self._beam_search(self.encode(src, src_lengths), src.shape[1], beam_size, max_len, length_penalty)


class AttentionSeq2Seq(Model):
    r"""Encoder–decoder with additive attention (:mod:`rnnkit.attention`): the decoder keeps every
    encoder output :math:`h_1, \dots, h_S` and, at each step, reads a context vector made from them:

    .. math:: c_t, \alpha_t = \mathrm{attend}(h^{\text{dec}}_{t-1}, h_{1:S}), \qquad
              h^{\text{dec}}_t = \mathrm{cell}([e'(u_t); c_t], h^{\text{dec}}_{t-1}), \qquad
              y_t = W_y h^{\text{dec}}_t + b_y,

    starting from the encoder's final state. ``encoder`` is a one-layer, one-direction module
    (RNN/GRU/LSTM); ``decoder`` a cell module of the same type (``GRUCell``, …) with
    ``input_size = embedding_dim + encoder.hidden_size`` and the encoder's hidden size. Parts:
    ``src_embed``, ``encoder``, ``embed``, ``attention`` (:class:`~rnnkit.attention.AdditiveAttention`
    with ``attention_size`` hidden units), ``decoder``, ``head``. After a forward call
    ``attention_weights`` holds the weights of every step, ``(T, S, B)``.
    """

    def __init__(self, src_vocab, tgt_vocab, embedding_dim, encoder, decoder, attention_size, *, bos_id=BOS_ID,
                 eos_id=EOS_ID, seed=None, dtype="float64"):
        H = encoder.hidden_size
        if getattr(encoder, "num_layers", None) != 1 or encoder.bidirectional:
            raise ValueError("AttentionSeq2Seq needs a one-layer, one-direction encoder module (RNN, GRU or LSTM)")
        if hasattr(decoder, "num_layers") or decoder.cell.name != encoder.cell.name:
            raise ValueError(f"the decoder must be a cell module of the encoder's type ({encoder.cell.title}Cell), "
                             f"got {type(decoder).__name__}")
        if decoder.hidden_size != H or decoder.input_size != embedding_dim + H:
            raise ValueError(f"the decoder cell must have input_size = embedding_dim + H = {embedding_dim + H} and "
                             f"hidden_size = H = {H}, got {decoder.input_size} and {decoder.hidden_size}")
        self.bos_id, self.eos_id = bos_id, eos_id
        self.parts = {
            "src_embed": Embedding(src_vocab, embedding_dim, seed=seed, dtype=dtype),
            "encoder": encoder,
            "embed": Embedding(tgt_vocab, embedding_dim, seed=None if seed is None else seed + 1, dtype=dtype),
            "attention": AdditiveAttention(H, H, attention_size, seed=seed, dtype=dtype),
            "decoder": decoder,
            "head": Linear(H, tgt_vocab, seed=seed, dtype=dtype),
        }
        self.attention_weights = None

    def _cell_args(self):
        decoder = self.parts["decoder"]
        return {**self.parts["attention"].params, **decoder.params}, decoder.cell, decoder.cell_options

    def encode(self, src, lengths=None):
        """``(keys (S, B, H), state0, mask)``: the encoder's outputs, its final state (the decoder's
        initial state; LSTM ``(h, c)``) and the source mask (``None`` without ``lengths``)."""
        keys, state = self.parts["encoder"](self.parts["src_embed"](src), lengths=lengths)
        state = tuple(s[0] for s in state) if isinstance(state, tuple) else state[0]
        mask = None
        if lengths is not None:  # on the keys' backend and device, whatever the lengths came as
            mask = lengths_to_mask(asarray_like(to_numpy(lengths), keys), T=src.shape[0], dtype=keys.dtype)
        return keys, state, mask

    def forward(self, src, targets, src_lengths=None):
        """Teacher-forced logits ``(T, B, V)``; sets ``attention_weights`` ``(T, S, B)``."""
        keys, state0, mask = self.encode(src, src_lengths)
        params, cell, options = self._cell_args()
        x = self.parts["embed"](shift_right(targets, self.bos_id))
        hs, _, self.attention_weights, self._cache = attention_decoder_forward(x, state0, keys, params, cell, mask,
                                                                               **options)
        return self.parts["head"](hs)

    def backward(self, dlogits):
        """Fills ``grads`` of every part; the keys' gradient and the initial state's go back into
        the encoder."""
        g = attention_decoder_backward(self.parts["head"].backward(dlogits), None, self._forward_cache())
        self.parts["embed"].backward(g["x"])
        for name in ("attention", "decoder"):
            self.parts[name].grads = {key: g[key] for key in self.parts[name].params}
        d_state = (g["h0"][None], g["c0"][None]) if "c0" in g else g["h0"][None]
        d_src, _ = self.parts["encoder"].backward(g["keys"], d_state)
        self.parts["src_embed"].backward(d_src)

    def _stepper(self, keys, mask):
        """The step function of :mod:`rnnkit.decoding` over ``keys``: ids ``(K,)`` and the decoder's
        state -> logits ``(K, V)`` and the new state. With one source sequence and K hypotheses,
        the keys (and mask) are shared by all K."""
        params, cell, options = self._cell_args()
        xp = namespace(keys)
        like = keys

        def step(tokens, state):
            k, m = keys, mask
            if keys.shape[1] != tokens.shape[0]:
                k = xp.broadcast_to(keys, (keys.shape[0], tokens.shape[0], keys.shape[2]))
                m = None if mask is None else xp.broadcast_to(mask, (mask.shape[0], tokens.shape[0]))
            x = self.parts["embed"](_like_ids(tokens, like))
            state, _, _, _ = attention_step_forward(x, state, k, params, cell, m, **options)
            return self.parts["head"](state[0] if isinstance(state, tuple) else state), state

        return step

    def generate(self, src, max_len=20, temperature=0.0, rng=None, src_lengths=None):
        """Token-id lists for each source sequence; temperature 0 is greedy. (The attention weights
        of a generated output: run ``forward`` on it and read ``attention_weights``.)"""
        keys, state0, mask = self.encode(src, src_lengths)
        return generate(self._stepper(keys, mask), state0, src.shape[1], max_len, self.bos_id, self.eos_id,
                        temperature, rng)

    def beam_search(self, src, beam_size=4, max_len=20, length_penalty=0.0, src_lengths=None):
        """Beam search for each source sequence: per sequence, the hypotheses best first
        (:class:`rnnkit.decoding.Hypothesis`; ``[0].tokens`` is the output)."""
        keys, state0, mask = self.encode(src, src_lengths)
        out = []
        for b in range(src.shape[1]):
            one = [b]
            step = self._stepper(take(keys, one, axis=1), None if mask is None else take(mask, one, axis=1))
            out.append(beam_search(step, take(state0, one), beam_size, max_len, self.bos_id, self.eos_id,
                                   length_penalty))
        return out
