"""Checks for exercise 11, truncated BPTT on a long text: cutting a stream into columns and chunks, one
training step that starts from the carried state and returns the state to carry on (gradient clipped by
global norm), perplexity with the state carried, and the unigram baseline.

Expected values come from rnnkit (``lm.batchify`` / ``lm.bptt_batches``, ``embedding``, ``heads``,
``losses.cross_entropy``, ``clip.clip_grad_norm`` and the ``RNN`` module). The sandbox holds
``rnnkit.modules`` (the recurrent layer of exercises 2 and 3) and the data helpers, but not
``rnnkit.lm``, ``rnnkit.losses``, ``rnnkit.clip``, ``rnnkit.embedding`` or ``rnnkit.heads``. The RNN
of the model is made on the student's side (``student.new("rnnkit.RNN", ...)``) and read back with
``RemoteObject.get("params")``; each check builds its own inputs, so each part is scored on its own.
"""
from __future__ import annotations

import numpy as np

from rnnkit.clip import clip_grad_norm
from rnnkit.embedding import embedding_backward, embedding_forward
from rnnkit.heads import linear_backward, linear_forward
from rnnkit.lm import batchify as _rnnkit_batchify
from rnnkit.lm import bptt_batches
from rnnkit.losses import cross_entropy

from ..sandbox import Policy
from . import HELPERS
from .expect import (CheckFailure, call_student, expect_array, expect_close, expect_tuple, expect_unchanged,
                     kind_of, student_function)
from .language_model import _rnn_params, _rnn_with, _where

#: the recurrent layer (rnnkit.modules, which needs array_api_compat) and the data helpers; nothing that
#: cuts streams, computes a loss, clips or holds a language model
POLICY = Policy(packages=("numpy", "array_api_compat", "matplotlib"), rnnkit=HELPERS + ("rnnkit.modules",))
SPECS = ("batchify", "get_chunk", "train_chunk", "perplexity", "unigram_perplexity")

ROWS_FIRST = ("the columns must be contiguous pieces of the stream, column b = ids[b*M:(b+1)*M]; "
              "ids.reshape(M, B) deals the ids out to the columns like cards (use ids.reshape(B, M).T)")


# --------------------------------------------------------------------------------------------
# 1. and 2. columns and chunks
# --------------------------------------------------------------------------------------------

def batchify(student, rng, n=50, batch=4, vocab=30):
    """``batchify(ids (N,), batch_size)`` returns the ``(M, B)`` int array whose column ``b`` is
    ``ids[b*M:(b+1)*M]``, ``M = N // B`` (the last ``N % B`` ids dropped)."""
    fn = student_function(student, "batchify")
    ids = rng.integers(0, vocab, n)
    want = _rnnkit_batchify(ids, batch)
    M = want.shape[0]
    passed = ids.copy()
    got = call_student(fn, passed, batch)
    expect_unchanged({"ids": ids}, {"ids": passed}, "batchify")
    if isinstance(got, np.ndarray) and got.shape == (batch, M) and batch != M:
        raise CheckFailure(f"batchify returned shape {got.shape} = (B, M); the stream runs down the columns, "
                           f"time-major: shape (M, B) = ({M}, {batch}), one column per piece")
    if isinstance(got, np.ndarray) and got.ndim == 2 and got.shape[1] == batch and got.shape[0] != M:
        raise CheckFailure(f"batchify returned {got.shape[0]} rows for {n} ids in {batch} columns; a column "
                           f"has M = N // B = {M} ids, and the last N % B = {n % batch} ids are dropped")
    expect_array(got, f"batchify(ids, {batch})", shape=want.shape, axes=("M", "B"), integer=True)
    expect_close(got, want, f"batchify(ids, {batch})", mistakes={
        ROWS_FIRST: ids[: M * batch].reshape(M, batch)})
    return f"batchify: correct ({n} ids in {batch} columns of {M})"


