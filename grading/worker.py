"""Grading one submission, in a worker process (local pool or Dask worker).

:func:`grade_submission` takes plain data (the notebook bytes, a template reference, options)
and returns plain data (scores, status, problems, feedback HTML), so it runs the same way in a
``ProcessPoolExecutor`` and on a Dask worker.  Each call uses its own temporary nbgrader course
directory with a copy of the template's gradebook: nothing is shared between submissions and no
gradebook is ever written by two processes.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import tempfile
import threading
import time
import traceback

from . import course as coursemod
from .repair import SubmissionError, load_notebook, repair

# nbgrader/nbconvert messages that say nothing about the submission
NOISE = ("Attribute 'checksum'", "Alternative text is missing")
_LOCK = threading.Lock()  # one submission at a time per process (Dask may use threads)
_COURSE_CONFIG_CACHE: dict = {}


class _ListHandler(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.records = []

    def emit(self, record):
        try:
            self.records.append((record.levelname, record.getMessage()))
        except Exception:
            pass


def grade_submission(job: dict, template_ref: dict | None = None) -> dict:
    """Grade one student's submission; never raises (failures become an ``error`` status)."""
    import warnings

    warnings.filterwarnings("ignore", module="nbgrader")
    warnings.filterwarnings("ignore", module="nbformat")
    warnings.filterwarnings("ignore", message=".*missing an id field.*")
    warnings.filterwarnings("ignore", message=".*not in session.*")
    with _LOCK:
        t0 = time.monotonic()
        try:
            result = _grade(job, template_ref or job["template"])
        except BaseException as exc:  # the run goes on; the instructor sees why
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            result = _result(job, status="error: internal grader error: %s: %s"
                             % (type(exc).__name__, str(exc)[:300]),
                             log=[("ERROR", traceback.format_exc())])
        result["seconds"] = round(time.monotonic() - t0, 3)
        result["worker_pid"] = os.getpid()
        return result


def _result(job, **kw) -> dict:
    res = {"student": job["student"], "key": job["key"], "files": job.get("files_desc", []),
           "status": "graded", "scores": {}, "total": 0.0, "max": None, "problems": list(job.get("problems", [])),
           "events": [], "log": [], "feedback": {}, "autograded": {}, "timings": {}}
    res.update(kw)
    return res


def _status(events, problems, failed_reason=None) -> str:
    if failed_reason:
        return "error: " + failed_reason
    order = ["kernel-died", "timeout", "memory", "review"]
    for kind in order:
        for e in events:
            if e["kind"] == kind:
                return "%s: %s" % (kind, e["text"])
    return "graded"


def _grade(job: dict, template_ref: dict) -> dict:
    from traitlets.config import Config

    tpl_path = coursemod.materialize(template_ref)
    with open(os.path.join(tpl_path, "template.json")) as f:
        info = json.load(f)
    assignment = info["assignment"]
    opts = job["options"]

    # 1. read and repair the notebooks (before any kernel exists)
    notebooks = {}
    problems = list(job.get("problems", []))
    for name, data in job["notebooks"].items():
        if name not in info["notebooks"]:
            problems.append("unexpected notebook %s.ipynb ignored" % name)
            continue
        try:
            nb, probs = load_notebook(data, name + ".ipynb")
        except SubmissionError as exc:
            return _result(job, status="error: %s" % exc, problems=problems,
                           max=info["max_score"], scores={c["column"]: None for c in info["columns"]})
        problems.extend(probs)
        problems.extend(repair(nb, info["notebooks"][name]))
        notebooks[name] = nb
    if not notebooks:
        return _result(job, status="error: no notebook of the assignment in the submission (expected %s)"
                       % ", ".join(n + ".ipynb" for n in info["notebook_order"]),
                       problems=problems, max=info["max_score"])
    for name in info["notebook_order"]:
        if name not in notebooks:
            problems.append("notebook %s.ipynb is missing: it scores 0" % name)

    # the private course directory (gradebook, hidden tests) lives away from the kernel's working
    # directory: a kernel that looks around its cwd and the parent folders does not find it
    work_root = opts.get("work_dir")
    if not work_root or not os.path.isdir(work_root):
        work_root = os.path.join(tempfile.gettempdir(), "grading-work-%d" % os.getuid())
        os.makedirs(work_root, mode=0o700, exist_ok=True)
    base = tempfile.mkdtemp(prefix="grade-", dir=work_root)
    kopts = _kernel_options(info, opts)
    key = json.dumps([tpl_path, kopts, opts.get("memory_limit"), opts.get("kernel_env")], sort_keys=True)
    spare = _take_spare(key)
    sandbox = spare["sandbox"] if spare else _new_sandbox(tpl_path, assignment, opts)
    try:
        return _run_nbgrader(job, info, tpl_path, base, sandbox, notebooks, problems, opts, Config,
                             kopts, key, spare)
    finally:
        _rmtree(base)
        _rmtree(sandbox)


