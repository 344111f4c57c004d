"""Every assignment: the solution scores full marks, the untouched release scores zero (failing only
with "not implemented" messages), every typical mistake scores partially with a message naming it,
and the release is exactly what nbgrader generates from the solution."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from nbgrader_course import ROOT, autograde, load_mutants

ASSIGNMENTS = sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir())


def test_exercises_are_generated_from_solutions():
    result = subprocess.run([sys.executable, "-m", "tools.release", "--check"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade, once per assignment, the solution, the untouched release and every mutant."""
    cache = {}

    def grade(assignment):
        if assignment not in cache:
            work = tmp_path_factory.mktemp(assignment)
            solution = ROOT / "solutions" / assignment / f"{assignment}.ipynb"
            notebooks = {"solution": solution,
                         "untouched": ROOT / "exercises" / assignment / f"{assignment}.ipynb"}
            for mutant in load_mutants(assignment):
                notebooks[f"mutant-{mutant.name}"] = mutant.apply(solution, work / f"{mutant.name}.ipynb")
            cache[assignment] = autograde(assignment, notebooks, work)
        return cache[assignment]

    return grade


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_scores_full_marks(assignment, graded):
    solution = graded(assignment)["solution"]
    assert solution.max_score > 0
    assert solution.score == solution.max_score, solution.outputs


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_untouched_release_scores_zero(assignment, graded):
    untouched = graded(assignment)["untouched"]
    assert untouched.score == 0, untouched.cells
    for gid, text in untouched.outputs.items():
        assert "not implemented yet" in text, (gid, text)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_typical_mistakes_score_partially_with_a_message(assignment, graded):
    mutants = load_mutants(assignment)
    assert len(mutants) >= 5, f"{assignment} needs at least five typical-mistake mutants"
    results = graded(assignment)
    for mutant in mutants:
        result = results[f"mutant-{mutant.name}"]
        assert 0 < result.score < result.max_score, (mutant.name, result.cells)
        failed = [gid for gid, points in result.cells.items() if points == 0]
        messages = " ".join(result.outputs[gid] for gid in failed)
        assert mutant.expect in messages, (mutant.name, messages)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_has_no_hidden_tests_or_solutions(assignment):
    release = json.loads((ROOT / "exercises" / assignment / f"{assignment}.ipynb").read_text())
    text = "".join("".join(c["source"]) for c in release["cells"])
    assert "BEGIN HIDDEN TESTS" not in text and "BEGIN SOLUTION" not in text
    source = json.loads((ROOT / "solutions" / assignment / f"{assignment}.ipynb").read_text())
    assert "BEGIN HIDDEN TESTS" in "".join("".join(c["source"]) for c in source["cells"])
