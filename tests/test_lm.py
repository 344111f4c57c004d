"""rnnkit.lm: the chunks of truncated BPTT, the language model that carries its state, n-gram baselines."""
from collections import Counter

import numpy as np
import pytest

from conftest import numerical_grad, rel_error
from rnnkit import GRU, LSTM, RNN, cross_entropy
from rnnkit.lm import LanguageModel, NGram, batchify, bptt_batches


# ------------------------------------------------------------------------------------------------
# batches


def test_batchify_cuts_contiguous_columns():
    ids = np.arange(23)
    columns = batchify(ids, 4)
    assert columns.shape == (5, 4) and columns.dtype == np.int64
    for b in range(4):
        np.testing.assert_array_equal(columns[:, b], ids[5 * b : 5 * b + 5])  # the last 3 ids are dropped


@pytest.mark.parametrize("n, batch, seq_len", [(101, 4, 7), (64, 2, 31), (50, 5, 100), (40, 1, 1)])
def test_bptt_batches_predict_every_row_once_from_the_row_before(n, batch, seq_len):
    ids = np.random.default_rng(n).integers(0, 1000, n)
    columns = batchify(ids, batch)
    chunks = bptt_batches(ids, batch, seq_len)
    inputs = np.concatenate([x for x, _ in chunks])
    targets = np.concatenate([y for _, y in chunks])
    np.testing.assert_array_equal(inputs, columns[:-1])
    np.testing.assert_array_equal(targets, columns[1:])
    assert all(x.shape == y.shape and 1 <= x.shape[0] <= seq_len for x, y in chunks)
    assert all(x.shape[0] == seq_len for x, _ in chunks[:-1])


def test_batches_reject_what_cannot_be_cut():
    with pytest.raises(ValueError, match="fewer than 2 rows"):
        batchify(np.arange(7), 4)
    with pytest.raises(ValueError, match="integer token ids"):
        batchify(np.arange(8.0), 2)
    with pytest.raises(ValueError, match="seq_len"):
        bptt_batches(np.arange(8), 2, 0)


# ------------------------------------------------------------------------------------------------
# the language model


def _model(cell, seed=0, V=7, D=3, H=5):
    module = {"rnn": RNN, "gru": GRU, "lstm": LSTM}[cell](D, H, seed=seed + 1)
    return LanguageModel(V, D, module, seed=seed)


def _state(cell, rng, B, H=5):
    h = rng.normal(size=(1, B, H))
    return (h, rng.normal(size=(1, B, H))) if cell == "lstm" else h


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_chunks_with_the_state_carried_read_the_stream_like_one_pass(cell):
    ids = np.random.default_rng(1).integers(0, 7, 61)
    model = _model(cell)
    whole, _ = model(batchify(ids, 3)[:-1])
    state, parts = None, []
    for x, _ in bptt_batches(ids, 3, 6):
        logits, state = model(x, state)
        parts.append(logits)
    np.testing.assert_allclose(np.concatenate(parts), whole, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_backward_matches_numerical_gradients_from_a_carried_state(cell):
    rng = np.random.default_rng(2)
    model = _model(cell)
    x, y = rng.integers(0, 7, (4, 2)), rng.integers(0, 7, (4, 2))
    state = _state(cell, rng, 2)

    def loss():
        return float(cross_entropy(model(x, state)[0], y)[0])

    logits, _ = model(x, state)
    dstate = model.backward(cross_entropy(logits, y)[1]["logits"])
    grads = {k: np.array(v) for k, v in model.grads.items()}
    for name, param in model.params.items():
        idx, numeric = numerical_grad(loss, param, entries=6, rng=rng)
        assert rel_error(grads[name].reshape(-1)[idx], numeric) < 1e-6, name
    h0 = state[0] if cell == "lstm" else state
    dh0 = dstate[0] if cell == "lstm" else dstate
    _, numeric = numerical_grad(loss, h0)
    assert rel_error(dh0.reshape(-1), numeric) < 1e-6 and np.abs(dh0).max() > 1e-3  # what truncation drops


def test_chunked_training_gradients_are_truncated_bptt():
    """Summing the chunks' gradients gives rnnkit's truncated BPTT (truncate=T) over the whole stream."""
    ids = np.random.default_rng(3).integers(0, 7, 49)
    model = _model("rnn")
    total, state = None, None
    for x, y in bptt_batches(ids, 2, 6):
        logits, state = model(x, state)
        model.backward(cross_entropy(logits, y)[1]["logits"])
        grads = {k: np.array(v) for k, v in model.grads.items()}
        total = grads if total is None else {k: total[k] + grads[k] for k in total}
    columns = batchify(ids, 2)
    rnn = model.parts["rnn"]
    out, _ = rnn(model.parts["embed"](columns[:-1]))
    logits = model.parts["head"](out)
    d_out = model.parts["head"].backward(cross_entropy(logits, columns[1:])[1]["logits"])
    rnn.backward(d_out, truncate=6)
    for name, g in rnn.grads.items():
        np.testing.assert_allclose(total[f"rnn.{name}"], g, rtol=1e-10, atol=1e-12)
    rnn.backward(d_out)  # without truncation the gradient differs: the cut is real
    assert rel_error(total["rnn.weight_hh_l0"], rnn.grads["weight_hh_l0"]) > 1e-3


def test_language_model_runs_on_torch_like_on_numpy():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(4).integers(0, 7, (5, 3))
    model = _model("gru")
    want, state = model(x)
    model.to("torch")
    got, state_t = model(torch.as_tensor(x))
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)
    np.testing.assert_allclose(state_t.numpy(), state, rtol=1e-12)
    assert model.generate(np.array([[1, 2]]), 5, rng=0).shape == (5, 2)


