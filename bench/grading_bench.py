"""How fast grade-class grades a class, beside the ceiling the CPUs allow and plain nbgrader.

    python bench/grading_bench.py                               # 60 submissions of 02_vanilla_rnn, 2 workers
    python bench/grading_bench.py --n 120 --workers 2 --nbgrader 6

Submissions are made from the assignment itself, in turn: correct (the solution's answers typed
into the released notebook), wrong (left as released: the stubs raise) and partial (half of the
answers). grade-class grades them sandboxed, each in its own bubblewrap process. Printed:

* throughput: submissions per minute of wall time;
* the CPU-bound ceiling: cores x 60 / (CPU seconds per submission, every process counted);
* for reference, plain ``nbgrader autograde`` (its own kernel, no sandbox, serial) on ``--nbgrader``
  of the submissions, in submissions per minute.

Timings are printed, never asserted.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from course.sandbox import Limits  # noqa: E402
from grading.runner import Options, run  # noqa: E402

SOLUTION_MARK = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*$")


def cpu_seconds() -> float:
    """CPU time the whole machine has spent busy so far (all cores). The sandboxes' processes are
    not all reaped by this process's children (bubblewrap's own init reaps them), so per-process
    accounting would miss them; the machine's busy time counts them, and also anything else that
    runs meanwhile: an upper bound on grading's CPU, tight on an otherwise idle machine."""
    import psutil

    t = psutil.cpu_times()
    return t.user + t.nice + t.system + getattr(t, "irq", 0) + getattr(t, "softirq", 0)


def make_submissions(name: str, n: int, dest: Path) -> None:
    """``dest/<student>/<name>/<name>.ipynb`` for n students: correct, wrong, partial in turn."""
    release = json.loads((ROOT / "exercises" / name / f"{name}.ipynb").read_text())
    source = json.loads((ROOT / "solutions" / name / f"{name}.ipynb").read_text())
    answers = {c["metadata"]["nbgrader"]["grade_id"]: "\n".join(
        line for line in "".join(c["source"]).split("\n") if not SOLUTION_MARK.match(line))
        for c in source["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("solution")}
    for i in range(n):
        kind = ("correct", "wrong", "partial")[i % 3]
        nb = json.loads(json.dumps(release))
        filled = 0
        for cell in nb["cells"]:
            gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if gid in answers:
                if kind == "correct" or (kind == "partial" and filled < len(answers) // 2):
                    cell["source"] = answers[gid]
                filled += 1
        folder = dest / f"s{i:03d}-{kind}" / name
        folder.mkdir(parents=True)
        (folder / f"{name}.ipynb").write_text(json.dumps(nb))


def bench_grade_class(name: str, subs: Path, out: Path, workers: int) -> tuple[float, float, int]:
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    summary = run(Options(assignment=name, submissions=str(subs), course_dir=str(ROOT), out=str(out),
                          workers=workers, limits=Limits(), progress=False))
    return time.perf_counter() - t0, cpu_seconds() - cpu0, summary.graded


def bench_plain_nbgrader(name: str, subs: Path, n: int, work: Path) -> float:
    """Seconds per submission of stock ``nbgrader autograde`` (kernel, no sandbox), serial."""
    course = work / "nbgrader-course"
    shutil.copytree(ROOT / "solutions" / name, course / "source" / name)
    (course / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.CourseDirectory.root = {str(course)!r}\nc.OverwriteCells.add_missing_cells = True\n")
    for folder in sorted(subs.iterdir())[:n]:
        shutil.copytree(folder, course / "submitted" / folder.name)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    nbgrader = [sys.executable, "-m", "nbgrader"]
    subprocess.run(nbgrader + ["generate_assignment", name, "--log-level=ERROR"], cwd=course, env=env, check=True)
    t0 = time.perf_counter()
    subprocess.run(nbgrader + ["autograde", name, "--log-level=ERROR"], cwd=course, env=env, check=True)
    return (time.perf_counter() - t0) / n


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--assignment", default="02_vanilla_rnn")
    p.add_argument("--n", type=int, default=60, help="submissions to grade")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--nbgrader", type=int, default=6, help="submissions for the plain-nbgrader reference (0: skip)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="grading-bench-") as tmp:
        work = Path(tmp)
        make_submissions(args.assignment, args.n, work / "subs")
        wall, cpu, graded = bench_grade_class(args.assignment, work / "subs", work / "out", args.workers)
        cores = os.cpu_count() or 1
        load = os.getloadavg()[0]
        print(f"grade-class, {args.assignment}, {graded} submissions, {args.workers} workers "
              f"(load average {load:.1f} on {cores} cores)")
        print(f"  throughput           {60 * graded / wall:7.1f} submissions/min  ({wall:.1f} s wall)")
        print(f"  CPU per submission   {cpu / graded:7.2f} s  (busy time of the whole machine during the run)")
        print(f"  CPU-bound ceiling    {60 * cores / (cpu / graded):7.1f} submissions/min on {cores} cores")
        if args.nbgrader:
            per = bench_plain_nbgrader(args.assignment, work / "subs", min(args.nbgrader, args.n), work)
            print(f"  plain nbgrader       {60 / per:7.1f} submissions/min  (autograde, serial, kernel, no sandbox; "
                  f"{min(args.nbgrader, args.n)} submissions)")


if __name__ == "__main__":
    main()
