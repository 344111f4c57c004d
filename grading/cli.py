"""``grade-class``: grade every submission of an assignment, each in its own sandbox, in parallel.

    grade-class ASSIGNMENT SUBMISSIONS [--course-dir .] [--out grading_output/ASSIGNMENT]
                [--workers N] [--scheduler tcp://host:port] [--cpu-per-cell 60]
                [--cpu-per-notebook 600] [--memory-limit 2GiB] [--gradebook PATH] [--force]
                [--no-sandbox]
"""
from __future__ import annotations

import argparse
import os
import re
import sys

from .course_dir import GradingError
from .discover import DEFAULT_PATTERN

UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1024, "m": 1000**2, "mb": 1000**2, "mib": 1024**2,
         "g": 1000**3, "gb": 1000**3, "gib": 1024**3, "t": 1000**4, "tb": 1000**4, "tib": 1024**4}


def parse_size(text: str) -> int:
    """'2GiB' -> 2147483648; '0' or 'none' -> 0 (no limit)."""
    t = text.strip().lower()
    if t in ("none", "off", "0", "unlimited"):
        return 0
    m = re.fullmatch(r"([0-9]*\.?[0-9]+)\s*([a-z]*)", t)
    if not m or m.group(2) not in UNITS:
        raise argparse.ArgumentTypeError("not a size: %r (try 2GiB, 512MiB, none)" % text)
    return int(float(m.group(1)) * UNITS[m.group(2)])


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="grade-class",
        description="Autograde all submissions of an nbgrader assignment in parallel, safely, "
                    "resuming where the last run stopped. Writes grades.csv, feedback/<student>.html, "
                    "summary.html and grading.log to --out.")
    p.add_argument("assignment", help="assignment name: the course's <source_directory>/<assignment>/")
    p.add_argument("submissions", help="folder or .zip: nbgrader layout (submitted/<student>/<assignment>/"
                   "<notebook>.ipynb) or flat (one <student>_<anything>.ipynb per student)")
    p.add_argument("--course-dir", default=".", help="course root with nbgrader_config.py (default: .)")
    p.add_argument("--out", default=None, help="output folder (default: grading_output/ASSIGNMENT)")
    p.add_argument("--workers", type=int, default=None, help="parallel graders (default: all cores)")
    p.add_argument("--scheduler", default=None, help="Dask scheduler address (tcp://host:port) instead of "
                   "local processes")
    p.add_argument("--cpu-per-cell", type=float, default=60,
                   help="CPU seconds for one cell or one call of a check (default 60)")
    p.add_argument("--cpu-per-notebook", type=float, default=600,
                   help="CPU seconds for all of a notebook's code (default 600)")
    p.add_argument("--memory-limit", type=parse_size, default=parse_size("2GiB"),
                   help="memory of the student's process, e.g. 2GiB (default), 512MiB, none")
    p.add_argument("--gradebook", default=None,
                   help="nbgrader gradebook (sqlite file) that receives the scores (default: OUT/gradebook.db)")
    p.add_argument("--force", action="store_true", help="re-grade everything, not only new or changed files")
    p.add_argument("--student-pattern", default=DEFAULT_PATTERN,
                   help="regex with a group 'student' applied to flat file names (default: %(default)s)")
    p.add_argument("--no-sandbox", action="store_true",
                   help="run student code without bubblewrap (only where it cannot be installed; every "
                        "row then says 'review: not sandboxed')")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from course.sandbox import Limits

    from .runner import Options, run

    if args.workers is not None and args.workers < 1:
        print("grade-class: --workers must be at least 1", file=sys.stderr)
        return 2
    opts = Options(assignment=args.assignment, submissions=args.submissions, course_dir=args.course_dir,
                   out=args.out, workers=args.workers, scheduler=args.scheduler,
                   limits=Limits(cpu_per_request=args.cpu_per_cell, cpu_total=args.cpu_per_notebook,
                                 memory=args.memory_limit),
                   force=args.force, student_pattern=args.student_pattern,
                   sandbox=not args.no_sandbox, gradebook=args.gradebook, progress=not args.no_progress)
    try:
        summary = run(opts)
    except (GradingError, ValueError, OSError) as exc:
        print("grade-class: %s" % exc, file=sys.stderr)
        return 2
    print("%s: %d graded now, %d unchanged, %d to look at (%d could not be graded) -> %s"
          % (args.assignment, summary.graded, summary.skipped, summary.flagged, summary.errors,
             os.path.join(summary.out, "grades.csv")))
    if summary.interrupted:
        print("interrupted: run the same command again to grade the rest", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
