"""Models for each input/output type: gradients checked numerically, teacher forcing shifts the
targets, generation feeds samples back, and a small seq2seq model learns to reverse sequences."""
from __future__ import annotations

import numpy as np
import pytest

import rnnkit
from rnnkit.gradcheck import grad_check
from rnnkit.models import ManyToMany, ManyToOne, OneToMany, Seq2Seq, shift_right

CELLS = {"rnn": rnnkit.RNN, "gru": rnnkit.GRU, "lstm": rnnkit.LSTM}


def check_model_gradients(model, loss_of_output, run):
    """Numerically check every parameter gradient of ``model`` for the loss of ``run()``."""
    out = run()
    _, grads = loss_of_output(out)
    (dout,) = grads.values()  # the gradient of the loss with respect to the output
    model.backward(dout)
    analytic = {k: np.array(v) for k, v in model.grads.items()}
    report = grad_check(lambda: loss_of_output(run())[0], model.params, analytic, num_checks=12)
    assert report.passed, str(report)


@pytest.mark.parametrize("cell", CELLS)
def test_many_to_one_gradients_with_lengths(cell):
    rng = np.random.default_rng(0)
    model = ManyToOne(CELLS[cell](3, 5, seed=1), rnnkit.Linear(5, 4, seed=2))
    x, lengths = rng.standard_normal((6, 3, 3)), np.array([6, 2, 4])
    y = np.array([0, 3, 1])
    loss = lambda logits: rnnkit.cross_entropy(logits, y)  # noqa: E731
    check_model_gradients(model, loss, lambda: model(x, lengths=lengths))
    assert model(x, lengths=lengths).shape == (3, 4)


def test_many_to_many_gradients_and_padding_ignored():
    rng = np.random.default_rng(1)
    model = ManyToMany(rnnkit.GRU(3, 4, seed=0), rnnkit.MLPHead([4, 6, 2], seed=1))
    x, lengths = rng.standard_normal((5, 2, 3)), np.array([5, 3])
    targets = rng.standard_normal((5, 2, 2))
    mask = rnnkit.lengths_to_mask(lengths, 5)  # (T, B): the leading axes of y
    loss = lambda y: rnnkit.squared_error(y, targets, mask=mask)  # noqa: E731
    check_model_gradients(model, loss, lambda: model(x, lengths=lengths))


def test_shift_right_feeds_the_previous_target():
    targets = np.array([[5, 6], [7, 8], [9, 10]])
    assert shift_right(targets, bos_id=2).tolist() == [[2, 2], [5, 6], [7, 8]]


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_one_to_many_gradients_and_generation(cell):
    rng = np.random.default_rng(2)
    model = OneToMany(4, 9, 3, CELLS[cell](3, 5, seed=3), seed=4)
    v, targets = rng.standard_normal((2, 4)), rng.integers(4, 9, size=(5, 2))
    loss = lambda logits: rnnkit.cross_entropy(logits, targets)  # noqa: E731
    check_model_gradients(model, loss, lambda: model(v, targets))
    samples = model.generate(v, max_len=7, temperature=1.0, rng=np.random.default_rng(0))
    assert len(samples) == 2 and all(len(s) <= 7 for s in samples)


def test_generation_feeds_back_what_it_sampled():
    """Greedy generation equals teacher forcing on its own output."""
    model = OneToMany(3, 8, 4, rnnkit.GRU(4, 6, seed=0), eos_id=-1, seed=1)
    v = np.random.default_rng(3).standard_normal((1, 3))
    (generated,) = model.generate(v, max_len=6)
    logits = model(v, np.array(generated)[:, None])
    assert np.argmax(logits[:, 0], axis=-1).tolist() == generated


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_seq2seq_gradients_reach_the_encoder(cell):
    rng = np.random.default_rng(4)
    model = Seq2Seq(7, 8, 3, CELLS[cell](3, 4, seed=0), CELLS[cell](3, 4, seed=1), seed=2)
    src, targets = rng.integers(0, 7, size=(4, 2)), rng.integers(0, 8, size=(3, 2))
    loss = lambda logits: rnnkit.cross_entropy(logits, targets)  # noqa: E731
    check_model_gradients(model, loss, lambda: model(src, targets))
    assert np.abs(model.grads["encoder.weight_hh_l0"]).sum() > 0


def train_to_reverse(model, vocab, T, steps, lr):
    """Train ``model`` to reverse sequences of ids 4..vocab-1 (batches of 16); returns the fraction
    of 50 new sequences it generates exactly, and those sequences ``(T, 50)``."""
    rng = np.random.default_rng(0)
    opt = rnnkit.Adam(model.params, lr=lr)
    for _ in range(steps):
        src = rng.integers(4, vocab, size=(T, 16))
        tgt = np.concatenate([src[::-1], np.full((1, 16), 3)])
        _, grads = rnnkit.cross_entropy(model(src, tgt), tgt, reduction="mean")
        model.backward(grads["logits"])
        opt.step(model.grads)
    src = rng.integers(4, vocab, size=(T, 50))
    generated = model.generate(src, max_len=T + 1)
    return np.mean([g == list(src[::-1, b]) for b, g in enumerate(generated)]), src


def test_seq2seq_learns_to_reverse():
    vocab, T = 7, 4  # ids 4..6 are symbols; 0-3 are <PAD>, <UNK>, <BOS>, <EOS>
    model = Seq2Seq(vocab, vocab, 8, rnnkit.GRU(8, 32, seed=0), rnnkit.GRU(8, 32, seed=1), seed=2)
    accuracy, _ = train_to_reverse(model, vocab, T, steps=300, lr=0.02)
    assert accuracy > 0.9, accuracy
