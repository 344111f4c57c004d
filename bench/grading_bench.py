"""Benchmark of grade-class against a plain serial ``nbgrader autograde`` of the same submissions.

    python bench/grading_bench.py                       # 30 synthetic submissions of the fixture
    python bench/grading_bench.py --n 60 --workers 2
    python bench/grading_bench.py --assignment 02_vanilla_rnn --course-dir .   # a real assignment

Submissions are made from the assignment itself: the released notebook with the answer cells
filled from the source (correct), left as released (wrong: the stubs raise) or half filled
(partial), in turn.  Both graders get the same files (nbgrader's layout); the nbgrader runs are a
single ``nbgrader autograde`` call (serial, one kernel after the other), the same followed by
``nbgrader generate_feedback`` (grade-class writes feedback too), and ``nbgrader autograde
--student`` once per student (how a grading script often calls it), measured on a few students
and extrapolated.  The scores of both are compared.  Timings are printed, never asserted.
"""
from __future__ import annotations

import argparse
import csv
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import nbformat  # noqa: E402

from grading import course as coursemod  # noqa: E402
from grading.runner import Options, run  # noqa: E402

SOLUTION = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*$")


def cpu_seconds() -> float:
    """CPU time of this process and of all its finished children (workers, kernels, nbgrader)."""
    a = resource.getrusage(resource.RUSAGE_SELF)
    b = resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def solution_code(source: str) -> str:
    return "\n".join(line for line in source.split("\n") if not SOLUTION.match(line))


def make_submissions(template, n: int, dest: str) -> dict:
    """``dest/<student>/<assignment>/<notebook>.ipynb``; returns student -> kind."""
    a = template.assignment
    kinds = {}
    for i in range(n):
        kind = ("correct", "wrong", "partial")[i % 3]
        student = "s%03d" % i
        kinds[student] = kind
        os.makedirs(os.path.join(dest, student, a))
        for name in template.notebooks:
            release = nbformat.read(os.path.join(template.path, "release", a, name + ".ipynb"), as_version=4)
            source = nbformat.read(os.path.join(template.path, "source", a, name + ".ipynb"), as_version=4)
            answers = {}
            for c in source.cells:
                nbg = c.metadata.get("nbgrader", {})
                if nbg.get("solution") and c.cell_type == "code":
                    answers[nbg["grade_id"]] = solution_code(c.source)
            filled = 0
            for c in release.cells:
                gid = c.metadata.get("nbgrader", {}).get("grade_id")
                if gid in answers:
                    if kind == "correct" or (kind == "partial" and filled < len(answers) // 2 + 1):
                        c.source = answers[gid]
                    filled += 1
            nbformat.write(release, os.path.join(dest, student, a, name + ".ipynb"))
    return kinds


def nbgrader_env() -> dict:
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env


def nbgrader(args, cwd, check=True):
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "nbgrader"] + args, cwd=cwd, env=nbgrader_env(),
                          capture_output=True, text=True)
    if check and proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit("nbgrader %s failed" % " ".join(args))
    return time.monotonic() - t0


def setup_nbgrader_course(course_dir, template, subs, dest, cell_timeout):
    a = template.assignment
    os.makedirs(dest)
    shutil.copytree(os.path.join(template.path, "source", a), os.path.join(dest, "source", a))
    shutil.copytree(subs, os.path.join(dest, "submitted"))
    with open(os.path.join(dest, "nbgrader_config.py"), "w") as f:
        f.write("c = get_config()\n"
                "c.CourseDirectory.root = '.'\n"
                "c.CourseDirectory.course_id = 'bench'\n"
                "c.OverwriteCells.add_missing_cells = True\n"
                "c.Execute.timeout = %d\n"
                "c.ClearSolutions.code_stub = {'python': '# YOUR CODE HERE\\nraise NotImplementedError()'}\n"
                % cell_timeout)
    nbgrader(["generate_assignment", a, "--force"], dest)


