"""Finding the submissions in a folder or a .zip.

Two layouts are recognised:

* nbgrader's: ``[submitted/]<student>/<assignment>/<notebook>.ipynb`` (plus any other files the
  student handed in and an optional ``timestamp.txt``);
* flat, the way learning platforms export: one notebook per student anywhere below the folder.
  The student id is taken from the file name with ``--student-pattern`` (default: everything
  before the first ``_``, so ``alice_fixture.ipynb``, ``alice_12345_fixture.ipynb`` and
  ``alice.ipynb`` all belong to ``alice``).  A file named exactly like the assignment's notebook
  (``fixture.ipynb``) takes the id from its folder instead (``alice/fixture.ipynb``).  With
  several notebooks in the assignment, the notebook is the one whose name ends the file name.

A student id keeps letters and digits of any script and ``._@+-``; when anything else had to be
replaced, a short hash of the original name is appended, so that two names never share an id
(``hal?`` and ``hal!`` become ``hal_-6b1f0c`` and ``hal_-02dd84``) and the same name always gets the
same id.  When a student has several files for the same notebook, the newest (modification time,
then name) is graded and the others are reported.  A symbolic link anywhere in a submission is
not followed: that student's row says ``refused``.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass, field

DEFAULT_PATTERN = r"^(?P<student>[^_]+)"
SKIP = {"__MACOSX", ".ipynb_checkpoints", "__pycache__", ".git"}
MAX_ZIP_BYTES = 4 * 2**30
MAX_ZIP_FILES = 200_000
MAX_NOTEBOOK_BYTES = 100 * 2**20   # a notebook larger than this is not graded (outputs are cleared anyway)
MAX_EXTRA_FILES = 200              # other handed-in files given to the notebook's sandbox
MAX_EXTRA_BYTES = 64 * 2**20


class TooLarge(ValueError):
    pass


@dataclass
class Submission:
    student: str
    notebooks: dict = field(default_factory=dict)   # notebook name -> path
    extra: dict = field(default_factory=dict)       # relative path -> path
    timestamp: str | None = None
    problems: list = field(default_factory=list)
    files_desc: list = field(default_factory=list)
    refused: str | None = None                      # why it is not graded at all (a symbolic link)

    def read(self) -> dict:
        nbs = {}
        for name, path in sorted(self.notebooks.items()):
            size = os.path.getsize(path)
            if size > MAX_NOTEBOOK_BYTES:
                raise TooLarge("%s.ipynb is too large to grade (%d MB)" % (name, size // 2**20))
            with open(path, "rb") as f:
                nbs[name] = f.read()
        extra, total = {}, 0
        for rel, path in sorted(self.extra.items()):
            total += os.path.getsize(path)
            if len(extra) >= MAX_EXTRA_FILES or total > MAX_EXTRA_BYTES:
                self.problems.append("more than %d other files or %d MB were handed in; only the first %d "
                                     "are given to the notebook" % (MAX_EXTRA_FILES, MAX_EXTRA_BYTES // 2**20,
                                                                     len(extra)))
                break
            with open(path, "rb") as f:
                extra[rel] = f.read()
        return {"notebooks": nbs, "extra_files": extra}

    def stamp(self) -> str:
        """Names, sizes and times of the notebooks: a key for files too large to read."""
        return hashlib.sha256("|".join("%s:%d:%d" % (p, os.path.getsize(p), os.path.getmtime(p))
                                       for p in sorted(self.notebooks.values())).encode()).hexdigest()

    @staticmethod
    def content_hash(data: dict, timestamp: str | None) -> str:
        h = hashlib.sha256()
        for name, blob in sorted(data["notebooks"].items()):
            h.update(b"nb\0" + name.encode() + b"\0" + hashlib.sha256(blob).digest())
        for rel, blob in sorted(data["extra_files"].items()):
            h.update(b"file\0" + rel.encode() + b"\0" + hashlib.sha256(blob).digest())
        h.update(b"ts\0" + (timestamp or "").encode())
        return h.hexdigest()


def clean_id(text: str) -> str:
    """A file-name-safe, unique and stable id for the student called ``text``."""
    original = unicodedata.normalize("NFC", text)
    cleaned = re.sub(r"[^\w.@+-]", "_", original).strip("._")[:80]
    if cleaned != original or not cleaned:
        digest = hashlib.sha256(original.encode("utf-8", "surrogateescape")).hexdigest()[:6]
        cleaned = f"{cleaned or 'student'}-{digest}"
    return cleaned


def _skip(name: str) -> bool:
    return name in SKIP or name.startswith(".")


def extract_zip(path: str, dest: str) -> None:
    """Unpack a zip safely: no absolute paths or '..', bounded size, modification times kept."""
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        if len(infos) > MAX_ZIP_FILES:
            raise ValueError("%s holds too many files (%d)" % (path, len(infos)))
        if sum(i.file_size for i in infos) > MAX_ZIP_BYTES:
            raise ValueError("%s unpacks to more than %d bytes" % (path, MAX_ZIP_BYTES))
        for info in infos:
            name = info.filename.replace("\\", "/")
            parts = [p for p in name.split("/") if p not in ("", ".")]
            if not parts or ".." in parts or info.is_dir():
                continue
            target = os.path.join(dest, *parts)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
            try:
                import time

                ts = time.mktime(info.date_time + (0, 0, -1))
                os.utime(target, (ts, ts))
            except (OverflowError, ValueError):
                pass


class Discovered:
    def __init__(self, submissions, notes, layout, tmpdir=None):
        self.submissions = submissions
        self.notes = notes
        self.layout = layout
        self._tmpdir = tmpdir

    def cleanup(self):
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None


def discover(path: str, assignment: str, notebook_names: list[str],
             student_pattern: str = DEFAULT_PATTERN) -> Discovered:
    tmpdir = None
    if os.path.isfile(path):
        if not zipfile.is_zipfile(path):
            raise ValueError("%s is neither a folder nor a .zip file" % path)
        tmpdir = tempfile.mkdtemp(prefix="grading-unzip-")
        extract_zip(path, tmpdir)
        root = tmpdir
    elif os.path.isdir(path):
        root = path
    else:
        raise ValueError("no such folder or file: %s" % path)
    try:
        root = _find_root(root, assignment)
        if _is_nbgrader_layout(root, assignment):
            subs, notes = _nbgrader_layout(root, assignment, notebook_names)
            layout = "nbgrader"
        else:
            subs, notes = _flat_layout(root, notebook_names, student_pattern)
            layout = "flat"
    except BaseException:
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)
        raise
    return Discovered(sorted(subs, key=lambda s: s.student), notes, layout, tmpdir)


def _find_root(root: str, assignment: str) -> str:
    for _ in range(3):
        if os.path.isdir(os.path.join(root, "submitted")):
            return os.path.join(root, "submitted")
        if _is_nbgrader_layout(root, assignment):
            return root
        entries = [e for e in os.listdir(root) if not _skip(e)]
        dirs = [e for e in entries if os.path.isdir(os.path.join(root, e))]
        if len(entries) == 1 and len(dirs) == 1:  # a zip that wraps everything in one folder
            root = os.path.join(root, dirs[0])
            continue
        break
    return root


def _is_nbgrader_layout(root: str, assignment: str) -> bool:
    try:
        entries = os.listdir(root)
    except OSError:
        return False
    return any(os.path.isdir(os.path.join(root, e, assignment)) for e in entries if not _skip(e))


def _nbgrader_layout(root, assignment, notebook_names):
    subs, notes = [], []
    for entry in sorted(os.listdir(root)):
        adir = os.path.join(root, entry, assignment)
        if _skip(entry) or not os.path.isdir(adir):
            if not _skip(entry):
                notes.append("ignored %s (no %s/ folder inside)" % (entry, assignment))
            continue
        sub = Submission(student=clean_id(entry))
        if sub.student != entry:
            sub.problems.append("student folder %r is graded as %r" % (entry, sub.student))
        links = [p for p in (os.path.join(root, entry), adir) if os.path.islink(p)]
        for dirpath, dirnames, filenames in os.walk(adir) if not links else ():
            links += [os.path.join(dirpath, d) for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
            dirnames[:] = sorted(d for d in dirnames if not _skip(d) and not os.path.islink(os.path.join(dirpath, d)))
            for fn in sorted(filenames):
                full = os.path.join(dirpath, fn)
                rel = os.path.relpath(full, adir)
                if os.path.islink(full):
                    links.append(full)
                    continue
                if _skip(fn):
                    continue
                if rel == "timestamp.txt":
                    with open(full, encoding="utf-8", errors="replace") as f:
                        sub.timestamp = f.read().strip()[:100] or None
                    continue
                if dirpath == adir and fn.endswith(".ipynb"):
                    name = fn[:-6]
                    if name in notebook_names:
                        sub.notebooks[name] = full
                    else:
                        sub.problems.append("unexpected notebook %s ignored (the assignment has %s)"
                                            % (fn, ", ".join(n + ".ipynb" for n in notebook_names)))
                    sub.files_desc.append(os.path.relpath(full, root))
                    continue
                sub.extra[rel] = full
        if links:
            sub.refused = _refusal(links[0], root)
        subs.append(sub)
    return subs, notes


def _refusal(link: str, root: str) -> str:
    return ("the submission contains a symbolic link (%s); links are not followed, so it was not graded"
            % os.path.relpath(link, root))


def _flat_layout(root, notebook_names, student_pattern):
    rx = re.compile(student_pattern)
    found = {}   # (student, notebook) -> list of paths
    notes, links = [], {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            if os.path.islink(os.path.join(dirpath, d)):
                notes.append("ignored %s (a symbolic link to a folder)" % os.path.relpath(os.path.join(dirpath, d), root))
        dirnames[:] = sorted(d for d in dirnames if not _skip(d) and not os.path.islink(os.path.join(dirpath, d)))
        for fn in sorted(filenames):
            if _skip(fn):
                continue
            full = os.path.join(dirpath, fn)
            rel = os.path.relpath(full, root)
            if not fn.lower().endswith(".ipynb"):
                notes.append("ignored %s (not a .ipynb file)" % rel)
                continue
            stem = fn[: -len(".ipynb")]
            if stem in notebook_names and dirpath != root:
                raw = os.path.basename(dirpath)
                notebook = stem
            else:
                raw = stem
                notebook = None
                if len(notebook_names) == 1:
                    notebook = notebook_names[0]
                else:
                    for name in sorted(notebook_names, key=len, reverse=True):
                        if stem.endswith(name):
                            notebook = name
                            break
                if notebook is None:
                    notes.append("ignored %s (cannot tell which of %s it is)"
                                 % (rel, ", ".join(notebook_names)))
                    continue
            m = rx.search(raw)
            student = m.group("student") if m and m.groupdict().get("student") else (m.group(0) if m else raw)
            student = clean_id(student)
            if os.path.islink(full):
                links.setdefault(student, full)
                continue
            found.setdefault((student, notebook), []).append(full)
    subs = {student: Submission(student=student, refused=_refusal(link, root)) for student, link in links.items()}
    for (student, notebook), paths in sorted(found.items()):
        sub = subs.setdefault(student, Submission(student=student))
        paths.sort(key=lambda p: (os.path.getmtime(p), p))
        chosen = paths[-1]
        sub.notebooks[notebook] = chosen
        sub.files_desc.append(os.path.relpath(chosen, root))
        if len(paths) > 1:
            sub.problems.append("several files for %s.ipynb: graded %s, ignored %s"
                                % (notebook, os.path.relpath(chosen, root),
                                   ", ".join(os.path.relpath(p, root) for p in paths[:-1])))
    return list(subs.values()), notes
