"""Checks for exercise 1, sequence data: an input pipeline from text to time-major batches.

tokenize → build_vocab → encode (with <UNK>, <BOS>, <EOS>) → pad_batch (ids and mask, time-major)
→ make_batches (sorted by length) → seq2seq_batch (the arrays an encoder–decoder reads and
predicts) and encoder_decoder_shapes (every array inside one).

Expected values come from rnnkit: ``rnnkit.text`` (tokenizer, vocabulary, ``pad_batch``) and
``rnnkit.sequence.lengths_to_mask``; the batching and the encoder–decoder arrays are those pieces put
together as the notebook describes. The ``mistakes`` are the same computations with one typical error
built in.
"""
from __future__ import annotations

import numpy as np

from rnnkit.sequence import lengths_to_mask as _rnnkit_mask
from rnnkit.text import BOS_ID, EOS_ID, PAD_ID, SPECIALS, UNK_ID, Tokenizer, Vocabulary
from rnnkit.text import pad_batch as _rnnkit_pad

from ..sandbox import Policy
from . import HELPERS
from .expect import (CheckFailure, blame_parts, call_student, expect_array, expect_close, expect_tuple,
                     kind_of, student_function)

#: what the student's notebook may import when it is graded (not rnnkit.text, rnnkit.sequence nor
#: rnnkit.embedding, which hold the answers)
POLICY = Policy(packages=("numpy", "matplotlib"), rnnkit=HELPERS)
SPECS = ("tokenize", "build_vocab", "encode", "pad_batch", "make_batches", "seq2seq_batch",
         "encoder_decoder_shapes")

# --------------------------------------------------------------------------------------------
# random text
# --------------------------------------------------------------------------------------------

_WORDS = ("the", "cat", "cats", "dog", "dogs", "saw", "was", "were", "a", "bird", "sang", "near", "tree",
          "old", "river", "ran", "it", "they", "isn't", "don't", "we'll", "green", "house", "slept")
_MARKS = (".", ",", "!", "?", ";", ":")


def _sentence(rng, n_words):
    words = [str(w) for w in rng.choice(_WORDS, size=n_words)]
    for i, w in enumerate(words):
        if i == 0 or rng.random() < 0.15:
            words[i] = w.capitalize()
        elif rng.random() < 0.05:
            words[i] = w.upper()
        if rng.random() < 0.2 and i < n_words - 1:
            words[i] += str(rng.choice(_MARKS[1:]))
    return " ".join(words) + str(rng.choice(_MARKS[:4]))


def random_texts(rng, n, min_words=3, max_words=9):
    """``n`` short English-looking texts with capitals, punctuation and apostrophes."""
    return [_sentence(rng, int(rng.integers(min_words, max_words + 1))) for _ in range(n)]


def reference_tokenize(text):
    return Tokenizer(level="word", lower=True).tokenize(text)


def reference_vocab(texts, min_count=1):
    """The list of tokens by id: the four reserved ones, then the kept tokens, most frequent first."""
    return list(Vocabulary.build([reference_tokenize(t) for t in texts], min_count=min_count).itos)


def _expect_strings(got, name):
    if isinstance(got, tuple):
        got = list(got)
    if not isinstance(got, list):
        raise CheckFailure(f"{name} should be a list of strings, got a {kind_of(got)}")
    odd = [g for g in got if not isinstance(g, str)]
    if odd:
        raise CheckFailure(f"{name} should hold strings only; it holds a {kind_of(odd[0])} ({odd[0]!r})")
    return got


def _compare_tokens(got, want, name, mistakes):
    """Lists of strings: equal, or a named mistake, or the first position where they differ."""
    if got == want:
        return
    for message, wrong in mistakes.items():
        if wrong != want and got == wrong:
            raise CheckFailure(f"{name} is wrong: {message}")
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            raise CheckFailure(f"{name} differs from the expected one at position {i}: yours {g!r}, expected "
                               f"{w!r} (yours has {len(got)} entries, the expected one {len(want)})")
    raise CheckFailure(f"{name} has {len(got)} entries, expected {len(want)}; the first {min(len(got), len(want))} "
                       "agree")


# --------------------------------------------------------------------------------------------
# 1. tokens and the vocabulary
# --------------------------------------------------------------------------------------------

