"""The checker process behind ``check(...)`` in a notebook (``python -m course.practice_checker``).

It answers ``check`` requests from the kernel: it runs the spec (inputs, rnnkit's expected values,
the comparison) and talks to the kernel, the student's side, through its stdin and stdout. See
:mod:`course.practice` for the kernel's half.
"""
from __future__ import annotations

import signal
import sys

from .student_side.wire import read_frame, write_frame


class KernelChannel:
    """The checker process's side of the conversation with the kernel (its stdin and stdout)."""

    def __init__(self, requests_in, replies_out):
        self.inp, self.out = requests_in, replies_out
        self.names: list[str] = []

    def request(self, msg: dict, blobs=(), cpu_limit: float | None = None) -> tuple[dict, list]:
        if msg.get("op") == "lookup":
            self.names.append(str(msg.get("name")))
        write_frame(self.out, msg, list(blobs))
        return read_frame(self.inp)


def serve() -> None:
    """The checker process: answer ``check`` requests from the kernel until it goes away."""
    from .checker import UnknownSpec, run_check, spec_function
    from .sandbox import SiteLayout

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # an interrupt is the kernel's; it stops us if needed
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing may print on the channel
    while True:
        try:
            msg, _ = read_frame(inp)
        except EOFError:
            return
        channel = KernelChannel(inp, out)
        try:
            verdict = run_check(str(msg.get("spec")), dict(msg.get("params") or {}), channel).to_json()
            module = sys.modules[spec_function(msg["spec"]).__module__]
            layout = SiteLayout.for_policy(module.POLICY)
            verdict["allowed"] = list(dict.fromkeys([*module.POLICY.packages, *module.POLICY.rnnkit, *sorted(
                _module_name(rel) for rel in layout.entries if rel.startswith("rnnkit/"))]))
        except UnknownSpec as exc:
            verdict = {"kind": "failed", "message": f"this test cell asks for an unknown check: {exc}"}
        verdict.update(op="verdict", names=channel.names)
        write_frame(out, verdict)


def _module_name(rel: str) -> str:
    name = rel[:-3] if rel.endswith(".py") else rel
    return name.replace("/", ".").removesuffix(".__init__")


if __name__ == "__main__":
    serve()
