"""Grading one submitted notebook: the student's cells run in their process, the tests run here.

The student's code cells run in order, as written, in one student process (a sandbox when
grading). Test cells are not run there: they are matched to the assignment's own test cells and
their checks are run by this (trusted) process, which calls into the student's namespace for data
only. Points come from those verdicts alone.

If the student process has to be stopped (too much CPU time or memory, a crash), a fresh one is
started and the code cells that had run are run again, so one runaway function costs only the
tests that need it.
"""
from __future__ import annotations

import base64
import copy
import re
from dataclasses import dataclass, field

from .assignment import Assignment, TestCell, released_source
from .checker import run_check
from .review import suspicious
from .sandbox import Assets, Limits, rnnkit_names
from .session import StudentGone, StudentProcess
from .verdict import Verdict

GONE_KINDS = ("timeout", "memory", "crashed", "protocol")
MAX_RESTARTS = 3
MAX_CELLS = 1000        # code cells of one notebook that are run


@dataclass
class Step:
    """``kind`` is ``code`` (a student cell, run in their process) or ``test`` (run here)."""

    kind: str
    index: int | None          # the cell's position in the submission (None: a test put back)
    source: str = ""
    grade_id: str | None = None


@dataclass
class TestOutcome:
    grade_id: str
    max_points: float
    verdicts: list[Verdict] = field(default_factory=list)
    hidden: list[bool] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.verdicts) and all(v.passed for v in self.verdicts)

    @property
    def points(self) -> float:
        return self.max_points if self.passed else 0.0

    def report(self, total_checks: int, total_hidden: int) -> str:
        """What the test cell shows: visible checks one by one, hidden ones counted (a passing
        hidden test does not show its case), prints of the student's code only for visible ones."""
        lines, hidden_seen, hidden_passed, hidden_printed = [], 0, 0, 0
        for verdict, hidden in zip(self.verdicts, self.hidden):
            if hidden:
                hidden_seen += 1
                hidden_printed += len(verdict.printed)
                if verdict.passed:
                    hidden_passed += 1
                else:
                    lines.append(f"✘ hidden test {hidden_seen} of {total_hidden}: {verdict.message}")
                continue
            if verdict.printed:
                lines.append("your code printed:\n" + verdict.printed.rstrip())
            lines.append(("✔ " if verdict.passed else "✘ ") + verdict.message)
        if hidden_passed:
            lines.append(f"✔ {hidden_passed} hidden test{'s' if hidden_passed > 1 else ''} passed")
        if hidden_printed:
            lines.append(f"(your code printed {hidden_printed} characters during hidden tests; not shown)")
        skipped = total_checks - len(self.verdicts)
        if skipped and not self.passed:
            lines.append(f"({skipped} more test{'s' if skipped > 1 else ''} of this cell did not run)")
        return "\n".join(lines)

    @property
    def failure(self) -> Verdict | None:
        return next((v for v in self.verdicts if not v.passed), None)


@dataclass
class GradedNotebook:
    """The result of grading one notebook (plain data, for the report and the gradebook).

    ``notebook`` has every cell's outputs: code cells as the student's process produced them,
    test cells as this grader wrote them. Its test cells hold the full source (hidden tests
    included): it is for the instructor; :func:`for_student` removes them."""

    notebook: dict
    tests: dict[str, TestOutcome]
    events: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def score(self) -> float:
        return sum(t.points for t in self.tests.values())

    @property
    def max_score(self) -> float:
        return sum(t.max_points for t in self.tests.values())


def process_starter(assets: Assets, limits: Limits, *, sandboxed: bool, files: dict[str, bytes]):
    """How a grader starts the student's process: a sandbox (or a plain process) with ``files``
    in its home folder, configured to send figures back."""
    def start() -> StudentProcess:
        process = StudentProcess.start(assets, limits, sandboxed=sandboxed, files=files)
        process.request({"op": "configure", "figures": True})
        return process
    return start


class StudentSession:
    """The student's process for one notebook, restarted (and the code cells that ran before
    replayed) when it had to be stopped. ``start()`` makes a new process (a channel)."""

    def __init__(self, start):
        self._start = start
        self.ran: list[tuple[str, str]] = []
        self.restarts = 0
        self.dead: str | None = None   # why the process is gone for good
        self.process = start()

    def run_cell(self, label: str, source: str) -> tuple[dict, list]:
        reply, blobs = self.process.request({"op": "run_cell", "label": label, "source": source})
        self.ran.append((label, source))
        return reply, blobs

    def restart(self) -> None:
        """A fresh process with the cells that ran before run again (without their output)."""
        self.process.close()
        if self.restarts >= MAX_RESTARTS:
            raise StudentGone("crashed", f"it had to be restarted {MAX_RESTARTS} times")
        self.restarts += 1
        self.process = self._start()
        for label, source in self.ran:
            self.process.request({"op": "run_cell", "label": label, "source": source})

    def close(self) -> None:
        self.process.close()


