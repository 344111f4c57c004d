"""The checks of exercise 1 (sequence data: an input pipeline from text to batches): the solution and
an honest variant written differently pass, typical mistakes are named, and answers of the wrong
kind, missing or unimplemented functions say so."""
from __future__ import annotations

import re

import numpy as np
import pytest
from course_helpers import check_source
from test_checks_deep_rnn import solution_source

from course.checks import sequence_data as spec
from course.sandbox import SiteLayout
from course.verdict import CheckFailure


@pytest.fixture(scope="module")
def source():
    return solution_source("01_sequence_data", answers_only=True)


def run(name, source, seed=0, **params):
    return check_source(f"sequence_data.{name}", source, seed, **params)


def test_the_solution_passes_every_spec(source):
    assert "def make_batches" in source and "agreement_corpus" not in source
    run("tokenize", source, n_texts=10)
    run("build_vocab", source)
    run("build_vocab", source, n_texts=25, min_count=3, seed=None)
    run("encode", source, n_texts=12, min_count=2)
    run("pad_batch", source, batch=1, max_len=3)
    run("pad_batch", source, batch=6, max_len=1)
    run("make_batches", source, n=23, batch_size=5, max_len=12)
    run("make_batches", source, n=8, batch_size=8)
    run("seq2seq_batch", source, batch=1, max_src=2, max_tgt=6)
    run("encoder_decoder_shapes", source, seed=None)


VARIANT = '''
import re
from collections import Counter
import numpy as np

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
SPECIAL = ["<PAD>", "<UNK>", "<BOS>", "<EOS>"]

def tokenize(text):
    return [m.group(0) for m in re.finditer(r"\\w+(?:'\\w+)?|[^\\w\\s]", text.lower())]

def build_vocab(texts, min_count=1):
    counts = Counter(tok for text in texts for tok in tokenize(text))
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return SPECIAL + [tok for tok, n in ranked if n >= min_count]

def encode(text, itos):
    ids = [BOS_ID]
    for tok in tokenize(text):
        try:
            ids.append(itos.index(tok))
        except ValueError:
            ids.append(UNK_ID)
    return np.array(ids + [EOS_ID])

def pad_batch(sequences):
    T = max(map(len, sequences))
    ids = np.array([list(s) + [PAD_ID] * (T - len(s)) for s in sequences]).T
    return ids, ids.copy() * 0 + (np.arange(T)[:, None] < [len(s) for s in sequences])

def make_batches(sequences, batch_size):
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))   # sorted() is stable
    groups = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    return [pad_batch([sequences[i] for i in g]) + (g,) for g in groups]

def seq2seq_batch(pairs):
    src, src_mask = pad_batch([s for s, _ in pairs])
    dec_in, dec_mask = pad_batch([[BOS_ID, *t] for _, t in pairs])
    dec_target, _ = pad_batch([[*t, EOS_ID] for _, t in pairs])
    return dict(src=src, src_mask=src_mask, dec_in=dec_in, dec_target=dec_target, dec_mask=dec_mask)

def encoder_decoder_shapes(B, S, T, V_src, V_tgt, D, H):
    out = {}
    for side, steps, V in (("src", S, V_src), ("dec", T, V_tgt)):
        out[side if side == "src" else "dec_in"] = [steps, B]
        out[side + "_vectors"] = [steps, B, D]
    out.update(encoder_states=[S, B, H], context=[B, H], decoder_states=[T, B, H], logits=[T, B, V_tgt],
               dec_target=[T, B])
    return out
'''


def test_an_honest_variant_written_differently_passes():
    for name in spec.SPECS:
        run(name, VARIANT)
        run(name, VARIANT, seed=None)