def _tokenize_mistakes(text):
    import re

    lower = text.lower()
    return {
        "the text was not lower-cased first: 'The' and 'the' must become the same token": re.findall(
            r"\w+(?:'\w+)?|[^\w\s]", text),
        "splitting at spaces leaves punctuation glued to the words ('dog,' and 'dog' would be two tokens); "
        "use the regular expression TOKEN: a punctuation mark is a token of its own": lower.split(),
        "the punctuation marks were dropped; each one is a token of its own": re.findall(r"\w+(?:'\w+)?", lower),
        "a word with an apostrophe inside (\"isn't\") is one token; your pattern cut it in three": re.findall(
            r"\w+|[^\w\s]", lower),
    }


def tokenize(student, rng, n_texts=3):
    """``tokenize(text)`` returns the list of lower-case tokens: words and single punctuation marks."""
    fn = student_function(student, "tokenize")
    for text in random_texts(rng, n_texts):
        got = _expect_strings(call_student(fn, text, what=f"tokenize({text!r})"), f"tokenize({text!r})")
        _compare_tokens(got, reference_tokenize(text), f"tokenize({text!r})", _tokenize_mistakes(text))
    return f"tokenize: correct on {n_texts} texts"


def _token_counts(texts):
    from collections import Counter

    tokens = [tok for t in texts for tok in reference_tokenize(t)]
    return tokens, Counter(tokens)


def _vocab_mistakes(texts, min_count):
    tokens, counts = _token_counts(texts)
    want = reference_vocab(texts, min_count)
    kept = want[len(SPECIALS):]
    first_seen = [t for t in dict.fromkeys(tokens) if counts[t] >= min_count]
    return {
        "the four reserved tokens <PAD>, <UNK>, <BOS>, <EOS> must come first, at ids 0, 1, 2, 3": kept,
        "the reserved tokens are in the wrong order: <PAD> = 0, <UNK> = 1, <BOS> = 2, <EOS> = 3":
            [SPECIALS[i] for i in (0, 1, 3, 2)] + kept,
        "the tokens are in the order of their first appearance; sort them by count, most frequent first "
        "(ties alphabetically)": list(SPECIALS) + first_seen,
        f"a token is kept when it occurs at least min_count = {min_count} times (count >= min_count); "
        "yours needs one more": list(SPECIALS) + [t for t in kept if counts[t] > min_count],
        f"tokens seen fewer than min_count = {min_count} times must be left out (they become <UNK>)":
            reference_vocab(texts, 1),
    }


def _explain_order(got, want, counts):
    """The right tokens in a wrong order: say which rule of the order is broken."""
    n = len(SPECIALS)
    if got[:n] != want[:n] or sorted(got[n:]) != sorted(want[n:]):
        return
    seen = [counts[t] for t in got[n:]]
    if any(a < b for a, b in zip(seen, seen[1:])):
        if all(a <= b for a, b in zip(seen, seen[1:])):
            raise CheckFailure("the vocabulary is wrong: the least frequent tokens come first; sort by count, "
                               "most frequent first")
        return
    raise CheckFailure("the vocabulary is wrong: tokens with the same count must be in alphabetical order "
                       "(sort by (−count, token))")


def build_vocab(student, rng, n_texts=8, min_count=1):
    """``build_vocab(texts, min_count)`` returns the list of tokens by id (``itos``)."""
    fn = student_function(student, "build_vocab")
    texts = random_texts(rng, n_texts)

    def judge():
        got = _expect_strings(call_student(fn, list(texts), min_count, what="build_vocab"), "the vocabulary")
        want = reference_vocab(texts, min_count)
        mistakes = _vocab_mistakes(texts, min_count)
        if got != want and got not in mistakes.values():
            _explain_order(got, want, _token_counts(texts)[1])
        _compare_tokens(got, want, "the vocabulary", mistakes)

    blame_parts(student, judge, [("tokenize", tokenize)], "build_vocab")
    return f"build_vocab: correct for {n_texts} texts with min_count = {min_count}"


# --------------------------------------------------------------------------------------------
# 2. text to ids
# --------------------------------------------------------------------------------------------

def _reference_encode(text, itos):
    tok = Tokenizer(level="word", lower=True)
    tok.vocab = Vocabulary(itos[len(SPECIALS):])
    return tok.encode(text, add_bos=True, add_eos=True)


