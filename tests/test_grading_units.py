"""Fast tests of the grading command's parts: no kernel is started here."""
import json
import os
import time

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from grading.cli import build_parser, parse_size
from grading.discover import clean_id, discover
from grading.feedback import HideHiddenTests
from grading.repair import SubmissionError, load_notebook, repair

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAT = os.path.join(ROOT, "tests", "grading_corpus", "flat")


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
    assert (args.cell_timeout, args.notebook_timeout, args.memory_limit) == (60, 600, 2 * 2**30)
    assert args.force is False


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
    assert sorted(s.student for s in d.submissions) == ["Dave_Smith", "alice", "bob", "carol"]
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


def test_clean_id():
    assert clean_id("../../etc/passwd") == "etc_passwd"
    assert clean_id("anne-marie.o'neil") == "anne-marie.o_neil"
    assert clean_id("") == "unknown"


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


def _template():
    def cell(i, gid, **nbg):
        md = {"grade": False, "solution": False, "locked": False, "schema_version": 3, "grade_id": gid}
        md.update(nbg)
        return {"index": i, "id": "c%d" % i, "cell_type": "code", "source": "test_%s()" % gid if md["grade"] else "",
                "nbgrader": md, "metadata": {"nbgrader": md}}
    cells = [cell(0, "answer", solution=True), cell(1, "t1", grade=True, points=1),
             cell(2, "t2", grade=True, points=2)]
    return {"cells": cells, "source_order": ["answer", "t1", "t2"]}


def test_repair_restores_stripped_and_drops_unknown():
    tpl = _template()
    nb = new_notebook(cells=[new_code_cell("x = 1", metadata={"nbgrader": tpl["cells"][0]["nbgrader"]}),
                             new_code_cell("pass"), new_code_cell("test_t2()"), new_code_cell("free()")])
    nb.cells[1]["id"] = "c1"                       # matched by cell id, though emptied
    nb.cells[3].metadata["nbgrader"] = {"grade": True, "grade_id": "free", "points": 99, "solution": False,
                                        "locked": False, "schema_version": 3}
    problems = repair(nb, tpl)
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]
    assert ids == ["answer", "t1", "t2", None]
    assert nb.cells[2].metadata.nbgrader["points"] == 2
    text = " ".join(problems)
    assert "t1 had its nbgrader metadata stripped; restored (matched by cell id)" in text
    assert "t2 had its nbgrader metadata stripped; restored (matched by content)" in text
    assert "unknown to the assignment" in text


def test_repair_changed_points_and_duplicates():
    tpl = _template()
    t1 = dict(tpl["cells"][1]["nbgrader"], points=50)
    nb = new_notebook(cells=[new_code_cell("x", metadata={"nbgrader": tpl["cells"][0]["nbgrader"]}),
                             new_code_cell("test_t1()", metadata={"nbgrader": t1}),
                             new_code_cell("test_t1()", metadata={"nbgrader": t1})])
    problems = repair(nb, tpl)
    assert nb.cells[1].metadata.nbgrader["points"] == 1
    assert "nbgrader" not in nb.cells[2].metadata
    assert any("points" in p for p in problems) and any("more than once" in p for p in problems)
    assert any("t2 was deleted" in p for p in problems)


def test_feedback_hides_hidden_tests():
    src = "check(f)\n### BEGIN HIDDEN TESTS\nassert f(123456) == 42, 'f must be 42'\n### END HIDDEN TESTS"
    cell = new_code_cell(src, metadata={"nbgrader": {"grade": True, "grade_id": "t", "points": 1, "solution": False,
                                                     "locked": True, "schema_version": 3}})
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="value was f(123456)\n"),
                    nbformat.v4.new_output("error", ename="AssertionError", evalue="f must be 42",
                                           traceback=["----> 3 assert f(123456) == 42, 'f must be 42'"])]
    other = new_code_cell("print(In)")
    other.outputs = [nbformat.v4.new_output("stream", name="stdout",
                                            text="['', \"assert f(123456) == 42, 'f must be 42'\"]\n")]
    nb = new_notebook(cells=[cell, other])
    pp = HideHiddenTests(cell_info={"t": {"origin": {"origin": "test"}}},
                         hidden_lines=["assert f(123456) == 42, 'f must be 42'"])
    nb, _ = pp.preprocess(nb, {})
    dumped = json.dumps(nb)
    assert "f(123456) == 42" not in dumped
    assert "Test t failed: AssertionError: f must be 42" in dumped
    assert "check(f)" in nb.cells[0].source

    cell.outputs = [nbformat.v4.new_output("error", ename="ValueError", evalue="bad input [123456]",
                                           traceback=["..."])]
    cell.source = src
    nb = new_notebook(cells=[cell])
    pp = HideHiddenTests(cell_info={"t": {"origin": {"origin": "student"}}}, hidden_lines=[])
    nb, _ = pp.preprocess(nb, {})
    assert "123456" not in json.dumps(nb) and "your code raised ValueError" in json.dumps(nb)


def test_corpus_is_complete():
    with open(os.path.join(ROOT, "tests", "grading_corpus", "expected.json")) as f:
        expected = json.load(f)
    assert sorted(expected) == sorted(n[: -len("_fixture.ipynb")] for n in os.listdir(FLAT))