def get_chunk(student, rng, rows=20, batch=3, seq_len=6, start=6, vocab=30):
    """``get_chunk(columns (M, B), start, seq_len)`` returns ``(inputs, targets)``: rows ``start`` to
    ``stop - 1`` and the same rows shifted by one, ``stop = min(start + seq_len, M - 1)``."""
    fn = student_function(student, "get_chunk")
    columns = rng.integers(0, vocab, (rows, batch))
    stop = min(start + seq_len, rows - 1)
    want_x, want_y = columns[start:stop], columns[start + 1 : stop + 1]
    passed = columns.copy()
    out = call_student(fn, passed, start, seq_len)
    expect_unchanged({"columns": columns}, {"columns": passed}, "get_chunk")
    inputs, targets = expect_tuple(out, 2, "get_chunk", "(inputs, targets)")
    what = f"get_chunk(columns, start={start}, seq_len={seq_len}) of {rows} rows"
    for value, name in ((inputs, "inputs"), (targets, "targets")):
        expect_array(value, f"the {name} of {what}", integer=True)
    if inputs.shape != targets.shape:
        raise CheckFailure(f"the inputs of {what} have shape {inputs.shape}, the targets {targets.shape}: they must "
                           f"match. The last row has no next id to predict, so stop at row M - 1 = {rows - 1}: the "
                           "last chunk is shorter")
    if inputs.shape == (batch, stop - start) and batch != stop - start:
        raise CheckFailure(f"the inputs of {what} have shape {inputs.shape}; a chunk keeps the columns' layout, "
                           f"time-major (T, B) = ({stop - start}, {batch})")
    if inputs.shape[0] == seq_len != stop - start:
        raise CheckFailure(f"{what} has {seq_len} rows; the last chunk is shorter: it stops at row "
                           f"M - 1 = {rows - 1}, whose next id is the last one there is")
    expect_close(inputs, want_x, f"the inputs of {what}", mistakes={
        "the inputs are rows start to start + seq_len - 1 of the columns": columns[start + 1 : stop + 1]})
    expect_close(targets, want_y, f"the targets of {what}", mistakes={
        "off by one: the target of each position is the NEXT id of its column, columns[start + 1 : stop + 1]":
            want_x})
    return f"get_chunk: correct ({what}: {stop - start} rows)"


# --------------------------------------------------------------------------------------------
# 3. one training step from the carried state
# --------------------------------------------------------------------------------------------

def reference_chunk(flat, inputs, targets, h):
    """Mean loss, gradients (keys of ``flat``), the final state and dx of one chunk read from state ``h``.
    ``flat``: ``embedding`` (V, D), ``head.weight`` (V, H), ``head.bias`` (V,), ``rnn.<name>``."""
    rnn = _rnn_with(flat)
    x, e_cache = embedding_forward(inputs, flat["embedding"])
    hs, h_n = rnn(x, h)
    logits, h_cache = linear_forward(hs, flat["head.weight"], flat["head.bias"])
    loss, grads = cross_entropy(logits, targets, reduction="mean")
    head = linear_backward(grads["logits"], h_cache)
    dx, _ = rnn.backward(head["h"])  # the gradient at h is dropped: truncation
    g = {"embedding": embedding_backward(dx, e_cache)["W"], "head.weight": head["W"], "head.bias": head["b"],
         **{f"rnn.{k}": np.array(v, copy=True) for k, v in rnn.grads.items()}}
    return float(loss), g, h_n, dx


def _clipped(grads, max_norm, per_parameter=False):
    out = {k: v.copy() for k, v in grads.items()}
    if per_parameter:
        for g in out.values():
            clip_grad_norm([g], max_norm)
    else:
        clip_grad_norm(out, max_norm)
    return out


def _global_norm(grads):
    return float(np.sqrt(sum(np.sum(g * g) for g in grads.values())))


def _model(student, rng, vocab, emb, hidden):
    """A model dict as the notebook documents it (the RNN on the student's side) and its arrays, flat."""
    rnn = student.new("rnnkit.RNN", emb, hidden, seed=int(rng.integers(2**31)))
    flat = {"embedding": rng.normal(0.0, 1.0, (vocab, emb)),
            "head.weight": rng.normal(0.0, 1.0 / np.sqrt(hidden), (vocab, hidden)),
            "head.bias": rng.normal(0.0, 0.1, vocab), **_rnn_params(rnn)}
    model = {"embedding": flat["embedding"].copy(), "rnn": rnn,
             "head": {"weight": flat["head.weight"].copy(), "bias": flat["head.bias"].copy()}}
    return model, flat


