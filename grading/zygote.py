"""Forking grading kernels from a pre-imported process (the worker side of ``kernel.py --zygote``).

A kernel's start costs ~0.5 s of CPU, nearly all in imports.  Each grading worker keeps one zygote
process that has imported ipykernel, IPython and the libraries the instructor cells use, and forks
it once per notebook; the child sets its own limits, working directory and environment exactly as
a freshly started kernel would (see ``grading/kernel.py``).  jupyter_client sees an ordinary
kernel through :class:`ZygoteProvisioner`.  If the zygote cannot start, kernels are started the
usual way.
"""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time

from jupyter_client.provisioning import LocalProvisioner

KERNEL_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kernel.py")
_CURRENT: dict = {}


class ZygoteError(RuntimeError):
    pass


class Zygote:
    def __init__(self, libraries: list, env: dict):
        self.lock = threading.Lock()
        self.proc = subprocess.Popen(
            [sys.executable, KERNEL_SCRIPT, "--zygote", json.dumps({"eager_imports": libraries})],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd="/",
            start_new_session=True, bufsize=0)
        ready = self._read(timeout=120)
        if "ready" not in ready:
            raise ZygoteError("the kernel fork server did not start")

    def _read(self, timeout: float) -> dict:
        end = time.monotonic() + timeout
        buf = b""
        while not buf.endswith(b"\n"):
            left = end - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise ZygoteError("no answer from the kernel fork server")
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if r:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    raise ZygoteError("the kernel fork server exited")
                buf += chunk
        return json.loads(buf.decode())

    def request(self, obj: dict, timeout: float = 30) -> dict:
        with self.lock:
            try:
                self.proc.stdin.write((json.dumps(obj) + "\n").encode())
            except (BrokenPipeError, OSError) as exc:
                raise ZygoteError("the kernel fork server is gone: %s" % exc) from None
            return self._read(timeout)

    def spawn(self, cmd: list, cwd: str | None, env: dict) -> int:
        return int(self.request({"spawn": cmd, "cwd": cwd, "env": env})["pid"])

    def status(self, pid: int):
        return self.request({"status": pid}, timeout=10).get("exit")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def get_zygote(libraries: list, env: dict, key_env: dict) -> Zygote | None:
    """The zygote of this worker for these libraries (started on first use, with ``env``).

    ``key_env`` is what of the environment matters for the imports (the kernel's PYTHONPATH...);
    each kernel gets its own full environment when it is forked anyway.  A new zygote replaces
    the old one only when the libraries or ``key_env`` change (another assignment): the kernels
    of the old one die with it."""
    key = json.dumps([libraries, sorted(key_env.items())])
    z = _CURRENT.get("zygote")
    if z is not None and _CURRENT.get("key") == key and z.alive():
        return z
    if z is not None:
        z.close()
        _CURRENT.pop("zygote", None)
        _CURRENT.pop("key", None)
    if _CURRENT.get("failed") == key:
        return None
    try:
        z = Zygote(libraries, env)
    except (ZygoteError, OSError):
        _CURRENT["failed"] = key
        return None
    _CURRENT.update({"zygote": z, "key": key})
    if not _CURRENT.get("finalizer"):  # close it when the worker process ends
        import atexit
        import multiprocessing.util

        def close():
            zz = _CURRENT.pop("zygote", None)
            if zz is not None:
                zz.close()
        _CURRENT["finalizer"] = multiprocessing.util.Finalize(None, close, exitpriority=5)
        atexit.register(close)
    return z


class ZygoteProcess:
    """Enough of ``subprocess.Popen`` for jupyter_client, for a kernel forked by the zygote."""

    stdin = stdout = stderr = None

    def __init__(self, zygote: Zygote, pid: int):
        self.zygote = zygote
        self.pid = pid
        self.returncode = None

    def poll(self):
        if self.returncode is None:
            try:
                code = self.zygote.status(self.pid)
            except (ZygoteError, OSError, ValueError):
                try:
                    os.kill(self.pid, 0)
                    code = None
                except ProcessLookupError:
                    code = -signal.SIGKILL
                except PermissionError:
                    code = None
            if code is not None:
                self.returncode = code
        return self.returncode

    def wait(self, timeout=None):
        end = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if end is not None and time.monotonic() > end:
                raise subprocess.TimeoutExpired("kernel", timeout)
            time.sleep(0.02)
        return self.returncode

    def send_signal(self, sig):
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:  # already gone, as Popen.send_signal tolerates
            pass

    def kill(self):
        self.send_signal(signal.SIGKILL)

    def terminate(self):
        self.send_signal(signal.SIGTERM)


class ZygoteProvisioner(LocalProvisioner):
    """jupyter_client's local provisioner, launching through the zygote instead of Popen."""

    zygote: Zygote | None = None

    async def launch_kernel(self, cmd, **kwargs):
        kw = LocalProvisioner._scrub_kwargs(kwargs)
        pid = self.zygote.spawn(list(cmd), kw.get("cwd"), dict(kw.get("env") or os.environ))
        self.process = ZygoteProcess(self.zygote, pid)
        self.pid = pid
        self.pgid = pid
        self.cwd = kw.get("cwd")
        return self.connection_info
