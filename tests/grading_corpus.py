"""Submissions of assignment 02 (the vanilla RNN) that try everything: honest variants, broken
files, runaway code, attacks on the grader and on classmates. Built from the released notebook at
test time, so they always match the assignment.

:func:`build` writes them into a folder (flat layout: ``<student>_02.ipynb``) and returns what
grading must give for each: ``Expect(status, scores, mention)``, where ``scores`` maps test ids to
points (``FULL`` for every test), ``status`` is the first word of the status column and
``mention`` a phrase that must appear in the status, the problems or the feedback.
"""
from __future__ import annotations

import base64
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAME = "02_vanilla_rnn"
TESTS = {"test_rnn_step_forward": 3.0, "test_rnn_forward": 3.0, "test_linear_head_forward": 2.0, "test_softmax": 2.0}
FULL = dict(TESTS)
ZERO = {k: 0.0 for k in TESTS}


@dataclass
class Expect:
    status: str
    scores: dict = field(default_factory=lambda: dict(FULL))
    mention: str | None = None


def canary(student: str) -> str:
    """A line only this student's notebook contains (it must never reach anyone else's feedback)."""
    return f"CANARY-{base64.b32encode(student.encode()).decode().strip('=')}"


def _answered() -> dict:
    """The released notebook with the solution's answers typed in, as an honest student hands it in."""
    release = json.loads((ROOT / "exercises" / NAME / f"{NAME}.ipynb").read_text())
    solution = json.loads((ROOT / "solutions" / NAME / f"{NAME}.ipynb").read_text())
    answers = {}
    for cell in solution["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution"):
            source = "".join(cell["source"])
            answers[meta["grade_id"]] = re.sub(r"\n?\s*### (BEGIN|END) SOLUTION", "", source)
    for cell in release["cells"]:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if gid in answers:
            cell["source"] = answers[gid]
    return release


def _code(source: str, cell_id: str) -> dict:
    return {"cell_type": "code", "execution_count": None, "id": cell_id, "metadata": {}, "outputs": [],
            "source": source}


def _index(nb: dict, grade_id: str) -> int:
    return next(i for i, c in enumerate(nb["cells"])
                if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id)


def _insert_after(nb: dict, grade_id: str, source: str) -> dict:
    nb["cells"].insert(_index(nb, grade_id) + 1, _code(source, f"extra-{len(nb['cells'])}"))
    return nb


def _append(nb: dict, source: str) -> dict:
    nb["cells"].append(_code(source, f"extra-{len(nb['cells'])}"))
    return nb


def _replace_answers(nb: dict, source: str) -> dict:
    """Every answer function replaced by ``source`` (a submission with no working code). An answer
    cell's grade id is the name of the function it defines."""
    for cell in nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution"):
            cell["source"] = "import numpy as np\n" + source.replace("NAME", meta["grade_id"])
    return nb


def attacks_on(name: str) -> dict[str, dict]:
    """The attacks on the grader as submissions of assignment ``name`` (its release, every answer
    replaced by the attack)."""
    release = json.loads((ROOT / "exercises" / name / f"{name}.ipynb").read_text())
    return {student: _replace_answers(json.loads(json.dumps(release)), attack)
            for student, attack in ATTACKS.items() if student in OTHER_ASSIGNMENT_ATTACKS}


def _set(nb: dict, grade_id: str, source: str) -> dict:
    nb["cells"][_index(nb, grade_id)]["source"] = source
    return nb


def _edit(nb: dict, grade_id: str, old: str, new: str) -> dict:
    cell = nb["cells"][_index(nb, grade_id)]
    assert old in cell["source"], (grade_id, old)
    cell["source"] = cell["source"].replace(old, new)
    return nb


# -- attacks on the grader: none of them has working code ---------------------------------------

