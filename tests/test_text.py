"""rnnkit.text: tokenizer round trips, <UNK>, reserved ids, padding and masks, sampling with temperature."""

import numpy as np
import pytest
import torch

from rnnkit.sequence import lengths_to_mask
from rnnkit.text import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    UNK_ID,
    Tokenizer,
    Vocabulary,
    pad_batch,
    sample,
    sample_from_logits,
)

TEXTS = ["the cat sat on the mat.", "the dog sat too!", "a cat, a dog and the bird"]


def test_reserved_ids_come_first():
    vocab = Vocabulary.build([["b", "a", "b"]])
    assert vocab.itos[:4] == ["<PAD>", "<UNK>", "<BOS>", "<EOS>"]
    assert (PAD_ID, UNK_ID, BOS_ID, EOS_ID) == (0, 1, 2, 3) == (vocab.pad_id, vocab.unk_id, vocab.bos_id, vocab.eos_id)
    assert vocab.itos[4:] == ["b", "a"]  # most frequent first
    assert vocab["zzz"] == UNK_ID and "zzz" not in vocab and "a" in vocab


def test_word_round_trip_and_unknown_words():
    tok = Tokenizer("word").fit(TEXTS)
    for text in TEXTS:
        ids = tok.encode(text)
        assert UNK_ID not in ids
        assert tok.decode(ids) == " ".join(tok.tokenize(text))
        assert tok.encode(tok.decode(ids)) == ids
    assert tok.tokenize("the cat sat.") == ["the", "cat", "sat", "."]
    ids = tok.encode("the zebra sat")
    assert ids == [tok.vocab["the"], UNK_ID, tok.vocab["sat"]]
    assert tok.decode(ids) == "the <UNK> sat"


def test_char_round_trip_is_exact():
    tok = Tokenizer("char").fit(TEXTS)
    for text in TEXTS:
        assert tok.decode(tok.encode(text)) == text
    assert tok.encode("q") == [UNK_ID]


def test_special_tokens_and_lowercasing():
    tok = Tokenizer("word", lower=True).fit(["The Cat", "the cat"])
    ids = tok.encode("THE cat", add_bos=True, add_eos=True)
    assert ids[0] == BOS_ID and ids[-1] == EOS_ID and UNK_ID not in ids
    assert tok.decode(ids) == "the cat"
    assert tok.decode(ids, skip_special=False) == "<BOS> the cat <EOS>"
    assert len(tok) == 4 + 2


def test_min_count_max_size_and_pretokenized_input():
    corpus = [["a", "b", "a", "c"], ["a", "b", "d"]]
    tok = Tokenizer("word").fit(corpus, min_count=2)
    assert tok.vocab.itos[4:] == ["a", "b"]
    assert tok.encode(["a", "c"]) == [4, UNK_ID]
    assert Tokenizer("word").fit(corpus, max_size=5).vocab.itos == ["<PAD>", "<UNK>", "<BOS>", "<EOS>", "a"]
    tie = Tokenizer("word").fit([["z", "y", "x"]])
    assert tie.vocab.itos[4:] == ["x", "y", "z"]  # ties alphabetical: deterministic
    with pytest.raises(ValueError, match="max_size=3 leaves no room"):
        Tokenizer().fit(corpus, max_size=3)
    with pytest.raises(TypeError, match="list of texts"):
        Tokenizer().fit("a single text")


def test_pad_batch_and_masks():
    ids, lengths = pad_batch([[5, 6, 7], [8], [9, 10]], pad_id=PAD_ID)
    np.testing.assert_array_equal(ids, [[5, 6, 7], [8, 0, 0], [9, 10, 0]])
    np.testing.assert_array_equal(lengths, [3, 1, 2])
    time_major, _ = pad_batch([[5, 6, 7], [8], [9, 10]], batch_first=False)
    np.testing.assert_array_equal(time_major, ids.T)

    mask = lengths_to_mask(lengths)
    assert mask.shape == (3, 3) and mask.dtype == np.float64  # (T, B)
    np.testing.assert_array_equal(mask, [[1, 1, 1], [1, 0, 1], [1, 0, 0]])
    np.testing.assert_array_equal(mask, (time_major != PAD_ID).astype(float))
    batch_major = lengths_to_mask(lengths, T=4, batch_first=True)
    np.testing.assert_array_equal(batch_major, [[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 0, 0]])
    mask_t = lengths_to_mask(torch.tensor([2, 1]))
    assert isinstance(mask_t, torch.Tensor) and mask_t.tolist() == [[1.0, 1.0], [1.0, 0.0]]
    assert lengths_to_mask([1, 2]).shape == (2, 2)


def test_sampling_temperature():
    logits = np.array([1.0, 2.0, 0.5, 1.5])
    assert sample_from_logits(logits, temperature=0) == 1  # argmax
    assert sample_from_logits(logits, temperature=1e-4, rng=0) == 1  # the limit
    rng = np.random.default_rng(0)
    draws = np.array([sample_from_logits(logits, 1.0, rng) for _ in range(6000)])
    p = np.exp(logits) / np.exp(logits).sum()
    np.testing.assert_allclose(np.bincount(draws, minlength=4) / 6000, p, atol=0.025)
    hot = np.array([sample_from_logits(logits, 5.0, rng) for _ in range(1500)])
    cold = np.array([sample_from_logits(logits, 0.3, rng) for _ in range(1500)])
    assert np.mean(cold == 1) > p[1] > np.mean(hot == 1)  # low temperature sharpens, high flattens
    assert sample_from_logits(logits, 1.0, rng=7) == sample_from_logits(logits, 1.0, rng=7)  # a seed is reproducible


def test_sampling_from_probabilities_and_batches():
    probs = np.array([0.0, 0.7, 0.3])
    rng = np.random.default_rng(1)
    draws = [sample(probs, 1.0, rng) for _ in range(2000)]
    assert 0 not in draws and abs(np.mean(np.array(draws) == 1) - 0.7) < 0.04
    assert sample(probs, 0) == 1
    batch = sample_from_logits(np.array([[0.0, 9.0], [9.0, 0.0]]), temperature=0)
    np.testing.assert_array_equal(batch, [1, 0])
    assert sample_from_logits(np.zeros((5, 3)), rng=0).shape == (5,)
    with pytest.raises(ValueError, match="temperature"):
        sample_from_logits(np.zeros(3), temperature=-1)
