"""Fast tests of the grading command's parts: no student process is started here."""
import json
import os
import time

import pytest

from course.assignment import AssignmentError, parse_test_cell, released_source
from course.grader import plan
from course.review import suspicious
from grading.cli import build_parser, parse_size
from grading.discover import clean_id, discover
from grading.notebook_file import SubmissionError, load_notebook

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_parse_size():
    assert parse_size("2GiB") == 2 * 2**30
    assert parse_size("512 MiB") == 512 * 2**20
    assert parse_size("1.5G") == 1_500_000_000
    assert parse_size("none") == 0
    with pytest.raises(Exception):
        parse_size("lots")


def test_cli_defaults():
    args = build_parser().parse_args(["a1", "subs"])
    assert (args.course_dir, args.out, args.workers, args.scheduler) == (".", None, None, None)
    assert (args.cpu_per_cell, args.cpu_per_notebook, args.memory_limit) == (60, 600, 2 * 2**30)
    assert args.force is False and args.no_sandbox is False and args.gradebook is None


def _nb(path, text="{}"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def test_flat_student_ids(tmp_path):
    _nb(tmp_path / "alice_fixture.ipynb")
    _nb(tmp_path / "bob_12345_attempt_fixture.ipynb")
    _nb(tmp_path / "carol.ipynb")
    _nb(tmp_path / "Dave Smith_991_assignsubmission_file_" / "fixture.ipynb")   # Moodle-style folder
    _nb(tmp_path / "notes.pdf")
    _nb(tmp_path / "__MACOSX" / "._alice_fixture.ipynb")
    d = discover(str(tmp_path), "fixture", ["fixture"])
    assert d.layout == "flat"
    assert sorted(s.student for s in d.submissions) == sorted([clean_id("Dave Smith"), "alice", "bob", "carol"])
    assert any("notes.pdf" in n for n in d.notes)


def test_flat_duplicates_newest_wins(tmp_path):
    _nb(tmp_path / "eve_first.ipynb", '{"a": 1}')
    _nb(tmp_path / "eve_second.ipynb", '{"a": 2}')
    old = time.time() - 100
    os.utime(tmp_path / "eve_first.ipynb", (old, old))
    (sub,) = discover(str(tmp_path), "fixture", ["fixture"]).submissions
    assert sub.notebooks["fixture"].endswith("eve_second.ipynb")
    assert "eve_first.ipynb" in sub.problems[0]


def test_student_pattern(tmp_path):
    _nb(tmp_path / "hw1-jane_doe-final.ipynb")
    (sub,) = discover(str(tmp_path), "fixture", ["fixture"], r"hw1-(?P<student>[a-z_]+)-").submissions
    assert sub.student == "jane_doe"


def test_nbgrader_layout(tmp_path):
    _nb(tmp_path / "submitted" / "frank" / "fixture" / "fixture.ipynb")
    _nb(tmp_path / "submitted" / "frank" / "fixture" / "data" / "x.csv", "1,2")
    _nb(tmp_path / "submitted" / "frank" / "fixture" / "timestamp.txt", "2026-01-01 10:00:00 UTC")
    _nb(tmp_path / "submitted" / "gina" / "other" / "fixture.ipynb")
    d = discover(str(tmp_path), "fixture", ["fixture"])
    assert d.layout == "nbgrader"
    (sub,) = d.submissions
    assert sub.student == "frank" and sub.timestamp.startswith("2026")
    assert list(sub.extra) == [os.path.join("data", "x.csv")]


def test_ids_are_unique_stable_and_keep_every_script():
    assert clean_id("alice") == "alice" and clean_id("anne-marie.o") == "anne-marie.o"
    assert clean_id("hal?") != clean_id("hal!") and clean_id("hal?") == clean_id("hal?")
    assert clean_id("hal?").startswith("hal")
    assert clean_id("Алиса") == "Алиса" and clean_id("李雷") == "李雷"
    assert clean_id("Алиса") != clean_id("Борис")
    assert "/" not in clean_id("../../etc/passwd") and not clean_id("../../etc/passwd").startswith(".")
    assert clean_id("") != clean_id("?") and clean_id("")


def test_symlinks_are_refused_not_followed(tmp_path):
    _nb(tmp_path / "alice_fixture.ipynb")
    os.symlink(tmp_path / "alice_fixture.ipynb", tmp_path / "mallory_fixture.ipynb")
    subs = {s.student: s for s in discover(str(tmp_path), "fixture", ["fixture"]).submissions}
    assert subs["alice"].refused is None and "symbolic link" in subs["mallory"].refused
    nbg = tmp_path / "nbg"
    _nb(nbg / "submitted" / "bob" / "fixture" / "fixture.ipynb")
    os.symlink("/etc", nbg / "submitted" / "bob" / "fixture" / "data")
    (sub,) = discover(str(nbg), "fixture", ["fixture"]).submissions
    assert "symbolic link" in sub.refused


@pytest.mark.parametrize("data,reason", [
    (b"\x89PNG\r\n\x1a\nxxxx", "PNG"),
    (b"import numpy as np\ndef f(x):\n    return x\n", "Python source"),
    (b"[1, 2, 3]", "without notebook cells"),
    (b"", "empty"),
    (b"\xff\xfe\x00\x01garbage", "binary"),
])
def test_not_a_notebook(data, reason):
    with pytest.raises(SubmissionError, match=reason):
        load_notebook(data, "x.ipynb")


def test_test_cells_hold_only_checks():
    cell = parse_test_cell("t", 2, 'from course import check\ncheck("vanilla_rnn.softmax", shape=[2, 3])\n'
                                   '### BEGIN HIDDEN TESTS\ncheck("vanilla_rnn.softmax", scale=9.0)\n### END HIDDEN TESTS')
    assert [(c.spec, c.hidden) for c in cell.checks] == [("vanilla_rnn.softmax", False), ("vanilla_rnn.softmax", True)]
    assert cell.checks[1].params == {"scale": 9.0} and "scale=9.0" not in cell.released
    with pytest.raises(AssignmentError, match="only check"):
        parse_test_cell("t", 1, "assert softmax(1) == 1")
    with pytest.raises(AssignmentError, match="literals"):
        parse_test_cell("t", 1, "check('vanilla_rnn.softmax', shape=SHAPE)")
    with pytest.raises(Exception, match="no check"):
        parse_test_cell("t", 1, "check('vanilla_rnn.nothing_like_this')")
    assert released_source("a\n### BEGIN HIDDEN TESTS\nb\n### END HIDDEN TESTS\nc") == "a\nc"


def test_plan_puts_tests_back_and_ignores_invented_ones():
    from course_helpers import assignment

    a = assignment("02_vanilla_rnn")
    release = json.load(open(os.path.join(ROOT, "exercises", "02_vanilla_rnn", "02_vanilla_rnn.ipynb")))
    cells = [c for c in release["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") != "test_softmax"]
    cells.append({"cell_type": "code", "source": "x = 1", "id": "fake",
                  "metadata": {"nbgrader": {"grade": True, "grade_id": "bonus", "points": 9, "solution": False}}})
    steps, problems = plan(a, cells)
    tests = [s.grade_id for s in steps if s.kind == "test"]
    assert sorted(tests) == sorted(a.tests) and tests[-1] == "test_softmax"
    assert any("test_softmax was missing" in p for p in problems) and any("'bonus'" in p for p in problems)
    assert [s for s in steps if s.kind == "code" and s.source == "x = 1"]


def test_review_flags_reaching_code_and_not_ordinary_code():
    flagged = {what for _, what, _ in suspicious(
        "import sys, gc\nf = sys._getframe().f_back\ngc.get_objects()\nnp.allclose = lambda *a: True\n"
        "m = getattr(sys, 'mod' + 'ules')\nopen('/proc/1/environ')\nimport rnnkit.cells\n", ("rnnkit.gradcheck",))}
    assert {"sys._getframe", ".f_back", "gc.get_objects", "np.allclose = ...", "rnnkit.cells"} <= flagged
    assert any(w.startswith("getattr") for w in flagged) and any("/proc" in w for w in flagged)
    honest = ("import numpy as np\nimport rnnkit.gradcheck\nfrom rnnkit.gradcheck import grad_check\n"
              "phi = lambda a: np.tanh(a)\nGATES = dict(r=0, z=1)\ndef f(x):\n    return np.maximum(x, 0).sum(axis=-1)\n")
    assert suspicious(honest, ("rnnkit.gradcheck",)) == []
