"""nbgrader's own commands, made safe for this course (used by the course's nbgrader_config.py).

* :class:`SandboxedExecute` replaces nbgrader's ``Execute`` in ``nbgrader autograde``: the student's
  cells run in the grading sandbox, the test cells are run by the course's checker, and each test
  cell's output is what the checker recorded (an error when a check failed), so nbgrader's
  ``SaveAutoGrades`` scores from the checker's verdicts, never from the student's kernel.
* :class:`OverwriteTestCells` is nbgrader's ``OverwriteCells`` without the false alarm: a test
  cell handed in exactly as released (its hidden tests removed) is not reported as changed.
* :class:`HideHiddenTests` runs in ``nbgrader generate_feedback``: test cells lose their hidden
  region, and no output line may quote a hidden line.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import nbformat
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import NbGraderPreprocessor, OverwriteCells
from traitlets import Bool

from .assignment import BEGIN_HIDDEN, END_HIDDEN, Assignment, released_source
from .grader import grade_notebook, process_starter
from .sandbox import Assets, Limits, SandboxError, sandbox_available


def _is_test(cell) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return bool(meta.get("grade")) and not meta.get("solution") and cell.get("cell_type") == "code"


class OverwriteTestCells(OverwriteCells):
    def preprocess_cell(self, cell, resources, cell_index):
        if _is_test(cell) and cell.metadata.nbgrader.get("grade_id"):
            try:
                source = self.gradebook.find_source_cell(cell.metadata.nbgrader["grade_id"], self.notebook_id,
                                                         self.assignment_id).source
            except Exception:  # noqa: BLE001 - nbgrader reports unknown cells itself
                source = None
            if source is not None and cell.source.strip() == released_source(source).strip():
                cell.source = source   # as released: not a change
        return super().preprocess_cell(cell, resources, cell_index)


class SandboxedExecute(NbGraderPreprocessor):
    """Grade the notebook with the course's grader instead of executing it in a kernel."""

    require_sandbox = Bool(True, help="refuse to grade where bubblewrap is missing").tag(config=True)

    def preprocess(self, nb, resources):
        coursedir = CourseDirectory(config=self.config)
        info = resources["nbgrader"]
        source = Path(coursedir.format_path(coursedir.source_directory, ".", info["assignment"]))
        assignment = Assignment.load(source)
        sandboxed, why = sandbox_available()
        if not sandboxed and self.require_sandbox:
            raise SandboxError(f"nbgrader autograde runs student code in a sandbox here, and {why} "
                               "(or set c.SandboxedExecute.require_sandbox = False)")
        with tempfile.TemporaryDirectory(prefix="course-autograde-") as tmp:
            assets = Assets.prepare(assignment.policy, Path(tmp), sandboxed)
            graded = grade_notebook(assignment, nb, process_starter(assets, Limits(), sandboxed=sandboxed,
                                                                    files=assignment.files))
        by_id = {c.get("id"): c for c in graded.notebook["cells"]}
        for cell in nb.cells:
            done = by_id.get(cell.get("id"))
            if cell.cell_type == "code" and done is not None:
                cell.outputs = nbformat.from_dict(done.get("outputs", []))
        for kind, message in graded.events:
            self.log.warning("%s: %s", kind, message)
        return nb, resources


class HideHiddenTests(NbGraderPreprocessor):
    """Feedback without hidden tests: removed from the source, and from any output quoting them."""

    def preprocess(self, nb, resources):
        hidden = [line.strip() for cell in nb.cells if _is_test(cell) for line in _hidden_lines(cell.source)]
        for cell in nb.cells:
            if _is_test(cell):
                cell.source = released_source(cell.source)
            for output in cell.get("outputs", []):
                _scrub(output, hidden)
        return nb, resources


def _hidden_lines(source: str) -> list[str]:
    inside, out = False, []
    for line in source.split("\n"):
        if BEGIN_HIDDEN in line:
            inside = True
        elif END_HIDDEN in line:
            inside = False
        elif inside and line.strip():
            out.append(line)
    return out


def _scrub(output, hidden: list[str]) -> None:
    def clean(text: str) -> str:
        return "\n".join("[a line of a hidden test]" if any(h in line for h in hidden) else line
                         for line in text.split("\n"))

    if "text" in output:
        output["text"] = clean(output["text"])
    if "traceback" in output:
        output["traceback"] = [clean(t) for t in output["traceback"]]
    if "evalue" in output:
        output["evalue"] = clean(output["evalue"])
    for mime, value in list(output.get("data", {}).items()):
        if mime.startswith("text/") and isinstance(value, str):
            output["data"][mime] = clean(value)
