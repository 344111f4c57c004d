"""Write nbgrader source notebooks from Python, with the cell metadata nbgrader needs.

    from tools.nbauthor import markdown, solution, tests, write
    write("solutions/x/x.ipynb", [
        markdown("# Title"),
        solution("pad", '''def pad(...):\n    ### BEGIN SOLUTION\n    ...\n    ### END SOLUTION'''),
        tests("pad_tests", 2, 'check("sequence_data.pad_batch", seed=0)',
              hidden='check("sequence_data.pad_batch", batch=9)'),
    ])

The notebook in solutions/ is the source of truth; these helpers only save typing and keep the
metadata (schema 3, grade ids, points, locks) consistent.
"""
from __future__ import annotations

import nbformat

SCHEMA = 3


def _cell(kind: str, source: str, grade_id: str | None = None, **nbgrader):
    cell = nbformat.v4.new_markdown_cell(source) if kind == "markdown" else nbformat.v4.new_code_cell(source)
    if grade_id:
        meta = {"schema_version": SCHEMA, "grade_id": grade_id, "grade": False, "solution": False,
                "locked": False}
        meta.update(nbgrader)
        cell.metadata["nbgrader"] = meta
    return cell


def markdown(text: str):
    return _cell("markdown", text.strip())


def code(source: str):
    """An ordinary code cell (setup, demos); not graded."""
    return _cell("code", source.strip())


def readonly(grade_id: str, source: str, kind: str = "code"):
    """A locked cell the student cannot change (e.g. imports the tests rely on)."""
    return _cell(kind, source.strip(), grade_id, locked=True)


def solution(grade_id: str, source: str):
    """An answer cell: the code between ### BEGIN/END SOLUTION is removed in the release."""
    return _cell("code", source.strip(), grade_id, solution=True)


def tests(grade_id: str, points: int, visible: str, hidden: str | None = None):
    """A locked, autograded test cell; ``hidden`` lines are absent from the student release."""
    source = "from course import check\n\n" + visible.strip()
    if hidden:
        source += "\n\n### BEGIN HIDDEN TESTS\n" + hidden.strip() + "\n### END HIDDEN TESTS"
    return _cell("code", source, grade_id, grade=True, locked=True, points=points)


def write(path: str, cells: list) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    nbformat.validate(nb)
    nbformat.write(nb, path)
