"""The checks of exercise 5 (language model): the reference training step has the right gradients, correct code
passes, typical mistakes are named, and the sandbox holds rnnkit.RNN but no tokenizer, loss or sampler."""
from __future__ import annotations

import re

import numpy as np
import pytest

from course_helpers import check_source

from course.checks import language_model as spec
from course.sandbox import SiteLayout
from course.verdict import CheckFailure
from rnnkit import RNN

GOOD = """
import numpy as np

def build_vocab(sentences, min_count=1):
    counts = {}
    for s in sentences:
        for w in s.lower().split():
            counts[w] = counts.get(w, 0) + 1
    kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    return {t: i for i, t in enumerate(["<PAD>", "<UNK>", "<BOS>", "<EOS>"] + kept)}

def encode(sentence, vocab):
    return np.array([2] + [vocab.get(w, 1) for w in sentence.lower().split()] + [3])

def next_word_loss(logits, ids, pad_id=0):
    targets = ids[1:]
    keep = (targets != pad_id)[..., None]
    z = logits - logits.max(-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(-1, keepdims=True))
    onehot = targets[..., None] == np.arange(logits.shape[-1])
    return float(-(onehot * log_p * keep).sum()), (np.exp(log_p) - onehot) * keep

def train_step(model, ids, lr):
    E, rnn, head = model["embedding"], model["rnn"], model["head"]
    hs, _ = rnn(E[ids[:-1]])
    loss, dz = next_word_loss(hs @ head["weight"].T + head["bias"], ids)
    V, H = head["weight"].shape
    dW, db = dz.reshape(-1, V).T @ hs.reshape(-1, H), dz.reshape(-1, V).sum(0)
    dx, _ = rnn.backward(dz @ head["weight"])
    dE = np.zeros_like(E)
    np.add.at(dE, ids[:-1], dx)
    head["weight"] -= lr * dW
    head["bias"] -= lr * db
    E -= lr * dE
    for k in rnn.params:
        rnn.params[k] -= lr * rnn.grads[k]
    return loss

def sampling_probs(logits, temperature):
    if temperature == 0:
        return (np.arange(len(logits)) == np.argmax(logits)).astype(float)
    z = logits / temperature
    e = np.exp(z - z.max())
    return e / e.sum()

def sample_next(logits, temperature, rng):
    if temperature == 0:
        return int(np.argmax(logits))
    return int(rng.choice(len(logits), p=sampling_probs(logits, temperature)))
"""


def run(spec_fn, source, seed=0, **params):
    return check_source(f"language_model.{spec_fn.__name__}", source, seed, **params)


def test_reference_step_gradients_are_numerically_right(rng):
    ids = spec._id_batch(rng, 4, 3, 6)
    flat = {"embedding": rng.normal(size=(6, 3)), "head.weight": rng.normal(size=(6, 4)),
            "head.bias": rng.normal(size=6), **{f"rnn.{k}": v for k, v in RNN(3, 4, seed=0).params.items()}}
    _, grads, _ = spec._reference_step(flat, ids)

    def loss():
        return spec._reference_step(flat, ids)[0]

    for name in ("embedding", "head.weight", "rnn.weight_hh_l0"):
        array = flat[name]
        for index in [(1, 0), (2, 1), (0, 2)]:
            if index[0] >= array.shape[0]:
                continue
            old = array[index]
            array[index] = old + 1e-6
            plus = loss()
            array[index] = old - 1e-6
            minus = loss()
            array[index] = old
            assert grads[name][index] == pytest.approx((plus - minus) / 2e-6, rel=1e-5, abs=1e-8)


def test_id_batches_have_padding_and_markers(rng):
    ids = spec._id_batch(rng, 6, 4, 9)
    assert ids.shape == (7, 4) and (ids[0] == 2).all()
    assert (ids[:, 0] != 0).all() and (ids == 0).any()
    assert ((ids == 3).sum(axis=0) == 1).all()


def test_correct_code_passes_every_spec():
    run(spec.build_vocab, GOOD)
    run(spec.build_vocab, GOOD, n_sentences=10, min_count=3, mixed_case=True)
    run(spec.encode, GOOD)
    run(spec.next_word_loss, GOOD)
    run(spec.next_word_loss, GOOD, T=1, batch=1, pad=False)
    run(spec.next_word_loss, GOOD, scale=500.0)
    run(spec.train_step, GOOD)
    for temperature in (0, 0.3, 1.0, 2.0):
        run(spec.sampling_probs, GOOD, temperature=temperature)
        run(spec.sample_next, GOOD, temperature=temperature)


