"""Running one check: find the spec, make fresh inputs, call the student, record the verdict.

A check is named ``"module.spec"`` (``"vanilla_rnn.step_forward"``): the function ``spec`` of
``course.checks.module``, called as ``spec(student, rng, **params)``. It returns a short note on
success and raises :class:`CheckFailure` otherwise. This module only runs on the trusted side;
the student is reached through a channel (see :mod:`course.student`).
"""
from __future__ import annotations

import importlib
import re
import time

import numpy as np

from .session import StudentGone
from .student import Student
from .verdict import CheckFailure, Verdict

_SPEC = re.compile(r"[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*")

GONE_MESSAGES = {
    "timeout": "your code did not finish: {}. Look for an endless loop, or far too much work",
    "memory": "your code ran out of memory: {}",
    "crashed": "the process running your code ended: {}",
    "protocol": "the process running your code stopped answering properly: {}",
}


class UnknownSpec(ValueError):
    """A test cell names a check that does not exist (an authoring error, not the student's)."""


def spec_function(spec: str):
    """The function behind ``"module.spec"``, limited to public functions of course.checks."""
    if not isinstance(spec, str) or not _SPEC.fullmatch(spec):
        raise UnknownSpec(f"not a check name: {spec!r} (expected 'module.function')")
    module_name, name = spec.split(".")
    try:
        module = importlib.import_module(f"course.checks.{module_name}")
    except ModuleNotFoundError:
        raise UnknownSpec(f"no checks module {module_name!r}") from None
    fn = getattr(module, name, None)
    if not callable(fn) or name not in getattr(module, "SPECS", ()):
        raise UnknownSpec(f"{module_name} has no check {name!r}")
    return fn


def run_check(spec: str, params: dict, channel, *, cpu_limit: float | None = None) -> Verdict:
    """Run the check ``spec`` against the student behind ``channel``; never raises for anything
    the student's code does. ``params["seed"]`` fixes the inputs (absent or None: fresh ones)."""
    fn = spec_function(spec)
    params = dict(params)
    rng = np.random.default_rng(params.pop("seed", None))
    student = Student(channel, cpu_limit=cpu_limit)
    started = time.perf_counter()
    try:
        note = fn(student, rng, **params)
        kind, message = "passed", note or f"{spec}: passed"
    except CheckFailure as failure:
        kind, message = "failed", str(failure)
    except StudentGone as gone:
        kind, message = gone.kind, GONE_MESSAGES[gone.kind].format(gone.message)
    except Exception as exc:  # noqa: BLE001 - a bug of the check, or an answer it did not foresee
        kind = "checker-error"
        message = (f"the check could not judge your answer ({type(exc).__name__}: {exc}); "
                   "your instructor will look at it")
    if kind in ("passed", "failed"):
        try:
            student.forget()
        except (StudentGone, CheckFailure):
            pass
    return Verdict(spec=spec, kind=kind, message=message, printed="".join(student.printed),
                   seconds=time.perf_counter() - started, params=params)