def _encode_mistakes(text, itos):
    stoi = {t: i for i, t in enumerate(itos)}
    tokens = reference_tokenize(text)
    plain = [stoi.get(t, UNK_ID) for t in tokens]
    return {
        "an unknown token must become <UNK> (id 1), not disappear: the model still needs a step there":
            [BOS_ID] + [stoi[t] for t in tokens if t in stoi] + [EOS_ID],
        "an unknown token becomes <UNK>, id 1; id 0 is <PAD>": [BOS_ID] + [stoi.get(t, PAD_ID) for t in tokens]
        + [EOS_ID],
        "<BOS> (id 2) must come first and <EOS> (id 3) last": plain,
        "<BOS> (id 2) is missing at the start": plain + [EOS_ID],
        "<BOS> is id 2 and <EOS> is id 3; they are swapped": [EOS_ID] + plain + [BOS_ID],
        "<EOS> (id 3) is missing at the end": [BOS_ID] + plain,
    }


def encode(student, rng, n_texts=6, min_count=2):
    """``encode(text, itos)`` returns the ids of ``<BOS>``, the tokens (unknown ones as ``<UNK>``) and
    ``<EOS>``."""
    fn = student_function(student, "encode")
    texts = random_texts(rng, n_texts + 3)
    itos = reference_vocab(texts[:n_texts], min_count)
    for text in texts:
        want = _reference_encode(text, itos)
        got = call_student(fn, text, list(itos), what="encode")
        if isinstance(got, np.ndarray) and got.ndim == 1 and got.dtype.kind in "iu":
            got = [int(v) for v in got]
        if not isinstance(got, (list, tuple)) or not all(isinstance(v, (int, np.integer)) for v in got):
            raise CheckFailure(f"encode should return a list of integer ids, got {got!r}"[:300])
        got = [int(v) for v in got]
        if got != want:
            for message, wrong in _encode_mistakes(text, itos).items():
                if wrong != want and got == wrong:
                    raise CheckFailure(f"encode({text!r}) is wrong: {message}")
            raise CheckFailure(f"encode({text!r}) gave {got}, expected {want}")
    return f"encode: correct for {len(texts)} texts (vocabulary of {len(itos)} ids)"


# --------------------------------------------------------------------------------------------
# 3. padding and the mask
# --------------------------------------------------------------------------------------------

def random_sequences(rng, batch, max_len, vocab=20, min_len=1):
    lengths = rng.integers(min_len, max_len + 1, size=batch)
    lengths[rng.integers(batch)] = max_len  # the longest sets T
    return [[int(v) for v in rng.integers(4, vocab, size=n)] for n in lengths]


def reference_pad(seqs):
    """``(ids (T, B), mask (T, B))``, time-major, padded with <PAD> at the end."""
    ids, lengths = _rnnkit_pad(seqs, pad_id=PAD_ID, batch_first=False)
    return ids, _rnnkit_mask(lengths, ids.shape[0]).astype(np.float64)


def _pad_mistakes(seqs, want_ids, want_mask):
    left = np.full_like(want_ids, PAD_ID)
    for b, s in enumerate(seqs):
        left[want_ids.shape[0] - len(s):, b] = s
    lengths = np.array([len(s) for s in seqs])
    T = want_ids.shape[0]
    ids_mistakes = {"the padding is at the start of each sequence; put it at the end, after the real tokens":
                    left}
    mask_mistakes = {
        "it is 1 at the padded steps and 0 at the real ones; invert it": 1 - want_mask,
        "each sequence has one real step too few (mask[t, b] = 1 for t < length, not t < length − 1)":
            (np.arange(T)[:, None] < lengths[None, :] - 1).astype(float),
        "each sequence has one real step too many (use t < length, not t <= length)":
            (np.arange(T)[:, None] <= lengths[None, :]).astype(float),
    }
    return ids_mistakes, mask_mistakes


