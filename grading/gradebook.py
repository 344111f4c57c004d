"""Scores into an nbgrader gradebook, so that ``nbgrader export`` and formgrader work as usual.

Only the parent process writes it (sqlite has one writer). The assignment, its notebook and its
cells are registered by nbgrader's own ``generate_assignment`` (in a scratch course whose source
is a copy of the assignment), so the gradebook is exactly what nbgrader would have made; the
scores are the grader's, written as each submission's automatic grades.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path


from .course_dir import GradingError


class GradebookError(GradingError):
    """The gradebook cannot take this assignment (e.g. its cells changed after grading)."""


class NbgraderGradebook:
    def __init__(self, path: Path, source: Path, course_id: str = "rnn-course"):
        self.path = Path(path).resolve()
        self.url = f"sqlite:///{self.path}"
        self.assignment = Path(source).name
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._register(Path(source), course_id)
        from nbgrader.api import Gradebook

        self.gb = Gradebook(self.url, course_id)

    def _register(self, source: Path, course_id: str) -> None:
        import os
        import sys

        from nbgrader.apps import NbGraderAPI

        # nbgrader runs the `alembic` command of its own environment when it creates a gradebook
        os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
        from traitlets.config import Config

        with tempfile.TemporaryDirectory(prefix="grading-gradebook-") as tmp:
            shutil.copytree(source, Path(tmp, "source", self.assignment))
            config = Config()
            config.CourseDirectory.root = tmp
            config.CourseDirectory.db_url = self.url
            config.CourseDirectory.course_id = course_id
            Path(tmp, "exchange").mkdir()
            config.Exchange.root = str(Path(tmp, "exchange"))
            outcome = NbGraderAPI(config=config).generate_assignment(self.assignment, force=True, create=True)
        if not outcome.get("success"):
            detail = (outcome.get("error") or outcome.get("log") or "").strip().splitlines()[-1:]
            raise GradebookError(f"nbgrader could not register {self.assignment} in {self.path}: "
                                 f"{' '.join(detail)}")

    def record(self, result: dict) -> None:
        """The automatic scores of one student's submission (a row of grades.csv)."""
        import warnings

        with warnings.catch_warnings():  # nbgrader's own use of SQLAlchemy warns on every new submission
            warnings.simplefilter("ignore")
            self._record(result)

    def _record(self, result: dict) -> None:
        student = result["student"]
        self.gb.update_or_create_student(student)
        kwargs = {"timestamp": result["timestamp"]} if result.get("timestamp") else {}
        submission = self.gb.update_or_create_submission(self.assignment, student, **kwargs)
        scores = result.get("scores") or {}
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                grade.auto_score = float(scores.get(grade.name, 0.0))
                grade.needs_manual_grade = False
        self.gb.db.commit()

    def close(self) -> None:
        self.gb.close()
