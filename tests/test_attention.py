"""rnnkit.attention: additive attention and the decoder with attention, forward and backward checked
numerically and against torch autograd (numpy and torch tensors), masks, the layer and the
encoder-decoder with attention (gradients, generation, learning)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from test_heads import BACKENDS, as_numpy, to
from test_models import train_to_reverse

import rnnkit
from rnnkit.attention import (AdditiveAttention, additive_attention_backward, additive_attention_forward,
                              attention_decoder_backward, attention_decoder_forward, attention_step_backward,
                              attention_step_forward)
from rnnkit.gradcheck import grad_check
from rnnkit.models import AttentionSeq2Seq

GATES = {"rnn": 1, "gru": 3, "lstm": 4}


def problem(seed=0, S=5, B=3, H_q=4, H_k=6, A=7, masked=True):
    rng = np.random.default_rng(seed)
    query, keys = rng.standard_normal((B, H_q)), rng.standard_normal((S, B, H_k))
    params = {"W_q": rng.standard_normal((A, H_q)), "W_k": rng.standard_normal((A, H_k)),
              "b": rng.standard_normal(A), "v": rng.standard_normal(A)}
    mask = None
    if masked:
        lengths = rng.integers(1, S + 1, size=B)
        lengths[0] = S
        mask = rnnkit.lengths_to_mask(lengths, S)
    return query, keys, params, mask, rng


def torch_attention(query, keys, params, mask):
    """The equations of the module docstring, written with torch operations (autograd's reference)."""
    u = keys @ params["W_k"].T + (query @ params["W_q"].T + params["b"])
    scores = torch.tanh(u) @ params["v"]
    if mask is not None:
        scores = scores.masked_fill(torch.as_tensor(mask) == 0, float("-inf"))
    weights = torch.softmax(scores, dim=0)
    return (weights[..., None] * keys).sum(0), weights


# ---------------------------------------------------------------------------------------------------
# additive attention
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("masked", [False, True])
def test_weights_are_a_distribution_over_the_real_source_positions(masked):
    query, keys, params, mask, _ = problem(masked=masked)
    context, weights, _ = additive_attention_forward(query, keys, params, mask)
    np.testing.assert_allclose(weights.sum(axis=0), 1.0, rtol=1e-12)
    assert (weights >= 0).all()
    if masked:
        assert (weights[mask == 0] == 0).all() and (weights[mask != 0] > 0).all()
    np.testing.assert_allclose(context, np.einsum("sb,sbk->bk", weights, keys), rtol=1e-12)


def test_padded_keys_change_nothing():
    """Whatever the padded positions hold, the context and weights are the same."""
    query, keys, params, mask, rng = problem()
    context, weights, _ = additive_attention_forward(query, keys, params, mask)
    noisy = np.where(mask[..., None] == 0, 100 * rng.standard_normal(keys.shape), keys)
    context2, weights2, _ = additive_attention_forward(query, noisy, params, mask)
    np.testing.assert_array_equal(weights, weights2)
    np.testing.assert_allclose(context, context2, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("masked", [False, True])
def test_attention_gradients_pass_the_numerical_check(masked):
    query, keys, params, mask, rng = problem(1, masked=masked)
    dcontext, dweights = rng.standard_normal((3, 6)), rng.standard_normal((5, 3))
    if mask is not None:
        dweights = dweights * mask

    def loss():
        context, weights, _ = additive_attention_forward(query, keys, params, mask)
        return np.sum(context * dcontext) + np.sum(weights * dweights)

    _, _, cache = additive_attention_forward(query, keys, params, mask)
    grads = additive_attention_backward(dcontext, cache, dweights)
    report = grad_check(loss, {"query": query, "keys": keys, **params}, grads)
    assert report.passed, str(report)
    assert report.max_rel_error < 1e-6


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("masked", [False, True])
def test_attention_matches_torch_autograd(backend, masked):
    query, keys, params, mask, rng = problem(2, masked=masked)
    dcontext = rng.standard_normal((3, 6))
    inputs = {"query": query, "keys": keys, **params}
    context, weights, cache = additive_attention_forward(
        to(backend, query), to(backend, keys), {k: to(backend, p) for k, p in params.items()},
        None if mask is None else to(backend, mask))
    grads = additive_attention_backward(to(backend, dcontext), cache)

    leaves = {k: torch.tensor(v, requires_grad=True) for k, v in inputs.items()}
    context_t, weights_t = torch_attention(leaves["query"], leaves["keys"], leaves, mask)
    (context_t * torch.from_numpy(dcontext)).sum().backward()
    np.testing.assert_allclose(as_numpy(context), context_t.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(as_numpy(weights), weights_t.detach().numpy(), rtol=1e-12, atol=1e-14)
    assert sorted(grads) == sorted(inputs)
    for name, leaf in leaves.items():
        np.testing.assert_allclose(as_numpy(grads[name]), leaf.grad.numpy(), rtol=1e-10, atol=1e-13, err_msg=name)


def test_the_key_gradient_has_two_paths():
    """Without the path through the scores, the key gradient is just alpha * dcontext: wrong."""
    query, keys, params, mask, rng = problem(3, masked=False)
    dcontext = rng.standard_normal((3, 6))
    _, weights, cache = additive_attention_forward(query, keys, params, mask)
    dkeys = additive_attention_backward(dcontext, cache)["keys"]
    value_path = weights[..., None] * dcontext[None]
    assert np.abs(dkeys - value_path).max() > 1e-3


def test_errors_name_what_was_expected():
    query, keys, params, mask, _ = problem()
    with pytest.raises(ValueError, match=r"query has shape \(2, 4\), expected \(B, H_q\) = \(3, 4\)"):
        additive_attention_forward(query[:2], keys, params)
    with pytest.raises(ValueError, match=r"mask has shape \(4, 3\), expected \(S, B\) = \(5, 3\)"):
        additive_attention_forward(query, keys, params, mask[:4])
    empty = mask.copy()
    empty[:, 1] = 0
    with pytest.raises(ValueError, match="without any source position"):
        additive_attention_forward(query, keys, params, empty)
    with pytest.raises(KeyError, match="missing"):
        additive_attention_forward(query, keys, {k: params[k] for k in ("W_q", "W_k", "b")})


def test_the_layer_sets_grads_and_returns_the_input_gradients():
    query, keys, params, mask, rng = problem(4)
    layer = AdditiveAttention(4, 6, 7, seed=0)
    layer.load_state_dict(params)
    context, weights = layer(query, keys, mask)
    dcontext = rng.standard_normal(context.shape)
    dquery, dkeys = layer.backward(dcontext)
    want = additive_attention_backward(dcontext, additive_attention_forward(query, keys, params, mask)[2])
    np.testing.assert_allclose(dquery, want["query"])
    np.testing.assert_allclose(dkeys, want["keys"])
    assert list(layer.grads) == ["W_q", "W_k", "b", "v"]
    for name in layer.grads:
        np.testing.assert_allclose(layer.grads[name], want[name])


# ---------------------------------------------------------------------------------------------------
# the decoder with attention
# ---------------------------------------------------------------------------------------------------


def decoder_problem(cell, seed=5, T=4, S=5, B=3, D=3, H=5, A=6):
    rng = np.random.default_rng(seed)
    G = GATES[cell]
    params = {"W_q": rng.standard_normal((A, H)), "W_k": rng.standard_normal((A, H)), "b": rng.standard_normal(A),
              "v": rng.standard_normal(A), "weight_ih": 0.5 * rng.standard_normal((G * H, D + H)),
              "weight_hh": 0.5 * rng.standard_normal((G * H, H)), "bias_ih": rng.standard_normal(G * H),
              "bias_hh": rng.standard_normal(G * H)}
    x, keys = rng.standard_normal((T, B, D)), rng.standard_normal((S, B, H))
    h0, c0 = rng.standard_normal((B, H)), rng.standard_normal((B, H))
    mask = rnnkit.lengths_to_mask(np.array([S, 2, 4]), S)
    return x, keys, params, h0, c0, mask, rng


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_decoder_gradients_pass_the_numerical_check(cell):
    x, keys, params, h0, c0, mask, rng = decoder_problem(cell)
    dhs = rng.standard_normal((4, 3, 5))
    state0 = lambda: (h0, c0) if cell == "lstm" else h0  # noqa: E731

    def loss():
        hs, _, _, _ = attention_decoder_forward(x, state0(), keys, params, cell, mask)
        return np.sum(hs * dhs)

    _, _, weights, cache = attention_decoder_forward(x, state0(), keys, params, cell, mask)
    assert weights.shape == (4, 5, 3)
    grads = attention_decoder_backward(dhs, None, cache)
    inputs = {"x": x, "h0": h0, "keys": keys, **params}
    if cell == "lstm":
        inputs["c0"] = c0
    report = grad_check(loss, inputs, grads)
    assert report.passed, str(report)


@pytest.mark.parametrize("backend", BACKENDS)
def test_decoder_step_matches_torch_autograd(backend):
    """One GRU decoder step with attention against torch: attention, concatenation, nn.GRUCell."""
    x, keys, params, h0, _, mask, rng = decoder_problem("gru", seed=6)
    dh = rng.standard_normal((3, 5))
    cast = lambda a: to(backend, a)  # noqa: E731
    h, context, weights, cache = attention_step_forward(cast(x[0]), cast(h0), cast(keys),
                                                        {k: cast(p) for k, p in params.items()}, "gru", cast(mask))
    grads = attention_step_backward(cast(dh), cache)

    leaves = {k: torch.tensor(v, requires_grad=True) for k, v in {"x": x[0], "h_prev": h0, "keys": keys,
                                                                  **params}.items()}
    context_t, _ = torch_attention(leaves["h_prev"], leaves["keys"], leaves, mask)
    gru = torch.nn.GRUCell(8, 5).double()
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(gru, name).copy_(leaves[name])
    h_t = torch.func.functional_call(gru, {n: leaves[n] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")},
                                     (torch.cat([leaves["x"], context_t], dim=-1), leaves["h_prev"]))
    (h_t * torch.from_numpy(dh)).sum().backward()
    np.testing.assert_allclose(as_numpy(h), h_t.detach().numpy(), rtol=1e-12, atol=1e-14)
    assert sorted(grads) == sorted(leaves)
    for name, leaf in leaves.items():
        np.testing.assert_allclose(as_numpy(grads[name]), leaf.grad.numpy(), rtol=1e-10, atol=1e-13, err_msg=name)


def test_the_previous_state_gets_both_gradients():
    """h_prev feeds the cell and is the attention's query: its gradient is the sum of both."""
    x, keys, params, h0, _, mask, rng = decoder_problem("gru", seed=7)
    _, _, _, cache = attention_step_forward(x[0], h0, keys, params, "gru", mask)
    dh = rng.standard_normal((3, 5))
    g = attention_step_backward(dh, cache)
    through_cell = rnnkit.gru_step_backward(dh, cache[1])["h_prev"]
    through_query = g["h_prev"] - through_cell
    assert np.abs(through_query).max() > 1e-3
    want = additive_attention_backward(rnnkit.gru_step_backward(dh, cache[1])["x"][:, 3:], cache[0])["query"]
    np.testing.assert_allclose(through_query, want, rtol=1e-10, atol=1e-13)


# ---------------------------------------------------------------------------------------------------
# the encoder-decoder with attention
# ---------------------------------------------------------------------------------------------------


def small_model(cell="gru", seed=0):
    modules = {"rnn": (rnnkit.RNN, rnnkit.RNNCell), "gru": (rnnkit.GRU, rnnkit.GRUCell),
               "lstm": (rnnkit.LSTM, rnnkit.LSTMCell)}
    encoder, decoder = modules[cell]
    return AttentionSeq2Seq(7, 8, 3, encoder(3, 4, seed=seed), decoder(3 + 4, 4, seed=seed + 1), 5, seed=seed + 2)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_attention_seq2seq_gradients_with_source_lengths(cell):
    rng = np.random.default_rng(8)
    model = small_model(cell)
    src, lengths = rng.integers(4, 7, size=(5, 3)), np.array([5, 2, 3])
    targets = rng.integers(4, 8, size=(4, 3))
    run = lambda: model(src, targets, src_lengths=lengths)  # noqa: E731
    loss, d = rnnkit.cross_entropy(run(), targets)
    model.backward(d["logits"])
    analytic = {k: np.array(v) for k, v in model.grads.items()}
    report = grad_check(lambda: rnnkit.cross_entropy(run(), targets)[0], model.params, analytic, num_checks=10)
    assert report.passed, str(report)
    assert np.abs(model.grads["encoder.weight_hh_l0"]).sum() > 0 and np.abs(model.grads["attention.v"]).sum() > 0
    assert model.attention_weights.shape == (4, 5, 3)
    assert (model.attention_weights[:, 2:, 1] == 0).all()


def test_generation_and_beam_search_agree_with_teacher_forcing():
    """Greedy output = argmax of teacher forcing on itself; beam size 1 = greedy."""
    rng = np.random.default_rng(9)
    model = small_model(seed=3)
    model.eos_id = -1  # never stop: compare full-length outputs
    src, lengths = rng.integers(4, 7, size=(4, 3)), np.array([4, 1, 3])
    generated = model.generate(src, max_len=5, src_lengths=lengths)
    logits = model(src, np.array(generated).T, src_lengths=lengths)
    assert np.argmax(logits, axis=-1).T.tolist() == generated
    beams = model.beam_search(src, beam_size=1, max_len=5, src_lengths=lengths)
    assert [hyps[0].tokens for hyps in beams] == generated


@pytest.mark.parametrize("lengths_kind", ["numpy", "torch"])
def test_the_model_runs_on_torch_tensors(lengths_kind):
    rng = np.random.default_rng(10)
    model = small_model(seed=4)
    src, targets = rng.integers(4, 7, size=(5, 2)), rng.integers(4, 8, size=(3, 2))
    lengths = np.array([5, 3])
    logits = model(src, targets, src_lengths=lengths)
    _, d = rnnkit.cross_entropy(logits, targets)
    model.backward(d["logits"])
    grads = {k: np.array(v) for k, v in model.grads.items()}
    want = model.beam_search(src, 2, max_len=3, src_lengths=lengths)
    model.to(backend="torch")
    lengths_t = lengths if lengths_kind == "numpy" else torch.as_tensor(lengths)
    logits_t = model(torch.as_tensor(src), torch.as_tensor(targets), src_lengths=lengths_t)
    _, d_t = rnnkit.cross_entropy(logits_t, torch.as_tensor(targets))
    model.backward(d_t["logits"])
    np.testing.assert_allclose(as_numpy(logits_t), logits, rtol=1e-12)
    for name, g in grads.items():
        np.testing.assert_allclose(as_numpy(model.grads[name]), g, rtol=1e-9, atol=1e-12, err_msg=name)
    got = model.beam_search(torch.as_tensor(src), 2, max_len=3, src_lengths=lengths_t)
    assert [[h.tokens for h in hyps] for hyps in got] == [[h.tokens for h in hyps] for hyps in want]
    greedy_t = model.generate(torch.as_tensor(src), max_len=3, src_lengths=lengths_t)
    assert greedy_t == model.to(backend="numpy").generate(src, max_len=3, src_lengths=lengths)


def test_attention_seq2seq_learns_to_reverse():
    vocab, T = 10, 5  # ids 4..9 are symbols
    model = AttentionSeq2Seq(vocab, vocab, 8, rnnkit.GRU(8, 32, seed=0), rnnkit.GRUCell(40, 32, seed=1), 16, seed=2)
    accuracy, src = train_to_reverse(model, vocab, T, steps=300, lr=0.02)
    assert accuracy > 0.9, accuracy
    # the weights of output step t peak on source position T-1-t: the alignment of a reversal
    model(src, np.concatenate([src[::-1], np.full((1, 50), 3)]))
    peaks = model.attention_weights[:T].mean(axis=2).argmax(axis=1)
    assert peaks.tolist() == list(range(T - 1, -1, -1)), peaks


def test_model_arguments_are_checked():
    with pytest.raises(ValueError, match="one-layer, one-direction encoder"):
        AttentionSeq2Seq(5, 5, 3, rnnkit.GRU(3, 4, bidirectional=True), rnnkit.GRUCell(7, 4), 5)
    with pytest.raises(ValueError, match="input_size = embedding_dim \\+ H = 7"):
        AttentionSeq2Seq(5, 5, 3, rnnkit.GRU(3, 4), rnnkit.GRUCell(3, 4), 5)
    with pytest.raises(ValueError, match="cell module of the encoder's type"):
        AttentionSeq2Seq(5, 5, 3, rnnkit.GRU(3, 4), rnnkit.LSTMCell(7, 4), 5)
