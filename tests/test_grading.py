"""grade-class on the bad-submission corpus (tests/grading_corpus/): outcomes, feedback, resumption.

The corpus is graded once (module fixture, two workers) and many things are asserted on that
run.  Timings are never asserted.  Regenerate the corpus with tests/grading_corpus/make_corpus.py.
"""
import base64
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

import psutil
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "tests", "grading_corpus")
COURSE = os.path.join(CORPUS, "course")
FLAT = os.path.join(CORPUS, "flat")
SOURCE_NB = os.path.join(COURSE, "solutions", "fixture", "fixture.ipynb")
with open(os.path.join(CORPUS, "expected.json")) as _f:
    EXPECTED = json.load(_f)

from grading.runner import Options, run  # noqa: E402

pytestmark = pytest.mark.slow

OPTS = dict(assignment="fixture", course_dir=COURSE, cell_timeout=5, notebook_timeout=12,
            memory_limit=2**30, progress=False)
CLI_OPTS = ["--cell-timeout", "5", "--notebook-timeout", "12", "--memory-limit", "1GiB", "--no-progress"]


@pytest.fixture(scope="module")
def templates(tmp_path_factory):
    """One template folder for the whole module: each run would otherwise build its own."""
    return str(tmp_path_factory.mktemp("templates"))


def hidden_lines():
    """Every non-trivial line of the hidden tests of the source notebook."""
    with open(SOURCE_NB) as f:
        nb = json.load(f)
    out = []
    for cell in nb["cells"]:
        inside = False
        for line in "".join(cell["source"]).split("\n"):
            if "BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "END HIDDEN TESTS" in line:
                inside = False
            elif inside and len(line.strip()) > 10:
                out.append(line.strip())
    assert len(out) >= 4
    return out


def read_csv(out):
    with open(os.path.join(out, "grades.csv"), newline="") as f:
        return {r["student"]: r for r in csv.DictReader(f)}


def text_of(path):
    with open(path, encoding="utf-8") as f:
        return html.unescape(re.sub(r"<[^>]+>", "", f.read()))


def kernel_processes(since):
    import psutil

    script = os.path.join(ROOT, "grading", "kernel.py")
    found = []
    for p in psutil.process_iter(["cmdline", "create_time"]):
        try:
            if p.info["cmdline"] and script in p.info["cmdline"] and p.info["create_time"] >= since - 1:
                found.append(p.pid)
        except psutil.Error:
            pass
    return found


def listing(path):
    return sorted(os.path.relpath(os.path.join(d, f), path) for d, _, fs in os.walk(path) for f in fs
                  if "__pycache__" not in d)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, templates):
    tmp = tmp_path_factory.mktemp("corpus")
    subs = tmp / "subs"
    shutil.copytree(FLAT, subs)
    out = str(tmp / "out")
    course_before = listing(COURSE)
    t0 = time.time()
    summary = run(Options(submissions=str(subs), out=out, workers=2, template_dir=templates, **OPTS))
    time.sleep(0.5)
    return {"out": out, "summary": summary, "rows": read_csv(out), "t0": t0, "course_before": course_before,
            "seconds": time.time() - t0}


# -- outcomes ---------------------------------------------------------------------------------

@pytest.mark.parametrize("student", sorted(EXPECTED))
def test_outcome(corpus, student):
    want = EXPECTED[student]
    row = corpus["rows"][student]
    assert row["status"].split(":")[0] == want["status"], row
    if want["mention"]:
        assert want["mention"].lower() in (row["status"] + " " + row["problems"]).lower(), row
    for test, points in want["scores"].items():
        assert float(row[test]) == points, (student, test, row)
    if want["status"] == "error":
        assert all(row[t] == "" for t in ("test_softmax", "test_rnn_step_shape", "test_rnn_step_values"))
        assert float(row["total"]) == 0
    elif len(want["scores"]) == 3:
        assert float(row["total"]) == sum(want["scores"].values())
    assert row["max"] == "6"


def test_every_submission_is_in_the_csv(corpus):
    assert set(corpus["rows"]) == set(EXPECTED)
    assert corpus["summary"].graded == len(EXPECTED)


def test_feedback_for_everyone(corpus):
    fb = os.path.join(corpus["out"], "feedback")
    assert sorted(os.listdir(fb)) == sorted(s + ".html" for s in EXPECTED)
    assert "could not be graded" in text_of(os.path.join(fb, "png.html"))
    assert "Score" in text_of(os.path.join(fb, "correct.html"))


