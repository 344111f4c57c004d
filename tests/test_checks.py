"""The exercise checks: student code runs in a fresh process, borrowed answers are refused,
tampering in the student's kernel changes nothing, and messages name the mistake."""
from __future__ import annotations

import numpy as np
import pytest

from rnnkit.checks import CheckFailure, check, expect_close
from rnnkit.checks.core import CELL_BREAK, definitions, forbidden_uses, tampering_warnings

GOOD_ONE_HOT = """
import numpy as np

def one_hot(ids, vocab_size):
    return (np.asarray(ids)[..., None] == np.arange(vocab_size)).astype(float)
"""


def cells(*sources):
    return CELL_BREAK.join(sources)


def test_correct_code_passes(capsys):
    assert check("sequence_data.one_hot", source=GOOD_ONE_HOT, seed=0) is None
    assert "✔" in capsys.readouterr().out


def test_definitions_keep_functions_and_drop_computation():
    code = definitions(cells("import numpy as np\nX = 3\nY = np.zeros(3)\nprint('hi')",
                             "def f():\n\n    return X\n\n\nf()"))
    assert "def f" in code and "X = 3" in code and "import numpy" in code
    assert "np.zeros" not in code and "print" not in code and "f()" not in code.replace("def f()", "")


def test_a_cell_with_a_syntax_error_does_not_hide_the_others():
    code = definitions(cells("def broken(:\n    pass", GOOD_ONE_HOT))
    assert "def one_hot" in code


def test_borrowing_rnnkit_is_refused_with_the_name_of_what_was_used():
    source = "from rnnkit.embedding import one_hot\n"
    with pytest.raises(CheckFailure, match="rnnkit.embedding.one_hot"):
        check("sequence_data.one_hot", source=source, seed=0)
    assert forbidden_uses("import torch.nn as nn", ("rnnkit.data",), ("rnnkit", "torch")) == ["torch.nn"]
    assert forbidden_uses("from rnnkit.data import names_corpus", ("rnnkit.data",), ("rnnkit",)) == []
    assert forbidden_uses("m = __import__('rnnkit')", (), ("rnnkit",)) == ["__import__", "'rnnkit'"]


def test_an_import_hidden_inside_the_function_is_refused_at_run_time():
    source = ("import numpy as np\nimport importlib as il\n"
              "def one_hot(ids, vocab_size):\n"
              "    mod = il.import_module('rnnkit.embedding')\n"
              "    return mod.one_hot(ids, vocab_size)\n")
    with pytest.raises(CheckFailure):
        check("sequence_data.one_hot", source=source, seed=0)


def test_redefining_numpy_in_the_kernel_is_reported_and_changes_nothing(capsys):
    wrong = ("import numpy as np\nnp.allclose = lambda *a, **k: True\n"
             "np.testing.assert_allclose = lambda *a, **k: None\n"
             "def one_hot(ids, vocab_size):\n    return np.zeros(np.shape(ids) + (vocab_size,))\n")
    assert any("np.allclose" in w for w in tampering_warnings(wrong))
    with pytest.raises(CheckFailure, match="one_hot"):
        check("sequence_data.one_hot", source=wrong, seed=0)
    assert "redefines np.allclose" in capsys.readouterr().out


def test_an_object_that_equals_everything_is_not_an_array():
    source = ("class Yes:\n    def __eq__(self, other):\n        return True\n"
              "def one_hot(ids, vocab_size):\n    return Yes()\n")
    with pytest.raises(CheckFailure, match="numpy array"):
        check("sequence_data.one_hot", source=source, seed=0)


def test_missing_and_unimplemented_functions_say_so():
    with pytest.raises(CheckFailure, match="no function named one_hot"):
        check("sequence_data.one_hot", source="x = 1", seed=0)
    stub = "def one_hot(ids, vocab_size):\n    raise NotImplementedError()\n"
    with pytest.raises(CheckFailure, match="not implemented yet"):
        check("sequence_data.one_hot", source=stub, seed=0)


def test_an_endless_loop_times_out():
    source = "def one_hot(ids, vocab_size):\n    while True:\n        pass\n"
    with pytest.raises(CheckFailure, match="did not finish"):
        check("sequence_data.one_hot", source=source, seed=0, timeout=3)


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


def test_a_plain_import_of_an_allowed_module_does_not_open_the_package():
    source = ("import numpy as np\nimport rnnkit.gradcheck\n"
              "def one_hot(ids, vocab_size):\n"
              "    return np.asarray(rnnkit.embedding.one_hot(np.asarray(ids), vocab_size))\n")
    with pytest.raises(CheckFailure, match="rnnkit.embedding.one_hot"):
        check("sequence_data.one_hot", source=source, seed=0)
    allowed = "import rnnkit.gradcheck\nreport = rnnkit.gradcheck.grad_check\n"
    assert forbidden_uses(allowed, ("rnnkit.gradcheck",), ("rnnkit",)) == []
