"""Entry point of the student's process when grading (``python -m student_side``).

Set up before any student code runs: the protocol moves from stdin/stdout to private file
descriptors (so that what the student prints, even from C code, cannot break it), the notebook
built-ins are installed, then requests are answered until the channel closes.
"""
from __future__ import annotations

import os
import sys
import warnings

from .runtime import StudentRuntime, install_notebook_builtins
from .wire import read_frame, write_frame


def _private_channel():
    requests = os.fdopen(os.dup(0), "rb", buffering=0)
    replies = os.fdopen(os.dup(1), "wb", buffering=1 << 16)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # C-level prints go to the grader's log of this process, never to the channel
    return requests, replies


def main() -> None:
    requests, replies = _private_channel()
    sys.stdin = open(os.devnull)
    install_notebook_builtins()
    warnings.filterwarnings("ignore", message=".*non-interactive.*")  # plt.show() with Agg
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    runtime = StudentRuntime(namespace, capture=True)
    write_frame(replies, {"ok": True, "ready": True, "python": sys.version.split()[0]})
    while True:
        try:
            msg, blobs = read_frame(requests)
        except EOFError:
            return
        if msg.get("op") == "exit":
            return
        reply, out_blobs = runtime.handle(msg, blobs)
        write_frame(replies, reply, out_blobs)


if __name__ == "__main__":
    main()