STACK_WALK = '''
import sys
def NAME(*args, **kwargs):
    frame, found = sys._getframe(1), []
    while frame is not None:                      # the checker's frames, looking for expected values
        found += [v for v in frame.f_locals.values() if isinstance(v, np.ndarray)]
        if "want" in frame.f_locals:
            return frame.f_locals["want"], None
        frame = frame.f_back
    return (found[-1] if found else None), None
'''
INSPECT_STACK = '''
import inspect
def NAME(*args, **kwargs):
    for info in inspect.stack():
        for key in ("want", "expected", "hs_want", "h_want"):
            if key in info.frame.f_locals:
                return info.frame.f_locals[key], None, None
    return None
'''
GC_SEARCH = '''
import gc
def NAME(*args, **kwargs):
    for obj in gc.get_objects():                  # rnnkit's own function, if it is in this process
        if callable(obj) and getattr(obj, "__module__", "").startswith("rnnkit") and obj.__name__ == "NAME":
            return obj(*args, **kwargs)
    return None
'''
RESULT_FILE = '''
import json, os
def NAME(*args, **kwargs):
    for path in ("verdict.json", "/tmp/verdict.json", "../verdict.json"):
        try:
            with open(path, "w") as f:
                json.dump({"ok": True, "message": "passed"}, f)
        except OSError:
            pass
    os._exit(0)
'''
PATCH_JSON = '''
import json
json.load = lambda *a, **k: {"ok": True, "message": "passed"}
json.loads = lambda *a, **k: {"ok": True, "message": "passed"}
def NAME(*args, **kwargs):
    raise NotImplementedError
'''
REBIND_HELPER = '''
import sys
def NAME(*args, **kwargs):
    frame = sys._getframe()
    while frame is not None:                      # switch the comparison off where the checker keeps it
        for key in ("_allclose", "allclose", "expect_close"):
            if key in frame.f_globals:
                frame.f_globals[key] = lambda *a, **k: True
        frame = frame.f_back
    return np.zeros(1), None
'''
MODULES_BY_NAME = '''
import sys
def NAME(*args, **kwargs):
    modules = getattr(sys, "mod" + "ules")
    library = modules.get("rnnkit") or __import__("rnn" + "kit")
    return library.NAME(*args, **kwargs)
'''
EXEC_BASE64 = f'''
import base64
exec(base64.b64decode({base64.b64encode(b"import rnnkit.cells as _borrowed").decode()!r}))
def NAME(*args, **kwargs):
    return _borrowed.rnn_step_forward(*args, **kwargs)
'''
IMPORT_BUILTIN = '''
import builtins
def NAME(*args, **kwargs):
    borrowed = getattr(builtins, "__imp" + "ort__")("rnnkit.cells", fromlist=["x"])
    return borrowed.rnn_step_forward(*args, **kwargs)
'''
ALLOWED_THEN_REACH = '''
import rnnkit.gradcheck
def NAME(*args, **kwargs):
    return rnnkit.cells.rnn_step_forward(*args, **kwargs)
'''
READ_FROM_DISK = '''
import glob
def NAME(*args, **kwargs):
    for pattern in ("/work/*/solutions/*/*.ipynb", "/root/**/rnnkit/cells/rnn.py", "../*.ipynb", "/opt/site/rnnkit/*"):
        for path in glob.glob(pattern, recursive=True):
            print(open(path).read()[:200])
    raise NotImplementedError
'''
PROC_SNOOP = '''
import os
def NAME(*args, **kwargs):
    for pid in os.listdir("/proc"):
        try:
            print(pid, open(f"/proc/{pid}/cmdline").read(), os.listdir(f"/proc/{pid}/cwd"))
        except OSError:
            pass
    raise NotImplementedError
'''
ATTACKS = {"attack-stack": STACK_WALK, "attack-inspect": INSPECT_STACK, "attack-gc": GC_SEARCH,
           "attack-resultfile": RESULT_FILE, "attack-jsonpatch": PATCH_JSON, "attack-rebind": REBIND_HELPER,
           "attack-modules": MODULES_BY_NAME, "attack-base64": EXEC_BASE64, "attack-builtins": IMPORT_BUILTIN,
           "attack-allowed": ALLOWED_THEN_REACH, "attack-disk": READ_FROM_DISK, "attack-proc": PROC_SNOOP}

#: the attacks also tried on other assignments' notebooks (one of each family)
OTHER_ASSIGNMENT_ATTACKS = ("attack-stack", "attack-gc", "attack-resultfile", "attack-modules", "attack-disk")

# -- attacks on classmates and on the output ------------------------------------------------------

