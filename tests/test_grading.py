"""grade-class on a class that tries everything (tests/grading_corpus.py): outcomes, attacks on the
grader and on classmates, feedback, the gradebook, reruns, layouts and Dask.

The corpus is graded once (module fixture, two workers, sandboxed) and many things are asserted on
that run. Limits are CPU seconds, so a loaded machine changes how long this takes, not what it
finds; no test measures time.
"""
from __future__ import annotations

import csv
import html
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import psutil
import pytest
from grading_corpus import ATTACKS, FULL, NAME, TESTS, attacks_on, build, canary, hidden_lines

from course.sandbox import FIRST_UID, SLOTS, Limits
from grading.discover import clean_id
from grading.runner import Options, run

ROOT = Path(__file__).resolve().parent.parent
LIMITS = Limits(memory=2**30, cpu_per_request=5, cpu_total=120, wall_factor=2, wall_slack=5)

pytestmark = pytest.mark.slow


def options(subs, out, **kw) -> Options:
    return Options(assignment=NAME, submissions=str(subs), course_dir=str(ROOT), out=str(out), workers=2,
                   limits=LIMITS, progress=False, **kw)


def read_csv(out) -> dict:
    with open(Path(out) / "grades.csv", newline="", encoding="utf-8") as f:
        return {r["student"]: r for r in csv.DictReader(f)}