def _expect_padded(out, seqs, what, suffix=""):
    """The student's ``(ids, mask)`` for ``seqs`` must be the reference's (``suffix`` names the
    batch in messages)."""
    want_ids, want_mask = reference_pad(seqs)
    ids, mask = expect_tuple(out, 2, what, "(ids, mask)")
    ids_mistakes, mask_mistakes = _pad_mistakes(seqs, want_ids, want_mask)
    axes = ("T", "B") if want_ids.shape[0] != want_ids.shape[1] else None
    expect_array(ids, f"ids{suffix}", shape=want_ids.shape, axes=axes, integer=True)
    expect_close(ids, want_ids, f"ids{suffix}", mistakes=ids_mistakes)
    if isinstance(mask, np.ndarray) and mask.dtype == bool:
        mask = mask.astype(np.float64)
    expect_close(mask, want_mask, f"mask{suffix}", axes=axes, mistakes=mask_mistakes)


def pad_batch(student, rng, batch=4, max_len=6):
    """``pad_batch(sequences)`` returns ``(ids (T, B), mask (T, B))``, time-major."""
    fn = student_function(student, "pad_batch")
    seqs = random_sequences(rng, batch, max_len)
    _expect_padded(call_student(fn, [list(s) for s in seqs], what="pad_batch"), seqs, "pad_batch")
    return f"pad_batch: correct for {batch} sequences up to length {max_len}"


# --------------------------------------------------------------------------------------------
# 4. batches sorted by length
# --------------------------------------------------------------------------------------------

def _batch_orders(lengths, batch_size):
    """The expected order of the sequences (shortest first, ties in their order) and wrong ones."""
    n = len(lengths)
    want = np.argsort(lengths, kind="stable")
    return want, {
        "the sequences are not sorted: sort them by length (shortest first) before you cut the batches, "
        "so that each batch holds sequences of similar lengths": np.arange(n),
        "the longest sequences come first; sort shortest first (np.argsort of the lengths)":
            np.argsort(-lengths, kind="stable"),
    }


