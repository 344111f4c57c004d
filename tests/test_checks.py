"""The old check machinery of rnnkit.checks (until it is removed): collecting definitions, refusing
borrowed answers by text, reporting tampering, and expect_close's explanations. The exercise checks
themselves live in course/checks and are tested in tests/test_checks_<module>.py."""
from __future__ import annotations

import numpy as np
import pytest

from rnnkit.checks import CheckFailure, expect_close
from rnnkit.checks.core import CELL_BREAK, definitions, forbidden_uses, tampering_warnings

GOOD_ONE_HOT = """
import numpy as np

def one_hot(ids, vocab_size):
    return (np.asarray(ids)[..., None] == np.arange(vocab_size)).astype(float)
"""


def cells(*sources):
    return CELL_BREAK.join(sources)


def test_definitions_keep_functions_and_drop_computation():
    code = definitions(cells("import numpy as np\nX = 3\nY = np.zeros(3)\nprint('hi')",
                             "def f():\n\n    return X\n\n\nf()"))
    assert "def f" in code and "X = 3" in code and "import numpy" in code
    assert "np.zeros" not in code and "print" not in code and "f()" not in code.replace("def f()", "")


def test_a_cell_with_a_syntax_error_does_not_hide_the_others():
    code = definitions(cells("def broken(:\n    pass", GOOD_ONE_HOT))
    assert "def one_hot" in code


def test_borrowed_names_and_tampering_are_found_in_the_text():
    assert forbidden_uses("import torch.nn as nn", ("rnnkit.data",), ("rnnkit", "torch")) == ["torch.nn"]
    assert forbidden_uses("from rnnkit.data import names_corpus", ("rnnkit.data",), ("rnnkit",)) == []
    assert forbidden_uses("m = __import__('rnnkit')", (), ("rnnkit",)) == ["__import__", "'rnnkit'"]
    allowed = "import rnnkit.gradcheck\nreport = rnnkit.gradcheck.grad_check\n"
    assert forbidden_uses(allowed, ("rnnkit.gradcheck",), ("rnnkit",)) == []
    wrong = "import numpy as np\nnp.allclose = lambda *a, **k: True\n"
    assert any("np.allclose" in w for w in tampering_warnings(wrong))


def test_expect_close_explains_axes_scales_and_known_mistakes():
    want = np.arange(24.0).reshape(2, 3, 4) + 1
    with pytest.raises(CheckFailure, match=r"has shape \(B, T, H\), expected \(T, B, H\)"):
        expect_close(want.transpose(1, 0, 2), want, "out", axes=("T", "B", "H"))
    with pytest.raises(CheckFailure, match="3 times .*summed instead of averaged"):
        expect_close(3 * want, want, "dW", scales={3: "summed instead of averaged"})
    with pytest.raises(CheckFailure, match="forget gate multiplies c_t"):
        expect_close(want + 1, want, "c", mistakes={"the forget gate multiplies c_t": want + 1})
    with pytest.raises(CheckFailure, match="contains NaN"):
        expect_close(np.full_like(want, np.nan), want, "h")
    with pytest.raises(CheckFailure, match=r"largest difference 5 at index \(1, 2, 3\)"):
        bad = want.copy()
        bad[1, 2, 3] += 5
        expect_close(bad, want, "h")
