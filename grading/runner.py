"""The parent process: plan, dispatch to an executor, merge results, write the reports."""
from __future__ import annotations

import concurrent.futures as cf
import json
import logging
import multiprocessing
import os
import signal
import sys
import time
import uuid
from dataclasses import dataclass, field

from . import __version__
from . import course as coursemod
from . import report
from .discover import DEFAULT_PATTERN, Submission, TooLarge, discover
from .worker import grade_submission

log = logging.getLogger("grading")


@dataclass
class Options:
    assignment: str
    submissions: str
    course_dir: str = "."
    out: str | None = None
    workers: int | None = None
    scheduler: str | None = None
    cell_timeout: float = 60
    notebook_timeout: float = 600
    memory_limit: int = 2 * 2**30
    force: bool = False
    student_pattern: str = DEFAULT_PATTERN
    kernel_user: str | None = None
    file_size_limit: int = 256 * 2**20
    progress: bool = True
    client: object = None            # an existing dask Client (tests, notebooks)
    template_dir: str | None = None  # where templates are built (default: OUT/.grading)
    extra: dict = field(default_factory=dict)

    def grading_key(self) -> str:
        """What changes grades: a different value re-grades everything."""
        return json.dumps({"cell_timeout": float(self.cell_timeout or 0),
                           "notebook_timeout": float(self.notebook_timeout or 0),
                           "memory_limit": int(self.memory_limit or 0), "kernel_user": self.kernel_user},
                          sort_keys=True)


@dataclass
class RunSummary:
    out: str
    graded: int = 0
    skipped: int = 0
    flagged: int = 0
    errors: int = 0
    interrupted: bool = False
    results: list = field(default_factory=list)
    seconds: float = 0.0


def _setup_log(out: str) -> logging.Handler:
    handler = logging.FileHandler(os.path.join(out, "grading.log"), encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    return handler


def _worker_init():
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is handled by the parent

    def stop(*_):  # the parent stops the pool: unwind, so temporary folders and kernels go too
        raise SystemExit(143)
    signal.signal(signal.SIGTERM, stop)


def _log_result(res: dict) -> None:
    who = res["student"]
    level = logging.INFO if res["status"] == "graded" else logging.WARNING
    log.log(level, "%s: %s, %s/%s points in %.1fs (%s)", who, res["status"], report._fmt(float(res.get("total") or 0)),
            report._fmt(res.get("max")), res.get("seconds", 0), ", ".join(res.get("files", [])))
    for p in res.get("problems", []):
        log.warning("%s: %s", who, p)
    for level_name, msg in res.get("log", []):
        text = msg.strip()
        if level_name in ("ERROR", "CRITICAL") and "\n" in text:
            log.error("%s: nbgrader: %s", who, text.replace("\n", "\n    "))
        else:
            log.log(logging.ERROR if level_name in ("ERROR", "CRITICAL") else logging.WARNING,
                    "%s: nbgrader: %s", who, text.splitlines()[0] if text else "")


def run(opts: Options) -> RunSummary:
    t_start = time.monotonic()
    course_dir = os.path.abspath(opts.course_dir)
    out = os.path.abspath(opts.out or os.path.join("grading_output", opts.assignment))
    os.makedirs(os.path.join(out, "feedback"), exist_ok=True)
    os.makedirs(os.path.join(out, ".grading", "state"), exist_ok=True)
    handler = _setup_log(out)
    summary = RunSummary(out=out)
    try:
        return _run(opts, course_dir, out, summary, t_start)
    finally:
        log.removeHandler(handler)
        handler.close()


def check_kernel_user(user: str, kernel_env: dict) -> None:
    """Fail early, with the reason, when kernels cannot run as ``user``."""
    import pwd
    import subprocess

    if os.geteuid() != 0:
        raise coursemod.GradingError("--kernel-user needs the grader to run as root (it is uid %d)" % os.geteuid())
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        raise coursemod.GradingError("--kernel-user: no user %r on this machine" % user) from None

    def demote():
        os.setgroups([])
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)

    env = dict(os.environ)
    env.update(kernel_env)
    try:
        proc = subprocess.run([sys.executable, "-c", "import ipykernel, numpy"], cwd="/", env=env,
                              preexec_fn=demote, capture_output=True, text=True, timeout=120)
        err = (proc.stderr or "").strip().splitlines()[-1:] if proc.returncode else None
    except OSError as exc:
        err = [str(exc)]
    if err is not None:
        raise coursemod.GradingError("--kernel-user %s: that user cannot run %s (%s); make the Python "
                                     "environment readable by it or grade without --kernel-user"
                                     % (user, sys.executable, " ".join(err) or "failed"))


