"""The student's process in its bubblewrap sandbox: what it can see, what it can use, and how it
is stopped. Limits are in CPU seconds, so none of these outcomes depends on how busy the machine is.

These tests need bubblewrap (``make test`` installs it as root); without it they fail loudly rather
than skip, since grading cannot be trusted without the sandbox.
"""
from __future__ import annotations

import time
from pathlib import Path

import psutil
import pytest

from course.sandbox import FIRST_UID, Assets, Limits, Policy, sandbox_available
from course.session import StudentGone, StudentProcess

ROOT = Path(__file__).resolve().parent.parent
LIMITS = Limits(memory=2**29, cpu_per_request=5, cpu_total=60, wall_factor=2, wall_slack=5, processes=16)


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    ok, why = sandbox_available()
    assert ok, f"the grading sandbox cannot start here: {why}"
    return Assets.prepare(Policy(packages=("numpy",), rnnkit=("rnnkit.gradcheck",)),
                          tmp_path_factory.mktemp("assets"), sandboxed=True)


@pytest.fixture
def student(assets):
    with StudentProcess.start(assets, LIMITS, sandboxed=True, files={"data/notes.txt": b"mine"}) as process:
        yield process


def run(process, source: str) -> dict:
    reply, _ = process.request({"op": "run_cell", "label": "cell 1", "source": source})
    return reply


def test_it_sees_its_own_files_python_and_allowed_packages_only(student):
    reply = run(student, "import os, sys\nprint(sorted(os.listdir('/')))\nprint(open('data/notes.txt').read())\n"
                         "print(os.getuid(), os.getcwd(), len([p for p in os.listdir('/proc') if p.isdigit()]) < 5)")
    out = reply["stdout"].splitlines()
    assert set(eval(out[0])) <= {"bin", "dev", "home", "lib", "lib32", "lib64", "opt", "proc", "root", "sbin",
                                  "tmp", "usr"}
    assert out[1] == "mine" and out[2].split()[1:] == ["/home/student", "True"]
    assert int(out[2].split()[0]) >= FIRST_UID
    for module in ("rnnkit.cells", "rnnkit.sequence", "torch", "course.checks", "matplotlib", "grading", "nbgrader"):
        reply = run(student, f"import {module}")
        assert reply["error"]["type"] == "ModuleNotFoundError", module
    assert run(student, "import rnnkit.gradcheck, numpy\nrnnkit.grad_check")["ok"]


def test_it_cannot_see_the_course_other_students_or_the_network(student):
    for path in (ROOT, ROOT / "solutions", Path.home(), "/etc/passwd", "/work", "/var"):
        reply = run(student, f"open({str(path)!r})")
        assert reply["error"]["type"] in ("FileNotFoundError", "IsADirectoryError", "PermissionError"), path
    assert run(student, "import os\nos.listdir('/tmp')")["repr"] == "['matplotlib']"   # its own, empty
    reply = run(student, "import socket\ns = socket.socket()\ns.settimeout(2)\ns.connect(('1.1.1.1', 80))")
    assert reply["error"]["type"] in ("OSError", "TimeoutError", "ConnectionRefusedError")
    assert run(student, "open('/opt/site/x', 'w')")["error"]["type"] in ("OSError", "PermissionError")


def test_an_endless_loop_is_stopped(student):
    with pytest.raises(StudentGone) as gone:
        run(student, "while True:\n    pass")
    # by its CPU time, or (if the machine is too busy to give it 5 CPU seconds) by the wall clock
    assert gone.value.kind == "timeout"


def test_a_process_that_only_waits_is_stopped_by_the_wall_clock(student):
    with pytest.raises(StudentGone) as gone:
        run(student, "import time\ntime.sleep(3600)")
    assert gone.value.kind == "timeout" and "waited" in gone.value.message


def test_memory_runs_out_inside_the_student_code(student):
    reply = run(student, "import numpy as np\nhog = []\nwhile True:\n    hog.append(np.ones(2**20))")
    assert reply["error"]["type"] == "MemoryError"
    assert run(student, "del hog\n1 + 1")["repr"] == "2"        # and the process goes on


def test_processes_are_limited_and_none_outlives_the_sandbox(assets):
    with StudentProcess.start(assets, LIMITS, sandboxed=True) as process:
        reply = run(process, "import os, time\nn = 0\ntry:\n    for _ in range(1000):\n"
                             "        if os.fork() == 0:\n            os.setsid()\n            time.sleep(600)\n"
                             "            os._exit(0)\n        n += 1\nexcept OSError:\n    pass\nn")
        assert 0 < int(reply["repr"]) < LIMITS.processes
        inner = [p.pid for p in psutil.Process(process.proc.pid).children(recursive=True)]
        assert len(inner) > 5
    time.sleep(0.5)
    assert [p for p in inner if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE] == []


def test_a_crash_is_reported_and_the_student_cannot_forge_the_channel(student):
    reply = run(student, "import os\nos.write(1, b'not a frame')\nos.write(2, b'nor this')\n'still fine'")
    assert reply["repr"] == "'still fine'"      # fds 1 and 2 are not the channel
    with pytest.raises(StudentGone) as gone:
        run(student, "import os\nos._exit(7)")
    assert gone.value.kind == "crashed" and "code 7" in gone.value.message


def test_frames_forged_on_the_channel_stop_the_process(student):
    from course.checker import run_check

    forge = ("import os, numpy as np\nfrom student_side.wire import pack\n"
             "pipes = [int(f) for f in os.listdir('/proc/self/fd') if os.path.exists(f'/proc/self/fd/{f}')\n"
             "         and 'pipe' in os.readlink(f'/proc/self/fd/{f}')]\n"
             "def softmax(z):\n"
             "    for fd in pipes:\n"
             "        try:\n"
             "            os.write(fd, pack({'ok': True, 'id': 2, 'value': 1.0}, []) * 3)\n"
             "        except OSError:\n"
             "            pass\n"
             "    return np.ones_like(z) / z.shape[-1]\n")
    assert run(student, forge)["ok"]
    verdict = run_check("vanilla_rnn.softmax", {"seed": 0}, student)
    assert verdict.kind == "protocol" and "out of turn" in verdict.message
