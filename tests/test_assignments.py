"""Every assignment, graded by the course's grader:

* the solution scores full marks and the untouched release scores zero, failing only with
  "not implemented yet";
* every typical mistake (tests/mutants/) scores partially, with a message that names it;
* borrowing the library's answer fails in the sandbox, where the library's implementation is not
  installed (graded by grade-class itself);
* the release is exactly what nbgrader generates from the solution, without hidden tests, and its
  test cells hold only check(...) calls.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from course_helpers import ROOT, assignment, grade_class, grade_loopback, load_mutants

ASSIGNMENTS = sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir())
CHEATS = ("calls_", "redefines_")


def test_exercises_are_generated_from_solutions():
    result = subprocess.run([sys.executable, "-m", "tools.release", "--check"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_test_cells_parse_into_checks(name):
    loaded = assignment(name)
    assert loaded.max_score > 0
    for test in loaded.tests.values():
        assert any(not c.hidden for c in test.checks), f"{test.grade_id} has no visible check"
        assert any(c.hidden for c in test.checks), f"{test.grade_id} has no hidden check"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_solution_scores_full_marks_and_release_zero(name):
    solution = grade_loopback(name, ROOT / "solutions" / name / f"{name}.ipynb")
    assert solution.score == solution.max_score > 0, solution.outputs
    untouched = grade_loopback(name, ROOT / "exercises" / name / f"{name}.ipynb")
    assert untouched.score == 0, untouched.cells
    for gid, text in untouched.outputs.items():
        assert "not implemented yet" in text, (gid, text)


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_typical_mistakes_score_partially_with_a_message(name, tmp_path):
    mutants = [m for m in load_mutants(name) if not m.name.startswith(CHEATS)]
    assert len(mutants) >= 5, f"{name} needs at least five typical-mistake mutants"
    solution = ROOT / "solutions" / name / f"{name}.ipynb"
    for mutant in mutants:
        result = grade_loopback(name, mutant.apply(solution, tmp_path / f"{mutant.name}.ipynb"))
        assert 0 < result.score < result.max_score, (mutant.name, result.cells)
        failed = [gid for gid, points in result.cells.items() if points == 0]
        messages = " ".join(result.outputs[gid] for gid in failed)
        assert mutant.expect in messages, (mutant.name, messages)


@pytest.fixture(scope="module")
def graded_by_grade_class(tmp_path_factory):
    """grade-class (sandboxed), once per assignment, on the solution and the cheats."""
    cache = {}

    def grade(name):
        if name not in cache:
            work = tmp_path_factory.mktemp(name)
            solution = ROOT / "solutions" / name / f"{name}.ipynb"
            notebooks = {"solution": solution}
            for mutant in load_mutants(name):
                if mutant.name.startswith(CHEATS):
                    notebooks["cheat-" + mutant.name.replace("_", "-")] = mutant.apply(
                        solution, work / f"{mutant.name}.ipynb")
            cache[name] = grade_class(name, notebooks, work)
        return cache[name]

    return grade


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_sandboxed_solution_scores_full_marks_and_cheats_do_not(name, graded_by_grade_class):
    results = graded_by_grade_class(name)
    solution = results["solution"]
    assert solution.status == "graded", solution.problems
    assert solution.score == solution.max_score, solution.outputs
    cheats = [m for m in load_mutants(name) if m.name.startswith(CHEATS)]
    assert cheats, f"{name} needs a mutant that borrows the library's answer"
    for mutant in cheats:
        result = results["cheat-" + mutant.name.replace("_", "-")]
        assert result.score < result.max_score, (mutant.name, result.cells)
        assert mutant.expect in " ".join(result.outputs.values()), (mutant.name, result.outputs)


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_release_has_no_hidden_tests_or_solutions(name):
    release = json.loads((ROOT / "exercises" / name / f"{name}.ipynb").read_text())
    text = "".join("".join(c["source"]) for c in release["cells"])
    assert "BEGIN HIDDEN TESTS" not in text and "BEGIN SOLUTION" not in text
    assert "rnnkit.checks" not in text
    source = json.loads((ROOT / "solutions" / name / f"{name}.ipynb").read_text())
    assert "BEGIN HIDDEN TESTS" in "".join("".join(c["source"]) for c in source["cells"])


#: rnnkit files that hold (part of) an assignment's answers: its grading sandbox must not have them
ANSWERS = {
    "01_sequence_data": {"text.py", "sequence.py", "embedding.py"},
    "02_vanilla_rnn": {"cells/rnn.py", "sequence.py", "heads.py", "losses.py"},
    "03_bptt": {"cells/rnn.py", "sequence.py", "losses.py"},
    "04_vanishing_gradients": {"clip.py", "cells/rnn.py", "sequence.py"},
    "05_language_model": {"text.py", "losses.py", "embedding.py", "heads.py", "optim.py", "models.py"},
    "06_gru": {"cells/gru.py", "sequence.py", "modules.py"},
    "07_lstm": {"cells/lstm.py", "sequence.py", "modules.py"},
    "08_bidirectional": {"sequence.py", "stacked.py", "modules.py"},
    "09_deep_rnn": {"stacked.py", "modules.py", "heads.py", "models.py"},
    "10_seq2seq": {"models.py", "losses.py"},
    "11_truncated_bptt": {"lm.py", "losses.py", "clip.py", "embedding.py", "heads.py", "optim.py", "models.py",
                          "text.py"},
    "12_attention": {"attention.py", "models.py", "losses.py", "decoding.py"},
    "13_capstone": {"cells/rnn.py", "cells/gru.py", "cells/lstm.py", "sequence.py", "stacked.py", "modules.py",
                    "losses.py",
                    "optim.py", "clip.py", "models.py", "heads.py"},
}


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_the_sandbox_holds_no_answer(name):
    from course.sandbox import SiteLayout

    layout = SiteLayout.for_policy(assignment(name).policy)
    files = {rel.removeprefix("rnnkit/") for rel in layout.entries if rel.startswith("rnnkit/")}
    assert not files & ANSWERS[name], sorted(files & ANSWERS[name])
    assert "course" not in layout.entries and "grading" not in layout.entries