def test_no_hidden_test_in_any_feedback(corpus):
    lines = hidden_lines()
    fb = os.path.join(corpus["out"], "feedback")
    for name in os.listdir(fb):
        with open(os.path.join(fb, name), encoding="utf-8") as f:
            raw = f.read()
        text = html.unescape(re.sub(r"<[^>]+>", "", raw))
        for line in lines:
            assert line not in text and line not in raw, (name, line)
        assert "SECRET-CANARY" not in raw and "secret_x" not in raw, name
        assert "BEGIN HIDDEN TESTS" not in raw, name
        assert "#grader-" not in raw and '"cmd"' not in raw, name   # nothing the grader injects
    # the instructor's copy does have them: the check above is not vacuous
    with open(os.path.join(corpus["out"], "autograded", "partial", "fixture.ipynb")) as f:
        text = f.read()
    assert "SECRET-CANARY" in text and "#grader-" not in text


def test_hidden_failures_say_which_test_and_why(corpus):
    fb = os.path.join(corpus["out"], "feedback")
    partial = text_of(os.path.join(fb, "partial.html"))
    assert "Test test_rnn_step_values failed" in partial
    assert "rnn_step values differ" in partial           # the checker's message is shown
    rnnkit = text_of(os.path.join(fb, "rnnkit.html"))
    assert "uses rnnkit" in rnnkit                        # the assignment's own check reports it
    cheat = text_of(os.path.join(fb, "cheat.html"))
    assert "each row of softmax(z) must sum to 1" in cheat


def test_spy_finds_nothing(corpus):
    text = text_of(os.path.join(corpus["out"], "feedback", "spy.html"))
    history = base64.b64decode(re.search(r"SPY-HISTORY ([A-Za-z0-9+/=]+)", text).group(1)).decode()
    assert "SECRET-CANARY" not in history and "secret_x" not in history
    found = re.search(r"SPY-FOUND (\d+) ([A-Za-z0-9+/=]+)", text)
    assert found.group(1) == "0", base64.b64decode(found.group(2)).decode()   # cwd, parents, HOME
    env = base64.b64decode(re.search(r"SPY-ENV ([A-Za-z0-9+/=]+)", text).group(1)).decode()
    assert "GRADING_" not in env
    assert "SPY-INPUT [[0.25" not in text                 # hidden inputs printed by its code: dropped
    assert "printed by your code during the hidden tests are not shown" in text
    assert not re.search(r"SPY-HOOK (check_|###|secret)", text)   # its pre_run_cell hook was removed


def test_gigantic_output_is_truncated(corpus):
    assert os.path.getsize(os.path.join(corpus["out"], "feedback", "bigoutput.html")) < 1_000_000
    with open(os.path.join(corpus["out"], "autograded", "bigoutput", "fixture.ipynb")) as f:
        assert len(f.read()) < 1_000_000


def test_writes_outside_do_not_reach_course_or_output(corpus):
    assert listing(COURSE) == corpus["course_before"]
    assert not any("escaped" in p for p in listing(corpus["out"]))
    import tempfile

    # not prevented (see grading/README.md): '../x' lands beside the sandboxes, '/tmp/x' in /tmp
    for p in ("/tmp/escaped-by-student-absolute.txt",
              os.path.join(tempfile.gettempdir(), "grading-sandboxes-%d" % os.getuid(), "escaped-by-student.txt")):
        if os.path.exists(p):
            os.unlink(p)


def test_log_and_summary(corpus):
    out = corpus["out"]
    with open(os.path.join(out, "grading.log")) as f:
        log = f.read()
    for student, want in EXPECTED.items():
        if want["status"] != "graded":
            assert re.search(r"WARNING +%s: %s" % (student, want["status"]), log), student
    assert "cheat: before test test_softmax the grader restored" in log
    with open(os.path.join(out, "summary.html")) as f:
        summary = f.read()
    assert "data:image/png;base64," in summary and "test_rnn_step_values" in summary
    assert os.path.getsize(os.path.join(out, "summary.png")) > 1000


def orphaned(pids):
    """The kernels whose grading worker is gone (other tests may be grading at the same time:
    their kernels still have a living parent)."""
    left = []
    for pid in pids:
        try:
            if psutil.Process(pid).ppid() == 1 or not psutil.pid_exists(psutil.Process(pid).ppid()):
                left.append(pid)
        except psutil.Error:
            pass
    return left


def test_no_kernel_left_running(corpus):
    deadline = time.time() + 10
    while orphaned(kernel_processes(corpus["t0"])) and time.time() < deadline:
        time.sleep(0.5)
    assert orphaned(kernel_processes(corpus["t0"])) == []


# -- resumption, layouts, zip, dask ----------------------------------------------------------------

def _copy(names, dest):
    os.makedirs(dest, exist_ok=True)
    for n in names:
        shutil.copy(os.path.join(FLAT, n + "_fixture.ipynb"), dest)


