r"""Text utilities: a word- or character-level tokenizer, padding and masks, and sampling for generation.

Token ids: four reserved ids come first, then the fitted tokens, most frequent first (ties
alphabetically, so a fit is deterministic)::

    0 <PAD>   padding of short sequences in a batch
    1 <UNK>   any token not seen (often enough) in fit()
    2 <BOS>   beginning of a sequence (the first input when generating)
    3 <EOS>   end of a sequence (the model outputs it to stop)

``pad_batch`` turns id lists into a padded ``(B, T)`` array and ``lengths_to_mask`` (from
:mod:`rnnkit.sequence`) gives the matching mask, time-major ``(T, B)`` by default like the rest of rnnkit.
``sample_from_logits`` draws the next token with a temperature. This module works on numpy.
"""

import re
from collections import Counter

import numpy as np

from .sequence import lengths_to_mask  # masks belong with the recurrence; kept importable from here

__all__ = [
    "PAD",
    "UNK",
    "BOS",
    "EOS",
    "SPECIALS",
    "PAD_ID",
    "UNK_ID",
    "BOS_ID",
    "EOS_ID",
    "Vocabulary",
    "Tokenizer",
    "pad_batch",
    "lengths_to_mask",
    "sample",
    "sample_from_logits",
]

PAD, UNK, BOS, EOS = "<PAD>", "<UNK>", "<BOS>", "<EOS>"
SPECIALS = (PAD, UNK, BOS, EOS)
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3

_WORD = re.compile(r"\w+(?:'\w+)?|[^\w\s]")  # words (with an apostrophe inside) or single punctuation marks


class Vocabulary:
    """A two-way map between tokens (strings) and ids, with the reserved tokens at ids 0-3.

    ``vocab[token]`` is the token's id (``unk_id`` for an unknown token), ``vocab.token(i)`` the token of id
    ``i``, ``len(vocab)`` the number of ids, ``vocab.itos`` the list of tokens by id.
    """

    pad_id, unk_id, bos_id, eos_id = PAD_ID, UNK_ID, BOS_ID, EOS_ID

    def __init__(self, tokens=()):
        self.itos = list(SPECIALS)
        self.stoi = {token: i for i, token in enumerate(self.itos)}
        for token in tokens:
            self.add(token)

    @classmethod
    def build(cls, token_lists, min_count=1, max_size=None):
        """Count the tokens of ``token_lists`` and keep those seen at least ``min_count`` times, most frequent
        first (ties alphabetically); ``max_size`` caps the total number of ids, the 4 reserved ones included."""
        if max_size is not None and max_size < len(SPECIALS):
            raise ValueError(f"max_size={max_size} leaves no room: {len(SPECIALS)} ids are reserved for {SPECIALS}")
        counts = Counter(token for tokens in token_lists for token in tokens)
        kept = [t for t, c in counts.items() if c >= min_count and t not in SPECIALS]
        kept.sort(key=lambda t: (-counts[t], t))  # most frequent first, ties alphabetically
        if max_size is not None:
            kept = kept[: max_size - len(SPECIALS)]
        return cls(kept)

    def add(self, token):
        if token not in self.stoi:
            self.stoi[token] = len(self.itos)
            self.itos.append(token)
        return self.stoi[token]

    def __len__(self):
        return len(self.itos)

    def __contains__(self, token):
        return token in self.stoi

    def __getitem__(self, token):
        return self.stoi.get(token, self.unk_id)

    def token(self, i):
        return self.itos[i]

    def __repr__(self):
        shown = ", ".join(self.itos[:10]) + (", ..." if len(self) > 10 else "")
        return f"Vocabulary({len(self)} tokens: {shown})"


