"""The parent process of ``grade-class``: plan, dispatch to workers, accept results, report.

Only this process writes the output folder and the gradebook; workers return plain data. A
submission is graded again only when its files, the assignment, the course's checks or the
options that change grades have changed (its state file, written last, says what it was graded
with), so an interrupted run resumes where it stopped.
"""
from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import json
import logging
import multiprocessing
import os
import signal
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import course
from course.assignment import Assignment
from course.sandbox import Assets, Limits, sandbox_available

from . import __version__, report
from .course_dir import GradingError, hash_tree, source_assignment_dir
from .discover import DEFAULT_PATTERN, Submission, TooLarge, discover
from .gradebook import NbgraderGradebook
from .worker import SubmissionGrader, error_result

log = logging.getLogger("grading")


@dataclass
class Options:
    assignment: str
    submissions: str
    course_dir: str = "."
    out: str | None = None
    workers: int | None = None
    scheduler: str | None = None
    limits: Limits = field(default_factory=Limits)   # of each student process (CPU seconds, memory...)
    force: bool = False
    student_pattern: str = DEFAULT_PATTERN
    sandbox: bool = True
    gradebook: str | None = None       # default: OUT/gradebook.db
    progress: bool = True
    client: object = None              # an existing dask Client (tests, notebooks)

    def grading_key(self) -> str:
        """What changes grades, besides the files: a different value re-grades everything."""
        return json.dumps({"limits": dataclasses.asdict(self.limits), "sandbox": self.sandbox}, sort_keys=True)


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


def run(opts: Options) -> RunSummary:
    """Grade every submission of ``opts.assignment``; see grading/README.md."""
    return GradingRun(opts).run()


