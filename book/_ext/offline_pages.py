"""Sphinx extension: make the rendered course work offline with no console errors.

* Jupyter Book 1 always loads sphinx-thebe, whose inline snippet is emitted twice and fails the
  second time ("Identifier 'THEBE_JS_URL' has already been declared"); it would also fetch thebe
  from a CDN. The course has no live-code button (pages are executed at build time and widgets
  work without a kernel), so its scripts are dropped from every page.
* The ipywidgets HTML manager typesets widget labels with the MathJax 2 call
  ``MathJax.Hub.Queue``; Sphinx serves MathJax 3. A two-line adapter maps the old call onto
  ``MathJax.typesetPromise``.
"""

def _is_thebe(script) -> bool:
    filename = getattr(script, "filename", None) or str(script)
    body = (getattr(script, "attributes", None) or {}).get("body", "")
    return "sphinx-thebe" in filename or "THEBE_JS_URL" in body


MATHJAX2_ADAPTER = """
window.addEventListener("DOMContentLoaded", function () {
  var mj = window.MathJax;
  if (mj && !mj.Hub) {
    mj.Hub = {Queue: function (job) {
      var el = job && job[2];
      if (mj.typesetPromise) { mj.typesetPromise(el ? [el] : undefined).catch(function () {}); }
    }};
  }
});
"""


def _drop_thebe(app, pagename, templatename, context, doctree):
    if "script_files" in context:
        context["script_files"] = [s for s in context["script_files"] if not _is_thebe(s)]


def setup(app):
    app.add_js_file(None, body=MATHJAX2_ADAPTER)
    app.connect("html-page-context", _drop_thebe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