@pytest.mark.parametrize("name, old, new, message", [
    ("tokenize", "TOKEN.findall(text.lower())", "TOKEN.findall(text)", "was not lower-cased"),
    ("tokenize", "TOKEN.findall(text.lower())", "text.lower().split()", "punctuation glued to the words"),
    ("tokenize", "TOKEN.findall(text.lower())", 're.findall(r"\\w+|[^\\w\\s]", text.lower())',
     "your pattern cut it in three"),
    ("build_vocab", "    kept.sort(key=lambda token: (-counts[token], token))\n", "",
     "order of their first appearance"),
    ("build_vocab", "kept.sort(key=lambda token: (-counts[token], token))", "kept.sort(key=lambda t: counts[t])",
     "the least frequent tokens come first"),
    ("build_vocab", "return [PAD, UNK, BOS, EOS] + kept", "return kept", "must come first, at ids 0, 1, 2, 3"),
    ("build_vocab", "if count >= min_count", "if count > min_count", "yours needs one more"),
    ("build_vocab", "TOKEN.findall(text.lower())", "TOKEN.findall(text)",
     "build_vocab uses your tokenize, which does not pass its own check yet"),
    ("encode", "[stoi.get(token, UNK_ID) for token in tokenize(text)]",
     "[stoi[token] for token in tokenize(text) if token in stoi]", "must become <UNK> (id 1), not disappear"),
    ("encode", "stoi.get(token, UNK_ID)", "stoi.get(token, PAD_ID)", "id 0 is <PAD>"),
    ("encode", "return [BOS_ID] + [stoi", "return [stoi", "<BOS> (id 2) is missing"),
    ("encode", "] + [EOS_ID]", "]", "<EOS> (id 3) is missing at the end"),
    ("pad_batch", "return ids, mask", "return ids.T, mask.T", "has shape (B, T), expected (T, B)"),
    ("pad_batch", "ids[: len(seq), b] = seq", "ids[T - len(seq):, b] = seq", "padding is at the start"),
    ("pad_batch", "np.arange(T)[:, None] < lengths", "np.arange(T)[:, None] >= lengths", "1 at the padded steps"),
    ("pad_batch", "np.arange(T)[:, None] < lengths", "np.arange(T)[:, None] <= lengths", "one real step too many"),
    ("make_batches", 'order = np.argsort(lengths, kind="stable")', "order = np.arange(len(sequences))",
     "the sequences are not sorted"),
    ("make_batches", 'order = np.argsort(lengths, kind="stable")', 'order = np.argsort(-lengths, kind="stable")',
     "the longest sequences come first"),
    ("make_batches", "range(0, len(order), batch_size)", "range(0, len(order) - batch_size + 1, batch_size)",
     "the last batch holds the 3 sequences that are left over, keep it"),
    ("make_batches", "return batches", "return batches[::-1]", "the indices of the batches, one after the other"),
    ("seq2seq_batch", '"dec_in": dec_in, "dec_target": dec_target', '"dec_in": dec_target, "dec_target": dec_in',
     "dec_in and dec_target are swapped"),
    ("seq2seq_batch", "[list(target) + [EOS_ID] for", "[list(target) for", "is the longest target plus one"),
    ("seq2seq_batch", "[source for source, _ in pairs]", "[[BOS_ID] + source + [EOS_ID] for source, _ in pairs]",
     "no <BOS> or <EOS> around it"),
    ("encoder_decoder_shapes", '"logits": (T, B, V_tgt)', '"logits": (T, B, V_src)', "not V_src"),
    ("encoder_decoder_shapes", '"context": (B, H)', '"context": (S, B, H)', "the encoder's last state only"),
    ("encoder_decoder_shapes", '"src_vectors": (S, B, D)', '"src_vectors": (B, S, D)', "time comes first"),
    ("encoder_decoder_shapes", '"src_vectors": (S, B, D)', '"src_vectors": (S, B, V_src)', "not a one-hot vector"),
    ("encoder_decoder_shapes", '"decoder_states": (T, B, H)', '"decoder_states": (S, B, H)', "runs for T steps"),
])
def test_mistakes_are_named(source, name, old, new, message):
    wrong = source.replace(old, new, 1)
    assert wrong != source, old
    with pytest.raises(CheckFailure, match=re.escape(message)):
        run(name, wrong, seed=5)


def test_every_mistake_differs_from_the_answer():
    """A mistake whose value equals the answer would never be reported (and would hide nothing)."""
    rng = np.random.default_rng(1)
    texts = spec.random_texts(rng, 20)
    for message in spec._tokenize_mistakes(texts[0]):
        assert any(spec._tokenize_mistakes(t)[message] != spec.reference_tokenize(t) for t in texts), message
    for min_count in (1, 2):
        want = spec.reference_vocab(texts, min_count)
        differing = [m for m, w in spec._vocab_mistakes(texts, min_count).items() if w != want]
        assert len(differing) >= 4, differing
    itos = spec.reference_vocab(texts[:8], 2)
    assert all(w != spec._reference_encode(texts[9], itos) for w in spec._encode_mistakes(texts[9], itos).values())


def test_unknown_tokens_and_the_reserved_ids_match_rnnkit():
    from rnnkit.text import Tokenizer

    texts = ["The cat sat.", "The dog, isn't it?"]
    tok = Tokenizer(lower=True).fit(texts)
    assert spec.reference_vocab(texts) == tok.vocab.itos
    assert spec._reference_encode("The zebra sat!", tok.vocab.itos) == tok.encode("the zebra sat!", True, True)
    ids, mask = spec.reference_pad([[5, 6, 7], [8]])
    assert ids.tolist() == [[5, 8], [6, 0], [7, 0]] and mask.tolist() == [[1, 1], [1, 0], [1, 0]]


def test_wrong_kinds_of_answer_say_what_came():
    with pytest.raises(CheckFailure, match="tokenize.* should be a list of strings, got a str"):
        run("tokenize", "def tokenize(text):\n    return text\n")
    with pytest.raises(CheckFailure, match="should return a tuple \\(ids, mask\\), got a ndarray"):
        run("pad_batch", "import numpy as np\ndef pad_batch(sequences):\n    return np.zeros((2, 2))\n")
    with pytest.raises(CheckFailure, match="encode should return a list of integer ids"):
        run("encode", "def encode(text, itos):\n    return text.split()\n")
    with pytest.raises(CheckFailure, match="no entry 'dec_mask'"):
        run("seq2seq_batch", "def seq2seq_batch(pairs):\n    return dict(src=0, src_mask=0, dec_in=0, dec_target=0)\n")


def test_missing_and_unimplemented_functions_say_so():
    with pytest.raises(CheckFailure, match="no function named make_batches"):
        run("make_batches", "x = 1")
    stub = "def pad_batch(sequences):\n    raise NotImplementedError()\n"
    with pytest.raises(CheckFailure, match="not implemented yet"):
        run("pad_batch", stub)


def test_a_passing_check_names_what_it_checked(source):
    assert run("pad_batch", source, batch=4, max_len=6) == "pad_batch: correct for 4 sequences up to length 6"
    assert run("make_batches", source, n=9, batch_size=4) == "make_batches: correct for 9 sequences in batches of 4"


def test_the_sandbox_holds_no_tokenizer_and_no_masks():
    entries = SiteLayout.for_policy(spec.POLICY).entries
    assert "numpy" in entries and "rnnkit/data.py" in entries
    assert not [e for e in entries if e.startswith(("rnnkit/text", "rnnkit/sequence", "rnnkit/embedding"))]
