"""The checks of exercise 11 (truncated BPTT on a long text): the reference chunk has the right gradients,
correct code written differently from the solution passes, typical mistakes are named, and each part is
scored on its own inputs."""
from __future__ import annotations

import re

import numpy as np
import pytest

from course_helpers import check_source

from course.checks import truncated_bptt as spec
from course.verdict import CheckFailure
from rnnkit import RNN

# Written differently from the solution: an index formula, a Python loop over chunks, helper lambdas.
GOOD = """
import numpy as np

def run(model, inputs, h):
    hs, h_last = model["rnn"](model["embedding"][inputs], h)
    return hs @ model["head"]["weight"].T + model["head"]["bias"], hs, h_last

def cross_entropy(logits, targets):
    z = logits - logits.max(axis=-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    onehot = targets[..., None] == np.arange(logits.shape[-1])
    return float(-(log_p * onehot).sum() / targets.size), (np.exp(log_p) - onehot) / targets.size

def batchify(ids, batch_size):
    M = len(ids) // batch_size
    return ids[np.arange(batch_size)[None, :] * M + np.arange(M)[:, None]]

def get_chunk(columns, start, seq_len):
    T = min(seq_len, len(columns) - 1 - start)
    return columns[start:start + T], columns[start + 1:start + 1 + T]

def train_chunk(model, inputs, targets, h, lr, max_norm):
    logits, hs, h_last = run(model, inputs, h)
    loss, dz = cross_entropy(logits, targets)
    W = model["head"]["weight"]
    flat = lambda a: a.reshape(-1, a.shape[-1])
    g = {"W": flat(dz).T @ flat(hs), "b": flat(dz).sum(0)}
    dx, _ = model["rnn"].backward(dz @ W)
    g["E"] = np.zeros_like(model["embedding"])
    for t in range(inputs.shape[0]):
        for b in range(inputs.shape[1]):
            g["E"][inputs[t, b]] += dx[t, b]
    arrays = [g["W"], g["b"], g["E"], *model["rnn"].grads.values()]
    norm = np.sqrt(sum((a ** 2).sum() for a in arrays))
    c = min(1.0, max_norm / (norm + 1e-6))
    model["head"]["weight"] -= lr * c * g["W"]
    model["head"]["bias"] -= lr * c * g["b"]
    model["embedding"] -= lr * c * g["E"]
    for k, v in model["rnn"].params.items():
        v -= lr * c * model["rnn"].grads[k]
    return loss, h_last

def perplexity(model, chunks):
    h, nats, n = None, [], 0
    for x, y in chunks:
        logits, _, h = run(model, x, h)
        nats.append(cross_entropy(logits, y)[0] * y.size)
        n += y.size
    return float(np.exp(sum(nats) / n))

def unigram_perplexity(train_ids, test_ids, vocab_size):
    p = (np.bincount(train_ids, minlength=vocab_size) + 1) / (train_ids.size + vocab_size)
    return float(np.exp(-np.log(p[test_ids]).mean()))
"""


def run(spec_fn, source, seed=0, **params):
    return check_source(f"truncated_bptt.{spec_fn.__name__}", source, seed, **params)


def test_reference_chunk_gradients_are_numerically_right(rng):
    flat = {"embedding": rng.normal(size=(6, 3)), "head.weight": rng.normal(size=(6, 4)),
            "head.bias": rng.normal(size=6), **{f"rnn.{k}": v for k, v in RNN(3, 4, seed=0).params.items()}}
    inputs, targets = rng.integers(0, 6, (4, 2)), rng.integers(0, 6, (4, 2))
    h = rng.normal(size=(1, 2, 4))
    _, grads, _, _ = spec.reference_chunk(flat, inputs, targets, h)
    for name in ("embedding", "head.weight", "rnn.weight_hh_l0", "rnn.bias_ih_l0"):
        array = flat[name].reshape(-1)
        for k in (0, 3, array.size - 1):
            old = array[k]
            array[k] = old + 1e-6
            plus = spec.reference_chunk(flat, inputs, targets, h)[0]
            array[k] = old - 1e-6
            minus = spec.reference_chunk(flat, inputs, targets, h)[0]
            array[k] = old
            assert grads[name].reshape(-1)[k] == pytest.approx((plus - minus) / 2e-6, rel=1e-5, abs=1e-9)


def test_correct_code_passes_every_spec():
    run(spec.batchify, GOOD)
    run(spec.batchify, GOOD, n=12, batch=6)
    run(spec.get_chunk, GOOD)
    run(spec.get_chunk, GOOD, start=18)
    run(spec.get_chunk, GOOD, rows=9, batch=2, seq_len=10, start=0)
    run(spec.train_chunk, GOOD, clipped=True)
    run(spec.train_chunk, GOOD, clipped=False, T=2, batch=1)
    run(spec.perplexity, GOOD)
    run(spec.unigram_perplexity, GOOD)
    run(spec.unigram_perplexity, GOOD, unseen=False)