def _model_arrays(model, rnn, shapes):
    head = model.get("head") if isinstance(model.get("head"), dict) else {}
    out = {"embedding": model.get("embedding"), "head.weight": head.get("weight"), "head.bias": head.get("bias"),
           **_rnn_params(rnn, shapes)}
    for name, value in out.items():
        expect_array(value, _where(name), shape=shapes[name])
    return out


def _check_state(h_next, want, h, h_zero, h_again, shape):
    expect_array(h_next, "the returned state", shape=shape, axes=("layers", "B", "H"))
    expect_close(h_next, want, "the returned state", rtol=1e-8, mistakes={
        "it is the state the chunk started from; return the state after its last step, h_n of the RNN": h,
        "it was computed from zeros; the chunk must start from the state h it is given": h_zero,
        "it is the state of the chunk read again with the updated weights; return h_n of the forward pass "
        "that computed the loss (the one before the update)": h_again,
    })


def train_chunk(student, rng, T=5, batch=3, vocab=8, emb=4, hidden=6, lr=0.1, clipped=True):
    """``train_chunk(model, inputs, targets, h, lr, max_norm)`` runs the chunk from state ``h``, takes the mean
    cross-entropy, backpropagates inside the chunk, clips the global norm of all gradients to ``max_norm``,
    updates every parameter in place (``param -= lr * grad``) and returns ``(loss, h_n)``."""
    fn = student_function(student, "train_chunk")
    model, before = _model(student, rng, vocab, emb, hidden)
    shapes = {k: v.shape for k, v in before.items()}
    inputs, targets = rng.integers(0, vocab, (T, batch)), rng.integers(0, vocab, (T, batch))
    h = rng.normal(0.0, 0.8, (1, batch, hidden))
    want_loss, grads, h_n, dx = reference_chunk(before, inputs, targets, h)
    norm = _global_norm(grads)
    max_norm = round(0.4 * norm, 3) if clipped else round(3.0 * norm + 1.0, 3)
    step = _clipped(grads, max_norm)
    zero_loss, zero_grads, h_zero, _ = reference_chunk(before, inputs, targets, None)
    after_flat = {k: v - lr * step[k] for k, v in before.items()}
    loss_after, _, h_again, _ = reference_chunk(after_flat, inputs, targets, h)

    h_passed = h.copy()
    out = call_student(fn, model, inputs.copy(), targets.copy(), h_passed, lr, max_norm)
    expect_unchanged({"h": h}, {"h": h_passed}, "train_chunk")
    if out is None:
        raise CheckFailure("train_chunk returned None; return (loss, h_next): the loss of the chunk, computed "
                           "before the update, and the state to carry into the next chunk")
    loss, h_next = expect_tuple(out, 2, "train_chunk", "(loss, h_next)")
    try:
        loss = np.asarray(float(np.asarray(loss).reshape(())))
    except (TypeError, ValueError):
        raise CheckFailure(f"the loss should be one number, got {kind_of(loss)}") from None
    n = T * batch
    expect_close(loss, np.asarray(want_loss), "the returned loss", rtol=1e-8,
                 scales={n: "you summed the per-step losses; this exercise takes their mean (cross_entropy)"},
                 mistakes={
                     "it is the loss of the chunk started from zeros; the chunk must start from the state h "
                     "it is given (the state the previous chunk ended with)": np.asarray(zero_loss),
                     "that is the loss after the update; return the loss computed before the step":
                         np.asarray(loss_after)})
    _check_state(h_next, h_n, h, h_zero, h_again, h.shape)

    after = _model_arrays(model, model["rnn"], shapes)
    unclipped, per_parameter = grads, _clipped(grads, max_norm, per_parameter=True)
    changes = {name: before[name] - after[name] for name in before}

    def all_match(wrong):
        return all(np.allclose(changes[k], lr * wrong[k], rtol=1e-7, atol=1e-12) for k in before)

    if clipped and all_match(per_parameter) and not all_match(step):
        raise CheckFailure("each gradient was clipped on its own; clip their GLOBAL norm, one factor "
                           "max_norm / (norm + 1e-6) for all of them together")
    if clipped and all_match(unclipped):
        raise CheckFailure(f"the gradients were not clipped: their global norm is {norm:.4g}, more than "
                           f"max_norm = {max_norm:g}, so every gradient must be scaled by max_norm / (norm + 1e-6)")
    single = np.zeros_like(before["embedding"])
    single[inputs] = dx  # fancy-index assignment keeps one write per repeated id
    for name in before:
        change, want = before[name] - after[name], lr * step[name]
        if not np.any(change) and np.any(want):
            raise CheckFailure(f"{_where(name)} did not change: after the backward pass update every parameter, "
                               "param -= lr * grad")
        mistakes = {}
        if clipped:
            mistakes[f"the gradients were not clipped: their global norm is {norm:.4g}, more than max_norm = "
                     f"{max_norm:g}, so every gradient must be scaled by max_norm / (norm + 1e-6)"] = lr * unclipped[name]
            if not np.allclose(per_parameter[name], step[name]):
                mistakes["each gradient was clipped on its own; clip their GLOBAL norm, one factor "
                         "max_norm / (norm + 1e-6) for all of them together"] = lr * per_parameter[name]
        else:
            scaled = _clipped(grads, 0.4 * norm)
            mistakes[f"the gradients were scaled although their global norm {norm:.4g} is below max_norm = "
                     f"{max_norm:g}; clip only when the norm exceeds max_norm"] = lr * scaled[name]
        if name == "embedding":
            factor = min(1.0, max_norm / (norm + 1e-6))  # clip_grad_norm's one factor
            mistakes["a word id that occurs several times in the chunk got only one of its updates: "
                     "E[inputs] -= ... does not add up repeated ids; accumulate with np.add.at(dE, inputs, dx)"] = \
                lr * factor * single
        expect_close(change, want, f"the change of {_where(name)}", rtol=1e-7, atol=1e-12,
                     scales={-1: "the parameter moved up the gradient: subtract lr * grad"}, mistakes=mistakes)
    how = f"clipped from {norm:.3g} to {max_norm:g}" if clipped else f"norm {norm:.3g} below {max_norm:g}"
    return f"train_chunk: correct (T={T}, B={batch}, V={vocab}, H={hidden}; gradient {how})"


