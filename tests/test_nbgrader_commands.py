"""nbgrader's own commands with the course's nbgrader_config.py are safe too: ``autograde`` grades
with the sandbox and the checker (a notebook that borrows the library's answer gets no points for
it), an untouched test cell raises no "checksum has changed" alarm, and ``generate_feedback``
shows no hidden test."""
from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from course_helpers import ROOT, load_mutants
from grading_corpus import hidden_lines

NAME = "02_vanilla_rnn"
pytestmark = pytest.mark.slow


def nbgrader(course: Path, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run([sys.executable, "-m", "nbgrader", *args, "--log-level=INFO"], cwd=course, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    course = tmp_path_factory.mktemp("nbgrader-course")
    shutil.copytree(ROOT / "solutions" / NAME, course / "solutions" / NAME)
    (course / "nbgrader_config.py").write_text(
        f"c = get_config()\nload_subconfig({str(ROOT / 'nbgrader_config.py')!r})\n"
        f"c.CourseDirectory.root = {str(course)!r}\n")
    assert nbgrader(course, "generate_assignment", NAME).returncode == 0
    released = course / "exercises" / NAME / f"{NAME}.ipynb"
    solution = ROOT / "solutions" / NAME / f"{NAME}.ipynb"
    (cheat,) = [m for m in load_mutants(NAME) if m.name == "calls_rnnkit"]
    students = {"untouched": released, "solved": solution,
                "cheat": cheat.apply(solution, course / "cheat.ipynb")}
    for student, notebook in students.items():
        folder = course / "submitted" / student / NAME
        folder.mkdir(parents=True)
        shutil.copy(notebook, folder / f"{NAME}.ipynb")
    graded = nbgrader(course, "autograde", NAME)
    assert graded.returncode == 0, graded.stderr[-3000:]
    feedback = nbgrader(course, "generate_feedback", NAME)
    assert feedback.returncode == 0, feedback.stderr[-3000:]
    return {"root": course, "log": graded.stderr}


def test_autograde_scores_come_from_the_checker(course):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course['root'] / 'gradebook.db'}") as gb:
        scores = {s: gb.find_submission(NAME, s).score for s in ("untouched", "solved", "cheat")}
    assert scores["solved"] == 10 and scores["untouched"] == 0
    assert 0 < scores["cheat"] < 10   # its softmax borrows rnnkit.losses, which the sandbox lacks
    autograded = json.loads((course["root"] / "autograded" / "cheat" / NAME / f"{NAME}.ipynb").read_text())
    text = json.dumps(autograded)
    assert "No module named 'rnnkit.losses'" in text


def test_no_checksum_alarm_for_untouched_test_cells(course):
    assert "checksum" not in course["log"].lower(), course["log"][-3000:]


def test_generated_feedback_has_no_hidden_test(course):
    pages = list((course["root"] / "feedback").rglob("*.html"))
    assert len(pages) == 3
    for page in pages:
        text = page.read_text()
        plain = html.unescape(re.sub(r"<[^>]+>", "", text))
        for line in hidden_lines():
            assert line not in text and line not in plain, (page, line)
