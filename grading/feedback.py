"""Feedback pages: the graded notebook, without hidden tests, in nbgrader's feedback format.

The page is rendered with nbconvert and nbgrader's own feedback template, from a notebook whose
test cells hold only their released source (hidden tests never reach it) and whose outputs were
written by the grader. Rendered markdown is sanitised (:func:`safe_html`, in the template
``templates/course_feedback``, since nbgrader's own renders markdown as it is) and outputs are plain
text or PNG: a student's notebook cannot put scripts into a page the instructor opens.
"""
from __future__ import annotations

import copy
import os

import nbformat
import bleach


TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")
#: the markup a rendered markdown cell may keep (no scripts, styles, frames, forms or event handlers)
SAFE_TAGS = {"a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "div", "dl", "dt", "em",
             "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p", "pre", "s", "span",
             "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul"}
SAFE_ATTRIBUTES = {"*": ["class", "id", "title"], "a": ["href"], "img": ["src", "alt", "width", "height"],
                   "td": ["align", "colspan", "rowspan"], "th": ["align", "colspan", "rowspan"]}


def safe_html(html: str) -> str:
    """Rendered markdown without anything that runs: other tags are shown as text, other
    attributes (``onerror``...) and links other than http(s), mailto and data images are dropped."""
    return bleach.clean(str(html), tags=SAFE_TAGS, attributes=SAFE_ATTRIBUTES,
                        protocols=["http", "https", "mailto", "data"])


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
            config.HTMLExporter.template_name = "course_feedback"
            config.HTMLExporter.extra_template_basedirs = [os.path.join(base, "templates"), TEMPLATES]
            config.HTMLExporter.filters = {"safe_html": safe_html}
            config.HTMLExporter.extra_template_paths = [   # roots: 'feedback/index.html.j2' and its CSS
                os.path.join(base, "templates"), os.path.join(base, "static", "node_modules", "bootstrap", "dist", "css")]
            self._exporter = HTMLExporter(config=config)
        return self._exporter

    def render(self, notebook: dict, graded, title: str) -> str:
        """HTML feedback for ``notebook`` (already without hidden tests) with ``graded``'s scores."""
        nb = nbformat.from_dict(copy.deepcopy(notebook))
        for cell in nb.cells:
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