# --------------------------------------------------------------------------------------------
# 4. perplexity with the state carried
# --------------------------------------------------------------------------------------------

def _chunk_losses(flat, chunks, carry=True):
    """(sum of the losses, number of targets) of every chunk, reading from the carried state or zeros."""
    rnn = _rnn_with(flat)
    h, out = None, []
    for inputs, targets in chunks:
        x, _ = embedding_forward(inputs, flat["embedding"])
        hs, h_n = rnn(x, h if carry else None)
        logits, _ = linear_forward(hs, flat["head.weight"], flat["head.bias"])
        out.append((float(cross_entropy(logits, targets)[0]), targets.size))
        h = h_n
    return out


def perplexity(student, rng, n=90, batch=4, seq_len=8, vocab=9, emb=3, hidden=5):
    """``perplexity(model, chunks)`` reads the chunks ``[(inputs, targets), ...]`` in order with the state
    carried, without training, and returns exp(mean loss) over every target."""
    fn = student_function(student, "perplexity")
    model, before = _model(student, rng, vocab, emb, hidden)
    shapes = {k: v.shape for k, v in before.items()}
    chunks = bptt_batches(rng.integers(0, vocab, n), batch, seq_len)
    carried, reset = _chunk_losses(before, chunks), _chunk_losses(before, chunks, carry=False)
    total, count = sum(s for s, _ in carried), sum(c for _, c in carried)
    want = np.exp(total / count)
    got = call_student(fn, model, [(x.copy(), y.copy()) for x, y in chunks])
    try:
        got = np.asarray(float(np.asarray(got).reshape(())))
    except (TypeError, ValueError):
        raise CheckFailure(f"perplexity should return one number, got {kind_of(got)}") from None
    sizes = [c for _, c in carried]
    mistakes = {
        "the state must be carried from one chunk to the next: start each chunk from the state the previous "
        "one ended with (None only for the first)": np.exp(sum(s for s, _ in reset) / count),
        "that is the mean loss (nats per id); the perplexity is its exponential, exp(mean loss)":
            total / count,
        "perplexity is exp of the mean loss in nats; 2 ** loss needs the loss in bits": 2.0 ** (total / count),
    }
    if len(set(sizes)) > 1:
        mistakes["you averaged the chunks' mean losses; the last chunk is shorter, so average over every "
                 "predicted id: add up the summed losses and divide by the number of targets"] = \
            np.exp(np.mean([s / c for s, c in carried]))
    expect_close(got, np.asarray(want), "the perplexity", rtol=1e-8, mistakes=mistakes)
    after = _model_arrays(model, model["rnn"], shapes)
    for name, value in after.items():
        if not np.array_equal(value, before[name]):
            raise CheckFailure(f"perplexity changed {_where(name)}: measuring must not train the model")
    return (f"perplexity: correct ({len(chunks)} chunks of up to {seq_len} steps, the last "
            f"{chunks[-1][0].shape[0]} long; perplexity {float(want):.3f})")