def make_batches(student, rng, n=11, batch_size=4, max_len=9):
    """``make_batches(sequences, batch_size)`` returns a list of ``(ids, mask, index)``, the sequences
    sorted by length (stable) and cut into consecutive batches."""
    fn = student_function(student, "make_batches")
    seqs = random_sequences(rng, n, max_len, min_len=2)
    lengths = np.array([len(s) for s in seqs])
    want_order, wrong_orders = _batch_orders(lengths, batch_size)
    n_batches = -(-n // batch_size)

    def judge():
        got = call_student(fn, [list(s) for s in seqs], batch_size, what="make_batches")
        if not isinstance(got, (list, tuple)):
            raise CheckFailure(f"make_batches should return a list of batches, got a {kind_of(got)}")
        if len(got) != n_batches:
            hint = (f"; the last batch holds the {n % batch_size} sequences that are left over, keep it"
                    if len(got) == n // batch_size and n % batch_size else "")
            raise CheckFailure(f"{n} sequences in batches of {batch_size} make {n_batches} batches; "
                               f"make_batches returned {len(got)}{hint}")
        batches = [expect_tuple(b, 3, f"batch {k}", "(ids, mask, index)") for k, b in enumerate(got)]
        index = []
        for k, (_, _, idx) in enumerate(batches):
            idx = expect_array(np.asarray(idx) if isinstance(idx, list) else idx, f"the index of batch {k}",
                               integer=True)
            index.extend(int(i) for i in idx.ravel())
        index = np.array(index)
        if index.shape != want_order.shape or not np.array_equal(index, want_order):
            for message, wrong in wrong_orders.items():
                if index.shape == wrong.shape and np.array_equal(index, wrong) and not np.array_equal(wrong,
                                                                                                   want_order):
                    raise CheckFailure(f"the order of the sequences is wrong: {message}")
            if index.shape == want_order.shape and np.array_equal(lengths[index], lengths[want_order]):
                raise CheckFailure("sequences of the same length must keep their order (a stable sort: "
                                   "np.argsort(lengths, kind='stable'))")
            raise CheckFailure(f"the indices of the batches, one after the other, should be {want_order.tolist()} "
                               f"(the positions of the sequences sorted by length); yours are {index.tolist()}")
        start = 0
        for k, (ids, mask, _) in enumerate(batches):
            part = [seqs[i] for i in want_order[start:start + batch_size]]
            _expect_padded((ids, mask), part, f"batch {k}", suffix=f" of batch {k}")
            start += batch_size

    blame_parts(student, judge, [("pad_batch", pad_batch)], "make_batches")
    return f"make_batches: correct for {n} sequences in batches of {batch_size}"


# --------------------------------------------------------------------------------------------
# 5. the arrays of an encoder–decoder
# --------------------------------------------------------------------------------------------

S2S_KEYS = ("src", "src_mask", "dec_in", "dec_target", "dec_mask")


def reference_seq2seq(pairs):
    src, src_mask = reference_pad([s for s, _ in pairs])
    dec_in, dec_mask = reference_pad([[BOS_ID] + list(t) for _, t in pairs])
    dec_target, _ = reference_pad([list(t) + [EOS_ID] for _, t in pairs])
    return {"src": src, "src_mask": src_mask, "dec_in": dec_in, "dec_target": dec_target, "dec_mask": dec_mask}


def _seq2seq_mistakes(pairs, want):
    shifted = np.full_like(want["dec_target"], PAD_ID)      # dec_target moved down one step
    shifted[0] = BOS_ID
    shifted[1:] = want["dec_target"][:-1]
    return {
        "dec_in": {
            "dec_in and dec_target are swapped: the decoder reads <BOS> w_1 … w_n and must predict "
            "w_1 … w_n <EOS>": want["dec_target"],
            "at the padded steps dec_in holds <PAD> (0): build it as [<BOS>] + target, then pad; shifting the "
            "padded dec_target leaves its <EOS> there": shifted,
        },
        "dec_target": {
            "dec_in and dec_target are swapped: the decoder must predict w_1 … w_n <EOS>, one step ahead of "
            "what it reads": want["dec_in"],
        },
        "src": {"the source is read as it is: no <BOS> or <EOS> around it": reference_pad(
            [[BOS_ID] + list(s) + [EOS_ID] for s, _ in pairs])[0]},
    }


def _pairs(rng, batch, max_src, max_tgt):
    sources = random_sequences(rng, batch, max_src)
    targets = random_sequences(rng, batch, max_tgt)
    return list(zip(sources, targets))


def seq2seq_batch(student, rng, batch=4, max_src=6, max_tgt=5):
    """``seq2seq_batch(pairs)`` returns a dict of time-major arrays: src, src_mask (S, B); dec_in,
    dec_target, dec_mask (T, B), T = longest target + 1."""
    fn = student_function(student, "seq2seq_batch")
    pairs = _pairs(rng, batch, max_src, max_tgt)
    want = reference_seq2seq(pairs)
    mistakes = _seq2seq_mistakes(pairs, want)

    def judge():
        got = call_student(fn, [(list(s), list(t)) for s, t in pairs], what="seq2seq_batch")
        if not isinstance(got, dict):
            raise CheckFailure(f"seq2seq_batch should return a dict with the keys {list(S2S_KEYS)}, "
                               f"got a {kind_of(got)}")
        missing = [k for k in S2S_KEYS if k not in got]
        if missing:
            raise CheckFailure(f"the dict seq2seq_batch returns has no entry {missing[0]!r} "
                               f"(expected keys {list(S2S_KEYS)})")
        for key in S2S_KEYS:
            value = got[key]
            if isinstance(value, np.ndarray) and value.dtype == bool:
                value = value.astype(np.float64)
            shape = want[key].shape
            if isinstance(value, np.ndarray) and key.startswith("dec") and value.shape == (shape[0] - 1, shape[1]):
                raise CheckFailure(f"{key} has {value.shape[0]} steps, expected {shape[0]}: with <BOS> in front "
                                   "of what the decoder reads and <EOS> after what it predicts, T is the longest "
                                   "target plus one")
            letter = "S" if key.startswith("src") else "T"
            axes = (letter, "B") if shape[0] != shape[1] else None
            wrong = mistakes.get(key, {})
            for message, value_wrong in wrong.items():
                if isinstance(value, np.ndarray) and value.shape == value_wrong.shape != shape \
                        and np.array_equal(value, value_wrong):
                    raise CheckFailure(f"{key} is wrong: {message}")
            expect_close(value, want[key], key, axes=axes,
                         mistakes={m: v for m, v in wrong.items() if v.shape == shape})

    blame_parts(student, judge, [("pad_batch", pad_batch)], "seq2seq_batch")
    S, T = want["src"].shape[0], want["dec_in"].shape[0]
    return f"seq2seq_batch: correct for {batch} pairs (S={S}, T={T})"


# --------------------------------------------------------------------------------------------
# 6. every shape inside an encoder–decoder
# --------------------------------------------------------------------------------------------

SHAPE_KEYS = ("src", "src_vectors", "encoder_states", "context", "dec_in", "dec_vectors", "decoder_states",
              "logits", "dec_target")


def reference_shapes(B, S, T, V_src, V_tgt, D, H):
    return {"src": (S, B), "src_vectors": (S, B, D), "encoder_states": (S, B, H), "context": (B, H),
            "dec_in": (T, B), "dec_vectors": (T, B, D), "decoder_states": (T, B, H), "logits": (T, B, V_tgt),
            "dec_target": (T, B)}


_SHAPE_HINTS = {
    "src_vectors": {"one-hot": "each id becomes a row of the embedding matrix, D numbers, not a one-hot vector "
                               "of V_src"},
    "context": {"all": "the context h_S is the encoder's last state only, one vector per sequence: (B, H)"},
    "dec_vectors": {"one-hot": "each id becomes a row of the decoder's embedding matrix, D numbers, not a "
                               "one-hot vector of V_tgt"},
    "logits": {"src": "the decoder scores the target vocabulary: V_tgt scores per step, not V_src",
               "hidden": "the logits are W_y h_t + b_y, one score per token of the target vocabulary, V_tgt"},
    "decoder_states": {"steps": "the decoder runs for T steps, the length of what it reads, not S"},
}


def _wrong_shapes(key, want, B, S, T, V_src, V_tgt, D, H):
    """{hint key: the shape a typical mistake gives for ``key``}."""
    out = {}
    if key == "src_vectors":
        out["one-hot"] = (S, B, V_src)
    if key == "dec_vectors":
        out["one-hot"] = (T, B, V_tgt)
    if key == "context":
        out["all"] = (S, B, H)
    if key == "logits":
        out["src"] = (T, B, V_src)
        out["hidden"] = (T, B, H)
    if key == "decoder_states":
        out["steps"] = (S, B, H)
    return out


def _as_shape(value, key):
    try:
        return tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise CheckFailure(f"shapes[{key!r}] should be a tuple of ints, got {value!r}") from None


def encoder_decoder_shapes(student, rng):
    """``encoder_decoder_shapes(B, S, T, V_src, V_tgt, D, H)`` returns a dict of the shapes of the
    arrays of an embedding + RNN encoder–decoder (time-major)."""
    fn = student_function(student, "encoder_decoder_shapes")
    B, S, T, V_src, V_tgt, D, H = (int(v) for v in rng.choice(np.arange(2, 60), size=7, replace=False))
    sizes = dict(B=B, S=S, T=T, V_src=V_src, V_tgt=V_tgt, D=D, H=H)
    names = {v: k for k, v in sizes.items()}

    def show(shape):
        return "(" + ", ".join(names.get(v, str(v)) for v in shape) + ")"

    want = reference_shapes(**sizes)
    got = call_student(fn, B, S, T, V_src, V_tgt, D, H, what="encoder_decoder_shapes")
    if not isinstance(got, dict):
        raise CheckFailure(f"encoder_decoder_shapes should return a dict with the keys {list(SHAPE_KEYS)}, "
                           f"got a {kind_of(got)}")
    for key in SHAPE_KEYS:
        if key not in got:
            raise CheckFailure(f"the dict has no entry {key!r} (expected keys {list(SHAPE_KEYS)})")
        shape = _as_shape(got[key], key)
        if shape == want[key]:
            continue
        if len(shape) == len(want[key]) >= 2 and shape[:2] == want[key][1::-1]:
            raise CheckFailure(f"shapes[{key!r}] is {show(shape)}, expected {show(want[key])}: time comes first "
                               "(time-major, as in rnnkit): step t of sequence b is [t, b]")
        for hint, wrong in _wrong_shapes(key, want, **sizes).items():
            if shape == wrong:
                raise CheckFailure(f"shapes[{key!r}] is {show(shape)}, expected {show(want[key])}: "
                                   f"{_SHAPE_HINTS[key][hint]}")
        raise CheckFailure(f"shapes[{key!r}] is {show(shape)}, expected {show(want[key])}")
    return "encoder_decoder_shapes: all nine shapes correct"
