"""The checks of exercise 10 (sequence to sequence): the written-out references agree with
rnnkit.models.Seq2Seq, the greedy problems end at different steps, the solution passes, typical
mistakes are named, and a failing seq2seq_loss names the earlier part that is wrong."""
from __future__ import annotations

import ast
import json

import numpy as np
import pytest
from course_helpers import ROOT, check_source

from course.checks import seq2seq
from course.verdict import CheckFailure
from rnnkit.losses import cross_entropy
from rnnkit.text import PAD_ID

CELL_BREAK = "\n# ---- next cell ----\n"


def solution_source(name: str) -> str:
    """The code cells of a solution notebook as one source text, without its test cells and without
    the ungraded demonstrations (cells with a top-level loop, ``if`` or ``try``: training runs)."""
    nb = json.loads((ROOT / "solutions" / name / f"{name}.ipynb").read_text())
    cells = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"
             and not (c.get("metadata", {}).get("nbgrader", {}).get("grade") and "check(" in "".join(c["source"]))]
    demo = (ast.For, ast.While, ast.If, ast.Try, ast.With)
    return CELL_BREAK.join(c for c in cells if not any(isinstance(node, demo) for node in ast.parse(c).body))


@pytest.fixture(scope="module")
def source():
    return solution_source("10_seq2seq")


def run(spec, source, seed=0, **params):
    return check_source(f"seq2seq.{spec}", source, seed, **params)


def test_written_out_loss_equals_rnnkit_seq2seq():
    rng = np.random.default_rng(0)
    params, src, targets = seq2seq._problem(rng, 5, 6, 4, 8, 7, 3, 5)
    assert (targets == PAD_ID).any()
    model = seq2seq.reference_model(params)
    logits = model(src, targets)
    loss, d_loss = cross_entropy(logits, targets, ignore_index=PAD_ID)
    model.backward(d_loss["logits"])
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


def test_the_solution_passes_every_spec(source):
    for spec in seq2seq.SPECS:
        assert "correct" in run(spec, source)
    assert run("masked_cross_entropy", source, scale=400.0).startswith("masked_cross_entropy: correct")
    assert run("greedy", source, cases=[{"batch": 2, "max_len": 1}, {"stop": "never"}]).startswith("2 cases correct")


def test_an_honest_variant_written_differently_passes(source):
    """A lambda helper, a constant built with a call and a different way to shift."""
    variant = source.replace(
        "def teacher_forcing_inputs(targets, bos_id=BOS_ID):",
        "SHIFT = dict(axis=0)\nfirst_row = lambda targets, bos_id: np.full_like(targets[:1], bos_id)\n\n"
        "def teacher_forcing_inputs(targets, bos_id=BOS_ID):\n"
        "    return np.concatenate([first_row(targets, bos_id), targets[:-1]], **SHIFT)\n\n"
        "def _unused(targets, bos_id=BOS_ID):")
    assert variant != source
    assert run("teacher_forcing", variant).startswith("teacher_forcing_inputs: correct")
    assert run("loss", variant).startswith("seq2seq_loss: correct")


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
def test_typical_mistakes_are_named(source, old, new, spec, phrase):
    assert old in source
    with pytest.raises(CheckFailure, match=phrase):
        run(spec, source.replace(old, new))


def test_a_failing_loss_names_the_wrong_part(source):
    """seq2seq_loss built on a wrong masked_cross_entropy: the message says which part to fix first."""
    wrong = source.replace("    return loss, dlogits\n", "    return loss / keep.sum(), dlogits / keep.sum()\n", 1)
    assert wrong != source
    with pytest.raises(CheckFailure) as failure:
        run("loss", wrong)
    message = str(failure.value)
    assert "seq2seq_loss uses your masked_cross_entropy, which does not pass its own check yet" in message
    assert "this exercise sums it" in message


def test_changing_the_logits_in_place_is_reported(source):
    wrong = source.replace("shifted = logits - logits.max(axis=-1, keepdims=True)",
                           "logits -= logits.max(axis=-1, keepdims=True)\n    shifted = logits", 1)
    assert wrong != source
    with pytest.raises(CheckFailure, match="changed its argument logits in place"):
        run("masked_cross_entropy", wrong)


def test_a_numpy_array_from_greedy_decode_is_explained(source):
    wrong = source.replace("    return generated\n", "    return np.array(generated)\n", 1)
    with pytest.raises(CheckFailure, match="returned a numpy array; return a list of 3 lists"):
        run("greedy", wrong, stop="never")
