"""Regenerate the grading test corpus: the fixture course's source notebook and the submissions.

    python tests/grading_corpus/make_corpus.py

The source notebook (course/solutions/fixture/fixture.ipynb) has two answer cells and three test
cells (6 points; one visible test, two with hidden tests).  The submissions in ``flat/`` are the
released notebook (made by nbgrader generate_assignment, so cell ids match) with the answers
filled in, one per kind of good or bad submission; ``EXPECTED`` below is what grading must give.
"""
import base64
import json
import os
import shutil
import sys
import tempfile

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = os.path.dirname(os.path.abspath(__file__))
COURSE = os.path.join(HERE, "course")
FLAT = os.path.join(HERE, "flat")

SOFTMAX = '''def softmax(z):
    """Softmax over the last axis of z."""
    z = np.asarray(z, dtype=float)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)'''
RNN_STEP = '''def rnn_step(x, h, W_ih, W_hh, b):
    """h_t = tanh(W_ih x_t + W_hh h_{t-1} + b) for x (B, I) and h (B, H)."""
    return np.tanh(x @ W_ih.T + h @ W_hh.T + b)'''

# test ids and points
TESTS = {"test_softmax": 2, "test_rnn_step_shape": 1, "test_rnn_step_values": 3}


def nbg(grade_id, *, grade=False, solution=False, locked=False, points=None):
    md = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3, "solution": solution}
    if points is not None:
        md["points"] = points
    return {"nbgrader": md}


def source_notebook():
    cells = [
        new_markdown_cell("# Fixture assignment\n\nImplement a softmax and one step of a vanilla RNN.",
                          metadata=nbg("intro", locked=True)),
        new_code_cell("import numpy as np\nfrom fixture_checks import check_softmax, check_rnn_step_shape, "
                      "check_rnn_step_values", metadata=nbg("setup", locked=True)),
        new_markdown_cell("## 1. Softmax\n\n$\\mathrm{softmax}(z)_i = e^{z_i} / \\sum_j e^{z_j}$ over the last axis."),
        new_code_cell('def softmax(z):\n    """Softmax over the last axis of z."""\n    ### BEGIN SOLUTION\n'
                      '    z = np.asarray(z, dtype=float)\n    e = np.exp(z - z.max(axis=-1, keepdims=True))\n'
                      '    return e / e.sum(axis=-1, keepdims=True)\n    ### END SOLUTION',
                      metadata=nbg("softmax_answer", solution=True)),
        new_code_cell("check_softmax(softmax)\n### BEGIN HIDDEN TESTS\n"
                      "# SECRET-CANARY-softmax: large inputs must not overflow\n"
                      "assert np.allclose(softmax(np.array([1000.0, 1000.0])), [0.5, 0.5]), "
                      "\"softmax must be stable for large inputs\"\n### END HIDDEN TESTS",
                      metadata=nbg("test_softmax", grade=True, points=2)),
        new_markdown_cell("## 2. One RNN step\n\n$h_t = \\tanh(W_{ih} x_t + W_{hh} h_{t-1} + b)$"),
        new_code_cell('def rnn_step(x, h, W_ih, W_hh, b):\n    """h_t = tanh(W_ih x_t + W_hh h_{t-1} + b) '
                      'for x (B, I) and h (B, H)."""\n    ### BEGIN SOLUTION\n'
                      '    return np.tanh(x @ W_ih.T + h @ W_hh.T + b)\n    ### END SOLUTION',
                      metadata=nbg("rnn_step_answer", solution=True)),
        new_code_cell("check_rnn_step_shape(rnn_step)", metadata=nbg("test_rnn_step_shape", grade=True, points=1)),
        new_code_cell("### BEGIN HIDDEN TESTS\n"
                      "secret_x = np.array([[0.25, -1.5, 2.0]])  # SECRET-CANARY-rnn-input\n"
                      "check_rnn_step_values(rnn_step, secret_x)\n"
                      "np.testing.assert_allclose(rnn_step(secret_x, np.zeros((1, 2)), np.ones((2, 3)), np.eye(2), "
                      "np.zeros(2)), np.tanh(np.full((1, 2), 0.75)))\n### END HIDDEN TESTS",
                      metadata=nbg("test_rnn_step_values", grade=True, points=3)),
    ]
    nb = new_notebook(cells=cells)
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                   "language_info": {"name": "python"}}
    for i, cell in enumerate(nb.cells):
        cell["id"] = "fixture-%02d" % i
    return nb


