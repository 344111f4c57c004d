"""Sphinx extension: pages that read well on a phone, figures with captions, clean search results.

* ``course.css``: wide equations, tables, widget frames and outputs scroll inside their own box,
  so that no page scrolls sideways at phone width; figures and captions are laid out for reading.
* ``search-snippets.js``: the search page builds its result snippets from the text of each page,
  where equations are still TeX source (MathJax typesets them only when the page is shown). The
  snippets get a plain-text version of each inline formula instead, and display equations are left
  out.
"""
from pathlib import Path

STATIC = Path(__file__).parent / "static"


def _add_static_path(app, config):
    config.html_static_path = [*config.html_static_path, str(STATIC)]


def setup(app):
    app.connect("config-inited", _add_static_path)
    app.add_css_file("course.css")
    app.add_js_file("search-snippets.js", loading_method="defer")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
