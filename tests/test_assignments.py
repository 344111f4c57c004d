"""Every assignment: the solution scores full marks, the untouched release scores zero, and the
release is exactly what nbgrader generates from the solution."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nbgrader_course import ROOT, autograde

ASSIGNMENTS = sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir())


def test_exercises_are_generated_from_solutions():
    result = subprocess.run([sys.executable, "-m", "tools.release", "--check"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_full_marks_and_release_zero(assignment, tmp_path):
    graded = autograde(assignment, {
        "solution": ROOT / "solutions" / assignment / f"{assignment}.ipynb",
        "untouched": ROOT / "exercises" / assignment / f"{assignment}.ipynb",
    }, tmp_path)
    solution, untouched = graded["solution"], graded["untouched"]
    assert solution.max_score > 0
    assert solution.score == solution.max_score, solution.outputs
    assert untouched.score == 0, untouched.cells
    for gid, text in untouched.outputs.items():
        assert "not implemented yet" in text, (gid, text)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_has_no_hidden_tests_or_solutions(assignment):
    release = json.loads((ROOT / "exercises" / assignment / f"{assignment}.ipynb").read_text())
    text = "".join("".join(c["source"]) for c in release["cells"])
    assert "BEGIN HIDDEN TESTS" not in text and "BEGIN SOLUTION" not in text
    source = json.loads((ROOT / "solutions" / assignment / f"{assignment}.ipynb").read_text())
    assert "BEGIN HIDDEN TESTS" in "".join("".join(c["source"]) for c in source["cells"])
