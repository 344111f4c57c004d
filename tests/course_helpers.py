"""Grading notebooks and running checks from the tests.

* :func:`run_spec` runs one check against student code given as source text (in this process,
  through the wire format: for the course's own example code only);
* :func:`grade_loopback` grades a notebook with the real grader, the student's cells running in
  this process: fast, for the course's own solutions and typical mistakes;
* :func:`grade_class` grades notebooks with ``grade-class`` itself (sandboxed, in parallel);
* :class:`Mutant`: a typical mistake, the solution with one edit and the words its message must contain.
"""
from __future__ import annotations

import csv
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Graded:
    score: float
    max_score: float
    cells: dict[str, float] = field(default_factory=dict)  # grade_id -> points
    outputs: dict[str, str] = field(default_factory=dict)  # grade_id -> what the test cell shows
    status: str = "graded"
    problems: str = ""


def run_spec(spec: str, source: str, seed: int | None = 0, **params):
    """The verdict of check ``spec`` on the student code ``source`` (run in a fresh namespace)."""
    from course.checker import run_check
    from course.session import LoopbackChannel

    namespace = {"__name__": "__main__"}
    exec(compile(source, "<cell 1>", "exec"), namespace)
    return run_check(spec, {**params, "seed": seed}, LoopbackChannel(namespace))


def _shown(cell: dict) -> str:
    """What a graded cell shows: its printed text and the lines of its error output."""
    return "\n".join(o.get("text", "") or "\n".join(o.get("traceback", [])) for o in cell.get("outputs", []))


def check_source(spec: str, source: str, seed: int | None = 0, **params) -> str:
    """Like :func:`run_spec`, raising CheckFailure with the message when the check fails."""
    from course.verdict import CheckFailure

    verdict = run_spec(spec, source, seed, **params)
    if not verdict.passed:
        raise CheckFailure(f"[{verdict.kind}] {verdict.message}")
    return verdict.message


def assignment(name: str):
    from course.assignment import Assignment

    return Assignment.load(ROOT / "solutions" / name)


def grade_loopback(name: str, notebook: Path) -> Graded:
    """Grade ``notebook`` for assignment ``name``; the student's cells run in this process."""
    from course.grader import grade_notebook
    from course.session import LoopbackChannel

    graded = grade_notebook(assignment(name), json.loads(Path(notebook).read_text()),
                            lambda: LoopbackChannel({"__name__": "__main__"}))
    outputs = {}
    for cell in graded.notebook["cells"]:
        gid = ((cell.get("metadata") or {}).get("nbgrader") or {}).get("grade_id")
        if gid in graded.tests:
            outputs[gid] = _shown(cell)
    return Graded(graded.score, graded.max_score, {g: t.points for g, t in graded.tests.items()}, outputs,
                  "graded" if not graded.events else graded.events[0][0], " | ".join(graded.problems))


def grade_class(name: str, submissions: dict[str, Path], workdir: Path, workers: int = 2) -> dict[str, Graded]:
    """Grade ``{student: notebook}`` with ``grade-class`` (sandboxed); each student's result, read
    back from grades.csv and the graded notebooks."""
    from grading.runner import Options, run

    folder = workdir / "submissions"
    folder.mkdir()
    for student, notebook in submissions.items():
        shutil.copy(notebook, folder / f"{student}.ipynb")
    out = workdir / "graded"
    run(Options(assignment=name, submissions=str(folder), course_dir=str(ROOT), out=str(out), workers=workers,
                progress=False))
    with open(out / "grades.csv", newline="") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    results = {}
    for student in submissions:
        row = rows[student]
        fixed = {"student", "total", "max", "status", "problems", "files"}
        cells = {k: float(v) for k, v in row.items() if k not in fixed and v != ""}
        graded = json.loads((out / "autograded" / student / name / f"{name}.ipynb").read_text())
        outputs = {}
        for cell in graded["cells"]:
            gid = ((cell.get("metadata") or {}).get("nbgrader") or {}).get("grade_id")
            if gid in cells:
                outputs[gid] = _shown(cell)
        results[student] = Graded(float(row["total"]), float(row["max"]), cells, outputs, row["status"],
                                  row["problems"])
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
        nb = json.loads(Path(solution).read_text())
        if self.cell is None:
            nb["cells"].insert(1, {"cell_type": "code", "execution_count": None, "id": f"mutant-{self.name}"[:64],
                                   "metadata": {}, "outputs": [], "source": self.new})
        else:
            (cell,) = [c for c in nb["cells"]
                       if ((c.get("metadata") or {}).get("nbgrader") or {}).get("grade_id") == self.cell]
            source = "".join(cell["source"])
            assert self.old in source, f"mutant {self.name}: {self.old!r} not in cell {self.cell}"
            cell["source"] = source.replace(self.old, self.new)
        Path(dest).write_text(json.dumps(nb, indent=1))
        return Path(dest)


def load_mutants(name: str) -> list[Mutant]:
    """The mutants of tests/mutants/<assignment>.py (a list named MUTANTS)."""
    import importlib.util

    path = Path(__file__).parent / "mutants" / f"{name}.py"
    if not path.exists():
        return []
    spec = importlib.util.spec_from_file_location(f"mutants_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MUTANTS