FORGE = '''
import os, json
for folder in ("..", "../..", "/tmp", os.path.expanduser("~"), "/work", "/root"):
    for name in ("grades.csv", "correct.json", "feedback/correct.html", ".grading/state/correct.json"):
        try:
            os.makedirs(os.path.join(folder, os.path.dirname(name)), exist_ok=True)
            with open(os.path.join(folder, name), "w") as f:
                f.write(json.dumps({"student": "correct", "total": 0, "status": "forged"}))
        except OSError as exc:
            print("could not write", folder, name, type(exc).__name__)
'''
PEER = '''
import os
seen = 0
for top in ("/", os.path.expanduser("~"), "/tmp", ".."):
    for folder, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if d not in ("proc", "sys", "usr", "lib", "lib64", "opt", "dev")]
        for name in files:
            seen += 1
            try:
                print(name, open(os.path.join(folder, name), errors="replace").read(300))
            except OSError:
                pass
print("files seen:", seen)
'''
LINGER = '''
import os, time
if os.fork() == 0:                      # a grandchild in a new session, meant to outlive grading
    os.setsid()
    if os.fork() == 0:
        time.sleep(600)
    os._exit(0)
time.sleep(0.2)
'''
FORK_BOMB = '''
import os, time
children = 0
try:
    for _ in range(10_000):
        if os.fork() == 0:
            time.sleep(600)
            os._exit(0)
        children += 1
except OSError as exc:
    print("fork refused after", children, "children:", type(exc).__name__)
'''
HONEST_VARIANT = '''
# the checks also run hidden tests, with other shapes: write general code
import numpy as np
import rnnkit                                             # allowed: the package, for its gradient checker
import rnnkit.gradcheck
from rnnkit.gradcheck import grad_check
CHECKER = rnnkit.grad_check

PHI = dict(tanh=np.tanh, relu=lambda a: np.maximum(a, 0.0))  # a constant built with a call
affine = lambda x, W, b: x @ W.T + b                          # a top-level lambda helper


def rnn_step_forward(x, h_prev, params, nonlinearity="tanh"):
    print("step on a batch of", x.shape[0])
    a = affine(x, params["weight_ih"], params["bias_ih"]) + affine(h_prev, params["weight_hh"], params["bias_hh"])
    h = PHI[nonlinearity](a)
    return h, (x, h_prev, h, params, nonlinearity)
'''


