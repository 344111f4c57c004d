"""The grading template: the source assignment, its release and a gradebook built from it.

Built once per run in the parent process with nbgrader's own ``GenerateAssignment`` (in a private
course directory, never the course's own gradebook) and reused by every worker: each submission
gets a copy of the template's ``gradebook.db``, so workers share nothing.
"""
from __future__ import annotations

import ast
import fnmatch
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field

from . import __version__

HIDDEN_BEGIN = "BEGIN HIDDEN TESTS"
HIDDEN_END = "END HIDDEN TESTS"
# libraries whose error messages print the values compared (and so a hidden test's data)
VALUE_LIBRARIES = {"numpy", "scipy", "torch", "pandas", "math", "unittest", "pytest", "numbers",
                   "builtins", "operator", "random", "statistics", "collections", "itertools"}
IGNORE = [".ipynb_checkpoints", "*.pyc", "__pycache__", ".DS_Store", "*~", ".git"]
COURSE_ID = "grading"


class GradingError(Exception):
    """A problem with the course or the command line (not with one submission)."""


def load_course_config(course_dir: str):
    """The course's ``nbgrader_config.py`` as a traitlets Config (empty if there is none)."""
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    path = os.path.join(course_dir, "nbgrader_config.py")
    if not os.path.isfile(path):
        return Config()
    loader = PyFileConfigLoader("nbgrader_config.py", path=course_dir)
    return loader.load_config()


def _ignored(name: str) -> bool:
    return any(fnmatch.fnmatch(name, pat) for pat in IGNORE)


def list_files(root: str) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not _ignored(d))
        for f in sorted(filenames):
            if not _ignored(f):
                out.append(os.path.relpath(os.path.join(dirpath, f), root))
    return out


def hash_tree(root: str) -> str:
    h = hashlib.sha256()
    for rel in list_files(root):
        h.update(rel.encode() + b"\0")
        with open(os.path.join(root, rel), "rb") as f:
            h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()


def source_assignment_dir(course_dir: str, assignment: str, config=None) -> str:
    config = config if config is not None else load_course_config(course_dir)
    srcdir = "source"
    cd = config.get("CourseDirectory", {})
    if "source_directory" in cd:
        srcdir = cd["source_directory"]
    path = os.path.join(course_dir, srcdir, assignment)
    if not os.path.isdir(path):
        base = os.path.join(course_dir, srcdir)
        found = sorted(os.listdir(base)) if os.path.isdir(base) else []
        raise GradingError("no source assignment %r in %s (found: %s)"
                           % (assignment, base, ", ".join(found) or "nothing"))
    if not any(f.endswith(".ipynb") for f in os.listdir(path)):
        raise GradingError("%s holds no notebook" % path)
    return path


def hidden_regions(source: str) -> tuple[list[str], list[str]]:
    """(hidden lines, visible lines) of a test cell's source."""
    hidden, visible = [], []
    inside = False
    for line in source.split("\n"):
        if HIDDEN_BEGIN in line:
            inside = True
            continue
        if HIDDEN_END in line:
            inside = False
            continue
        (hidden if inside else visible).append(line)
    return hidden, visible


