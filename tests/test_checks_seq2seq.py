"""Spec-level tests of rnnkit.checks.seq2seq (exercise 10): the written-out references agree with
rnnkit.models.Seq2Seq, the greedy problems end at different steps, the solution passes, and typical
mistakes are named."""
from __future__ import annotations

import numpy as np
import pytest

from rnnkit.checks import CheckFailure, check
from rnnkit.checks import seq2seq
from rnnkit.losses import cross_entropy
from rnnkit.text import PAD_ID
from test_checks_deep_rnn import solution_source


def test_written_out_loss_equals_rnnkit_seq2seq():
    rng = np.random.default_rng(0)
    params, src, targets = seq2seq._problem(rng, 5, 6, 4, 8, 7, 3, 5)
    assert (targets == PAD_ID).any()
    model = seq2seq.reference_model(params)
    logits = model(src, targets)
    loss, dlogits = cross_entropy(logits, targets, ignore_index=PAD_ID)
    model.backward(dlogits)
    loss2, grads = seq2seq.seq2seq_reference(src, targets, params)
    assert np.isclose(float(loss2), float(loss), rtol=1e-12)
    for name, g in model.grads.items():
        np.testing.assert_allclose(grads[name], g, rtol=1e-9, atol=1e-12)


def test_written_out_greedy_decoding_equals_rnnkit_generation():
    rng = np.random.default_rng(1)
    for batch, max_len in [(3, 8), (1, 5), (6, 12)]:
        params, h0 = seq2seq._greedy_problem(rng, batch, 9, 4, 5, max_len, "mixed")
        want = seq2seq.reference_model(params)._generate(h0[None], batch, max_len, 0.0, None)
        assert seq2seq.greedy_reference(h0, params, max_len) == want
        assert any(len(s) < max_len for s in want)  # some sequence stops at its <EOS>
        if batch > 1:
            assert len({len(s) for s in want}) > 1  # ... not all at the same step


def test_the_solution_passes_every_spec():
    source = solution_source("10_seq2seq")
    for spec in ("greedy", "teacher_forcing", "masked_cross_entropy", "encoder", "loss"):
        check(f"seq2seq.{spec}", source=source, seed=0)


@pytest.mark.parametrize("old, new, spec, phrase", [
    ("if tokens[b] == eos_id:", "if False:", "greedy", "the lists go on after <EOS>"),
    ("return np.concatenate([bos, targets[:-1]], axis=0)", "return targets.copy()", "teacher_forcing",
     "shown the very token it must predict"),
    ("keep = (targets != pad_id).astype(logits.dtype)", "keep = np.ones(targets.shape)", "masked_cross_entropy",
     "the padding was counted"),
    ('sequence_forward("gru", x_dec, h_enc,', 'sequence_forward("gru", x_dec, None,', "loss",
     "did not start from the encoder's final state"),
    ("sequence_backward(None, dh_enc, enc_cache)", "sequence_backward(None, None, enc_cache)", "loss",
     "the encoder's gradients are all zero"),
])
def test_typical_mistakes_are_named(old, new, spec, phrase):
    source = solution_source("10_seq2seq")
    assert old in source
    with pytest.raises(CheckFailure, match=phrase):
        check(f"seq2seq.{spec}", source=source.replace(old, new), seed=0)


def test_borrowing_the_library_model_is_refused():
    source = solution_source("10_seq2seq") + "\n# ---- next cell ----\nfrom rnnkit.models import shift_right\n"
    with pytest.raises(CheckFailure, match="rnnkit.models.shift_right"):
        check("seq2seq.teacher_forcing", source=source, seed=0)
