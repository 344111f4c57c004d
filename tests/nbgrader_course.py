"""Autograde notebooks with nbgrader itself, in a throw-away course directory.

Used by the tests to prove that solutions score full marks, untouched exercises score zero and
typical mistakes score partially. One nbgrader run grades every notebook of an assignment.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Graded:
    score: float
    max_score: float
    cells: dict[str, float] = field(default_factory=dict)  # grade_id -> points
    outputs: dict[str, str] = field(default_factory=dict)  # grade_id -> text the test printed


def autograde(assignment: str, submissions: dict[str, Path], workdir: Path) -> dict[str, Graded]:
    """Grade ``{student: notebook}`` for ``assignment``; returns each student's result."""
    import nbformat
    from nbgrader.api import Gradebook

    course = workdir / "course"
    shutil.copytree(ROOT / "solutions" / assignment, course / "source" / assignment)
    (course / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"c.CourseDirectory.root = {str(course)!r}\n"
        "c.OverwriteCells.add_missing_cells = True\n"
        "c.ExecutePreprocessor.timeout = 120\n"
    )
    for student, notebook in submissions.items():
        dest = course / "submitted" / student / assignment
        dest.mkdir(parents=True)
        shutil.copy(notebook, dest / f"{assignment}.ipynb")
    run = [sys.executable, "-m", "nbgrader"]
    # nbgrader runs the `alembic` command of its own environment
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    for command in ("generate_assignment", "autograde"):
        subprocess.run(run + [command, assignment, "--log-level=ERROR"], cwd=course, env=env, check=True)

    results = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for student in submissions:
            sub = gb.find_submission(assignment, student)
            nb = sub.notebooks[0]
            cells = {g.name: g.score for g in nb.grades}
            graded_nb = nbformat.read(course / "autograded" / student / assignment / f"{assignment}.ipynb", 4)
            outputs = {}
            for cell in graded_nb.cells:
                gid = cell.metadata.get("nbgrader", {}).get("grade_id")
                if gid in cells:
                    outputs[gid] = "\n".join(
                        o.get("text", "") + o.get("evalue", "") for o in cell.get("outputs", []))
            results[student] = Graded(sub.score, sub.max_score, cells, outputs)
    return results


@dataclass
class Mutant:
    """A typical mistake: the solution notebook with one edit, and words the feedback must contain.

    ``cell`` is the grade_id of the edited cell (or ``None`` to insert ``new`` as a first code cell),
    ``old`` -> ``new`` the edit, ``expect`` a phrase the failing check must print.
    """

    name: str
    cell: str | None
    old: str
    new: str
    expect: str

    def apply(self, solution: Path, dest: Path) -> Path:
        import nbformat

        nb = nbformat.read(solution, 4)
        if self.cell is None:
            nb.cells.insert(1, nbformat.v4.new_code_cell(self.new))
        else:
            (cell,) = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == self.cell]
            assert self.old in cell.source, f"mutant {self.name}: {self.old!r} not in cell {self.cell}"
            cell.source = cell.source.replace(self.old, self.new)
        nbformat.write(nb, dest)
        return dest


def load_mutants(assignment: str) -> list[Mutant]:
    """The mutants of tests/mutants/<assignment>.py (a list named MUTANTS)."""
    import importlib.util

    path = Path(__file__).parent / "mutants" / f"{assignment}.py"
    if not path.exists():
        return []
    spec = importlib.util.spec_from_file_location(f"mutants_{assignment}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MUTANTS


def grade_class(assignment: str, submissions: dict[str, Path], workdir: Path, workers: int = 2) -> dict[str, Graded]:
    """Grade ``{student: notebook}`` with the course's own ``grade-class`` (nbgrader underneath,
    submissions in parallel); returns each student's result, read back from grades.csv and the
    autograded notebooks."""
    import csv

    import nbformat

    from grading.runner import Options, run

    folder = workdir / "submissions"
    folder.mkdir()
    for student, notebook in submissions.items():
        shutil.copy(notebook, folder / f"{student}.ipynb")
    out = workdir / "graded"
    run(Options(assignment=assignment, submissions=str(folder), course_dir=str(ROOT), out=str(out),
                workers=workers, progress=False))
    with open(out / "grades.csv", newline="") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    results = {}
    for student in submissions:
        row = rows[student]
        assert row["status"] == "graded", (student, row["status"], row.get("problems"))
        fixed = {"student", "total", "max", "status", "problems", "files"}
        cells = {k: float(v) for k, v in row.items() if k not in fixed and v != ""}
        graded_nb = nbformat.read(out / "autograded" / student / f"{assignment}.ipynb", 4)
        outputs = {}
        for cell in graded_nb.cells:
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            if gid in cells:
                outputs[gid] = "\n".join(o.get("text", "") + o.get("evalue", "") for o in cell.get("outputs", []))
        results[student] = Graded(float(row["total"]), float(row["max"]), cells, outputs)
    return results


def check_cells(assignment: str, notebook: Path) -> Graded:
    """Score a notebook the way its test cells would, without a kernel: each test cell (hidden
    tests included, from the source) runs its ``check`` calls against the student code of the cells
    above it. Same checks, same verdicts, a fraction of the cost of executing the whole notebook.
    """
    import contextlib
    import functools
    import io

    import nbformat

    from rnnkit.checks import CheckFailure, check
    from rnnkit.checks.core import CELL_BREAK

    source_nb = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", 4)
    tests = {c.metadata["nbgrader"]["grade_id"]: c for c in source_nb.cells
             if c.metadata.get("nbgrader", {}).get("grade")}
    student = nbformat.read(notebook, 4)
    code_so_far, cells, outputs, score, max_score = [], {}, {}, 0.0, 0.0
    for cell in student.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in tests:
            test = tests[gid]
            points = float(test.metadata["nbgrader"]["points"])
            body = test.source.replace("### BEGIN HIDDEN TESTS", "").replace("### END HIDDEN TESTS", "")
            printed = io.StringIO()
            env = {"check": functools.partial(check, source=CELL_BREAK.join(code_so_far))}
            try:
                with contextlib.redirect_stdout(printed):
                    exec(body.replace("from rnnkit.checks import check", ""), env)
                cells[gid] = points
            except CheckFailure as failure:
                cells[gid] = 0.0
                printed.write(str(failure))
            outputs[gid] = printed.getvalue()
            score += cells[gid]
            max_score += points
        elif cell.cell_type == "code":
            code_so_far.append(cell.source)
    return Graded(score, max_score, cells, outputs)
