"""Reading a submitted notebook and putting its nbgrader metadata back before nbgrader sees it.

nbgrader identifies test cells by their ``metadata.nbgrader``.  A student (or their editor) can
strip that metadata, change it, invent grade ids or duplicate cells; nbgrader then ignores the
cell, fails on it, or (for unknown ids) aborts the whole notebook.  :func:`repair` resets the
metadata of every cell it can match to the released notebook (by ``grade_id``, then by cell id,
then by identical source) so that nbgrader's own ``OverwriteCells`` restores the cell's source
and hidden tests, and nbgrader's ``add_missing_cells`` puts deleted test cells back.
"""
from __future__ import annotations

import copy
import json

import nbformat
from nbformat.notebooknode import from_dict

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


def _nbg(cell):
    md = cell.get("metadata", {})
    nbg = md.get("nbgrader")
    return nbg if isinstance(nbg, dict) else None


def _norm(src: str) -> str:
    return "\n".join(line.rstrip() for line in src.strip().splitlines())


def repair(nb, template_nb: dict, add_missing: bool = True):
    """Put nbgrader metadata back on the cells of ``nb`` (in place). Returns a list of problems.

    ``template_nb`` is ``template.json["notebooks"][name]``: the released cells in order.
    """
    problems = []
    rel_cells = template_nb["cells"]
    by_gid = {c["nbgrader"]["grade_id"]: c for c in rel_cells if c["nbgrader"].get("grade_id")}
    by_cellid = {c["id"]: c for c in rel_cells if c.get("id") and c["nbgrader"].get("grade_id")}
    by_source = {}
    for c in rel_cells:
        if c["nbgrader"].get("grade_id") and c["source"].strip():
            by_source.setdefault(_norm(c["source"]), c)

    def label(c):
        nbg = c["nbgrader"]
        if nbg.get("grade") and not nbg.get("solution"):
            return "test cell %s" % nbg["grade_id"]
        if nbg.get("solution"):
            return "answer cell %s" % nbg["grade_id"]
        return "read-only cell %s" % nbg["grade_id"]

    def restore(cell, rel):
        before = _nbg(cell)
        meta = copy.deepcopy(rel["nbgrader"])
        cell.setdefault("metadata", {})["nbgrader"] = from_dict(meta)
        for key in ("editable", "deletable"):
            if key in rel["metadata"]:
                cell["metadata"][key] = rel["metadata"][key]
        if cell.get("cell_type") != rel["cell_type"]:
            problems.append("%s had its type changed to %s; it is graded as %s"
                            % (label(rel), cell.get("cell_type"), rel["cell_type"]))
        return before

    def _check_edited(cell, rel):
        nbg = rel["nbgrader"]
        locked = nbg.get("locked") or (nbg.get("grade") and not nbg.get("solution"))
        if locked and _norm(cell.get("source", "")) != _norm(rel["source"]):
            what = "emptied" if not cell.get("source", "").strip() else "edited"
            problems.append("%s was %s; nbgrader restores it from the source" % (label(rel), what))

    seen = set()
    # 1. cells that carry nbgrader metadata
    for i, cell in enumerate(nb.cells):
        nbg = _nbg(cell)
        if nbg is None:
            if "nbgrader" in cell.get("metadata", {}):
                del cell["metadata"]["nbgrader"]
            continue
        gid = nbg.get("grade_id")
        rel = by_gid.get(gid) if gid else None
        if rel is None:
            if nbg.get("grade") or nbg.get("solution") or nbg.get("locked") or gid:
                problems.append("cell %d carries nbgrader metadata unknown to the assignment (grade_id %r);"
                                " it was removed and the cell is not graded" % (i + 1, gid))
            del cell["metadata"]["nbgrader"]
            continue
        if gid in seen:
            problems.append("%s appears more than once; only its first copy is graded" % label(rel))
            del cell["metadata"]["nbgrader"]
            continue
        seen.add(gid)
        want = rel["nbgrader"]
        changed = [k for k in ("grade", "solution", "locked", "points", "task")
                   if (nbg.get(k) or False) != (want.get(k) or False)]
        restore(cell, rel)
        if changed:
            problems.append("%s had its nbgrader metadata changed (%s); restored"
                            % (label(rel), ", ".join(changed)))
        _check_edited(cell, rel)
    # 2. released cells whose metadata is gone: match by cell id, then by identical source
    for rel in rel_cells:
        gid = rel["nbgrader"].get("grade_id")
        if not gid or gid in seen:
            continue
        match = how = None
        for cell in nb.cells:
            if _nbg(cell) is None and rel.get("id") and cell.get("id") == rel["id"]:
                match, how = cell, "cell id"
                break
        if match is None and rel["source"].strip():
            want = _norm(rel["source"])
            for cell in nb.cells:
                if _nbg(cell) is None and _norm(cell.get("source", "")) == want:
                    match, how = cell, "content"
                    break
        if match is not None:
            restore(match, rel)
            _check_edited(match, rel)
            seen.add(gid)
            if rel["nbgrader"].get("grade") or rel["nbgrader"].get("locked"):
                problems.append("%s had its nbgrader metadata stripped; restored (matched by %s)"
                                % (label(rel), how))
    # 3. cells that are gone: nbgrader's add_missing_cells puts test cells back after the cell
    #    that precedes them in the source; where that cell is gone too, insert it here instead.
    present = {(_nbg(c) or {}).get("grade_id"): i for i, c in enumerate(nb.cells) if _nbg(c)}
    order = template_nb.get("source_order") or [c["nbgrader"]["grade_id"] for c in rel_cells
                                               if c["nbgrader"].get("grade_id")]
    for rel in rel_cells:
        nbg = rel["nbgrader"]
        gid = nbg.get("grade_id")
        if not gid or gid in seen:
            continue
        is_test = nbg.get("grade") and not nbg.get("solution")
        if nbg.get("solution"):
            problems.append("%s is missing from the submission" % label(rel))
            continue
        if not is_test:
            continue
        problems.append("%s was deleted; it was added back and graded" % label(rel))
        pos = order.index(gid) if gid in order else -1
        prev = order[pos - 1] if pos > 0 else None
        prev_ok = pos == 0 or (prev in present and _is_grade_or_solution(nb.cells[present[prev]]))
        if add_missing and prev_ok:
            continue  # nbgrader's OverwriteCells.add_missing_cells handles it
        new = _cell_from_release(rel)
        at = _insert_position(nb, rel_cells, rel)
        nb.cells.insert(at, new)
        seen.add(gid)
        present = {(_nbg(c) or {}).get("grade_id"): i for i, c in enumerate(nb.cells) if _nbg(c)}
    return problems


def _is_grade_or_solution(cell) -> bool:
    nbg = _nbg(cell) or {}
    return bool(nbg.get("grade") or nbg.get("solution"))


def _cell_from_release(rel):
    if rel["cell_type"] == "code":
        cell = nbformat.v4.new_code_cell(source=rel["source"])
    else:
        cell = nbformat.v4.new_markdown_cell(source=rel["source"])
    cell.metadata = from_dict(copy.deepcopy(rel["metadata"]))
    return cell


def _insert_position(nb, rel_cells, rel) -> int:
    """After the nearest released cell before ``rel`` that the submission still has."""
    idx = rel["index"]
    ids = {c.get("id"): i for i, c in enumerate(nb.cells) if c.get("id")}
    gids = {(_nbg(c) or {}).get("grade_id"): i for i, c in enumerate(nb.cells) if _nbg(c)}
    for prev in reversed(rel_cells[:idx]):
        gid = prev["nbgrader"].get("grade_id")
        if gid and gid in gids:
            return gids[gid] + 1
        if prev.get("id") and prev["id"] in ids:
            return ids[prev["id"]] + 1
    return 0 if idx == 0 else len(nb.cells)