def release_notebook():
    """The student version, made by nbgrader exactly as `make exercises` would."""
    from grading.course import ensure_alembic_on_path, load_course_config, nbgrader_config
    from nbgrader.converters import GenerateAssignment
    from nbgrader.coursedir import CourseDirectory

    ensure_alembic_on_path()
    tmp = tempfile.mkdtemp()
    try:
        shutil.copytree(os.path.join(COURSE, "solutions", "fixture"), os.path.join(tmp, "source", "fixture"))
        cfg = nbgrader_config(load_course_config(COURSE), tmp, "fixture")
        cfg.GenerateAssignment.force = True
        GenerateAssignment(coursedir=CourseDirectory(config=cfg), config=cfg).start()
        return nbformat.read(os.path.join(tmp, "release", "fixture", "fixture.ipynb"), as_version=4)
    finally:
        shutil.rmtree(tmp)


def answered(release, softmax=SOFTMAX, rnn_step=RNN_STEP, extra_before=None):
    nb = nbformat.from_dict(json.loads(json.dumps(release)))
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid == "softmax_answer":
            cell.source = softmax
        elif gid == "rnn_step_answer":
            cell.source = rnn_step
    return nb


def cell_index(nb, gid):
    for i, c in enumerate(nb.cells):
        if c.metadata.get("nbgrader", {}).get("grade_id") == gid:
            return i
    raise KeyError(gid)


def insert_after(nb, gid, source):
    nb.cells.insert(cell_index(nb, gid) + 1, new_code_cell(source))


WRONG_RNN = '''def rnn_step(x, h, W_ih, W_hh, b):
    return np.tanh(x @ W_ih.T + b)  # forgot the recurrent term'''

LOOP = "import time\nwhile True:\n    time.sleep(0.01)"
STUBBORN = ("import time\nwhile True:\n    try:\n        time.sleep(0.05)\n    except KeyboardInterrupt:\n"
            "        pass")
SLOW = "import time\ntime.sleep({})"

SPY_FUNCTIONS = '''import os, sys, threading, time, base64

def rnn_step(x, h, W_ih, W_hh, b):
    print("SPY-INPUT", x.tolist())          # would show the hidden inputs
    return np.tanh(x @ W_ih.T + h @ W_hh.T + b)

def _leak(info):
    print("SPY-HOOK", info.raw_cell)
get_ipython().events.register("pre_run_cell", _leak)

_spy_stop = False
def _thread():
    for _ in range(2000):
        if _spy_stop:
            break
        try:
            print("SPY-THREAD", get_ipython().user_ns["In"][-1][:300])
        except Exception:
            pass
        time.sleep(0.005)
_spy_thread = threading.Thread(target=_thread, daemon=True)
_spy_thread.start()'''

SPY_LATER = '''_spy_stop = True
_spy_thread.join(5)
hist = "\\n".join(In)
print("SPY-HISTORY", base64.b64encode(hist.encode()).decode())
found = []
needle = ("SECRET-" + "CANARY").encode()   # a marker of the hidden tests (spelt apart: not in this cell)
def _look(top, depth):
    try:
        for dirpath, dirnames, filenames in os.walk(top):
            if dirpath.count(os.sep) - top.count(os.sep) >= depth:
                dirnames[:] = []
            for fn in filenames:
                if fn.endswith((".ipynb", ".db", ".json", ".py")):
                    p = os.path.join(dirpath, fn)
                    try:
                        with open(p, "rb") as f:
                            if needle in f.read(2_000_000):
                                found.append(p)
                    except OSError:
                        pass
    except OSError:
        pass
for top in (os.getcwd(), os.path.dirname(os.getcwd()), os.path.expanduser("~")):
    _look(top, 3)
print("SPY-FOUND", len(found), base64.b64encode(repr(found).encode()).decode())
print("SPY-ENV", base64.b64encode(repr(sorted(os.environ)).encode()).decode())'''

CHEAT = '''import builtins
import numpy
import numpy.testing
import fixture_checks

def softmax(z):
    return np.zeros_like(np.asarray(z, dtype=float))   # wrong

np.allclose = lambda *a, **k: True
numpy.testing.assert_allclose = lambda *a, **k: None
fixture_checks.check_rnn_step_values = lambda *a, **k: None
check_softmax = lambda f: None
builtins.abs = lambda x: 0'''

CHEAT_RNN = '''def rnn_step(x, h, W_ih, W_hh, b):
    return np.zeros((x.shape[0], W_hh.shape[0]))      # right shape, wrong values
np.isfinite = lambda a: np.ones(np.shape(a), dtype=bool)'''

RNNKIT = '''import rnnkit

def rnn_step(x, h, W_ih, W_hh, b):
    return rnnkit.rnn_step_forward(x, h, W_ih, W_hh, b)   # calls the library instead of solving'''