def _run(opts, course_dir, out, summary, t_start):
    log.info("grade-class %s: assignment %s, submissions %s, course %s, out %s", __version__,
             opts.assignment, opts.submissions, course_dir, out)
    template = coursemod.build_template(course_dir, opts.assignment,
                                       opts.template_dir or os.path.join(out, ".grading"), opts.grading_key())
    info = template.info
    if opts.kernel_user:
        check_kernel_user(opts.kernel_user, _kernel_env(course_dir))
    disc = discover(opts.submissions, opts.assignment, template.notebooks, opts.student_pattern)
    try:
        for note in disc.notes:
            log.warning("submissions: %s", note)
        worker_opts = {
            "cell_timeout": opts.cell_timeout, "notebook_timeout": opts.notebook_timeout,
            "memory_limit": opts.memory_limit, "course_dir": course_dir,
            "kernel_user": opts.kernel_user, "file_size_limit": opts.file_size_limit,
            "kernel_env": _kernel_env(course_dir),
            "work_dir": os.path.join(out, ".grading", "work"),
        }
        os.makedirs(worker_opts["work_dir"], mode=0o700, exist_ok=True)
        worker_opts.update(opts.extra)
        jobs = []
        current = {}
        too_large = []
        for sub in disc.submissions:
            try:
                data = sub.read()
            except TooLarge as exc:
                import hashlib

                stamp = "|".join("%s:%d:%d" % (p, os.path.getsize(p), os.path.getmtime(p))
                                 for p in sorted(sub.notebooks.values()))
                key = template.hash + ":large:" + hashlib.sha256(stamp.encode()).hexdigest()
                current[sub.student] = key
                old = report.load_state(out, sub.student)
                if old and old.get("key") == key and not opts.force:
                    summary.skipped += 1
                    continue
                too_large.append(_crashed({"student": sub.student, "key": key, "files_desc": sub.files_desc,
                                           "problems": sub.problems}, "not graded: %s" % exc))
                continue
            key = template.hash + ":" + Submission.content_hash(data, sub.timestamp)
            current[sub.student] = key
            old = report.load_state(out, sub.student)
            fb_ok = all(os.path.isfile(p) for p in report.feedback_paths(out, sub.student, template.notebooks).values())
            if old and old.get("key") == key and fb_ok and not opts.force:
                summary.skipped += 1
                continue
            jobs.append({"student": sub.student, "key": key, "notebooks": data["notebooks"],
                         "extra_files": data["extra_files"], "timestamp": sub.timestamp,
                         "problems": sub.problems, "files_desc": sub.files_desc, "options": worker_opts})
        log.info("%d submissions (%s layout): %d to grade, %d unchanged", len(disc.submissions), disc.layout,
                 len(jobs), summary.skipped)
        for res in too_large:
            _accept(res, out, template, summary, None)
        if jobs:
            _dispatch(opts, template, jobs, out, summary)
        results = []
        for student, key in sorted(current.items()):
            st = report.load_state(out, student)
            if st is not None and st.get("key") == key:
                results.append(st)
        summary.results = results
        columns = info["columns"]
        report.write_grades_csv(out, columns, results)
        report.write_summary(out, opts.assignment, columns, info["max_score"], results)
        summary.flagged = sum(1 for r in results if r["status"] != "graded")
        summary.errors = sum(1 for r in results if r["status"].startswith("error"))
        summary.seconds = time.monotonic() - t_start
        log.info("done in %.1fs: %d graded now, %d unchanged, %d flagged (%d could not be graded)%s",
                 summary.seconds, summary.graded, summary.skipped, summary.flagged, summary.errors,
                 " -- INTERRUPTED, run again to finish" if summary.interrupted else "")
        return summary
    finally:
        disc.cleanup()


def _kernel_env(course_dir: str) -> dict:
    """Kernels import the course's package (rnnkit) the way the grader itself does.

    The course folder itself is not put on the kernel's path: it holds the solutions."""
    paths = []
    try:
        import importlib.util

        spec = importlib.util.find_spec("rnnkit")
        if spec and spec.origin:
            paths.append(os.path.dirname(os.path.dirname(spec.origin)))
    except (ImportError, ValueError):
        pass
    old = os.environ.get("PYTHONPATH")
    if old:
        paths.extend(old.split(os.pathsep))
    seen = set()
    paths = [p for p in paths if p and not (p in seen or seen.add(p))]
    return {"PYTHONPATH": os.pathsep.join(paths)}


