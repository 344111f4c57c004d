"""A preprocessor for nbgrader's ``GenerateFeedback`` that keeps hidden tests out of feedback.

nbgrader's feedback shows the autograded notebook, hidden tests and their tracebacks included.
:class:`HideHiddenTests` runs in nbgrader's feedback pipeline (after ``GetGrades``) and

* removes the hidden region from every test cell with nbgrader's own ``ClearHiddenTests`` code;
* replaces the error output of such a cell by the test's id, the exception type and -- when it
  comes from the test's own assert or from a course checker -- its message; a message raised
  inside the student's code or a library during a hidden test could show the hidden inputs, so
  only its type is shown; tracebacks of these cells are never shown (their context lines are
  hidden code);
* drops rich results of hidden test cells and removes any output line that quotes a hidden test
  line verbatim, in every cell (a student's code can print what it saw);
* truncates long texts once more.
"""
from __future__ import annotations

import re

from nbconvert.preprocessors import Preprocessor
from nbformat.notebooknode import NotebookNode
from nbgrader import utils as nbutils
from nbgrader.preprocessors import ClearHiddenTests
from traitlets import Dict, Int, List

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
REMOVED = "[hidden test content removed by the grader]"


class HideHiddenTests(Preprocessor):
    cell_info = Dict({}, help="per grade_id: what the kernel reported about the test").tag(config=True)
    hidden_lines = List([], help="lines of hidden tests that must never appear").tag(config=True)
    max_text = Int(20000, help="characters kept per output text").tag(config=True)

    def __init__(self, **kw):
        super().__init__(**kw)
        self.enabled = True

    def preprocess(self, nb, resources):
        self._clear = ClearHiddenTests(enforce_metadata=False)
        self._lines = [l for l in self.hidden_lines if l]
        return super().preprocess(nb, resources)

    # -- helpers ---------------------------------------------------------------------------------
    def _scrub(self, text: str) -> str:
        if not isinstance(text, str) or not self._lines:
            return text
        plain = ANSI.sub("", text)
        if not any(l in plain for l in self._lines):
            return text
        out = []
        for line in text.split("\n"):
            if any(l in ANSI.sub("", line) for l in self._lines):
                out.append(REMOVED)
            else:
                out.append(line)
        return "\n".join(out)

    def _cut(self, text):
        if isinstance(text, str) and len(text) > self.max_text:
            return text[: self.max_text] + "\n... [truncated]"
        return text

    def _scrub_output(self, out):
        if out.output_type == "stream":
            out.text = self._cut(self._scrub(out.text))
        elif out.output_type == "error":
            out.evalue = self._cut(self._scrub(out.evalue))
            out.traceback = [self._cut(self._scrub(t)) for t in out.traceback]
        elif out.output_type in ("execute_result", "display_data"):
            for mime, value in list(out.get("data", {}).items()):
                if isinstance(value, str) and (mime.startswith("text/") or mime in ("application/json",)):
                    out.data[mime] = self._cut(self._scrub(value))
        return out

    # -- cells -----------------------------------------------------------------------------------
    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            if cell.cell_type == "markdown":
                cell.source = self._scrub_source(cell)
            return cell, resources
        is_test = nbutils.is_grade(cell) and not nbutils.is_solution(cell)
        had_hidden = False
        if is_test:
            had_hidden = self._clear._remove_hidden_test_region(cell)
        else:
            cell.source = self._scrub_source(cell)
        if not had_hidden:
            cell.outputs = [self._scrub_output(o) for o in cell.get("outputs", [])]
            return cell, resources
        gid = cell.metadata.nbgrader.get("grade_id", "")
        info = self.cell_info.get(gid, {})
        outputs = []
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                outputs.append(self._scrub_output(out))
            elif out.output_type == "error":
                outputs.append(self._error(gid, out, info))
        if info.get("suppressed_output"):
            outputs.append(NotebookNode(output_type="stream", name="stdout", text=(
                "[%d characters printed by your code during the hidden tests are not shown]\n"
                % info["suppressed_output"])))
        cell.outputs = outputs
        cell.source = cell.source.rstrip() + "\n# (hidden tests of this cell are not shown)"
        return cell, resources

    def _scrub_source(self, cell) -> str:
        return self._scrub(cell.source) if self._lines else cell.source

    def _error(self, gid, out, info):
        origin = (info.get("origin") or {}).get("origin") if isinstance(info.get("origin"), dict) else None
        ename = out.get("ename", "Error")
        evalue = ANSI.sub("", out.get("evalue", "") or "")
        if ename in ("NotRun", "KernelDied", "CellTimeoutError"):
            text = "%s: %s" % (ename, evalue)
        elif origin in ("test", "checker"):
            text = "Test %s failed: %s%s" % (gid, ename, (": " + evalue) if evalue else "")
        elif origin == "student":
            text = ("Test %s failed: your code raised %s during a hidden test (its message is not "
                    "shown because it may contain the hidden test's inputs)" % (gid, ename))
        elif origin == "library":
            text = ("Test %s failed: %s in a hidden check (the values your code returned are not "
                    "the expected ones; details are hidden)" % (gid, ename))
        else:
            text = "Test %s failed: %s" % (gid, ename)
        text = self._cut(self._scrub(text))
        return NotebookNode(output_type="error", ename=ename, evalue=text, traceback=[text])


# -- faster feedback: nbconvert compiles its jinja templates anew for every exporter; keep the
#    compiled templates of this process in memory instead --------------------------------------
import jinja2  # noqa: E402
from nbconvert.exporters import HTMLExporter  # noqa: E402


class _MemoryBytecodeCache(jinja2.BytecodeCache):
    def __init__(self):
        self._store = {}

    def load_bytecode(self, bucket):
        data = self._store.get(bucket.key)
        if data is not None:
            bucket.bytecode_from_string(data)

    def dump_bytecode(self, bucket):
        self._store[bucket.key] = bucket.bytecode_to_string()


_BYTECODE = _MemoryBytecodeCache()


class FeedbackHTMLExporter(HTMLExporter):
    """nbconvert's HTMLExporter (nbgrader's feedback template) with compiled templates cached."""

    def _create_environment(self):
        env = super()._create_environment()
        env.bytecode_cache = _BYTECODE
        return env
