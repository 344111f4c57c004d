"""The trusted side's connection to a student process: one request, one reply, under watch.

:class:`StudentProcess` sends a frame and waits for the answer while it watches the process from
outside: CPU seconds used by the whole process tree (so a busy machine never turns a pass into a
timeout), resident memory, and a generous wall-clock bound for a process that waits without
computing. When a limit is passed the process is killed and :class:`StudentGone` says why.

:class:`LoopbackChannel` answers the same requests in this process (tests of the checks, where the
code under test is the course's own); it still goes through the wire format.
"""
from __future__ import annotations

import os
import select
import signal
import time

import psutil

from .sandbox import Assets, Launch, Limits, start
from .student_side.runtime import StudentRuntime
from .student_side.wire import WireError, frame_length, pack, unpack


class StudentGone(Exception):
    """The student process ended or was stopped. ``kind``: timeout, memory, crashed or protocol."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


class StudentProcess:
    """A running student process (sandboxed or not) and the channel to it."""

    POLL = 0.05

    def __init__(self, launch: Launch, limits: Limits):
        self.launch, self.limits = launch, limits
        self.proc = launch.proc
        self.gone: StudentGone | None = None
        self._ps = psutil.Process(self.proc.pid)
        self._known: list[psutil.Process] | None = None
        self._sent = 0   # requests sent so far: each reply must carry its request's number
        self._in, self._out = self.proc.stdout.fileno(), self.proc.stdin.fileno()
        os.set_blocking(self._in, False)
        os.set_blocking(self._out, False)

    @classmethod
    def start(cls, assets: Assets, limits: Limits, *, sandboxed: bool,
              files: dict[str, bytes] | None = None) -> "StudentProcess":
        """Start a student process and wait until it says it is ready."""
        process = cls(start(assets, limits, sandboxed=sandboxed, files=files), limits)
        try:
            hello, _ = process._receive(cpu_limit=60.0, started=process.cpu_seconds())
        except StudentGone as gone:
            process.close()
            raise StudentGone("crashed", f"the student process did not start: {gone.message}; "
                                         f"{process.launch.log_tail(500).strip()}") from None
        if not hello.get("ready"):
            process.close()
            raise StudentGone("protocol", "the student process did not start properly")
        return process

    # -- the channel ------------------------------------------------------------------------

    def request(self, msg: dict, blobs=(), cpu_limit: float | None = None) -> tuple[dict, list]:
        """Send one request and return the reply; raises StudentGone when the process is (or
        gets) stopped."""
        if self.gone is not None:
            raise self.gone
        cpu_limit = self.limits.cpu_per_request if cpu_limit is None else cpu_limit
        started = self.cpu_seconds(refresh=False)
        self._sent += 1
        self._send(pack({**msg, "id": self._sent}, list(blobs)), cpu_limit, started)
        reply, out = self._receive(cpu_limit, started)
        if reply.get("id") != self._sent:   # a frame the student's code wrote on the channel itself
            self._stop("protocol", "it answered out of turn (frames written on the grader's channel)")
        return reply, out

    def _send(self, data: bytes, cpu_limit: float, started: float) -> None:
        view, deadline = memoryview(data), time.monotonic() + self.limits.wall_limit(cpu_limit)
        while view:
            _, writable, _ = select.select([], [self._out], [], self.POLL)
            if writable:
                try:
                    view = view[os.write(self._out, view):]
                except BrokenPipeError:
                    self._stop("crashed", self._ended_message())
                continue
            self._watch(cpu_limit, started, deadline)

    def _receive(self, cpu_limit: float, started: float) -> tuple[dict, list]:
        deadline = time.monotonic() + self.limits.wall_limit(cpu_limit)
        prefix = self._read(8, cpu_limit, started, deadline)
        try:
            body = self._read(frame_length(bytes(prefix)), cpu_limit, started, deadline)
            return unpack(body)
        except WireError as exc:
            self._stop("protocol", f"the student process broke the protocol ({exc})")

    def _read(self, n: int, cpu_limit: float, started: float, deadline: float) -> bytearray:
        buf = bytearray()
        while len(buf) < n:
            readable, _, _ = select.select([self._in], [], [], self.POLL)
            if readable:
                chunk = os.read(self._in, min(n - len(buf), 1 << 20))
                if not chunk:
                    self._stop("crashed", self._ended_message())
                buf += chunk
                continue
            self._watch(cpu_limit, started, deadline)
        return buf

    # -- watching -----------------------------------------------------------------------------

    def _tree(self, refresh: bool = True) -> list[psutil.Process]:
        """The process and everything it started. Finding them scans all of /proc, so a request
        that answers at once uses the list found last time (refreshed while a request waits)."""
        if refresh or self._known is None:
            try:
                self._known = [self._ps, *self._ps.children(recursive=True)]
            except psutil.Error:
                self._known = []
        return self._known

    def cpu_seconds(self, refresh: bool = True) -> float:
        """CPU seconds used so far by the process and everything it started."""
        total = 0.0
        for p in self._tree(refresh):
            try:
                t = p.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
            except psutil.Error:
                pass
        return total

    def resident_bytes(self) -> int:
        total = 0
        for p in self._tree():
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total

    def _watch(self, cpu_limit: float, started: float, deadline: float) -> None:
        if self.proc.poll() is not None:
            self._stop("crashed", self._ended_message())
        used = self.cpu_seconds() - started
        if used > cpu_limit:
            self._stop("timeout", f"it used more than {cpu_limit:g} s of CPU time")
        if self.limits.memory and self.resident_bytes() > 1.5 * self.limits.memory:
            self._stop("memory", f"it used more than {self.limits.memory / 2**30:.3g} GiB of memory")
        if time.monotonic() > deadline:
            self._stop("timeout", f"it waited for more than {self.limits.wall_limit(cpu_limit):g} s "
                                  "without finishing (sleeping, or waiting for input?)")

    def _ended_message(self) -> str:
        code = self.proc.wait()
        if code in (-signal.SIGXCPU, -signal.SIGKILL) and self.cpu_seconds() >= self.limits.cpu_total:
            return f"it ran out of its {self.limits.cpu_total:g} s of CPU time"
        if code < 0:
            return f"it was killed by signal {signal.Signals(-code).name}"
        return f"it exited with code {code}"

    def _stop(self, kind: str, message: str):
        self.gone = StudentGone(kind, message)
        self.kill()
        raise self.gone

    # -- ending -------------------------------------------------------------------------------

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()

    def close(self) -> None:
        """End the process and everything it started (nothing in it needs a graceful exit: a
        Python that tidies up after matplotlib takes 0.2 s), then free its uid and scratch."""
        inside = [p for p in self._tree(refresh=True) if p.pid != self.proc.pid]
        self.kill()   # bubblewrap's init dies with it, and the kernel ends its PID namespace
        _wait_until_gone(inside, timeout=2.0)
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self.launch.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _wait_until_gone(processes: list[psutil.Process], timeout: float) -> None:
    """Wait until every process has ended (a zombie has: it only waits to be reaped by init)."""
    deadline = time.monotonic() + timeout
    for p in processes:
        while time.monotonic() < deadline:
            try:
                if p.status() == psutil.STATUS_ZOMBIE:
                    break
            except psutil.NoSuchProcess:
                break
            time.sleep(0.005)


class LoopbackChannel:
    """Answers requests with a :class:`StudentRuntime` in this same process, through the wire
    format: for testing the checks on the course's own code, never for untrusted code."""

    def __init__(self, namespace: dict, capture: bool = True):
        self.runtime = StudentRuntime(namespace, capture=capture)

    def request(self, msg: dict, blobs=(), cpu_limit: float | None = None) -> tuple[dict, list]:
        msg, blobs = unpack(pack(msg, list(blobs))[8:])
        reply, out = self.runtime.handle(msg, blobs)
        return unpack(pack(reply, out)[8:])

    def close(self) -> None:
        pass