# -- kernels started ahead of time ------------------------------------------------------------
_SPARE: dict = {}


def _new_sandbox(tpl_path, assignment, opts) -> str:
    """A private working directory for one kernel, holding the assignment's helper files."""
    sandboxes = os.path.join(tempfile.gettempdir(), "grading-sandboxes-%d" % os.getuid())
    os.makedirs(sandboxes, mode=0o711, exist_ok=True)
    sandbox = tempfile.mkdtemp(prefix="nb-", dir=sandboxes)
    src_dir = os.path.join(tpl_path, "source", assignment)
    for rel in coursemod.list_files(src_dir):
        if rel.endswith(".ipynb"):
            continue
        dest = os.path.join(sandbox, rel)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copyfile(os.path.join(src_dir, rel), dest)
    _prepare_sandbox_owner(sandbox, opts.get("kernel_user"))
    return sandbox


def _take_spare(key):
    spare = _SPARE.pop("spare", None)
    if spare is None:
        return None
    if spare["key"] == key and spare["km"].has_kernel:
        return spare
    _drop_spare(spare)
    return None


def _drop_spare(spare):
    from . import execute as ex

    ex._shutdown(spare["km"])
    _rmtree(spare["sandbox"])


def _start_spare(key, tpl_path, assignment, opts, kopts):
    """Boot the kernel for the next notebook while this one is being finished."""
    from . import execute as ex

    if not opts.get("prestart", True):
        return
    sandbox = _new_sandbox(tpl_path, assignment, opts)
    try:
        km = ex.launch_kernel(sandbox, kopts, int(opts.get("memory_limit") or 0),
                              dict(opts.get("kernel_env", {})))
    except Exception:
        _rmtree(sandbox)
        return
    _SPARE["spare"] = {"key": key, "km": km, "sandbox": sandbox}
    if not _SPARE.get("finalizer"):
        import multiprocessing.util

        def cleanup():
            spare = _SPARE.pop("spare", None)
            if spare is not None:
                _drop_spare(spare)
        _SPARE["finalizer"] = multiprocessing.util.Finalize(None, cleanup, exitpriority=10)
        import atexit

        atexit.register(cleanup)


def _kernel_options(info, opts) -> dict:
    return {
        "protected": sorted(set(["numpy", "math", "builtins"] + [m.split(".")[0] for m in info["eager_imports"]]
                                + info["helper_modules"] + list(opts.get("protected", [])))),
        "eager_imports": info["eager_imports"] + ["numpy", "numpy.testing", "math"],
        "helper_modules": info["helper_modules"],
        "aliases": {"np": "numpy", "numpy": "numpy", "math": "math"},
        "message_modules": sorted(set(info["helper_modules"] + info.get("checker_modules", [])
                                      + list(opts.get("message_modules", [])))),
        "file_size_limit": int(opts.get("file_size_limit") or 0) or None,
        "kernel_user": opts.get("kernel_user"),
        "max_processes": opts.get("max_processes"),
        "zygote": bool(opts.get("zygote", True)),
    }


def _rmtree(path):
    def onerror(func, p, exc_info):
        try:
            os.chmod(p, stat.S_IRWXU)
            func(p)
        except Exception:
            pass
    shutil.rmtree(path, onerror=onerror)