def build(folder: Path) -> dict[str, Expect]:
    """Write every submission into ``folder``; return what grading must give for each student."""
    folder.mkdir(parents=True, exist_ok=True)
    subs, expect = {}, {}

    def add(student, nb, outcome, filename=None):
        nb["cells"].insert(0, _code(f"# {canary(student)}", "canary"))
        subs[filename or f"{student}_02.ipynb"] = json.dumps(nb, indent=1)
        expect[student] = outcome

    add("correct", _answered(), Expect("graded"))
    add("honest", _set(_answered(), "rnn_step_forward", HONEST_VARIANT), Expect("graded", mention="your code printed"))
    add("partial", _edit(_answered(), "softmax", "z - np.max(z, axis=-1, keepdims=True)", "z"),
        Expect("graded", {**FULL, "test_softmax": 0.0}, "np.exp overflows"))
    add("typo", _edit(_answered(), "softmax", "e = np.exp(shifted)", "e = np.expp(shifted)"),
        Expect("graded", {**FULL, "test_softmax": 0.0}, "module 'numpy' has no attribute 'expp' (in cell"))
    add("nan", _edit(_answered(), "rnn_step_forward", "return h, cache", "return h * np.nan, cache"),
        Expect("graded", {**FULL, "test_rnn_step_forward": 0.0, "test_rnn_forward": 0.0}, "contains NaN"))
    add("shapes", _edit(_answered(), "rnn_forward", "return hs, h, caches", "return hs.transpose(1, 0, 2), h, caches"),
        Expect("graded", {**FULL, "test_rnn_forward": 0.0}, "expected (T, B, H)"))
    # runaway code: stopped, the rest of the notebook still graded
    add("loop", _insert_after(_answered(), "test_rnn_step_forward", "while True:\n    pass"),
        Expect("timeout", mention="cell 8"))
    add("sleeper", _insert_after(_answered(), "test_rnn_forward", "import time\ntime.sleep(10**6)"),
        Expect("timeout", mention="waited"))
    add("slowfn", _edit(_answered(), "rnn_forward", "    T, B, _ = x.shape", "    while True:\n        pass"),
        Expect("timeout", {**FULL, "test_rnn_forward": 0.0}, "did not finish"))
    add("membomb", _insert_after(_answered(), "test_softmax", "x = np.ones(10**12)"),
        Expect("memory", mention="MemoryError"))
    add("memhog", _insert_after(_answered(), "test_rnn_step_forward",
                                "hog = []\nwhile True:\n    hog.append(np.ones(10 * 2**20 // 8))"),
        Expect("memory", mention="MemoryError"))
    add("dies", _insert_after(_answered(), "test_rnn_forward", "import os\nos._exit(3)"),
        Expect("crashed", mention="exited with code 3"))
    add("exits", _insert_after(_answered(), "test_rnn_forward", "import sys\nsys.exit()"),
        Expect("review", mention="sys.exit"))
    add("bigoutput", _insert_after(_answered(), "test_softmax", "for i in range(200):\n    print('x' * 100_000)"),
        Expect("graded", mention="more characters were printed"))
    add("forkbomb", _insert_after(_answered(), "test_rnn_step_forward", FORK_BOMB), Expect("review", mention="os.fork"))
    add("linger", _insert_after(_answered(), "test_softmax", LINGER), Expect("review", mention="os.fork"))
    # the test cells themselves: deleted, edited, stripped of metadata, invented
    nb = _answered()
    nb["cells"] = [c for c in nb["cells"] if not c.get("metadata", {}).get("nbgrader", {}).get("grade")
                   or c["metadata"]["nbgrader"].get("solution")]
    add("deleted", nb, Expect("graded", mention="was missing and was put back"))
    nb = _answered()
    nb["cells"][_index(nb, "test_softmax")]["source"] = "pass  # all good"
    add("edited", nb, Expect("graded", mention="test_softmax was changed"))
    nb = _answered()
    for cell in nb["cells"]:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade") and not cell["metadata"]["nbgrader"]["solution"]:
            cell["metadata"] = {}
    add("stripped", nb, Expect("graded"))
    nb = _answered()
    invented = _code("print('I deserve it')", "invented")
    invented["metadata"] = {"nbgrader": {"grade": True, "solution": False, "locked": True, "points": 100,
                                         "grade_id": "test_bonus", "schema_version": 3}}
    nb["cells"].append(invented)
    add("fakegrade", nb, Expect("graded", mention="test_bonus"))
    # attacks on the grader: no working code, so nothing to gain; each is flagged for review
    for student, attack in ATTACKS.items():
        # the result-file attack ends its own process; patching json breaks its own side of the protocol
        crashes = student in ("attack-resultfile", "attack-jsonpatch")
        outcome = Expect("crashed" if crashes else "review", dict(ZERO))
        add(student, _replace_answers(_answered(), attack), outcome)
    # attacks on classmates and on the output
    add("forger", _append(_answered(), FORGE), Expect("review", mention="/root"))
    add("peer", _append(_answered(), PEER), Expect("review", mention="os.walk"))
    # markup meant to run in the instructor's browser when they open the feedback
    nb = _answered()
    nb["cells"].append({"cell_type": "markdown", "id": "xss", "metadata": {},
                        "source": "<script>alert('XSS-MARKDOWN')</script><img src=x onerror=\"alert('XSS-IMG')\">"})
    add("xss", _append(nb, "print('<script>alert(\"XSS-PRINT\")</script>')"), Expect("graded"))
    # ids: look-alikes and names in other scripts each keep their own row
    for student in ("hal?", "hal!", "Алиса", "Борис", "李雷"):
        add(student, _answered(), Expect("graded"))
    for filename, data in subs.items():
        (folder / filename).write_text(data)
    # files that are not notebooks
    for student, data, mention in (("notjson", b"{ this is not json", "not valid JSON"),
                                   ("png", b"\x89PNG\r\n\x1a\n" + os.urandom(64), "PNG image"),
                                   ("pyfile", b"import numpy as np\n\ndef softmax(z):\n    return z\n", "Python source"),
                                   ("empty", b"", "empty")):
        (folder / f"{student}_02.ipynb").write_bytes(data)
        expect[student] = Expect("error", {}, mention)
    # a link to a classmate's notebook, to be graded as them
    os.symlink(folder / "correct_02.ipynb", folder / "mallory_02.ipynb")
    expect["mallory"] = Expect("refused", {}, "symbolic link")
    return expect


def hidden_lines() -> list[str]:
    """Every hidden check line of the assignment's source."""
    source = json.loads((ROOT / "solutions" / NAME / f"{NAME}.ipynb").read_text())
    out = []
    for cell in source["cells"]:
        inside = False
        for line in "".join(cell["source"]).split("\n"):
            if "BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "END HIDDEN TESTS" in line:
                inside = False
            elif inside and line.strip():
                out.append(line.strip())
    return out