ESCAPE = '''import os
for target in ("../escaped-by-student.txt", os.path.expanduser("~/escaped-home.txt"),
               "/tmp/escaped-by-student-absolute.txt"):
    try:
        with open(target, "w") as f:
            f.write("written by a student kernel")
        print("wrote", target)
    except OSError as exc:
        print("could not write", target, exc)'''

# what grading must give: (points per test, status prefix, text that must appear in problems/status)
EXPECTED = {
    "correct": ({"test_softmax": 2, "test_rnn_step_shape": 1, "test_rnn_step_values": 3}, "graded", None),
    "partial": ({"test_softmax": 2, "test_rnn_step_shape": 1, "test_rnn_step_values": 0}, "graded", None),
    "loop": ({"test_softmax": 2, "test_rnn_step_shape": 1, "test_rnn_step_values": 3}, "timeout", "time limit"),
    "stubborn": ({"test_softmax": 2, "test_rnn_step_shape": 0, "test_rnn_step_values": 0}, "timeout", "ignored the interrupt"),
    "slow": ({"test_softmax": 2, "test_rnn_step_shape": 0, "test_rnn_step_values": 0}, "timeout", "notebook"),
    "notjson": ({}, "error", "not valid JSON"),
    "png": ({}, "error", "PNG"),
    "pyfile": ({}, "error", "Python source"),
    "deleted": ({"test_softmax": 2, "test_rnn_step_shape": 1, "test_rnn_step_values": 3}, "graded", "deleted"),
    "edited": ({"test_softmax": 2, "test_rnn_step_shape": 1, "test_rnn_step_values": 0}, "graded", "was edited"),
    "stripped": ({"test_softmax": 2, "test_rnn_step_shape": 1, "test_rnn_step_values": 0}, "graded", "stripped"),
    "sysexit": ({"test_softmax": 2, "test_rnn_step_shape": 1, "test_rnn_step_values": 3}, "graded", "sys.exit"),
    "dies": ({"test_softmax": 2, "test_rnn_step_shape": 0, "test_rnn_step_values": 0}, "kernel-died", "exited"),
    "membomb": ({"test_softmax": 2, "test_rnn_step_shape": 1, "test_rnn_step_values": 3}, "memory", "MemoryError"),
    # what runs after a notebook has taken all its memory passes or fails depending on how much
    # memory it needs: only the test before it is fixed
    "memhog": ({"test_softmax": 2}, "memory", "MemoryError"),
    "bigoutput": ({"test_softmax": 2, "test_rnn_step_shape": 1, "test_rnn_step_values": 3}, "graded", "truncated"),
    "escape": ({"test_softmax": 2, "test_rnn_step_shape": 1, "test_rnn_step_values": 3}, "graded", None),
    "spy": ({"test_softmax": 2, "test_rnn_step_shape": 1, "test_rnn_step_values": 3}, "graded", None),
    "rnnkit": ({"test_softmax": 2, "test_rnn_step_shape": 0, "test_rnn_step_values": 0}, "graded", None),
    "cheat": ({"test_softmax": 0, "test_rnn_step_shape": 1, "test_rnn_step_values": 0}, "graded", "numpy.allclose"),
    "shapes": ({"test_softmax": 0, "test_rnn_step_shape": 0, "test_rnn_step_values": 0}, "graded", None),
    "nan": ({"test_softmax": 0, "test_rnn_step_shape": 1, "test_rnn_step_values": 0}, "graded", None),
    "fakegrade": ({"test_softmax": 2, "test_rnn_step_shape": 1, "test_rnn_step_values": 3}, "graded", "unknown"),
}