def grade_notebook(assignment: Assignment, notebook: dict, start_student) -> GradedNotebook:
    """Grade a submitted notebook (a dict in nbformat 4) against ``assignment``; ``start_student()``
    starts the process that runs the student's code (see :func:`process_starter`)."""
    steps, problems = plan(assignment, notebook["cells"])
    out_cells = [copy.deepcopy(c) for c in notebook["cells"]]
    result = GradedNotebook({**notebook, "cells": out_cells}, {}, review_flags(steps, rnnkit_names(assignment.policy.rnnkit)), problems)
    put_back: list[tuple[int, dict]] = []
    try:
        session = StudentSession(start_student)
    except StudentGone as gone:
        result.events.append((gone.kind, f"the student process could not start: {gone.message}"))
        session = None
    try:
        for step in steps:
            if step.kind == "code":
                out_cells[step.index]["outputs"] = _run_code(session, step, result)
            else:
                cell = _run_test(session, assignment.tests[step.grade_id], result)
                if step.index is None:
                    put_back.append((len(put_back), cell))
                else:
                    out_cells[step.index] = cell
    finally:
        if session is not None:
            session.close()
    _insert_put_back(result, assignment, put_back)
    return result


def review_flags(steps: list[Step], allowed_rnnkit, limit: int = 5) -> list[tuple[str, str]]:
    """``review`` events for code an instructor should look at (see :mod:`course.review`)."""
    flags = [("review", f"{_label(step)}, line {line}: {what} ({why})") for step in steps if step.kind == "code"
             for line, what, why in suspicious(step.source, allowed_rnnkit)]
    if len(flags) > limit:
        flags = flags[:limit] + [("review", f"and {len(flags) - limit} more constructs to look at")]
    return flags


def plan(assignment: Assignment, cells: list[dict]) -> tuple[list[Step], list[str]]:
    """The steps for a submission's cells: its code cells, and the assignment's tests where the
    student's copy of each test cell stands (or after its answer cell, when it was deleted)."""
    steps, problems, seen = [], [], set()
    by_id = {t.cell_id: g for g, t in assignment.tests.items() if t.cell_id}
    by_source = {_norm(t.released): g for g, t in assignment.tests.items()}
    for index, cell in enumerate(cells):
        if cell.get("cell_type") != "code":
            continue
        meta = (cell.get("metadata") or {}).get("nbgrader") or {}
        source = _source(cell)
        gid = meta.get("grade_id") if meta.get("grade_id") in assignment.tests else None
        gid = gid or by_id.get(cell.get("id")) or by_source.get(_norm(source))
        if gid is not None and gid not in seen:
            seen.add(gid)
            if _norm(source) not in (_norm(assignment.tests[gid].released), _norm(assignment.tests[gid].source)):
                problems.append(f"test cell {gid} was changed; the original test ran")
            steps.append(Step("test", index, grade_id=gid))
            continue
        if meta.get("grade") and not meta.get("solution"):
            problems.append(f"cell {index + 1} claims to be test {meta.get('grade_id')!r}, which this "
                            "assignment does not have; it ran as your code and scores nothing")
        if sum(s.kind == "code" for s in steps) >= MAX_CELLS:
            too_many = f"the notebook has more than {MAX_CELLS} code cells; the rest were not run"
            problems += [] if too_many in problems else [too_many]
            continue
        steps.append(Step("code", index, source=source))
    for gid in assignment.tests:
        if gid not in seen:
            problems.append(f"test cell {gid} was missing and was put back")
            steps.insert(_after_answer(steps, cells, assignment.anchors.get(gid)), Step("test", None, grade_id=gid))
    return steps, problems


def _after_answer(steps: list[Step], cells: list[dict], anchor: str | None) -> int:
    """Where a deleted test cell goes: right after the step of its answer cell, else at the end."""
    for position, step in enumerate(steps):
        if step.index is not None:
            meta = (cells[step.index].get("metadata") or {}).get("nbgrader") or {}
            if anchor is not None and meta.get("grade_id") == anchor:
                return position + 1
    return len(steps)


def _norm(source: str) -> str:
    return re.sub(r"\s+", " ", source).strip()


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _label(step: Step) -> str:
    return f"cell {step.index + 1}"