@pytest.mark.parametrize("spec_fn, params, old, new, message", [
    (spec.build_vocab, {"mixed_case": True}, "s.lower().split()", "s.split()", "words are lowercased first"),
    (spec.build_vocab, {"min_count": 2, "n_sentences": 8}, "c >= min_count", "c >= 1", "fewer than min_count"),
    (spec.build_vocab, {}, "key=lambda w: (-counts[w], w)", "key=lambda w: w", "by decreasing count"),
    (spec.encode, {}, "vocab.get(w, 1)", "vocab[w]", "must become <UNK>"),
    (spec.encode, {}, "vocab.get(w, 1)", "vocab.get(w, 0)", "not to <PAD>"),
    (spec.encode, {}, "[2] + [vocab.get(w, 1) for w in sentence.lower().split()] + [3]",
     "[vocab.get(w, 1) for w in sentence.lower().split()]", "should start with <BOS>"),
    (spec.next_word_loss, {}, "targets = ids[1:]", "targets = ids[:-1]", "off by one"),
    (spec.next_word_loss, {}, "keep = (targets != pad_id)[..., None]", "keep = np.ones(targets.shape)[..., None]",
     "the padded positions count"),
    (spec.next_word_loss, {}, "return float(-(onehot * log_p * keep).sum()), (np.exp(log_p) - onehot) * keep",
     "n = keep.sum()\n    return float(-(onehot * log_p * keep).sum()) / n, (np.exp(log_p) - onehot) * keep / n",
     "you averaged over the"),
    (spec.next_word_loss, {"scale": 500.0}, "z = logits - logits.max(-1, keepdims=True)", "z = logits",
     "the softmax overflowed"),
    (spec.next_word_loss, {}, "(np.exp(log_p) - onehot) * keep", "np.exp(log_p) * keep", "subtract 1 at the target"),
    (spec.train_step, {}, "np.add.at(dE, ids[:-1], dx)\n    head", "head", "did not change"),
    (spec.train_step, {}, "    E -= lr * dE\n", "    E[ids[:-1]] -= lr * dx\n", "np.add.at"),
    (spec.train_step, {}, 'head["bias"] -= lr * db', 'head["bias"] += lr * db', "moved up the gradient"),
    (spec.train_step, {}, "    return loss\n", "    return None\n", "returned None"),
    (spec.sampling_probs, {}, "z = logits / temperature", "z = logits * temperature", "multiplied by the temperature"),
    (spec.sampling_probs, {"temperature": 0}, "    if temperature == 0:\n        return (np.arange",
     "    if False:\n        return (np.arange", "temperature 0"),
    (spec.sample_next, {}, "rng.choice(len(logits)", "np.random.choice(len(logits)", "not with np.random"),
    (spec.sample_next, {}, "rng.choice(len(logits)", "np.random.default_rng(0).choice(len(logits)",
     "ignores its rng"),
    (spec.sample_next, {"temperature": 0.5}, "rng.choice(len(logits), p=sampling_probs(logits, temperature))",
     "rng.choice(len(logits), p=sampling_probs(logits, 1 / temperature))", "softmax(z · τ)"),
    (spec.sample_next, {"temperature": 0}, "return int(np.argmax(logits))", "return int(np.argmin(logits))",
     "most likely id"),
])
def test_mistakes_are_named(spec_fn, params, old, new, message):
    wrong = GOOD.replace(old, new, 1)
    assert wrong != GOOD
    with np.errstate(all="ignore"):
        with pytest.raises(CheckFailure, match=re.escape(message)):
            run(spec_fn, wrong, **params)


def test_the_sandbox_holds_the_rnn_module_and_no_answers():
    files = set(SiteLayout.for_policy(spec.POLICY).entries) | set(SiteLayout.for_policy(spec.POLICY).generated)
    assert {"rnnkit/modules.py", "rnnkit/data.py", "rnnkit/__init__.py"} <= files
    for answer in ("text.py", "losses.py", "embedding.py", "heads.py", "optim.py", "models.py"):
        assert f"rnnkit/{answer}" not in files, answer
    assert "from .modules import" in SiteLayout.for_policy(spec.POLICY).generated["rnnkit/__init__.py"]


def test_a_wrong_loss_is_named_when_the_training_step_fails():
    averaged = GOOD.replace("return float(-(onehot * log_p * keep).sum()), (np.exp(log_p) - onehot) * keep",
                            "n = keep.sum()\n    return float(-(onehot * log_p * keep).sum()) / n, "
                            "(np.exp(log_p) - onehot) * keep / n")
    with pytest.raises(CheckFailure, match="the returned loss is 1/.* train_step uses your next_word_loss, which "
                                           "does not pass its own check yet"):
        run(spec.train_step, averaged)


def test_a_training_step_that_replaces_the_arrays_passes():
    """Writing new arrays into the model's dicts is another honest way to update it."""
    variant = GOOD.replace("""    head["weight"] -= lr * dW
    head["bias"] -= lr * db
    E -= lr * dE
    for k in rnn.params:
        rnn.params[k] -= lr * rnn.grads[k]""", """    model["head"] = {"weight": head["weight"] - lr * dW, "bias": head["bias"] - lr * db}
    model["embedding"] = E - lr * dE
    rnn.params.update({k: p - lr * rnn.grads[k] for k, p in rnn.params.items()})""")
    assert variant != GOOD
    run(spec.train_step, variant)


def test_a_sampler_that_fails_later_says_so_with_its_line():
    flaky = """
import numpy as np
calls = [0]

def sample_next(logits, temperature, rng):
    calls[0] += 1
    if calls[0] > 40:
        raise ValueError("probabilities do not sum to 1")
    return int(rng.integers(len(logits)))
"""
    with pytest.raises(CheckFailure, match=re.escape("sample_next failed while drawing 150 ids in a row: it raised "
                                                     "ValueError: probabilities do not sum to 1 (in cell 1, line 8")):
        run(spec.sample_next, flaky)