def build(release):
    subs = {}
    subs["correct"] = answered(release)
    subs["partial"] = answered(release, rnn_step=WRONG_RNN)

    nb = answered(release)  # an infinite loop after the answers: that cell times out, the rest runs
    insert_after(nb, "softmax_answer", LOOP)
    subs["loop"] = nb

    nb = answered(release)  # a loop that swallows KeyboardInterrupt: the kernel must be killed
    insert_after(nb, "test_softmax", STUBBORN)
    subs["stubborn"] = nb

    nb = answered(release)  # each cell within the cell limit, all together over the notebook limit
    for _ in range(3):
        insert_after(nb, "test_softmax", SLOW.format(4))
    subs["slow"] = nb

    subs["notjson"] = b'{"cells": [ {"cell_type": "code", "source": "1+1" ,,, ]'
    subs["png"] = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")
    subs["pyfile"] = ("import numpy as np\n\n" + SOFTMAX + "\n\n" + RNN_STEP + "\n").encode()

    nb = answered(release)  # test cells deleted: nbgrader's add_missing_cells puts them back
    nb.cells = [c for c in nb.cells if not c.metadata.get("nbgrader", {}).get("grade")
                or c.metadata["nbgrader"].get("solution")]
    subs["deleted"] = nb

    nb = answered(release, rnn_step=WRONG_RNN)  # tests emptied or edited: restored from the source
    nb.cells[cell_index(nb, "test_rnn_step_values")].source = ""
    nb.cells[cell_index(nb, "test_rnn_step_shape")].source = "pass  # nothing to see here"
    nb.cells[cell_index(nb, "test_softmax")].source = "print('all good')"
    subs["edited"] = nb

    nb = answered(release, rnn_step=WRONG_RNN)  # nbgrader metadata stripped from the test cells
    for c in nb.cells:
        if c.metadata.get("nbgrader", {}).get("grade"):
            del c.metadata["nbgrader"]
    nb.cells[cell_index(nb, "softmax_answer") + 1].source = "pass"   # and one emptied as well
    subs["stripped"] = nb

    nb = answered(release, softmax=SOFTMAX + "\n\nimport sys\nsys.exit(0)")
    subs["sysexit"] = nb

    nb = answered(release)  # the kernel dies after the first test
    insert_after(nb, "test_softmax", "import os\nos._exit(1)")
    subs["dies"] = nb

    nb = answered(release)  # asks for far more memory than the limit: MemoryError, the rest runs
    insert_after(nb, "softmax_answer", "big = np.ones((200_000, 200_000))  # 298 GiB")
    subs["membomb"] = nb

    nb = answered(release)  # fills the memory and keeps it: what needs memory afterwards fails
    insert_after(nb, "test_softmax", "hog = []\nwhile True:\n    hog.append(np.ones(10 * 2**20 // 8))")
    subs["memhog"] = nb

    nb = answered(release)
    insert_after(nb, "softmax_answer", "for i in range(200):\n    print('x' * 100_000)\n"
                 "import sys\nsys.stderr.write('e' * 3_000_000)")
    subs["bigoutput"] = nb

    nb = answered(release)
    insert_after(nb, "softmax_answer", ESCAPE)
    subs["escape"] = nb

    nb = answered(release, rnn_step=SPY_FUNCTIONS)
    nb.cells.append(new_code_cell(SPY_LATER))
    subs["spy"] = nb

    subs["rnnkit"] = answered(release, rnn_step=RNNKIT)
    subs["cheat"] = answered(release, softmax=CHEAT, rnn_step=CHEAT_RNN)

    subs["shapes"] = answered(release, softmax="def softmax(z):\n    return np.asarray(z).ravel() / 3",
                              rnn_step="def rnn_step(x, h, W_ih, W_hh, b):\n    return np.tanh(x @ W_ih.T)[0]")
    subs["nan"] = answered(release, softmax="def softmax(z):\n    return np.full(np.shape(z), np.nan)",
                           rnn_step="def rnn_step(x, h, W_ih, W_hh, b):\n"
                                    "    return np.full((x.shape[0], W_hh.shape[0]), np.nan)")
    nb = answered(release)  # a student-made cell that claims to be a 100-point test
    fake = new_code_cell("print('free points')")
    fake.metadata["nbgrader"] = {"grade": True, "grade_id": "free_points", "locked": False, "points": 100,
                                 "schema_version": 3, "solution": False}
    nb.cells.append(fake)
    subs["fakegrade"] = nb
    return subs


def main():
    sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))
    os.makedirs(os.path.join(COURSE, "solutions", "fixture"), exist_ok=True)
    nbformat.write(source_notebook(), os.path.join(COURSE, "solutions", "fixture", "fixture.ipynb"))
    release = release_notebook()
    if os.path.isdir(FLAT):
        shutil.rmtree(FLAT)
    os.makedirs(FLAT)
    for name, nb in build(release).items():
        path = os.path.join(FLAT, "%s_fixture.ipynb" % name)
        if isinstance(nb, bytes):
            with open(path, "wb") as f:
                f.write(nb)
        else:
            for i, cell in enumerate(nb.cells):  # cells added here get stable ids
                if not str(cell.get("id", "")).startswith("fixture-"):
                    cell["id"] = "student-%02d" % i
            nbformat.write(nb, path)
    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump({k: {"scores": v[0], "status": v[1], "mention": v[2]} for k, v in EXPECTED.items()},
                  f, indent=1, sort_keys=True)
    print("wrote", len(EXPECTED), "submissions to", FLAT)


if __name__ == "__main__":
    main()
