"""The checks of exercise 9 (deep RNNs)."""
from __future__ import annotations

import json

from course_helpers import ROOT

CELL_BREAK = "\n# ---- next cell ----\n"


def solution_source(assignment="09_deep_rnn", answers_only=False):
    """The code cells of a solution notebook without its test cells, joined by ``CELL_BREAK``.
    ``answers_only``: only the cells before the first answer cell (imports, helpers) and the answer
    cells themselves, not the demonstrations after them. (test_checks_seq2seq and
    test_checks_capstone use it too.)"""
    nb = json.loads((ROOT / "solutions" / assignment / f"{assignment}.ipynb").read_text())
    cells, answered = [], False
    for cell in nb["cells"]:
        meta = (cell.get("metadata") or {}).get("nbgrader") or {}
        text = "".join(cell["source"])
        if cell["cell_type"] != "code" or (meta.get("grade") and not meta.get("solution")):
            continue
        if "rnnkit.checks" in text or "from course import check" in text:
            continue
        answered = answered or bool(meta.get("solution"))
        if answers_only and answered and not meta.get("solution"):
            continue
        cells.append(text)
    return CELL_BREAK.join(cells)
