"""``check(...)`` in a student's notebook: the same checks as grading, for practice.

The student's kernel is the untrusted side here too. ``check`` starts (once per kernel) a checker
process that holds the specs and rnnkit; the checker makes the inputs, computes the expected
values, and asks the kernel to call the student's functions. The kernel answers with data through
the same :class:`~course.student_side.runtime.StudentRuntime` that answers in the grading sandbox,
so a check behaves the same in both places. What the kernel prints is only advice: when the
notebook is graded, the grader runs the checks again itself, on fresh inputs.

Kernel (student)                      checker process (course.practice_checker)
----------------                      ------------------------------------------------
check(spec, **params)  ----------->   run the spec: inputs, rnnkit's expected values
run the student's function  <------   "call rnn_step_forward on these arrays"
send back the result  ------------>   compare, explain
print ✔ / raise ✘  <---------------   verdict
"""
from __future__ import annotations

import ast
import inspect
import os
import subprocess
import sys
import types

from .student_side.runtime import StudentRuntime
from .student_side.wire import read_frame, write_frame


class CheckFailed(AssertionError):
    """A failed check in a notebook: shown as its message alone, without a traceback."""

    def _render_traceback_(self):  # IPython shows this instead of a traceback
        return [f"\x1b[31m✘ {self}\x1b[0m"]


class PracticeChecker:
    """The kernel's connection to its checker process (started on first use)."""

    def __init__(self):
        self.proc: subprocess.Popen | None = None

    def _process(self) -> subprocess.Popen:
        if self.proc is None or self.proc.poll() is not None:
            env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHONSTARTUP")}
            env.setdefault("MPLBACKEND", "Agg")
            env.setdefault("OPENBLAS_NUM_THREADS", "1")
            self.proc = subprocess.Popen([sys.executable, "-m", "course.practice_checker"], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, env=env)
        return self.proc

    def run(self, spec: str, params: dict, namespace: dict) -> dict:
        """Run one check against ``namespace``; returns the verdict (a dict)."""
        proc = self._process()
        runtime = StudentRuntime(namespace, capture=False)
        try:
            write_frame(proc.stdin, {"op": "check", "spec": spec, "params": params})
            while True:
                msg, blobs = read_frame(proc.stdout)
                if msg.get("op") == "verdict":
                    msg["called"] = [runtime.ns.get(n) for n in msg.get("names", [])]
                    return msg
                write_frame(proc.stdin, *runtime.handle(msg, blobs))
        except (EOFError, BrokenPipeError, OSError) as exc:
            self.proc = None
            return {"kind": "crashed", "message": f"the checker process ended unexpectedly ({exc}); run the "
                                                  "cell again", "notes": []}
        except KeyboardInterrupt:
            proc.kill()
            self.proc = None
            raise


_CHECKER = PracticeChecker()


def check(spec: str, **params) -> None:
    """Check your code with the course's check ``spec`` (e.g. ``"vanilla_rnn.step_forward"``).

    Prints ✔ and what was checked when your code is right; otherwise stops with a message that says
    what is wrong. ``seed=...`` fixes the random inputs; without it every run uses fresh ones."""
    namespace = _notebook_namespace()
    verdict = _CHECKER.run(spec, params, namespace)
    for note in verdict.get("notes", []) + unavailable_imports(verdict, namespace):
        print(f"note: {note}")
    if verdict["kind"] == "passed":
        print(f"✔ {verdict['message']}")
        return None
    raise CheckFailed(verdict["message"])


def _notebook_namespace() -> dict:
    try:
        return get_ipython().user_ns  # noqa: F821 - defined inside IPython
    except NameError:
        import __main__

        return vars(__main__)


def unavailable_imports(verdict: dict, namespace: dict) -> list[str]:
    """Advice: modules the checked functions use that the grader's sandbox will not have."""
    allowed = tuple(verdict.get("allowed", ()))
    if not allowed:
        return []
    used = set()
    for fn in verdict.get("called", []):
        used |= _modules_used(fn, namespace)
    refused = sorted(m for m in used if not _allowed(m, allowed))
    return [f"{m} is not available when this notebook is graded (allowed: {', '.join(allowed)}); "
            "write that part yourself" for m in refused]


def _allowed(module: str, allowed: tuple[str, ...]) -> bool:
    if module.split(".")[0] in sys.stdlib_module_names:
        return True
    return any(module == a or module.startswith(a + ".") or a.startswith(module + ".") for a in allowed)


def _modules_used(fn, namespace: dict) -> set[str]:
    """Modules a function imports in its body, and those its global names come from."""
    if not isinstance(fn, types.FunctionType):
        return set()
    found = set()
    for name in fn.__code__.co_names:
        value = fn.__globals__.get(name)
        if isinstance(value, types.ModuleType):
            found.add(value.__name__)
        elif callable(value) and getattr(value, "__module__", None) not in (None, "__main__", "builtins"):
            found.add(value.__module__)
    try:
        tree = ast.parse(inspect.getsource(fn).strip())
    except (OSError, TypeError, SyntaxError):
        return found
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found
