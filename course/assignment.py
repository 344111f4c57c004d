"""An assignment as the grader knows it, read from its nbgrader source notebook.

Test cells hold only ``check(...)`` calls with literal arguments (and the import of ``check``),
some of them between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS``. When grading, the
grader runs those checks itself: a test cell's code never runs in the student's process, and the
hidden lines never reach it.
"""
from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from pathlib import Path

from .checker import spec_function
from .sandbox import Policy

BEGIN_HIDDEN, END_HIDDEN = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"
BEGIN_SOLUTION, END_SOLUTION = "BEGIN SOLUTION", "END SOLUTION"


class AssignmentError(ValueError):
    """The source notebook does not follow the course's rules (an authoring error)."""


@dataclass(frozen=True)
class CheckCall:
    """One ``check("module.spec", **params)`` line of a test cell."""

    spec: str
    params: dict
    hidden: bool
    line: int


@dataclass
class TestCell:
    grade_id: str
    points: float
    source: str               # with the hidden tests
    released: str             # as students see it
    checks: list[CheckCall]
    cell_id: str | None = None


@dataclass
class Assignment:
    """``tests`` by grade id, in notebook order; ``anchors[g]``: the grade id of the answer cell
    right before test ``g`` in the source (where a deleted test cell is put back)."""

    name: str
    notebook: str
    source: dict
    tests: dict[str, TestCell]
    anchors: dict[str, str | None]
    policy: Policy
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def max_score(self) -> float:
        return sum(t.points for t in self.tests.values())

    @classmethod
    def load(cls, folder: Path) -> "Assignment":
        """Read ``folder/<name>.ipynb`` (the nbgrader source) and the files beside it."""
        folder = Path(folder)
        notebooks = sorted(folder.glob("*.ipynb"))
        if len(notebooks) != 1:
            raise AssignmentError(f"{folder} should hold exactly one notebook, found {len(notebooks)}")
        source = json.loads(notebooks[0].read_text(encoding="utf-8"))
        tests, anchors, last_answer = {}, {}, None
        for cell in source["cells"]:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if meta.get("grade") and not meta.get("solution") and cell["cell_type"] == "code":
                test = parse_test_cell(meta["grade_id"], float(meta.get("points", 0)), _text(cell["source"]),
                                       cell.get("id"))
                tests[test.grade_id] = test
                anchors[test.grade_id] = last_answer
            elif meta.get("grade_id"):
                last_answer = meta["grade_id"]
        if not tests:
            raise AssignmentError(f"{notebooks[0]} has no test cells")
        files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
                 if p.is_file() and p.suffix != ".ipynb" and "__pycache__" not in p.parts
                 and ".ipynb_checkpoints" not in p.parts}
        return cls(folder.name, notebooks[0].stem, source, tests, anchors, policy_of(tests.values()), files)


def _text(source) -> str:
    return "".join(source) if isinstance(source, list) else source


def released_source(source: str) -> str:
    """The test cell as students get it: the hidden region removed (like nbgrader's ClearHiddenTests)."""
    out, hidden = [], False
    for line in source.split("\n"):
        if BEGIN_HIDDEN in line:
            hidden = True
        elif END_HIDDEN in line:
            hidden = False
        elif not hidden:
            out.append(line)
    return "\n".join(out)


def parse_test_cell(grade_id: str, points: float, source: str, cell_id: str | None = None) -> TestCell:
    """The check calls of a test cell; anything else in it is an authoring error."""
    checks = []
    lines = source.split("\n")
    region: list[tuple[int, str]] = []

    def flush():
        code = "\n".join(text for _, text in region)
        first = region[0][0] if region else 0
        checks.extend(_parse_checks(grade_id, code, hidden_region, first))
        region.clear()

    hidden_region = False
    for number, line in enumerate(lines, 1):
        if BEGIN_HIDDEN in line or END_HIDDEN in line:
            flush()
            hidden_region = BEGIN_HIDDEN in line
            continue
        region.append((number, line))
    flush()
    if not checks:
        raise AssignmentError(f"test cell {grade_id} calls no check")
    return TestCell(grade_id, points, source, released_source(source), checks, cell_id)


def _parse_checks(grade_id: str, code: str, hidden: bool, first_line: int) -> list[CheckCall]:
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        raise AssignmentError(f"test cell {grade_id}: {exc}") from None
    found = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        call = node.value if isinstance(node, ast.Expr) else None
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "check"
                and len(call.args) == 1 and isinstance(call.args[0], ast.Constant)):
            raise AssignmentError(f"test cell {grade_id}, line {first_line + node.lineno - 1}: only "
                                  f"check('module.spec', name=literal, ...) calls are allowed")
        try:
            params = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
        except ValueError:
            raise AssignmentError(f"test cell {grade_id}: check arguments must be literals") from None
        spec = call.args[0].value
        spec_function(spec)
        found.append(CheckCall(spec, params, hidden, first_line + node.lineno - 1))
    return found


def policy_of(tests) -> Policy:
    """What the student's code may import: the union of the policies of the spec modules used."""
    import importlib

    policy = Policy(packages=())
    for module in dict.fromkeys(c.spec.split(".")[0] for t in tests for c in t.checks):
        policy = policy.union(importlib.import_module(f"course.checks.{module}").POLICY)
    return policy