def _run_nbgrader(job, info, tpl_path, base, sandbox, notebooks, problems, opts, Config, kopts, key, spare):
    import nbformat
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.api import Gradebook
    from nbgrader.converters import Autograde, GenerateFeedback
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, GetGrades, IgnorePattern,
                                        LimitOutput, SaveAutoGrades)
    from nbconvert.preprocessors import ClearMetadataPreprocessor

    from . import execute as ex
    from .feedback import FeedbackHTMLExporter, HideHiddenTests

    assignment = info["assignment"]
    student = job["student"]
    timings = {}
    t_start = time.monotonic()

    root = os.path.join(base, "course")
    os.makedirs(os.path.join(root, "source"))
    os.symlink(os.path.join(tpl_path, "source", assignment), os.path.join(root, "source", assignment))
    shutil.copyfile(os.path.join(tpl_path, "gradebook.db"), os.path.join(root, "gradebook.db"))
    subdir = os.path.join(root, "submitted", student, assignment)
    os.makedirs(subdir)
    for name, nb in notebooks.items():
        nbformat.write(nb, os.path.join(subdir, name + ".ipynb"))
    if job.get("timestamp"):
        with open(os.path.join(subdir, "timestamp.txt"), "w") as f:
            f.write(job["timestamp"])
    for rel, data in job.get("extra_files", {}).items():
        dest = os.path.join(subdir, rel)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "wb") as f:
            f.write(data)

    # the kernel's working directory: the student's own files and the assignment's helper files,
    # never the gradebook, the source notebook or the sanitised notebook with the hidden tests
    reserved = set(info["helper_modules"]) | {"numpy", "math", "builtins"} | \
        {m.split(".")[0] for m in info["eager_imports"]}
    for rel, data in job.get("extra_files", {}).items():
        dest = os.path.join(sandbox, rel)
        top = rel.split(os.sep)[0]
        if os.path.exists(dest) or os.path.splitext(top)[0] in reserved:
            problems.append("handed-in file %s would replace a file or module of the assignment; not used" % rel)
            continue
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "wb") as f:
            f.write(data)
    for name, data in job["notebooks"].items():
        with open(os.path.join(sandbox, name + ".ipynb"), "wb") as f:
            f.write(data)
    _prepare_sandbox_owner(sandbox, opts.get("kernel_user"))

    course_config = _course_config(opts)
    cfg = coursemod.nbgrader_config(course_config, root, assignment, student)
    cfg.Autograde.force = True
    cfg.Autograde.create_student = True
    cfg.Autograde.autograde_preprocessors = [ex.GradingExecute, IgnorePattern, ClearMetadataPreprocessor,
                                             LimitOutput, SaveAutoGrades, AssignLatePenalties,
                                             CheckCellMetadata]
    gx = cfg.GradingExecute
    gx.timeout = max(1, int(round(float(opts["cell_timeout"])))) if opts.get("cell_timeout") else None
    gx.notebook_timeout = float(opts.get("notebook_timeout") or 0)
    gx.memory_limit = int(opts.get("memory_limit") or 0)
    gx.sandbox_dir = sandbox
    gx.startup_timeout = 60
    gx.iopub_timeout = 4
    gx.kernel_env = dict(opts.get("kernel_env", {}))
    gx.kernel_options = kopts
    cfg.LimitOutput.max_lines = 1000
    cfg.LimitOutput.max_traceback = 100

    logger = logging.getLogger("grading.worker.%d" % os.getpid())
    logger.propagate = False
    logger.setLevel(logging.INFO)
    for h in list(logger.handlers):
        logger.removeHandler(h)
    handler = _ListHandler()
    logger.addHandler(handler)

    ex.new_report()
    ex.PRESTARTED.clear()
    if spare is not None:
        ex.PRESTARTED.update({"km": spare["km"], "sandbox": sandbox})
    coursedir = CourseDirectory(config=cfg, log=logger)
    failed = None
    # boot the kernel of the next submission now: it starts while this one runs
    _start_spare(key, tpl_path, assignment, opts, kopts)
    t0 = time.monotonic()
    try:
        Autograde(coursedir=coursedir, config=cfg, log=logger).start()
    except Exception as exc:
        failed = _nbgrader_failure(handler.records, exc)
    timings["autograde_s"] = round(time.monotonic() - t0, 3)
    leftover = ex.PRESTARTED.pop("km", None)   # not used (nbgrader gave up before running it)
    if leftover is not None:
        ex._shutdown(leftover)
    ex.PRESTARTED.clear()
    report = dict(ex.REPORT)
    timings["kernel_start_s"] = report.get("kernel_start_s")
    timings["execute_s"] = report.get("execute_s")
    events = report.get("events", [])
    problems = problems + [e["text"] for e in events]

    scores = {}
    total = 0.0
    max_total = info["max_score"]
    if failed is None:
        try:
            with Gradebook(cfg.CourseDirectory.db_url, coursemod.COURSE_ID) as gb:
                sub = gb.find_submission(assignment, student)
                by_nb = {snb.name: snb for snb in sub.notebooks}
                for col in info["columns"]:
                    snb = by_nb.get(col["notebook"])
                    grade = None
                    if snb is not None:
                        for g in snb.grades:
                            if g.name == col["grade_id"]:
                                grade = g
                    if grade is None:
                        scores[col["column"]] = None
                        continue
                    score = grade.score
                    scores[col["column"]] = None if score is None else float(score)
                    if grade.needs_manual_grade and col["auto"]:
                        problems.append("%s needs manual grading" % col["column"])
                    total += float(score or 0)
                penalty = sum(float(snb.late_submission_penalty or 0) for snb in sub.notebooks)
                if penalty:
                    problems.append("late submission penalty: %g" % penalty)
                    total -= penalty
        except Exception as exc:
            failed = "could not read the grades: %s" % exc
    if failed is not None:
        scores = {c["column"]: None for c in info["columns"]}
        total = 0.0

    autograded = {}
    feedback = {}
    if failed is None:
        agdir = os.path.join(root, "autograded", student, assignment)
        for name in notebooks:
            p = os.path.join(agdir, name + ".ipynb")
            if os.path.isfile(p):
                with open(p, encoding="utf-8") as f:
                    autograded[name] = f.read()
        t0 = time.monotonic()
        fcfg = coursemod.nbgrader_config(course_config, root, assignment, student)
        fcfg.GenerateFeedback.force = True
        fcfg.GenerateFeedback.exporter_class = FeedbackHTMLExporter
        fcfg.GenerateFeedback.preprocessors = [GetGrades, HideHiddenTests, CSSHTMLHeaderPreprocessor]
        fcfg.HideHiddenTests.cell_info = report.get("cells", {})
        fcfg.HideHiddenTests.hidden_lines = info["hidden_lines"]
        try:
            GenerateFeedback(coursedir=CourseDirectory(config=fcfg, log=logger), config=fcfg, log=logger).start()
            fbdir = os.path.join(root, "feedback", student, assignment)
            for name in notebooks:
                p = os.path.join(fbdir, name + ".html")
                if os.path.isfile(p):
                    with open(p, encoding="utf-8") as f:
                        feedback[name] = f.read()
        except Exception as exc:
            problems.append("feedback could not be generated: %s" % exc)
            events.append({"kind": "review", "text": "feedback could not be generated: %s" % exc})
        timings["feedback_s"] = round(time.monotonic() - t0, 3)
    timings["total_s"] = round(time.monotonic() - t_start, 3)

    status = _status(events, problems, failed)
    # nbgrader's "checksum has changed" is how it restores hidden tests and edited test cells; the
    # repair step reports edits in plain words, so these lines are only noise
    log = []
    for level, msg in handler.records:
        if level not in ("WARNING", "ERROR", "CRITICAL") or msg.startswith(NOISE):
            continue
        if (level, msg) not in log:
            log.append((level, msg))
    return _result(job, status=status, scores=scores, total=round(total, 6), max=max_total,
                   problems=_dedupe(problems), events=events, log=log, feedback=feedback,
                   autograded=autograded, timings=timings, cells=report.get("cells", {}))


