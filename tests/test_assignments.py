"""Every assignment, graded by the course's own grading command (nbgrader underneath):

* the solution scores full marks and the untouched release scores zero, failing only with
  "not implemented yet";
* every typical mistake (tests/mutants/) scores partially, with a message that names it;
* cheating (borrowing rnnkit, redefining numpy's comparisons) is caught in real grading too;
* the release is exactly what nbgrader generates from the solution, without hidden tests.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from nbgrader_course import ROOT, check_cells, grade_class, load_mutants

ASSIGNMENTS = sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir())
CHEATS = ("calls_", "redefines_")


def test_exercises_are_generated_from_solutions():
    result = subprocess.run([sys.executable, "-m", "tools.release", "--check"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """grade-class, once per assignment, on the solution, the untouched release and the cheats."""
    cache = {}

    def grade(assignment):
        if assignment not in cache:
            work = tmp_path_factory.mktemp(assignment)
            solution = ROOT / "solutions" / assignment / f"{assignment}.ipynb"
            notebooks = {"solution": solution,
                         "untouched": ROOT / "exercises" / assignment / f"{assignment}.ipynb"}
            for mutant in load_mutants(assignment):
                if mutant.name.startswith(CHEATS):
                    student = "cheat-" + mutant.name.replace("_", "-")
                    notebooks[student] = mutant.apply(solution, work / f"{mutant.name}.ipynb")
            cache[assignment] = grade_class(assignment, notebooks, work)
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
def test_cheating_is_caught_by_the_grader(assignment, graded):
    results = graded(assignment)
    cheats = [m for m in load_mutants(assignment) if m.name.startswith(CHEATS)]
    assert cheats, f"{assignment} needs a mutant that borrows rnnkit's answer"
    for mutant in cheats:
        result = results["cheat-" + mutant.name.replace("_", "-")]
        assert result.score < result.max_score, (mutant.name, result.cells)
        assert mutant.expect in " ".join(result.outputs.values()), (mutant.name, result.outputs)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_typical_mistakes_score_partially_with_a_message(assignment, tmp_path):
    mutants = [m for m in load_mutants(assignment) if not m.name.startswith(CHEATS)]
    assert len(mutants) >= 5, f"{assignment} needs at least five typical-mistake mutants"
    solution = ROOT / "solutions" / assignment / f"{assignment}.ipynb"
    reference = check_cells(assignment, solution)
    assert reference.score == reference.max_score, reference.outputs
    for mutant in mutants:
        result = check_cells(assignment, mutant.apply(solution, tmp_path / f"{mutant.name}.ipynb"))
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