class GradingRun:
    def __init__(self, opts: Options):
        self.opts = opts
        self.course_dir = Path(opts.course_dir).resolve()
        self.out = Path(opts.out or Path("grading_output", opts.assignment)).resolve()
        self.summary = RunSummary(out=str(self.out))
        self.started = time.monotonic()

    def run(self) -> RunSummary:
        (self.out / "feedback").mkdir(parents=True, exist_ok=True)
        (self.out / ".grading" / "state").mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(self.out / "grading.log", encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
        try:
            self._prepare()
            disc = discover(self.opts.submissions, self.opts.assignment, [self.assignment.notebook],
                            self.opts.student_pattern)
            try:
                for note in disc.notes:
                    log.warning("submissions: %s", note)
                jobs = self._plan(disc)
                log.info("%d submissions (%s layout): %d to grade, %d unchanged", len(disc.submissions),
                         disc.layout, len(jobs), self.summary.skipped)
                if jobs:
                    self._dispatch(jobs)
            finally:
                disc.cleanup()
            self._finish()
            return self.summary
        finally:
            if getattr(self, "gradebook", None) is not None:
                self.gradebook.close()
            log.removeHandler(handler)
            handler.close()

    # -- before --------------------------------------------------------------------------------

    def _prepare(self) -> None:
        opts = self.opts
        source = source_assignment_dir(self.course_dir, opts.assignment)
        self.assignment = Assignment.load(source)
        if opts.sandbox:
            ok, why = sandbox_available()
            if not ok:
                raise GradingError(f"cannot sandbox student code: {why}. Install bubblewrap, or grade "
                                   "without a sandbox with --no-sandbox (every row will then say "
                                   "'review: not sandboxed')")
        log.info("grade-class %s: assignment %s, submissions %s, course %s, out %s, %s", __version__,
                 opts.assignment, opts.submissions, self.course_dir, self.out,
                 "sandboxed (bubblewrap)" if opts.sandbox else "NOT sandboxed")
        assets = Assets.prepare(self.assignment.policy, self.out / ".grading" / "sandbox", opts.sandbox)
        self.grader = SubmissionGrader(self.assignment, assets, opts.limits, opts.sandbox)
        self.key = hash_tree(source, Path(course.__file__).parent) + opts.grading_key()
        self.gradebook = NbgraderGradebook(Path(opts.gradebook or self.out / "gradebook.db"), source)

    def _plan(self, disc) -> list[dict]:
        """Jobs (plain data) for the submissions that are new or changed."""
        jobs, self.current = [], {}
        for sub in disc.submissions:
            job = self._job(sub)
            self.current[sub.student] = job["key"]
            old = report.load_state(str(self.out), sub.student)
            feedback = self.out / "feedback" / f"{sub.student}.html"
            if old and old.get("key") == job["key"] and feedback.is_file() and not self.opts.force:
                self.summary.skipped += 1
            else:
                jobs.append(job)
        return jobs

    def _job(self, sub: Submission) -> dict:
        job = {"student": sub.student, "timestamp": sub.timestamp, "problems": sub.problems,
               "files_desc": sub.files_desc, "refused": sub.refused, "notebooks": {}, "extra_files": {}}
        if sub.refused:
            job["key"] = f"{self.key}:refused:{sub.refused}"
            return job
        try:
            data = sub.read()
        except TooLarge as exc:
            job["refused"] = str(exc)
            job["key"] = f"{self.key}:too-large:{sub.stamp()}"
            return job
        job.update(notebooks=data["notebooks"], extra_files=data["extra_files"],
                   key=f"{self.key}:{Submission.content_hash(data, sub.timestamp)}")
        return job

    # -- dispatch ------------------------------------------------------------------------------

    def _dispatch(self, jobs: list[dict]) -> None:
        bar = _progress(len(jobs), self.opts.progress, f"grading {self.assignment.name}")
        try:
            if self.opts.scheduler or self.opts.client is not None:
                self._dispatch_dask(jobs, bar)
            else:
                self._dispatch_pool(jobs, bar)
        except KeyboardInterrupt:
            self.summary.interrupted = True
            log.warning("interrupted: finished results are kept; run the same command again to grade the rest")
        finally:
            if bar is not None:
                bar.close()

    def _dispatch_pool(self, jobs: list[dict], bar) -> None:
        workers = min(self.opts.workers or os.cpu_count() or 1, len(jobs))
        attempts = {j["student"]: 0 for j in jobs}
        pending = list(jobs)
        while pending:
            pool = cf.ProcessPoolExecutor(max_workers=min(workers, len(pending)),
                                          mp_context=multiprocessing.get_context("fork"),
                                          initializer=_worker_init, initargs=(self.grader,))
            futures = {pool.submit(_grade_in_worker, job): job for job in pending}
            pending, broken = [], False
            try:
                for future in cf.as_completed(futures):
                    job = futures[future]
                    try:
                        self._accept(future.result(), bar)
                    except cf.process.BrokenProcessPool:
                        broken = True
                        attempts[job["student"]] += 1
                        if attempts[job["student"]] >= 2:
                            self._accept(error_result(job, "the grading worker died twice while grading it"), bar)
                        else:
                            pending.append(job)
            except KeyboardInterrupt:
                _kill_pool(pool)
                raise
            finally:
                pool.shutdown(wait=not broken, cancel_futures=True)
            if pending:
                log.warning("a grading worker died; grading %d submissions again in a fresh pool", len(pending))

    def _dispatch_dask(self, jobs: list[dict], bar) -> None:
        from distributed import Client, as_completed

        client = self.opts.client or Client(self.opts.scheduler, timeout=30)
        try:
            grader = client.scatter(self.grader, broadcast=True)
            futures = {client.submit(grade_job, job, grader, pure=False, retries=1,
                                     key=f"grade-{uuid.uuid4().hex[:12]}"): job for job in jobs}
            try:
                for future in as_completed(list(futures)):
                    try:
                        result = future.result()
                    except Exception as exc:  # noqa: BLE001 - a lost worker is one row's error
                        result = error_result(futures[future], f"dask worker failure: {type(exc).__name__}: "
                                                               f"{str(exc)[:200]}")
                    self._accept(result, bar)
            except KeyboardInterrupt:
                client.cancel(list(futures))
                raise
        finally:
            if self.opts.client is None:
                client.close()

    # -- after ---------------------------------------------------------------------------------

    def _accept(self, result: dict, bar) -> None:
        if result.get("max") is None:
            result["max"] = self.assignment.max_score
        report.write_result(str(self.out), self.assignment.name, [self.assignment.notebook], result)
        self.gradebook.record(result)
        _log_result(result)
        self.summary.graded += 1
        if bar is not None:
            if result["status"] != "graded":
                self.summary.flagged += 1
            bar.set_postfix(flagged=self.summary.flagged, refresh=False)
            bar.update(1)

    def _finish(self) -> None:
        results = [st for student, key in sorted(self.current.items())
                   if (st := report.load_state(str(self.out), student)) is not None and st.get("key") == key]
        self.summary.results = results
        columns = [{"column": gid, "points": t.points, "hidden": any(c.hidden for c in t.checks)}
                   for gid, t in self.assignment.tests.items()]
        report.write_grades_csv(str(self.out), columns, results)
        report.write_summary(str(self.out), self.assignment.name, columns, self.assignment.max_score, results)
        self.summary.flagged = sum(1 for r in results if r["status"] != "graded")
        self.summary.errors = sum(1 for r in results if r["status"].startswith(("error", "refused")))
        self.summary.seconds = time.monotonic() - self.started
        log.info("done in %.1fs: %d graded now, %d unchanged, %d flagged (%d could not be graded)%s",
                 self.summary.seconds, self.summary.graded, self.summary.skipped, self.summary.flagged,
                 self.summary.errors, " -- INTERRUPTED, run again to finish" if self.summary.interrupted else "")


# -- in the workers ------------------------------------------------------------------------------

class _Worker:
    """The one grader of a pool worker process, installed by the pool's initializer."""

    grader: SubmissionGrader | None = None


def _worker_init(grader: SubmissionGrader) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's
    _Worker.grader = grader


def _grade_in_worker(job: dict) -> dict:
    return _Worker.grader.grade(job)


def grade_job(job: dict, grader: SubmissionGrader) -> dict:
    """A Dask task: grade one submission with the scattered grader."""
    return grader.grade(job)


def _kill_pool(pool) -> None:
    processes = list(getattr(pool, "_processes", {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        try:
            process.terminate()   # student processes die with their worker (--die-with-parent)
        except Exception:  # noqa: BLE001
            pass


def _progress(total: int, enabled: bool, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, unit="nb", desc=desc, disable=not enabled, file=sys.stderr, dynamic_ncols=True)


def _log_result(res: dict) -> None:
    who = res["student"]
    level = logging.INFO if res["status"] == "graded" else logging.WARNING
    log.log(level, "%s: %s, %s/%s points in %.1fs (%s)", who, res["status"], report.fmt(float(res.get("total") or 0)),
            report.fmt(res.get("max")), res.get("seconds", 0), ", ".join(res.get("files", [])))
    for problem in res.get("problems", []):
        log.warning("%s: %s", who, problem)
    for text in res.get("log", []):
        log.error("%s: %s", who, text.strip().replace("\n", "\n    "))