def _dedupe(items):
    seen = set()
    return [x for x in items if not (x in seen or seen.add(x))]


def _nbgrader_failure(records, exc) -> str:
    """A short reason from nbgrader's log when it gave up on the submission."""
    msgs = [m for lvl, m in records if lvl in ("ERROR", "CRITICAL")]
    for m in msgs:
        for line in reversed(m.strip().splitlines()):
            line = line.strip()
            if line and not line.startswith(("File ", "Traceback", "^", "During handling")) \
                    and "There was an error processing assignment" not in line \
                    and "Please see" not in line:
                if ":" in line or "Error" in line:
                    return "nbgrader could not grade it: %s" % line[:300]
    return "nbgrader could not grade it: %s" % (str(exc)[:300] or type(exc).__name__)


def _course_config(opts):
    key = opts.get("course_dir")
    if key not in _COURSE_CONFIG_CACHE:
        from traitlets.config import Config

        cfg = Config()
        if key and os.path.isdir(key):
            cfg = coursemod.load_course_config(key)
        _COURSE_CONFIG_CACHE[key] = cfg
    return _COURSE_CONFIG_CACHE[key]


def _prepare_sandbox_owner(sandbox, user):
    """With ``--kernel-user``: the kernel owns its sandbox and nothing else of ours."""
    os.chmod(sandbox, 0o700)
    if not user or os.geteuid() != 0:
        return
    import pwd

    pw = pwd.getpwnam(user)
    for dirpath, dirnames, filenames in os.walk(sandbox):
        os.chown(dirpath, pw.pw_uid, pw.pw_gid)
        for fn in filenames:
            os.chown(os.path.join(dirpath, fn), pw.pw_uid, pw.pw_gid)
    os.chmod(sandbox, 0o700)