def test_rerun_grades_only_new_or_changed(tmp_path, templates):
    subs = str(tmp_path / "subs")
    out = str(tmp_path / "out")
    _copy(["correct", "partial", "notjson"], subs)
    opts = dict(submissions=subs, out=out, workers=2, template_dir=templates, **OPTS)
    s1 = run(Options(**opts))
    assert (s1.graded, s1.skipped) == (3, 0)
    first = read_csv(out)
    s2 = run(Options(**opts))
    assert (s2.graded, s2.skipped) == (0, 3)
    assert read_csv(out) == first
    # a changed submission is graded again, the others are kept
    shutil.copy(os.path.join(FLAT, "correct_fixture.ipynb"), os.path.join(subs, "partial_fixture.ipynb"))
    os.unlink(os.path.join(out, ".grading", "state", "notjson.json"))   # as if interrupted before it
    s3 = run(Options(**opts))
    assert (s3.graded, s3.skipped) == (2, 1)
    rows = read_csv(out)
    assert rows["partial"]["total"] == "6" and rows["correct"] == first["correct"]
    assert rows["notjson"]["status"].startswith("error")
    # a student whose file is gone leaves the table
    os.unlink(os.path.join(subs, "notjson_fixture.ipynb"))
    s4 = run(Options(**opts))
    assert (s4.graded, s4.skipped) == (0, 2)
    assert set(read_csv(out)) == {"correct", "partial"}


def test_nbgrader_layout_in_a_zip(tmp_path, templates):
    import zipfile

    zpath = tmp_path / "export.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        for student, src in (("alice", "correct"), ("bob", "partial")):
            z.write(os.path.join(FLAT, src + "_fixture.ipynb"), "course/submitted/%s/fixture/fixture.ipynb" % student)
        z.writestr("course/submitted/bob/fixture/timestamp.txt", "2026-11-20 10:00:00.000000 UTC")
        z.writestr("course/submitted/bob/fixture/notes.txt", "a file handed in with the notebook")
    out = str(tmp_path / "out")
    s = run(Options(submissions=str(zpath), out=out, workers=2, template_dir=templates, **OPTS))
    rows = read_csv(out)
    assert (rows["alice"]["total"], rows["bob"]["total"]) == ("6", "3")
    assert s.graded == 2 and all(r["status"] == "graded" for r in rows.values())
    s = run(Options(submissions=str(zpath), out=out, workers=2, template_dir=templates, force=True, **OPTS))
    assert (s.graded, s.skipped) == (2, 0)


def test_flat_layout_with_folders(tmp_path, templates):
    subs = tmp_path / "subs"
    (subs / "carol").mkdir(parents=True)
    shutil.copy(os.path.join(FLAT, "correct_fixture.ipynb"), subs / "carol" / "fixture.ipynb")
    shutil.copy(os.path.join(FLAT, "partial_fixture.ipynb"), subs / "dave.ipynb")
    (subs / "readme.txt").write_text("not a submission")
    out = tmp_path / "out"
    s = run(Options(submissions=str(subs), out=str(out), workers=2, template_dir=templates, **OPTS))
    rows = read_csv(out)
    assert (rows["carol"]["total"], rows["dave"]["total"]) == ("6", "3")
    assert s.graded == 2
    with open(out / "grading.log") as f:
        assert "ignored readme.txt" in f.read()


def test_dask_local_cluster(tmp_path, templates):
    distributed = pytest.importorskip("distributed")
    subs = str(tmp_path / "subs")
    _copy(["partial", "dies"], subs)
    out = str(tmp_path / "out")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        s = run(Options(submissions=subs, out=out, scheduler=cluster.scheduler_address, template_dir=templates,
                        **OPTS))
    rows = read_csv(out)
    assert s.graded == 2
    assert (rows["partial"]["total"], rows["dies"]["total"]) == ("3", "2")
    assert rows["dies"]["status"].startswith("kernel-died")
    assert os.path.isfile(os.path.join(out, "feedback", "partial.html"))


def test_interrupted_run_resumes(tmp_path):
    subs = str(tmp_path / "subs")
    _copy(["correct", "loop", "nan"], subs)   # graded in this order; "loop" takes >= 5 s
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "grading", "fixture", subs, "--course-dir", COURSE, "--out", str(out),
           "--workers", "1"] + CLI_OPTS
    t0 = time.time()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    state = out / ".grading" / "state"
    deadline = time.time() + 240
    def done_states():
        return {n for n in os.listdir(state) if n.endswith(".json") and not n.startswith(".")} \
            if state.is_dir() else set()
    while time.time() < deadline and not done_states():
        time.sleep(0.2)
    # this run's kernels (other tests may grade at the same time, so only its own descendants count)
    ours = set(kernel_processes(t0)) & {c.pid for c in psutil.Process(proc.pid).children(recursive=True)}
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    done = done_states()
    assert 1 <= len(done) < 3
    assert "interrupted" in err
    time.sleep(1)
    assert [pid for pid in ours if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE] == []
    s = run(Options(submissions=subs, out=str(out), workers=2, **OPTS))
    assert s.skipped == len(done) and s.graded == 3 - len(done)
    rows = read_csv(str(out))
    assert [rows[s]["status"].split(":")[0] for s in ("correct", "loop", "nan")] == ["graded", "timeout", "graded"]