# --------------------------------------------------------------------------------------------
# 5. the unigram baseline
# --------------------------------------------------------------------------------------------

def unigram_perplexity(student, rng, n_train=200, n_test=60, vocab=12, unseen=True):
    """``unigram_perplexity(train_ids, test_ids, vocab_size)`` with add-one smoothing,
    ``p(w) = (c(w) + 1) / (N + V)``, returns ``exp(-mean log p(test id))``."""
    fn = student_function(student, "unigram_perplexity")
    weights = 1.0 / np.arange(1, vocab + 1)
    if unseen:
        weights[-1] = 0.0  # the last id never occurs in training
    train = rng.choice(vocab, n_train, p=weights / weights.sum())
    test = rng.choice(vocab, n_test, p=np.full(vocab, 1.0 / vocab))
    if unseen:
        test[int(rng.integers(n_test))] = vocab - 1
    counts = np.bincount(train, minlength=vocab)
    p = (counts + 1.0) / (n_train + vocab)
    want = np.exp(-np.mean(np.log(p[test])))
    passed_train, passed_test = train.copy(), test.copy()
    got = call_student(fn, passed_train, passed_test, vocab)
    expect_unchanged({"train_ids": train, "test_ids": test}, {"train_ids": passed_train, "test_ids": passed_test},
                     "unigram_perplexity")
    try:
        got = np.asarray(float(np.asarray(got).reshape(())))
    except (TypeError, ValueError):
        raise CheckFailure(f"unigram_perplexity should return one number, got {kind_of(got)}") from None
    if unseen and not np.isfinite(got):
        raise CheckFailure(f"the perplexity is {float(got)}: id {vocab - 1} never occurs in train_ids, so without "
                           "smoothing its probability is 0; add one to every count (add-one smoothing), "
                           "p = (c + 1) / (N + V)")
    test_counts = np.bincount(test, minlength=vocab)
    from_test = "the counts must come from train_ids; the test ids are what is being predicted"
    mistakes = {
        from_test: np.exp(-np.mean(np.log(((test_counts + 1.0) / (n_test + vocab))[test]))),
        from_test + " ": np.exp(-np.mean(np.log(((test_counts + 1.0) / (n_train + vocab))[test]))),
        "the probabilities (c + 1) / N do not sum to 1: divide by N + V": np.exp(-np.mean(np.log(
            ((counts + 1.0) / n_train)[test]))),
        f"that is the uniform baseline, V = {vocab}; weigh each id by its count in train_ids": np.asarray(vocab),
    }
    if not unseen:
        mistakes["without smoothing: add one to every count, p = (c + 1) / (N + V)"] = np.exp(
            -np.mean(np.log((counts / n_train)[test])))
    expect_close(got, np.asarray(want), "the unigram perplexity", rtol=1e-8, mistakes=mistakes)
    return f"unigram_perplexity: correct ({n_train} training ids, {n_test} test ids, V={vocab})"
