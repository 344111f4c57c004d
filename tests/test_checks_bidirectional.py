"""The checks of exercise 8 (bidirectional RNNs): reversing within the lengths is what rnnkit's
reverse direction does, the reference is rnnkit's bidirectional RNN, the vanilla step may be
imported but nothing that runs a sequence, and the checks name the typical mistakes."""
from __future__ import annotations

import numpy as np
import pytest
from test_checks_gru import solution_source

from rnnkit.checks import CheckFailure, check
from rnnkit.checks import bidirectional as spec
from rnnkit.checks._cells import random_params
from rnnkit.sequence import sequence_forward
from rnnkit.text import lengths_to_mask


@pytest.fixture(scope="module")
def source():
    return solution_source("08_bidirectional")


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
    check("bidirectional.reverse_within_lengths", source=source, seed=0)
    check("bidirectional.rnn_forward", source=source, seed=0)
    check("bidirectional.merge", source=source, unknown=True, seed=0)
    for mode in spec.MODES:
        check("bidirectional.bidirectional_forward", source=source, mode=mode, seed=0)


def test_the_vanilla_step_may_be_imported_but_not_a_sequence_runner(source):
    for cheat in ("from rnnkit.sequence import sequence_forward", "from rnnkit import RNN",
                  "from rnnkit.cells import gru_step_forward"):
        with pytest.raises(CheckFailure, match="write that part yourself"):
            check("bidirectional.merge", source=source + "\n" + cheat + "\n", seed=0)
    with_package_import = source.replace("from rnnkit.cells.rnn import rnn_step_forward",
                                         "from rnnkit.cells import rnn_step_forward")
    check("bidirectional.rnn_forward", source=with_package_import, seed=0)


def test_typical_mistakes_are_named(source):
    not_flipped = source.replace("hs_b = reverse_within_lengths(hs_b_rev, lengths)", "hs_b = hs_b_rev")
    with pytest.raises(CheckFailure, match="outputs are not reversed back"):
        check("bidirectional.bidirectional_forward", source=not_flipped, seed=0)
    whole = source.replace("x_rev = reverse_within_lengths(x, lengths)", "x_rev = x[::-1]").replace(
        "hs_b = reverse_within_lengths(hs_b_rev, lengths)", "hs_b = hs_b_rev[::-1]")
    with pytest.raises(CheckFailure, match="reversed the padded array as a whole"):
        check("bidirectional.bidirectional_forward", source=whole, seed=0)
    raising = '    raise ValueError(f"mode must be'
    lenient = source.replace(raising, "    return None\n" + raising)
    with pytest.raises(CheckFailure, match="should raise ValueError"):
        check("bidirectional.merge", source=lenient, unknown=True, seed=0)