def imported_modules(source: str) -> list[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    mods = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            mods.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            mods.append(node.module)
    return mods


@dataclass
class Template:
    """Everything a worker needs to grade one submission of the assignment."""

    assignment: str
    path: str                      # local directory of the built template
    hash: str
    notebooks: list                # notebook names (without .ipynb)
    info: dict = field(default_factory=dict)   # template.json
    blob: bytes | None = None      # tar.gz of the template, for workers on other machines

    def ref(self, with_blob: bool = False) -> dict:
        return {"assignment": self.assignment, "path": self.path, "hash": self.hash,
                "blob": self.blob if with_blob else None}

    def pack(self) -> bytes:
        if self.blob is None:
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w:gz") as tar:
                tar.add(self.path, arcname=".")
            self.blob = buf.getvalue()
        return self.blob


def nbgrader_config(course_config, root: str, assignment: str, student: str = ".", *, db: str | None = None):
    """A traitlets Config for a private nbgrader course directory at ``root``."""
    from traitlets.config import Config

    cfg = Config()
    cfg.merge(course_config)
    cd = cfg.CourseDirectory
    cd.root = root
    cd.source_directory = "source"
    cd.release_directory = "release"
    cd.submitted_directory = "submitted"
    cd.autograded_directory = "autograded"
    cd.feedback_directory = "feedback"
    cd.solution_directory = "solution"
    cd.course_id = COURSE_ID
    cd.assignment_id = assignment
    cd.student_id = student
    cd.notebook_id = "*"
    cd.db_url = "sqlite:///" + (db or os.path.join(root, "gradebook.db"))
    cd.groupshared = False
    # deleted test cells are put back and graded, whatever the course config says
    cfg.OverwriteCells.add_missing_cells = True
    return cfg


def build_template(course_dir: str, assignment: str, workdir: str, options_key: str = "",
                   log=None) -> Template:
    """Build (or reuse) the template for ``assignment`` under ``workdir``."""
    course_config = load_course_config(course_dir)
    src = source_assignment_dir(course_dir, assignment, course_config)
    h = hashlib.sha256()
    h.update(("grading %s|format 2|%s|" % (__version__, options_key)).encode())
    h.update(hash_tree(src).encode())
    cfg_path = os.path.join(course_dir, "nbgrader_config.py")
    if os.path.isfile(cfg_path):
        with open(cfg_path, "rb") as f:
            h.update(f.read())
    digest = h.hexdigest()[:20]
    final = os.path.join(workdir, "template-" + digest)
    if not os.path.isfile(os.path.join(final, "template.json")):
        os.makedirs(workdir, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix="template-build-", dir=workdir)
        try:
            _generate(course_config, src, tmp, assignment, log)
            if os.path.isdir(final):
                shutil.rmtree(final)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        os.chmod(final, 0o700)
    with open(os.path.join(final, "template.json")) as f:
        info = json.load(f)
    return Template(assignment=assignment, path=final, hash=digest, notebooks=info["notebook_order"],
                    info=info)


def ensure_alembic_on_path() -> None:
    """nbgrader runs the ``alembic`` command when it creates a gradebook; find it beside Python."""
    if shutil.which("alembic"):
        return
    for d in (os.path.dirname(sys.executable), os.path.join(sys.prefix, "bin")):
        if os.path.isfile(os.path.join(d, "alembic")):
            os.environ["PATH"] = d + os.pathsep + os.environ.get("PATH", "")
            return


def _generate(course_config, src: str, root: str, assignment: str, log) -> None:
    import logging

    import nbformat
    from nbgrader.api import Gradebook
    from nbgrader.converters import GenerateAssignment
    from nbgrader.coursedir import CourseDirectory

    ensure_alembic_on_path()
    shutil.copytree(src, os.path.join(root, "source", assignment),
                    ignore=shutil.ignore_patterns(*IGNORE))
    cfg = nbgrader_config(course_config, root, assignment)
    cfg.GenerateAssignment.force = True
    coursedir = CourseDirectory(config=cfg)
    logger = logging.getLogger("grading.template")
    logger.setLevel(logging.WARNING)
    gen = GenerateAssignment(coursedir=coursedir, config=cfg, log=logger)
    try:
        gen.start()
    except Exception as exc:
        raise GradingError("nbgrader could not generate the assignment %r from %s: %s"
                           % (assignment, src, exc)) from exc

    release = os.path.join(root, "release", assignment)
    notebooks = sorted(f[:-6] for f in os.listdir(release) if f.endswith(".ipynb"))
    info = {"assignment": assignment, "notebook_order": notebooks, "notebooks": {},
            "helper_modules": [], "eager_imports": [], "hidden_lines": []}
    for rel in list_files(os.path.join(root, "source", assignment)):
        if rel.endswith(".py") and os.sep not in rel:
            info["helper_modules"].append(rel[:-3])
        elif os.sep in rel and rel.split(os.sep)[1] == "__init__.py":
            info["helper_modules"].append(rel.split(os.sep)[0])
    eager = []
    checkers = []
    hidden_all = []
    visible_text = set()
    with Gradebook(cfg.CourseDirectory.db_url, COURSE_ID) as gb:
        for name in notebooks:
            src_nb = nbformat.read(os.path.join(root, "source", assignment, name + ".ipynb"), as_version=4)
            rel_nb = nbformat.read(os.path.join(release, name + ".ipynb"), as_version=4)
            nb_db = gb.find_notebook(name, assignment)
            source_order = [c.name for c in nb_db.source_cells]
            src_by_id = {}
            for c in src_nb.cells:
                gid = c.get("metadata", {}).get("nbgrader", {}).get("grade_id")
                if gid:
                    src_by_id[gid] = c
            cells = []
            for i, c in enumerate(rel_nb.cells):
                md = c.get("metadata", {})
                nbg = dict(md.get("nbgrader", {}))
                for line in c.source.split("\n"):
                    if line.strip():
                        visible_text.add(line.strip())
                entry = {"index": i, "id": c.get("id"), "cell_type": c.cell_type,
                         "source": c.source, "nbgrader": nbg,
                         "metadata": {k: v for k, v in md.items()}}
                gid = nbg.get("grade_id")
                if gid and gid in src_by_id:
                    hidden, _vis = hidden_regions(src_by_id[gid].source)
                    entry["hidden"] = bool(hidden) or HIDDEN_BEGIN in src_by_id[gid].source
                    hidden_all.extend(hidden)
                instructor = (nbg.get("locked") or (nbg.get("grade") and not nbg.get("solution"))) \
                    and not nbg.get("solution")
                if instructor and c.cell_type == "code":
                    src_code = src_by_id[gid].source if gid in src_by_id else c.source
                    mods = imported_modules(src_code)
                    eager.extend(mods)
                    if nbg.get("grade"):
                        checkers.extend(m.split(".")[0] for m in mods)
                cells.append(entry)
            grade_cells = []
            for c in cells:
                nbg = c["nbgrader"]
                if nbg.get("grade"):
                    grade_cells.append({"grade_id": nbg["grade_id"], "points": float(nbg.get("points", 0)),
                                        "cell_type": c["cell_type"], "solution": bool(nbg.get("solution")),
                                        "hidden": bool(c.get("hidden"))})
            info["notebooks"][name] = {"cells": cells, "grade_cells": grade_cells,
                                       "source_order": source_order}
    seen = set()
    info["eager_imports"] = [m for m in eager if not (m in seen or seen.add(m))]
    info["checker_modules"] = sorted(set(checkers) - VALUE_LIBRARIES)
    lines = []
    for line in hidden_all:
        s = line.strip()
        if len(s) >= 12 and s not in visible_text and s not in lines:
            lines.append(s)
    info["hidden_lines"] = lines
    # grade ids of all notebooks, in order; ids shared by two notebooks get the notebook name
    columns = []
    counts = {}
    for name in notebooks:
        for g in info["notebooks"][name]["grade_cells"]:
            counts[g["grade_id"]] = counts.get(g["grade_id"], 0) + 1
    for name in notebooks:
        for g in info["notebooks"][name]["grade_cells"]:
            col = g["grade_id"] if counts[g["grade_id"]] == 1 else "%s:%s" % (name, g["grade_id"])
            columns.append({"notebook": name, "grade_id": g["grade_id"], "column": col,
                            "points": g["points"], "hidden": g["hidden"],
                            "auto": g["cell_type"] == "code" and not g["solution"]})
    info["columns"] = columns
    info["max_score"] = sum(c["points"] for c in columns)
    with open(os.path.join(root, "template.json"), "w") as f:
        json.dump(info, f, indent=1)


def materialize(ref: dict, cache_root: str | None = None) -> str:
    """The local path of a template (unpacked from its blob when this machine lacks it)."""
    path = ref.get("path")
    if path and os.path.isfile(os.path.join(path, "template.json")):
        return path
    if not ref.get("blob"):
        raise GradingError("template %s is not available on this machine" % ref.get("hash"))
    cache_root = cache_root or os.path.join(tempfile.gettempdir(), "grading-templates")
    os.makedirs(cache_root, mode=0o700, exist_ok=True)
    final = os.path.join(cache_root, ref["hash"])
    if os.path.isfile(os.path.join(final, "template.json")):
        return final
    tmp = tempfile.mkdtemp(dir=cache_root)
    with tarfile.open(fileobj=io.BytesIO(ref["blob"]), mode="r:gz") as tar:
        tar.extractall(tmp, filter="data")
    try:
        os.replace(tmp, final)
    except OSError:  # another worker on this machine won the race
        shutil.rmtree(tmp, ignore_errors=True)
    return final
