"""Grading one submission, in a worker process (local pool or Dask worker).

:class:`SubmissionGrader` holds what every submission of a run shares (the assignment, the
sandbox's prepared files, the limits) and is sent to each worker once. :meth:`grade` takes plain
data (the student's files) and returns plain data (scores, status, problems, feedback HTML, the
graded notebook), so it runs the same way in a process pool and on Dask.

Each submission gets its own student process (a bubblewrap sandbox unless ``sandboxed`` is off);
the checks run in this worker process, which holds the expected values and never runs student code.
"""
from __future__ import annotations

import json
import time
import traceback
from dataclasses import dataclass, field

from course.assignment import Assignment
from course.grader import GradedNotebook, for_student, grade_notebook, process_starter
from course.sandbox import Assets, Limits

from .feedback import FeedbackRenderer
from .notebook_file import SubmissionError, load_notebook

#: the order in which stopped processes decide a row's status (the first one found wins)
STATUS_ORDER = ("timeout", "memory", "crashed", "protocol", "review")


@dataclass
class SubmissionGrader:
    assignment: Assignment
    assets: Assets
    limits: Limits
    sandboxed: bool
    feedback: FeedbackRenderer = field(default_factory=FeedbackRenderer)

    def grade(self, job: dict) -> dict:
        """Grade one student's submission; never raises (a failure becomes an ``error`` row)."""
        started = time.monotonic()
        try:
            result = self._grade(job)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001 - the run goes on; the instructor sees why
            result = error_result(job, f"internal grader error: {type(exc).__name__}: {str(exc)[:300]}")
            result["log"] = [traceback.format_exc()]
        result["seconds"] = round(time.monotonic() - started, 3)
        return result

    def _grade(self, job: dict) -> dict:
        if job.get("refused"):
            return error_result(job, job["refused"], kind="refused")
        name = self.assignment.notebook
        try:
            nb, load_problems = load_notebook(job["notebooks"][name], f"{name}.ipynb")
        except SubmissionError as exc:
            return error_result(job, str(exc))
        except KeyError:
            return error_result(job, f"no {name}.ipynb was handed in")
        files = {**self.assignment.files, **(job.get("extra_files") or {})}
        graded = grade_notebook(self.assignment, nb, process_starter(self.assets, self.limits,
                                                                     sandboxed=self.sandboxed, files=files))
        result = base_result(job)
        status = status_of(graded, self.sandboxed)
        events = list(dict.fromkeys(m for _, m in graded.events if not status.endswith(m)))
        result.update(status=status, problems=[*job.get("problems", []), *load_problems, *graded.problems, *events],
                      scores={gid: t.points for gid, t in graded.tests.items()}, total=graded.score,
                      max=graded.max_score,
                      tests={gid: {"passed": t.passed, "message": t.failure.message if t.failure else ""}
                             for gid, t in graded.tests.items()})
        result["feedback"] = {name: self.feedback.render(for_student(graded, self.assignment), graded,
                                                         f"{self.assignment.name}: {job['student']}")}
        result["autograded"] = {name: json.dumps(graded.notebook, indent=1, ensure_ascii=False)}
        return result


def status_of(graded: GradedNotebook, sandboxed: bool) -> str:
    """``graded``, or what stopped part of it (``timeout: ...``), or ``review: ...``."""
    status = "graded"
    for kind in STATUS_ORDER:
        message = next((m for k, m in graded.events if k == kind), None)
        if message is not None:
            status = f"{kind}: {message}"
            break
    if not sandboxed:
        status = "review: not sandboxed" + ("" if status == "graded" else f"; {status}")
    return status


def base_result(job: dict) -> dict:
    return {"student": job["student"], "key": job["key"], "files": job.get("files_desc", []),
            "status": "graded", "scores": {}, "total": 0.0, "max": None, "problems": list(job.get("problems", [])),
            "tests": {}, "feedback": {}, "autograded": {}, "log": [], "timestamp": job.get("timestamp")}


def error_result(job: dict, why: str, kind: str = "error") -> dict:
    """A row that could not be graded at all: empty test columns, total 0, never a silent 0."""
    result = base_result(job)
    result["status"] = f"{kind}: {why}"
    return result
