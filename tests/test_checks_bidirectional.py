"""The checks of exercise 8 (bidirectional RNNs): reversing within the lengths is what rnnkit's
reverse direction does, the reference is rnnkit's bidirectional RNN, the sandbox holds the vanilla
step but nothing that runs a sequence, and the checks name the typical mistakes."""
from __future__ import annotations

import numpy as np
import pytest
from course_helpers import check_source
from test_checks_deep_rnn import solution_source

from course.checks import bidirectional as spec
from course.checks.gated import random_params
from course.sandbox import SiteLayout
from course.verdict import CheckFailure
from rnnkit.sequence import sequence_forward
from rnnkit.sequence import lengths_to_mask


@pytest.fixture(scope="module")
def source():
    return solution_source("08_bidirectional", answers_only=True).replace("help(rnn_step_forward)", "")


def run(name, source, seed=0, **params):
    return check_source(f"bidirectional.{name}", source, seed, **params)


def test_reversing_within_lengths_is_its_own_inverse():
    rng = np.random.default_rng(0)
    x, lengths = rng.normal(size=(6, 4, 2)), np.array([6, 2, 1, 4])
    r = spec.reverse_reference(x, lengths)
    np.testing.assert_array_equal(spec.reverse_reference(r, lengths), x)
    np.testing.assert_array_equal(r[:2, 1], x[:2, 1][::-1])
    np.testing.assert_array_equal(r[2:, 1], x[2:, 1])
    np.testing.assert_array_equal(spec.reverse_reference(x, None), x[::-1])


@pytest.mark.parametrize("mode", spec.MODES)
def test_the_reference_is_the_wrapper_the_students_build(mode):
    """rnnkit's RNN(bidirectional=True) with lengths = forward run + run on the sequences reversed
    within their lengths, flipped back, merged."""
    rng = np.random.default_rng(1)
    T, B, I, H = 6, 4, 3, 5
    pf, pb = random_params(rng, I, H, 1), random_params(rng, I, H, 1)
    x, lengths = rng.normal(size=(T, B, I)), np.array([6, 3, 1, 5])
    mask = lengths_to_mask(lengths, T)
    hs_f, h_f, _ = sequence_forward("rnn", x, None, pf, mask=mask)
    hs_r, h_b, _ = sequence_forward("rnn", spec.reverse_reference(x, lengths), None, pb, mask=mask)
    out, h_n = spec._module_reference(x, pf, pb, mode, lengths)
    np.testing.assert_allclose(out, spec.merge_reference(hs_f, spec.reverse_reference(hs_r, lengths), mode),
                               rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h_n, np.stack([h_f, h_b]), rtol=1e-12)


def test_the_solution_passes(source):
    assert "from rnnkit.cells.rnn import rnn_step_forward" in source
    run("reverse_within_lengths", source)
    run("rnn_forward", source)
    run("merge", source, unknown=True)
    for mode in spec.MODES:
        run("bidirectional_forward", source, mode=mode)
    with_package_import = source.replace("from rnnkit.cells.rnn import rnn_step_forward",
                                         "from rnnkit.cells import rnn_step_forward")
    run("rnn_forward", with_package_import)


def test_the_sandbox_holds_the_vanilla_step_but_no_sequence_runner():
    entries = SiteLayout.for_policy(spec.POLICY).entries
    assert {"rnnkit/cells/rnn.py", "rnnkit/cells/__init__.py", "rnnkit/backend.py", "array_api_compat"} <= set(entries)
    assert not [e for e in entries if e.startswith(("rnnkit/sequence", "rnnkit/modules", "rnnkit/models",
                                                    "rnnkit/text", "torch"))]


def test_typical_mistakes_are_named(source):
    not_flipped = source.replace("hs_b = reverse_within_lengths(hs_b_rev, lengths)", "hs_b = hs_b_rev")
    with pytest.raises(CheckFailure, match="outputs are not reversed back"):
        run("bidirectional_forward", not_flipped)
    whole = source.replace("x_rev = reverse_within_lengths(x, lengths)", "x_rev = x[::-1]").replace(
        "hs_b = reverse_within_lengths(hs_b_rev, lengths)", "hs_b = hs_b_rev[::-1]")
    with pytest.raises(CheckFailure, match="reversed the padded array as a whole"):
        run("bidirectional_forward", whole)


@pytest.mark.parametrize("answer, message", [
    ("return None", r"returned a value; an unknown mode should raise ValueError"),
    ("raise KeyError(mode)",
     r"raised KeyError: 'max' \(in cell 1, line \d+\); an unknown mode should raise ValueError"),
    ("raise NotImplementedError", r"^\[failed\] merge\(h_fwd, h_bwd, 'max'\) is not implemented yet"),
])
def test_an_unknown_mode_must_raise_value_error(source, answer, message):
    raising = '    raise ValueError(f"mode must be'
    lenient = source.replace(raising, f"    {answer}\n" + raising)
    assert lenient != source
    run("merge", lenient)
    with pytest.raises(CheckFailure, match=message):
        run("merge", lenient, unknown=True)


def test_a_wrong_part_is_named_when_the_layer_fails(source):
    backward_first = source.replace("return np.concatenate([h_fwd, h_bwd], axis=-1)",
                                    "return np.concatenate([h_bwd, h_fwd], axis=-1)")
    with pytest.raises(CheckFailure, match=r"the backward states come first.*bidirectional_forward uses your merge, "
                                           r"which does not pass its own check yet; fix it first"):
        run("bidirectional_forward", backward_first)
    run("bidirectional_forward", backward_first, mode="sum")  # a layer that does not use the broken mode passes
