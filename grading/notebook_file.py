"""Reading a submitted notebook file: bytes in, a valid nbformat 4 notebook out, or the reason why
not in words an instructor can pass on (an image, a renamed .py file, broken JSON...).

Which cells are tests and which are the student's is decided later, against the assignment's own
test cells (:func:`course.grader.plan`), not from the metadata the student handed in.
"""
from __future__ import annotations

import json

import nbformat

MAGIC = [
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (perhaps a .docx or .zip)"),
    (b"\x7fELF", "an executable"),
    (b"\x1f\x8b", "a gzip archive"),
]


class SubmissionError(Exception):
    """The submission cannot be graded at all (the message is the reason shown to people)."""


def load_notebook(data: bytes, name: str = "notebook"):
    """Parse submitted bytes into a v4 notebook, or raise :class:`SubmissionError`."""
    for magic, what in MAGIC:
        if data.startswith(magic):
            raise SubmissionError("not a notebook: %s is %s" % (name, what))
    if not data.strip():
        raise SubmissionError("not a notebook: %s is empty" % name)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SubmissionError("not a notebook: %s is binary data, not text" % name) from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        head = text.lstrip()[:200]
        hint = ""
        if any(k in head for k in ("import ", "def ", "print(", "# ")) and not head.startswith("{"):
            hint = " (it looks like Python source: a .py file renamed?)"
        raise SubmissionError("not valid JSON: %s line %d column %d: %s%s"
                              % (name, exc.lineno, exc.colno, exc.msg, hint)) from None
    if not isinstance(raw, dict) or "cells" not in raw and "worksheets" not in raw:
        raise SubmissionError("not a notebook: %s is JSON without notebook cells" % name)
    try:
        nb = nbformat.reads(text, as_version=4, capture_validation_error={})
    except Exception as exc:  # nbformat too old/new, broken structure
        raise SubmissionError("not a readable notebook: %s: %s" % (name, str(exc)[:300])) from None
    problems = []
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError:
        nb, fixed = _normalise(nb)
        try:
            nbformat.validate(nb)
        except nbformat.ValidationError as exc:
            raise SubmissionError("invalid notebook: %s: %s" % (name, str(exc).splitlines()[0][:300])) from None
        problems.append("the notebook structure was invalid and was repaired (%s)" % fixed)
    return nb, problems


def _normalise(nb):
    """Best-effort repair of a structurally invalid notebook."""
    fixed = []
    cells = []
    for cell in nb.get("cells", []):
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            fixed.append("dropped a malformed cell")
            continue
        src = cell.get("source", "")
        if isinstance(src, list):
            src = "".join(src)
        md = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
        if cell["cell_type"] == "code":
            new = nbformat.v4.new_code_cell(source=src, metadata=md)
        elif cell["cell_type"] == "markdown":
            new = nbformat.v4.new_markdown_cell(source=src, metadata=md)
        else:
            new = nbformat.v4.new_raw_cell(source=src, metadata=md)
        if isinstance(cell.get("id"), str):
            new["id"] = cell["id"]
        cells.append(new)
    out = nbformat.v4.new_notebook(cells=cells, metadata=nb.get("metadata", {}) if isinstance(nb.get("metadata"), dict) else {})
    fixed.append("rebuilt the cells")
    try:
        nbformat.validator.normalize(out)
    except Exception:
        pass
    return out, ", ".join(sorted(set(fixed)))