def test_generate_is_seeded_and_avoids_excluded_ids():
    model = _model("rnn")
    prompt = np.array([[4], [5]])
    a = model.generate(prompt, 40, temperature=2.0, rng=7, exclude=(0, 1))
    assert a.shape == (40, 1) and not np.isin(a, (0, 1)).any()
    np.testing.assert_array_equal(a, model.generate(prompt, 40, temperature=2.0, rng=7, exclude=(0, 1)))
    greedy = model.generate(prompt, 3, temperature=0)
    logits, _ = model(prompt)
    assert greedy[0, 0] == np.argmax(logits[-1, 0])


def test_language_model_checks_its_parts():
    with pytest.raises(ValueError, match="reads 4 features"):
        LanguageModel(7, 3, RNN(4, 5))
    with pytest.raises(ValueError, match="one direction"):
        LanguageModel(7, 3, RNN(3, 5, bidirectional=True))


# ------------------------------------------------------------------------------------------------
# n-grams


def _witten_bell(train, V, order, history, w):
    """The definition, by counting with Counters: P_k(w | h), from the highest order down."""
    counts = [Counter(tuple(train[i : i + k]) for i in range(len(train) - k + 1)) for k in range(order + 1)]

    def p(k, h):
        if k == 0:
            return 1.0 / V
        if len(h) < k - 1:  # the stream starts less than k - 1 ids back
            return p(k - 1, h)
        h = h[len(h) - (k - 1) :] if k > 1 else ()
        after = {g[-1]: c for g, c in counts[k].items() if g[:-1] == h}
        lower = p(k - 1, h[1:] if k > 1 else ())
        if not after:
            return lower
        return (after.get(w, 0) + len(after) * lower) / (sum(after.values()) + len(after))

    return p(order, tuple(history))


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_ngram_is_witten_bell_interpolation(order):
    rng = np.random.default_rng(order)
    V = 5
    train, test = rng.integers(0, V, 200), rng.integers(0, V, 30)
    model = NGram(order, V).fit(train)
    logp = model.log_probs(test)
    assert logp.shape == (29,)
    for t in range(1, 30):
        want = _witten_bell(train, V, order, test[max(0, t - order + 1) : t], int(test[t]))
        assert np.exp(logp[t - 1]) == pytest.approx(want, rel=1e-12), t


def test_ngram_distributions_sum_to_one_and_lower_orders_are_the_smaller_models():
    rng = np.random.default_rng(5)
    V = 6
    train = np.concatenate([rng.integers(0, V - 1, 300), [0, 1, 2]])  # id 5 never seen
    big = NGram(4, V).fit(train)
    for history in ([], [2], [0, 1], [3, 3, 3], [5, 5, 5]):
        p = big.next_probs(np.array(history, dtype=np.int64))
        assert p.shape == (V,) and p.sum() == pytest.approx(1.0) and (p > 0).all()
    test = rng.integers(0, V, 50)
    for k in (1, 2, 3):
        np.testing.assert_allclose(big.log_probs(test, order=k), NGram(k, V).fit(train).log_probs(test))
    unigram = NGram(1, V).fit(train)
    counts = np.bincount(train, minlength=V)
    np.testing.assert_allclose(unigram.next_probs(np.array([], np.int64)),
                               (counts + (V - 1) / V) / (len(train) + V - 1))  # u = 5 different ids seen


def test_ngram_order_helps_on_text_with_structure():
    """On a stream that repeats a phrase, each order predicts it better than the one below."""
    phrase = np.array([0, 1, 2, 3, 1, 2, 4, 1, 5])
    train = np.tile(phrase, 40)
    perplexity = [np.exp(-NGram(k, 6).fit(train).log_probs(np.tile(phrase, 3)).mean()) for k in (1, 2, 3)]
    assert perplexity[0] > perplexity[1] > perplexity[2] > 1.0


def test_ngram_errors_say_what_was_expected():
    with pytest.raises(ValueError, match="order must be a positive integer"):
        NGram(0, 5)
    with pytest.raises(ValueError, match="int64"):
        NGram(6, 10**4)
    with pytest.raises(RuntimeError, match="fit"):
        NGram(2, 5).log_probs(np.arange(3))
    model = NGram(2, 5).fit(np.arange(5))
    with pytest.raises(ValueError, match=r"\[0, 4\]"):
        model.log_probs(np.array([1, 7]))
    with pytest.raises(ValueError, match="orders 1 … 2"):
        model.log_probs(np.arange(3), order=3)
