"""Feedback pages: the graded notebook, without hidden tests, in nbgrader's feedback format.

The page is rendered with nbconvert and nbgrader's own feedback template, from a notebook whose
test cells hold only their released source (hidden tests never reach it) and whose outputs were
written by the grader. Markdown is sanitised (nbconvert's ``clean_html``, with bleach) and outputs
are plain text or PNG: a student's notebook cannot put scripts into a page the instructor opens.
"""
from __future__ import annotations

import copy
import os

import nbformat
from nbconvert.filters.strings import clean_html


class FeedbackRenderer:
    """Renders feedback HTML; the nbconvert exporter is made on first use in each process."""

    def __init__(self):
        self._exporter = None

    def __getstate__(self):
        return {}

    def __setstate__(self, state):
        self._exporter = None

    def exporter(self):
        if self._exporter is None:
            import nbgrader
            from nbconvert import HTMLExporter
            from traitlets.config import Config

            base = os.path.join(os.path.dirname(nbgrader.__file__), "server_extensions", "formgrader")
            config = Config()
            config.HTMLExporter.template_name = "feedback"
            config.HTMLExporter.extra_template_basedirs = [os.path.join(base, "templates")]
            config.HTMLExporter.extra_template_paths = [
                os.path.join(base, "static", "node_modules", "bootstrap", "dist", "css")]
            self._exporter = HTMLExporter(config=config)
        return self._exporter

    def render(self, notebook: dict, graded, title: str) -> str:
        """HTML feedback for ``notebook`` (already without hidden tests) with ``graded``'s scores."""
        nb = nbformat.from_dict(copy.deepcopy(notebook))
        for cell in nb.cells:
            if cell.cell_type == "markdown":   # nbgrader's template does not sanitise markdown itself
                cell.source = clean_html(cell.source)
            meta = cell.get("metadata", {}).get("nbgrader")
            if not meta:
                continue
            outcome = graded.tests.get(meta.get("grade_id"))
            if outcome is not None:
                meta["score"], meta["points"] = outcome.points, outcome.max_points
            elif meta.get("grade"):  # a cell that claims a grade this assignment does not have
                cell["metadata"].pop("nbgrader")
        notes = [message for _, message in graded.events] + list(graded.problems)
        if notes:
            items = "\n".join(f"* {_markdown_text(n)}" for n in notes)
            nb.cells.insert(0, nbformat.v4.new_markdown_cell(f"**Notes from the grader**\n\n{items}"))
        resources = {"nbgrader": {"notebook": title, "score": graded.score, "max_score": graded.max_score,
                                  "late_penalty": 0}}
        html, _ = self.exporter().from_notebook_node(nb, resources=resources)
        return html


def _markdown_text(text: str) -> str:
    """Plain text that markdown shows as it is."""
    special = "\\`*_{}[]<>()#+-.!|"
    return "".join("\\" + ch if ch in special else ch for ch in text)
