"""Sphinx extension: the graded exercises, downloadable from the built site itself.

The student release ``exercises/<name>/`` (generated from ``solutions/``; never edited by hand) is
copied into the site as ``exercises/<name>/``, byte for byte, every time the book is built. Pages
link it with

* the directive, at the end of a chapter::

      :::{exercise} 03_bptt
      What the exercise asks, in a sentence or two.
      :::

  a box titled with the exercise's number and title (read from the notebook's first heading),
  the description, a download link for every file of the folder, and a pointer to the set-up
  instructions;

* the role ``{exercise}`03_bptt``` : an inline download link to the notebook.

A name whose folder or notebook is missing stops the build with a message that says what was
expected and what is there.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from docutils import nodes
from sphinx import addnodes
from sphinx.util.docutils import SphinxDirective, SphinxRole
from sphinx.util.osutil import relative_uri

SITE_FOLDER = "exercises"  # where the release lands in the built site


class exercise_file(nodes.Inline, nodes.TextElement):
    """A download link to one file of the release; the URL is made relative when writing."""


def _visit_html(self, node):
    here = self.builder.get_target_uri(self.builder.current_docname)
    href = relative_uri(here, f"{SITE_FOLDER}/{node['path']}")
    name = node["path"].rsplit("/", 1)[-1]
    self.body.append(f'<a class="reference download exercise-download" href="{href}" '
                     f'download="{name}"><code class="xref download docutils literal">')


def _depart_html(self, node):
    self.body.append("</code></a>")


def _visit_plain(self, node):
    pass


def _depart_plain(self, node):
    pass


def release_dir(env) -> Path:
    return Path(env.srcdir) / env.config.exercises_release_dir


def release_files(env, name: str, where: str) -> list[Path]:
    """The files of exercises/<name>/, notebook first; an error message if it is not there."""
    folder = release_dir(env) / name
    notebook = folder / f"{name}.ipynb"
    if not notebook.is_file():
        present = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        available = sorted(p.name for p in release_dir(env).iterdir() if p.is_dir())
        raise ValueError(
            f"{where}: expected the released notebook {notebook.relative_to(env.srcdir)}, "
            f"found {present or 'no such folder'} (released exercises: {', '.join(available)})")
    others = sorted(p for p in folder.rglob("*")
                    if p.is_file() and p != notebook and ".ipynb_checkpoints" not in p.parts)
    return [notebook, *others]


def notebook_title(path: Path) -> str:
    """'Backpropagation through time' from the first heading '# Exercise 3 — Backpropagation ...'."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    for cell in cells:
        for line in "".join(cell["source"]).splitlines():
            if line.startswith("# "):
                title = line[2:].strip()
                for dash in (" — ", " - ", ": "):
                    if title.startswith("Exercise") and dash in title:
                        return title.split(dash, 1)[1].strip()
                return title
    return path.stem


def _size(path: Path) -> str:
    kb = path.stat().st_size / 1000
    return f"{kb:.0f} kB" if kb >= 10 else f"{kb:.1f} kB"


def _file_node(env, path: Path) -> exercise_file:
    relative = path.relative_to(release_dir(env)).as_posix()
    return exercise_file(relative, relative.rsplit("/", 1)[-1], path=relative)


class ExerciseDirective(SphinxDirective):
    """The graded-exercise box at the end of a chapter."""

    required_arguments = 1
    has_content = True

    def run(self):
        name = self.arguments[0]
        try:
            files = release_files(self.env, name, f"{self.env.docname}: exercise {name!r}")
        except ValueError as error:
            raise self.error(str(error)) from None
        for path in files:
            self.env.note_dependency(str(path))
        number = name.split("_", 1)[0].lstrip("0")
        box = nodes.admonition(classes=["exercise", "tip"])
        box += nodes.title("", f"Graded exercise {number}: {notebook_title(files[0])}")
        self.state.nested_parse(self.content, self.content_offset, box)
        links = nodes.paragraph()
        links += nodes.strong("", "Download: ")
        for i, path in enumerate(files):
            if i:
                links += nodes.Text(", ")
            links += _file_node(self.env, path)
            links += nodes.Text(f" ({_size(path)})")
        links += nodes.Text(". How to install the course package, open the notebook, run its tests "
                            "and hand it in: ")
        ref = addnodes.pending_xref("", refdomain="std", reftype="doc",
                                    reftarget=f"/{self.config.exercises_setup_page}",
                                    refexplicit=True, refwarn=True)
        ref += nodes.inline("", "Start here")
        links += ref
        links += nodes.Text(".")
        box += links
        return [box]


class ExerciseRole(SphinxRole):
    """An inline download link to an exercise notebook: {exercise}`03_bptt`."""

    def run(self):
        name = self.text.strip()
        try:
            files = release_files(self.env, name, f"{self.env.docname}: exercise {name!r}")
        except ValueError as error:
            message = self.inliner.reporter.error(str(error), line=self.lineno)
            return [self.inliner.problematic(self.rawtext, self.rawtext, message)], [message]
        self.env.note_dependency(str(files[0]))
        return [_file_node(self.env, files[0])], []


def copy_release(app, exception):
    """Copy exercises/ into the site after every successful HTML build."""
    if exception or app.builder.format != "html":
        return
    source = Path(app.srcdir) / app.config.exercises_release_dir
    target = Path(app.outdir) / SITE_FOLDER
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))


def setup(app):
    app.add_config_value("exercises_release_dir", "exercises", "env")
    app.add_config_value("exercises_setup_page", "book/start_here", "env")
    app.add_node(exercise_file, html=(_visit_html, _depart_html),
                 latex=(_visit_plain, _depart_plain), text=(_visit_plain, _depart_plain))
    app.add_directive("exercise", ExerciseDirective)
    app.add_role("exercise", ExerciseRole())
    app.connect("build-finished", copy_release)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