def text_of(path: Path) -> str:
    """The text a reader sees on an HTML page (no markup, styles or scripts)."""
    page = re.sub(r"<(style|script)\b.*?</\1>", "", path.read_text(encoding="utf-8"), flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def sandbox_processes(marker: str) -> list[int]:
    """Processes started by the grading run whose output folder is ``marker`` that are still alive:
    its bubblewrap processes and everything below them (other runs on the machine are not ours)."""
    def ours(p) -> bool:
        for q in [p, *p.parents()]:
            if marker in " ".join(q.cmdline()):
                return True
        return False

    found = []
    for p in psutil.process_iter():
        try:
            if p.uids().real in range(FIRST_UID, FIRST_UID + SLOTS) or "bwrap" in p.name():
                if ours(p) and p.status() != psutil.STATUS_ZOMBIE:
                    found.append(p.pid)
        except psutil.Error:
            pass
    return found


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("corpus")
    expect = build(tmp / "subs")
    out = tmp / "out"
    summary = run(options(tmp / "subs", out))
    time.sleep(0.5)
    return {"out": out, "expect": {clean_id(k): v for k, v in expect.items()}, "rows": read_csv(out),
            "summary": summary, "names": {clean_id(k): k for k in expect}}


def _feedback(corpus, student) -> str:
    return text_of(corpus["out"] / "feedback" / f"{student}.html")


# -- outcomes ---------------------------------------------------------------------------------

def test_every_submission_has_its_own_row(corpus):
    assert set(corpus["rows"]) == set(corpus["expect"])
    assert len({clean_id("hal?"), clean_id("hal!")}) == 2
    assert {"Алиса", "Борис", "李雷"} <= set(corpus["rows"])


@pytest.mark.parametrize("student", sorted(ATTACKS) + [
    "correct", "honest", "partial", "typo", "nan", "shapes", "loop", "sleeper", "slowfn", "membomb", "memhog", "dies",
    "exits", "bigoutput", "forkbomb", "linger", "deleted", "edited", "stripped", "fakegrade", "forger", "peer",
    "notjson", "png", "pyfile", "empty", "mallory", "xss"])
def test_outcome(corpus, student):
    want, row = corpus["expect"][student], corpus["rows"][student]
    assert row["status"].split(":")[0] == want.status, row
    if want.mention:
        where = row["status"] + " " + row["problems"] + " " + _feedback(corpus, student)
        assert want.mention.lower() in where.lower(), (want.mention, row)
    for test, points in want.scores.items():
        assert float(row[test]) == points, (student, test, row)
    if want.status in ("error", "refused"):
        assert all(row[t] == "" for t in TESTS) and float(row["total"]) == 0


def test_attacks_score_nothing_and_are_flagged(corpus):
    for student in ATTACKS:
        row = corpus["rows"][student]
        assert float(row["total"]) == 0, row
        assert row["status"] != "graded", row   # in the summary's list of submissions to look at
    summary = text_of(corpus["out"] / "summary.html")
    assert all(s in summary for s in ATTACKS)


@pytest.mark.parametrize("name", ["03_bptt", "06_gru", "07_lstm"])
def test_attacks_on_other_assignments_score_nothing_and_are_flagged(name, tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    for student, nb in attacks_on(name).items():
        (subs / f"{student}_{name}.ipynb").write_text(json.dumps(nb))
    run(Options(assignment=name, submissions=str(subs), course_dir=str(ROOT), out=str(tmp_path / "out"),
                workers=2, limits=LIMITS, progress=False))
    rows = read_csv(tmp_path / "out")
    assert len(rows) == 5
    for student, row in rows.items():
        assert float(row["total"]) == 0 and row["status"] != "graded", (name, student, row)
    assert sandbox_processes(str(tmp_path / "out")) == []


def test_honest_code_written_differently_gets_full_marks_and_sees_its_prints(corpus):
    row = corpus["rows"]["honest"]
    assert float(row["total"]) == sum(FULL.values()) and row["status"] == "graded", row
    feedback = _feedback(corpus, "honest")
    assert "your code printed:" in feedback and "step on a batch of 3" in feedback


def test_failures_show_one_message_with_the_students_line(corpus):
    feedback = _feedback(corpus, "slowfn")
    assert feedback.count("did not finish") >= 1
    for student in ("nan", "partial"):
        text = _feedback(corpus, student)
        assert "Traceback" not in text and "course/" not in text and "site-packages" not in text


# -- nothing leaks, nothing survives --------------------------------------------------------------

def test_no_hidden_test_and_no_classmate_in_any_feedback(corpus):
    hidden = hidden_lines()
    canaries = {s: canary(name) for s, name in corpus["names"].items()}
    for path in (corpus["out"] / "feedback").glob("*.html"):
        text = path.read_text(encoding="utf-8")
        plain = text_of(path)
        for line in hidden:
            assert line not in text and line not in plain, (path.name, line)
            assert json.dumps(line)[1:-1] not in text, (path.name, line)
        owner = path.stem
        for student, mark in canaries.items():
            if student != owner:
                assert mark not in plain, (path.name, "shows", student)


def test_feedback_runs_no_markup_from_the_notebook(corpus):
    page = (corpus["out"] / "feedback" / "xss.html").read_text(encoding="utf-8")
    assert "<script>alert" not in page and not re.search(r"<img[^>]*onerror", page)
    assert "XSS-MARKDOWN" in page and "XSS-PRINT" in page      # still shown, as text


def test_peer_reading_finds_only_its_own_sandbox(corpus):
    feedback = _feedback(corpus, "peer")
    assert "files seen:" in feedback
    for forbidden in ("solutions", "grades.csv", "correct_02.ipynb", "gradebook", "nbgrader_config"):
        assert forbidden not in feedback, forbidden


def test_forged_files_change_nobody_else(corpus):
    rows = corpus["rows"]
    assert rows["correct"]["status"] == "graded" and float(rows["correct"]["total"]) == 10
    state = json.loads((corpus["out"] / ".grading" / "state" / "correct.json").read_text())
    assert state["status"] == "graded" and state["total"] == 10
    assert not (ROOT / "correct.json").exists() and not Path("/root/grades.csv").exists()


def test_no_process_of_any_sandbox_survives(corpus):
    assert sandbox_processes(str(corpus["out"])) == []


def test_symlinked_submission_is_refused_not_graded_as_someone_else(corpus):
    assert corpus["rows"]["mallory"]["status"].startswith("refused")
    assert "symbolic link" in _feedback(corpus, "mallory")


# -- reports and gradebook --------------------------------------------------------------------

def test_summary_lists_what_to_look_at(corpus):
    summary = text_of(corpus["out"] / "summary.html")
    for student in ("loop", "membomb", "dies", "mallory", "notjson"):
        assert student in summary
    log = (corpus["out"] / "grading.log").read_text(encoding="utf-8")
    assert "sandboxed (bubblewrap)" in log


def test_scores_are_in_an_nbgrader_gradebook(corpus, tmp_path):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{corpus['out'] / 'gradebook.db'}") as gb:
        for student in ("correct", "partial", "attack-stack"):
            submission = gb.find_submission(NAME, student)
            assert submission.score == float(corpus["rows"][student]["total"]), student
    exported = tmp_path / "export.csv"
    result = subprocess.run([sys.executable, "-m", "nbgrader", "export", f"--db=sqlite:///{corpus['out'] / 'gradebook.db'}",
                             f"--to={exported}"], cwd=tmp_path, capture_output=True, text=True,
                            env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"})
    assert result.returncode == 0, result.stderr[-2000:]
    with open(exported, newline="") as f:
        scores = {r["student_id"]: float(r["score"]) for r in csv.DictReader(f)}
    assert scores["correct"] == 10 and scores["partial"] == 8


# -- runs, layouts, executors -----------------------------------------------------------------

@pytest.fixture(scope="module")
def three(tmp_path_factory):
    """Three submissions of the corpus, for the runs below."""
    folder = tmp_path_factory.mktemp("three")
    build(folder / "all")
    return {name: folder / "all" / f"{name}_02.ipynb" for name in ("correct", "partial", "notjson", "dies")}


def test_rerun_grades_only_new_or_changed(tmp_path, three):
    subs, out = tmp_path / "subs", tmp_path / "out"
    subs.mkdir()
    for name in ("correct", "partial", "notjson"):
        shutil.copy(three[name], subs)
    first = run(options(subs, out))
    assert (first.graded, first.skipped) == (3, 0)
    rows = read_csv(out)
    again = run(options(subs, out))
    assert (again.graded, again.skipped) == (0, 3) and read_csv(out) == rows
    shutil.copy(three["correct"], subs / "partial_02.ipynb")
    (out / ".grading" / "state" / "notjson.json").unlink()   # as if interrupted before it
    third = run(options(subs, out))
    assert (third.graded, third.skipped) == (2, 1)
    assert read_csv(out)["partial"]["total"] == "10"
    (subs / "notjson_02.ipynb").unlink()
    fourth = run(options(subs, out))
    assert (fourth.graded, fourth.skipped) == (0, 2) and set(read_csv(out)) == {"correct", "partial"}


def test_nbgrader_layout_in_a_zip(tmp_path, three):
    path = tmp_path / "export.zip"
    with zipfile.ZipFile(path, "w") as z:
        for student, name in (("alice", "correct"), ("bob", "partial")):
            z.write(three[name], f"course/submitted/{student}/{NAME}/{NAME}.ipynb")
        z.writestr(f"course/submitted/bob/{NAME}/timestamp.txt", "2026-11-20 10:00:00.000000 UTC")
        z.writestr(f"course/submitted/bob/{NAME}/notes.txt", "a file handed in with the notebook")
    summary = run(options(path, tmp_path / "out"))
    rows = read_csv(tmp_path / "out")
    assert (rows["alice"]["total"], rows["bob"]["total"]) == ("10", "8") and summary.graded == 2


def test_dask_local_cluster(tmp_path, three):
    distributed = pytest.importorskip("distributed")
    subs = tmp_path / "subs"
    subs.mkdir()
    for name in ("partial", "dies"):
        shutil.copy(three[name], subs)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        summary = run(Options(assignment=NAME, submissions=str(subs), course_dir=str(ROOT), out=str(tmp_path / "out"),
                              scheduler=cluster.scheduler_address, limits=LIMITS, progress=False))
    rows = read_csv(tmp_path / "out")
    assert summary.graded == 2 and rows["partial"]["total"] == "8"
    assert rows["dies"]["status"].startswith("crashed") and rows["dies"]["total"] == "10"


def test_interrupted_run_resumes(tmp_path, three):
    subs, out = tmp_path / "subs", tmp_path / "out"
    subs.mkdir()
    for name in ("correct", "partial", "dies"):
        shutil.copy(three[name], subs)
    cmd = [sys.executable, "-m", "grading", NAME, str(subs), "--course-dir", str(ROOT), "--out", str(out),
           "--workers", "1", "--no-progress", "--cpu-per-cell", "5"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    state = out / ".grading" / "state"
    deadline = time.time() + 300
    while time.time() < deadline and not (state.is_dir() and any(state.glob("*.json"))):
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    done = len(list(state.glob("*.json")))
    assert 1 <= done < 3 and "interrupted" in err
    time.sleep(0.5)
    assert sandbox_processes(str(out)) == []
    again = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"{3 - done} graded now, {done} unchanged" in again.stdout
    assert read_csv(out)["correct"]["total"] == "10"


def test_without_bubblewrap_grading_refuses_unless_told(tmp_path, three, monkeypatch):
    import course.sandbox

    subs = tmp_path / "subs"
    subs.mkdir()
    shutil.copy(three["correct"], subs)
    monkeypatch.setattr(course.sandbox, "bubblewrap", lambda: None)
    from grading.course_dir import GradingError

    with pytest.raises(GradingError, match="--no-sandbox"):
        run(options(subs, tmp_path / "out"))
    run(options(subs, tmp_path / "out2", sandbox=False))
    row = read_csv(tmp_path / "out2")["correct"]
    assert row["status"] == "review: not sandboxed" and row["total"] == "10"