def nbgrader_scores(dest, assignment):
    from nbgrader.api import Gradebook

    out = {}
    with Gradebook("sqlite:///" + os.path.join(dest, "gradebook.db"), "bench") as gb:
        for sub in gb.assignment_submissions(assignment):
            out[sub.student_id] = round(sub.score, 3)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=30, help="number of submissions (default 30)")
    p.add_argument("--assignment", default="fixture")
    p.add_argument("--course-dir", default=os.path.join(ROOT, "tests", "grading_corpus", "course"))
    p.add_argument("--workers", type=int, default=None, help="grade-class workers (default: all cores)")
    p.add_argument("--cell-timeout", type=int, default=60)
    p.add_argument("--no-baseline", action="store_true", help="only time grade-class")
    p.add_argument("--per-student", type=int, default=3,
                   help="students timed with one nbgrader CLI call each (0: skip)")
    p.add_argument("--compare", action="store_true",
                   help="also time grade-class without the kernel fork server, and without pre-started kernels")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = p.parse_args(argv)

    tmp = tempfile.mkdtemp(prefix="grading-bench-")
    rows = []
    try:
        t0 = time.monotonic()
        template = coursemod.build_template(os.path.abspath(args.course_dir), args.assignment,
                                            os.path.join(tmp, "templates"))
        subs = os.path.join(tmp, "submitted")
        kinds = make_submissions(template, args.n, subs)
        print("made %d submissions of %s in %.1fs (%s)" % (args.n, args.assignment, time.monotonic() - t0,
                                                          ", ".join("%d %s" % (list(kinds.values()).count(k), k)
                                                                    for k in ("correct", "partial", "wrong"))))
        workers = args.workers or os.cpu_count() or 1
        variants = [("grade-class, %d workers" % workers, {})]
        if args.compare:
            variants.append(("grade-class, %d workers, no fork server" % workers, {"zygote": False}))
            variants.append(("grade-class, %d workers, no fork server, no pre-start" % workers,
                             {"zygote": False, "prestart": False}))
        scores_gc = {}
        for label, extra in variants:
            out = os.path.join(tmp, "out-%d" % len(rows))
            opts = Options(assignment=args.assignment, submissions=subs, course_dir=args.course_dir, out=out,
                           workers=workers, cell_timeout=args.cell_timeout, progress=False, force=True,
                           extra=extra)
            # the template is built (once per assignment version) before the clock starts
            coursemod.build_template(os.path.abspath(args.course_dir), args.assignment,
                                     os.path.join(out, ".grading"), opts.grading_key())
            t0 = time.monotonic()
            c0 = cpu_seconds()
            summary = run(opts)
            wall = time.monotonic() - t0
            cpu = cpu_seconds() - c0
            results = summary.results
            ks = [r["timings"].get("kernel_start_s") for r in results if r.get("timings", {}).get("kernel_start_s")]
            per = [r.get("seconds", 0) for r in results]
            bad = [r["student"] for r in results if r["status"] != "graded"]
            rows.append((label, len(results), wall, sum(ks) / max(1, len(ks)), sum(per) / max(1, len(per)),
                         cpu / len(results)))
            if bad:
                print("  %s: not 'graded': %s" % (label, ", ".join(bad)))
            if not scores_gc:
                with open(os.path.join(out, "grades.csv")) as f:
                    scores_gc = {r["student"]: round(float(r["total"]), 3) for r in csv.DictReader(f)}

        if not args.no_baseline:
            nbg_dir = os.path.join(tmp, "nbgrader-course")
            setup_nbgrader_course(args.course_dir, template, subs, nbg_dir, args.cell_timeout)
            c0 = cpu_seconds()
            wall = nbgrader(["autograde", args.assignment, "--force"], nbg_dir, check=False)
            cpu = cpu_seconds() - c0
            rows.append(("nbgrader autograde (1 call, serial)", args.n, wall, None, wall / args.n, cpu / args.n))
            scores_nb = nbgrader_scores(nbg_dir, args.assignment)
            c0 = cpu_seconds()
            wall_fb = nbgrader(["generate_feedback", args.assignment, "--force"], nbg_dir, check=False)
            cpu += cpu_seconds() - c0
            rows.append(("  + nbgrader generate_feedback", args.n, wall + wall_fb, None, (wall + wall_fb) / args.n,
                         cpu / args.n))
            if args.per_student:
                k = min(args.per_student, args.n)
                t = 0.0
                c0 = cpu_seconds()
                for student in sorted(kinds)[:k]:
                    t += nbgrader(["autograde", args.assignment, "--student", student, "--force"], nbg_dir,
                                  check=False)
                cpu = cpu_seconds() - c0
                rows.append(("nbgrader autograde --student, per student (x%d, extrapolated)" % k, args.n,
                             t / k * args.n, None, t / k, cpu / k))
            same = sum(1 for s in kinds if scores_nb.get(s) == scores_gc.get(s))
            print("scores: grade-class and nbgrader agree on %d of %d submissions" % (same, args.n))
            for s in sorted(kinds):
                if scores_nb.get(s) != scores_gc.get(s):
                    print("  %s (%s): grade-class %s, nbgrader %s" % (s, kinds[s], scores_gc.get(s), scores_nb.get(s)))

        print()
        cores = os.cpu_count() or 1
        print("| %-62s | %5s | %8s | %9s | %10s | %14s | %10s | %15s |" % (
            "run", "subs", "wall s", "subs/min", "s per sub", "kernel start s", "CPU s/sub", "CPU-bound max/min"))
        print("|" + "-" * 64 + "|-------|----------|-----------|------------|----------------|------------|"
              "-----------------|")
        for label, n, wall, ks, per, cpu in rows:
            parallel = label.startswith("grade-class")
            print("| %-62s | %5d | %8.1f | %9.1f | %10.2f | %14s | %10.2f | %15s |" % (
                label, n, wall, n / wall * 60 if wall else 0, per, "%.2f" % ks if ks else "-", cpu,
                "%.0f" % (cores * 60 / cpu) if parallel and cpu else "-"))
        print()
        print("s per sub: grade-class: mean time one worker spends on a submission; nbgrader: wall / n.")
        print("CPU s/sub: CPU time of the run (grader, workers, kernels; nbgrader's processes) per submission.")
        print("CPU-bound max/min: %d cores x 60 / CPU s per sub, what the machine could do with nothing else "
              "running." % cores)
        print("machine: %d cores; load average %s" % (os.cpu_count(), " ".join("%.1f" % x for x in os.getloadavg())))
    finally:
        if args.keep:
            print("kept", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