class Tokenizer:
    r"""Split text into words or characters and map them to ids.

    ``level="word"``: words and punctuation marks (``"The cat sat."`` -> ``["The", "cat", "sat", "."]``);
    ``decode`` joins with spaces. ``level="char"``: every character is a token; ``decode`` joins with ``""``,
    so ``decode(encode(text)) == text`` for text made of known characters. ``lower=True`` lowercases first.

    ``fit`` also accepts already tokenized texts (lists of strings), e.g. the corpora of :mod:`rnnkit.data`.
    """

    pad_id, unk_id, bos_id, eos_id = PAD_ID, UNK_ID, BOS_ID, EOS_ID

    def __init__(self, level="word", lower=False):
        if level not in ("word", "char"):
            raise ValueError(f"level={level!r}, expected 'word' or 'char'")
        self.level, self.lower = level, lower
        self.vocab = Vocabulary()

    def tokenize(self, text):
        """The list of tokens of ``text`` (a list of strings is taken as already tokenized)."""
        if not isinstance(text, str):
            return [t.lower() if self.lower else t for t in text]
        if self.lower:
            text = text.lower()
        return list(text) if self.level == "char" else _WORD.findall(text)

    def fit(self, texts, min_count=1, max_size=None):
        """Build the vocabulary from ``texts``: tokens seen at least ``min_count`` times, the ``max_size``
        most frequent at most (reserved ids included). Returns ``self``."""
        if isinstance(texts, str):
            raise TypeError("fit() takes a list of texts; wrap a single text in a list")
        self.vocab = Vocabulary.build([self.tokenize(t) for t in texts], min_count, max_size)
        return self

    def encode(self, text, add_bos=False, add_eos=False):
        """Token ids of ``text``; tokens not in the vocabulary map to ``<UNK>`` (id 1)."""
        ids = [self.vocab[token] for token in self.tokenize(text)]
        return ([BOS_ID] if add_bos else []) + ids + ([EOS_ID] if add_eos else [])

    def decode(self, ids, skip_special=True):
        """Text of ``ids``; ``<PAD>``, ``<BOS>`` and ``<EOS>`` are dropped unless ``skip_special=False``
        (``<UNK>`` is always shown)."""
        hidden = {PAD_ID, BOS_ID, EOS_ID} if skip_special else set()
        tokens = [self.vocab.token(int(i)) for i in ids if int(i) not in hidden]
        return ("" if self.level == "char" else " ").join(tokens)

    def __len__(self):
        return len(self.vocab)

    def __repr__(self):
        return f"Tokenizer(level={self.level!r}, lower={self.lower}, {len(self)} ids)"


def pad_batch(sequences, pad_id=PAD_ID, batch_first=True):
    """Stack id lists of different lengths into one array, padding the short ones with ``pad_id``.

    Returns ``(ids, lengths)``: ``ids`` of shape ``(B, T)`` (``(T, B)`` with ``batch_first=False``,
    the functional layer's time-major layout), ``T`` the longest length, and ``lengths`` of shape ``(B,)``,
    both int64 numpy arrays.
    """
    sequences = [list(s) for s in sequences]
    if not sequences:
        raise ValueError("pad_batch() needs at least one sequence")
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    ids = np.full((len(sequences), int(lengths.max())), pad_id, dtype=np.int64)
    for b, s in enumerate(sequences):
        ids[b, : len(s)] = s
    return (ids if batch_first else ids.T.copy()), lengths


def sample_from_logits(logits, temperature=1.0, rng=None):
    r"""Draw a token id from :math:`p = \mathrm{softmax}(z / \tau)`, with temperature :math:`\tau`.

    :math:`\tau = 1` samples from the model's distribution; :math:`\tau < 1` sharpens it (more likely,
    more repetitive text), :math:`\tau > 1` flattens it (more surprising text); :math:`\tau = 0` is the
    limit: always the most likely token (argmax).

    ``logits`` is ``(V,)`` (returns an ``int``) or ``(B, V)`` (returns ``B`` ids). ``rng`` is a
    ``numpy.random.Generator``, a seed, or ``None``.
    """
    if temperature < 0:
        raise ValueError(f"temperature={temperature}, expected temperature >= 0")
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim not in (1, 2):
        raise ValueError(f"logits must be (V,) or (B, V), got shape {logits.shape}")
    if temperature == 0:
        choice = np.argmax(logits, axis=-1)
    else:
        rng = np.random.default_rng(rng)
        scaled = logits / temperature
        scaled = scaled - np.max(scaled, axis=-1, keepdims=True)  # stable softmax
        probs = np.exp(scaled)
        probs /= probs.sum(axis=-1, keepdims=True)
        if logits.ndim == 1:
            return int(rng.choice(logits.shape[0], p=probs))
        choice = np.array([rng.choice(logits.shape[1], p=p) for p in probs])
    return int(choice) if logits.ndim == 1 else choice.astype(np.int64)


def sample(probs, temperature=1.0, rng=None):
    r"""Like :func:`sample_from_logits` but from probabilities: draws from
    :math:`p_i^{1/\tau} / \sum_j p_j^{1/\tau}` (the same as temperature on the logits :math:`\log p`)."""
    probs = np.asarray(probs, dtype=np.float64)
    if np.any(probs < 0):
        raise ValueError("probs must be non-negative")
    with np.errstate(divide="ignore"):
        return sample_from_logits(np.log(probs), temperature, rng)
