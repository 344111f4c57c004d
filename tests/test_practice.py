"""``check(...)`` in a student's own notebook (a real Jupyter kernel): the same checks as grading,
run by a separate checker process, with one clear line per verdict."""
from __future__ import annotations

import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

pytestmark = pytest.mark.slow

GOOD = '''import numpy as np
def softmax(z):
    print("my softmax got", z.shape)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)
'''
WRONG = '''def softmax(z):
    e = np.exp(z)
    return e / e.sum()
'''
TAMPER = '''np.allclose = lambda *a, **k: True              # changes nothing: the checker is another process
import numpy.testing
numpy.testing.assert_allclose = lambda *a, **k: None
'''
BORROW = '''def softmax(z):
    from rnnkit.losses import softmax as library
    return library(z, axis=-1)
'''


@pytest.fixture(scope="module")
def executed():
    cells = [GOOD, 'from course import check\ncheck("vanilla_rnn.softmax", shape=[2, 3], seed=0)',
             WRONG, 'check("vanilla_rnn.softmax", shape=[2, 3], scale=3.0, seed=1)',
             TAMPER, 'check("vanilla_rnn.softmax", shape=[2, 3], scale=3.0, seed=1)',
             BORROW, 'check("vanilla_rnn.softmax", shape=[2, 3], seed=0)',
             'check("vanilla_rnn.no_such_check")']
    nb = new_notebook(cells=[new_code_cell(c) for c in cells])
    NotebookClient(nb, timeout=120, allow_errors=True, kernel_name="python3").execute()
    return [c.outputs for c in nb.cells]


def shown(outputs) -> str:
    return "\n".join(o.get("text", "") or "\n".join(o.get("traceback", [])) for o in outputs)


def test_a_pass_prints_one_line_and_the_students_prints_show(executed):
    text = shown(executed[1])
    assert "my softmax got (2, 3)" in text
    assert "✔ softmax: correct for logits of shape (2, 3)" in text
    assert not [o for o in executed[1] if o.output_type == "error"]


def test_a_failure_is_one_message_without_a_traceback(executed):
    (error,) = [o for o in executed[3] if o.output_type == "error"]
    text = shown(executed[3])
    assert text.count("must sum to 1") == 1 and "Traceback" not in text and "course/" not in text
    assert len(error.traceback) == 1


def test_tampering_in_the_kernel_changes_nothing(executed):
    assert "must sum to 1" in shown(executed[5])


def test_borrowing_is_named_before_grading_refuses_it(executed):
    text = shown(executed[7])
    assert "✔" in text and "rnnkit.losses" in text and "not available when this notebook is graded" in text


def test_an_unknown_check_says_so(executed):
    assert "unknown check" in shown(executed[8])
