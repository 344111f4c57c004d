"""A warm, pristine process that forks one child per check (``python -m rnnkit.checks.zygote``).

Starting Python and importing numpy, matplotlib and rnnkit for every check costs far more than the
check itself. The zygote imports them once and never runs student code; for each request it forks a
child, which is exactly as fresh as a new process (nothing the student defined, patched or imported
is in it) and starts in milliseconds.

Protocol, one JSON object per line: the kernel writes a request (``spec``, ``params``, ``source``,
``result``, ``timeout``); the child writes its verdict to the file ``result``; the zygote answers
``{"status": "done" | "timeout" | "died", "code": ...}`` once the child has ended or been killed.
The zygote exits when its stdin closes (the kernel is gone).
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time


def preload() -> None:
    """Import everything a check may need, so children start with it loaded."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    import pkgutil

    import matplotlib.pyplot  # noqa: F401  (students import it at the top of notebooks)
    import numpy  # noqa: F401

    import rnnkit  # noqa: F401
    import rnnkit.checks

    for info in pkgutil.iter_modules(rnnkit.checks.__path__):
        if info.name not in ("zygote",):
            __import__(f"rnnkit.checks.{info.name}")


def _child(request: dict) -> None:
    """In the forked child: silence fd 1 (the protocol channel), run the check, write the verdict."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.chdir(os.path.dirname(request["result"]))  # the check's own scratch folder
    from rnnkit.checks import runner

    runner.handle(request)


def _wait(pid: int, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            return {"status": "done" if code == 0 else "died", "code": code}
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return {"status": "timeout", "code": None}
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


def main() -> None:
    preload()
    out = sys.stdout
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:  # child
            code = 0
            try:
                _child(request)
            except BaseException:  # noqa: BLE001 - the child must never return into the loop
                code = 1
            finally:
                os._exit(code)
        reply = _wait(pid, float(request.get("timeout", 120)))
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
