"""The instructor's course folder: where an assignment's source is, and what changes grades."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path


class GradingError(Exception):
    """A problem with the course or the command line (not with one submission)."""


def load_course_config(course_dir: Path):
    """The course's ``nbgrader_config.py`` as a traitlets Config (empty if there is none)."""
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    if not (Path(course_dir) / "nbgrader_config.py").is_file():
        return Config()
    return PyFileConfigLoader("nbgrader_config.py", path=str(course_dir)).load_config()


def source_assignment_dir(course_dir: Path, assignment: str) -> Path:
    """``<course>/<source_directory>/<assignment>``, the nbgrader source of the assignment."""
    config = load_course_config(course_dir)
    source = config.get("CourseDirectory", {}).get("source_directory", "source")
    path = Path(course_dir, source, assignment)
    if not path.is_dir():
        base = path.parent
        found = sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
        raise GradingError(f"no source assignment {assignment!r} in {base} (found: {', '.join(found) or 'nothing'})")
    if not any(path.glob("*.ipynb")):
        raise GradingError(f"{path} holds no notebook")
    return path


def hash_tree(*roots: Path) -> str:
    """A digest of the files under ``roots`` (names and contents; caches and checkpoints skipped)."""
    h = hashlib.sha256()
    for root in roots:
        for path in sorted(Path(root).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and ".ipynb_checkpoints" not in path.parts:
                h.update(os.fsencode(path.relative_to(root)) + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()