@pytest.mark.parametrize("spec_fn, params, old, new, message", [
    (spec.batchify, {}, "ids[np.arange(batch_size)[None, :] * M + np.arange(M)[:, None]]",
     "ids[:M * batch_size].reshape(M, batch_size)", "like cards"),
    (spec.batchify, {}, "ids[np.arange(batch_size)[None, :] * M + np.arange(M)[:, None]]",
     "ids[:M * batch_size].reshape(batch_size, M)", "time-major"),
    (spec.batchify, {"n": 50, "batch": 4}, "M = len(ids) // batch_size\n    return ids[",
     "M = len(ids) // batch_size\n    return np.append(ids, [0, 0])[np.arange(batch_size + 0)[None, :] * (M + 1) + "
     "np.arange(M + 1)[:, None]]  # ", "the last N % B = 2 ids are dropped"),
    (spec.get_chunk, {}, "columns[start + 1:start + 1 + T]", "columns[start:start + T]", "off by one"),
    (spec.get_chunk, {"start": 18}, "T = min(seq_len, len(columns) - 1 - start)", "T = seq_len",
     "the last chunk is shorter"),
    (spec.train_chunk, {}, "logits, hs, h_last = run(model, inputs, h)",
     "logits, hs, h_last = run(model, inputs, None)", "started from zeros"),
    (spec.train_chunk, {}, "return loss, h_last", "return loss, h", "the state the chunk started from"),
    (spec.train_chunk, {}, "return loss, h_last", "return loss, h_last[0]", "one axis is missing"),
    (spec.train_chunk, {}, "return loss, h_last", "return loss, run(model, inputs, h)[2]",
     "read again with the updated weights"),
    (spec.train_chunk, {}, "c = min(1.0, max_norm / (norm + 1e-6))", "c = 1.0", "were not clipped"),
    (spec.train_chunk, {"clipped": False}, "c = min(1.0, max_norm / (norm + 1e-6))",
     "c = 0.4 * norm / (norm + 1e-6)", "below max_norm"),
    (spec.train_chunk, {}, "    return loss, h_last", "    return loss * targets.size, h_last",
     "you summed"),
    (spec.train_chunk, {}, 'model["embedding"] -= lr * c * g["E"]', 'model["embedding"] += lr * c * g["E"]',
     "moved up the gradient"),
    (spec.perplexity, {}, "logits, _, h = run(model, x, h)", "logits, _, _ = run(model, x, None)",
     "the state must be carried"),
    (spec.perplexity, {}, "nats.append(cross_entropy(logits, y)[0] * y.size)\n        n += y.size",
     "nats.append(cross_entropy(logits, y)[0])\n        n += 1", "the last chunk is shorter"),
    (spec.perplexity, {}, "return float(np.exp(sum(nats) / n))", "return float(sum(nats) / n)",
     "its exponential"),
    (spec.unigram_perplexity, {}, "+ 1) / (train_ids.size + vocab_size)", ") / train_ids.size",
     "add-one smoothing"),
    (spec.unigram_perplexity, {}, "(train_ids.size + vocab_size)", "train_ids.size", "divide by N + V"),
    (spec.unigram_perplexity, {}, "np.bincount(train_ids, minlength", "np.bincount(test_ids, minlength",
     "must come from train_ids"),
])
def test_mistakes_are_named(spec_fn, params, old, new, message):
    wrong = GOOD.replace(old, new, 1)
    assert wrong != GOOD
    with pytest.raises(CheckFailure, match=re.escape(message)):
        run(spec_fn, wrong, **params)


def test_each_part_is_scored_on_its_own():
    """A wrong batchify and get_chunk do not touch train_chunk, perplexity or the baseline: the checker makes
    their inputs itself."""
    wrong = GOOD.replace("columns[start + 1:start + 1 + T]", "columns[start:start + T]")
    wrong = wrong.replace("ids[np.arange(batch_size)[None, :] * M + np.arange(M)[:, None]]", "ids")
    for spec_fn in (spec.train_chunk, spec.perplexity, spec.unigram_perplexity):
        run(spec_fn, wrong)
    with pytest.raises(CheckFailure):
        run(spec.get_chunk, wrong)


def test_perplexity_must_not_train_the_model():
    wrong = GOOD.replace("    return float(np.exp(sum(nats) / n))",
                         "    model['head']['bias'][:] = 0.0\n    return float(np.exp(sum(nats) / n))")
    with pytest.raises(CheckFailure, match="must not train"):
        run(spec.perplexity, wrong)