def _run_code(session: StudentSession | None, step: Step, result: GradedNotebook) -> list[dict]:
    """Run one of the student's code cells; its outputs in nbformat."""
    if session is None or session.dead:
        return [_stream("stderr", "not run: the process running this notebook had to be stopped")]
    try:
        reply, blobs = session.run_cell(_label(step), _python(step.source))
    except StudentGone as gone:
        result.events.append((gone.kind, f"{_label(step)}: {gone.message}"))
        _restart(session, result)
        return [_error(gone.kind, f"{_label(step)} was stopped: {gone.message}", [])]
    outputs = [_stream(name, reply.get(name, "")) for name in ("stdout", "stderr") if reply.get(name)]
    if reply.get("ok"):
        if reply.get("repr") is not None:
            outputs.append({"output_type": "execute_result", "execution_count": None, "metadata": {},
                            "data": {"text/plain": reply["repr"]}})
        for fig in reply.get("figures", []):
            if isinstance(fig, dict) and isinstance(fig.get("i"), int) and fig["i"] < len(blobs):
                outputs.append({"output_type": "display_data", "metadata": {},
                                "data": {"image/png": base64.b64encode(bytes(blobs[fig["i"]])).decode()}})
    else:
        error = reply.get("error", {})
        if error.get("type") == "MemoryError":
            result.events.append(("memory", f"MemoryError in {_label(step)}"))
        where = [f"in {w['cell']}, line {w['line']}: {w.get('code', '')}" for w in error.get("where", [])]
        outputs.append(_error(str(error.get("type", "Error")), str(error.get("message", "")), where))
    return outputs


def _run_test(session: StudentSession | None, test: TestCell, result: GradedNotebook) -> dict:
    """Run the checks of one test cell (stopping at the first failure); the graded cell."""
    outcome = TestOutcome(test.grade_id, test.points)
    for call in test.checks:
        if session is None or session.dead:
            break
        verdict = run_check(call.spec, call.params, session.process)
        outcome.verdicts.append(verdict)
        outcome.hidden.append(call.hidden)
        if verdict.kind in GONE_KINDS:
            result.events.append((verdict.kind, f"{test.grade_id}: {verdict.message}"))
            _restart(session, result)
        elif verdict.kind == "checker-error":
            result.events.append(("review", f"{test.grade_id}: {verdict.message}"))
        if not verdict.passed:
            break
    result.tests[test.grade_id] = outcome
    text = outcome.report(len(test.checks), sum(c.hidden for c in test.checks)) or "not run"
    if outcome.passed:
        outputs = [_stream("stdout", text + "\n")]
    else:  # one error output: the report is its traceback, so the message shows once
        failure = outcome.failure
        outputs = [{"output_type": "error", "ename": "CheckFailure", "evalue": failure.message if failure else "not run",
                    "traceback": text.split("\n")}]
    return {"cell_type": "code", "execution_count": None, "id": test.cell_id or f"test-{test.grade_id}",
            "metadata": {"deletable": False, "editable": False,
                         "nbgrader": {"grade": True, "grade_id": test.grade_id, "locked": True,
                                      "points": test.points, "schema_version": 3, "solution": False}},
            "source": test.source, "outputs": outputs}


def _restart(session: StudentSession, result: GradedNotebook) -> None:
    try:
        session.restart()
    except StudentGone as gone:
        result.events.append((gone.kind, f"the student process could not be restarted: {gone.message}"))
        session.dead = gone.message


def _insert_put_back(result: GradedNotebook, assignment: Assignment, put_back: list[tuple[int, dict]]) -> None:
    """Test cells that were missing go back after their answer cell (or at the end)."""
    cells = result.notebook["cells"]
    for _, cell in put_back:
        anchor = assignment.anchors.get(cell["metadata"]["nbgrader"]["grade_id"])
        at = next((i + 1 for i, c in enumerate(cells)
                   if ((c.get("metadata") or {}).get("nbgrader") or {}).get("grade_id") == anchor), len(cells))
        cells.insert(at, cell)


def _python(source: str) -> str:
    """A cell's source as plain Python: IPython syntax (magics, ``!commands``) turned into calls."""
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        return TransformerManager().transform_cell(source)
    except Exception:  # noqa: BLE001 - leave it to the student's process to report the syntax error
        return source


def _stream(name: str, text: str) -> dict:
    return {"output_type": "stream", "name": name, "text": text}


def _error(ename: str, evalue: str, where: list[str]) -> dict:
    return {"output_type": "error", "ename": ename, "evalue": evalue,
            "traceback": [f"{ename}: {evalue}", *where]}


def for_student(graded: GradedNotebook, assignment: Assignment) -> dict:
    """The graded notebook without hidden tests: what feedback is made from."""
    nb = copy.deepcopy(graded.notebook)
    for cell in nb["cells"]:
        gid = ((cell.get("metadata") or {}).get("nbgrader") or {}).get("grade_id")
        if gid in assignment.tests and cell.get("cell_type") == "code":
            cell["source"] = released_source(assignment.tests[gid].source)
    return nb