def _progress(total, enabled, desc):
    try:
        from tqdm import tqdm

        tqdm.monitor_interval = 0
        return tqdm(total=total, unit="nb", desc=desc, disable=not enabled, file=sys.stderr,
                    dynamic_ncols=True)
    except ImportError:  # pragma: no cover
        return None


def _accept(res, out, template, summary, bar):
    if res.get("max") is None:
        res["max"] = template.info["max_score"]
    report.write_result(out, template.assignment, template.notebooks, res)
    _log_result(res)
    summary.graded += 1
    if bar is not None:
        if res["status"] != "graded":
            summary.flagged += 1
        bar.set_postfix(flagged=summary.flagged, refresh=False)
        bar.update(1)


def _crashed(job, why):
    return {"student": job["student"], "key": job["key"], "files": job.get("files_desc", []),
            "status": "error: " + why, "scores": {}, "total": 0.0, "max": None,
            "problems": list(job.get("problems", [])), "events": [], "log": [], "feedback": {},
            "autograded": {}, "timings": {}}


def _dispatch(opts, template, jobs, out, summary):
    desc = "grading %s" % template.assignment
    bar = _progress(len(jobs), opts.progress, desc)
    try:
        if opts.scheduler or opts.client is not None:
            _dispatch_dask(opts, template, jobs, out, summary, bar)
        else:
            _dispatch_pool(opts, template, jobs, out, summary, bar)
    except KeyboardInterrupt:
        summary.interrupted = True
        log.warning("interrupted: finished results are kept; run the same command again to grade the rest")
    finally:
        if bar is not None:
            bar.close()
    summary.flagged = 0


def _dispatch_pool(opts, template, jobs, out, summary, bar):
    workers = opts.workers or os.cpu_count() or 1
    ref = template.ref()
    try:
        ctx = multiprocessing.get_context("fork")
    except ValueError:  # pragma: no cover - not on Linux
        ctx = None
    attempts = {j["student"]: 0 for j in jobs}
    pending = list(jobs)
    while pending:
        ex = cf.ProcessPoolExecutor(max_workers=min(workers, len(pending)), mp_context=ctx,
                                    initializer=_worker_init)
        futures = {ex.submit(grade_submission, job, ref): job for job in pending}
        pending = []
        broken = False
        try:
            for fut in cf.as_completed(futures):
                job = futures[fut]
                try:
                    res = fut.result()
                except cf.process.BrokenProcessPool:
                    broken = True
                    attempts[job["student"]] += 1
                    if attempts[job["student"]] >= 2:
                        _accept(_crashed(job, "the grading worker process died twice while grading it"),
                                out, template, summary, bar)
                    else:
                        pending.append(job)
                    continue
                except Exception as exc:
                    res = _crashed(job, "grader failure: %s: %s" % (type(exc).__name__, exc))
                _accept(res, out, template, summary, bar)
        except KeyboardInterrupt:
            _kill_pool(ex)
            raise
        finally:
            ex.shutdown(wait=not broken, cancel_futures=True)
        if broken and pending:
            log.warning("a grading worker died; re-grading %d submissions in a fresh pool", len(pending))


def _kill_pool(ex):
    procs = list(getattr(ex, "_processes", {}).values())
    ex.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        try:
            p.terminate()   # kernels die with their worker (PR_SET_PDEATHSIG)
        except Exception:
            pass


def _dispatch_dask(opts, template, jobs, out, summary, bar):
    from distributed import Client, as_completed

    client = opts.client
    own = client is None
    if own:
        client = Client(opts.scheduler, timeout=30)
    try:
        ref = template.ref(with_blob=True)
        template.pack()
        ref["blob"] = template.blob
        ref_future = client.scatter(ref, broadcast=True)
        futures = {}
        for job in jobs:
            fut = client.submit(grade_submission, job, ref_future, pure=False,
                                key="grade-%s-%s" % (job["student"], uuid.uuid4().hex[:12]), retries=1)
            futures[fut] = job
        try:
            for fut in as_completed(list(futures)):
                job = futures[fut]
                try:
                    res = fut.result()
                except Exception as exc:
                    res = _crashed(job, "dask worker failure: %s: %s" % (type(exc).__name__, str(exc)[:200]))
                _accept(res, out, template, summary, bar)
        except KeyboardInterrupt:
            client.cancel(list(futures))
            raise
    finally:
        if own:
            client.close()
