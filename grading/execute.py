"""nbgrader's ``Execute`` preprocessor, hardened for untrusted notebooks.

:class:`GradingExecute` is a subclass of :class:`nbgrader.preprocessors.Execute` and replaces it
in nbgrader's own autograde pipeline (``Autograde.autograde_preprocessors``).  nbgrader still
does the grading (sanitising, restoring test cells, saving grades); this class only changes how
the notebook is run:

* the kernel is started by :mod:`grading.kernel` (resource limits, its own session, dies with the
  worker) in a private working directory that holds only the student's own files;
* a per-cell time limit (nbclient's) plus a whole-notebook deadline: the last cell gets only the
  time left, a kernel that ignores interrupts is killed, and cells that could not run get an
  error output, so their tests score 0 instead of nbgrader's full marks for a cell without
  output;
* a kernel that dies (``os._exit``, a crash, the memory watchdog) does not abort the notebook:
  the cell gets an error output and the remaining cells are marked as not run;
* outputs are capped while they arrive (a cell that prints gigabytes cannot exhaust the worker);
* before each test cell the kernel restores pristine builtins/numpy/checker modules (see
  :mod:`grading.kernel`), and reports where an exception in a hidden test came from so the
  feedback can show its message without the hidden code.

What happened is collected in :data:`REPORT` (one notebook is executed at a time per process).
"""
from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time
import uuid

from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import ensure_async, run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.notebooknode import NotebookNode
from nbgrader import utils as nbutils
from nbgrader.preprocessors import Execute
from traitlets import Dict, Float, Int, Unicode

KERNEL_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kernel.py")
HIDDEN_BEGIN = "BEGIN HIDDEN TESTS"

# Filled by GradingExecute while a notebook runs, read by grading.worker afterwards.
REPORT: dict = {}


def new_report() -> dict:
    REPORT.clear()
    REPORT.update({"problems": [], "events": [], "cells": {}, "kernel_start_s": None,
                   "execute_s": None})
    return REPORT


def _event(kind: str, text: str, cell: str | None = None) -> None:
    REPORT.setdefault("events", []).append({"kind": kind, "text": text, "cell": cell})


class GradingKernelManager(AsyncKernelManager):
    """Starts :mod:`grading.kernel` instead of the kernelspec's command line."""

    grading_config = Unicode("{}")
    grading_token = Unicode("")
    grading_started = Float(0.0)

    def format_kernel_cmd(self, extra_arguments=None):
        return [sys.executable, KERNEL_SCRIPT, self.grading_config, "-f", self.connection_file,
                "--HistoryManager.enabled=False", "--IPKernelApp.capture_fd_output=False",
                "--Application.log_level=CRITICAL"]


def kernel_environment(sandbox: str, extra: dict) -> dict:
    env = dict(os.environ)
    for k in list(env):  # nothing of the grader's own settings leaks into the kernel
        if k.startswith(("GRADING_", "JPY_", "DASK_")):
            del env[k]
    env.update({k: str(v) for k, v in extra.items()})
    if sandbox:
        env["HOME"] = sandbox
        env["IPYTHONDIR"] = os.path.join(sandbox, ".ipython")
        env["MPLCONFIGDIR"] = os.path.join(sandbox, ".matplotlib")
    env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    env["NBGRADER_EXECUTION"] = "autograde"   # as nbgrader sets it, also for pre-started kernels
    return env


async def async_launch_kernel(sandbox: str, kernel_options: dict, memory_limit: int, kernel_env: dict,
                              km: "GradingKernelManager | None" = None) -> "GradingKernelManager":
    """Start a grading kernel in ``sandbox`` (returns at once; the kernel boots on its own)."""
    km = km or GradingKernelManager(kernel_name="python3")
    km.grading_token = "#grader-" + uuid.uuid4().hex + "\n"
    opts = dict(kernel_options)
    opts["token"] = km.grading_token
    if memory_limit:
        opts["memory_limit"] = int(memory_limit)
    km.grading_config = json.dumps(opts)
    env = kernel_environment(sandbox, kernel_env)
    if kernel_options.get("zygote", True):
        from . import zygote as zy

        helpers = set(kernel_options.get("helper_modules", []))
        libs = [m for m in kernel_options.get("eager_imports", []) if m.split(".")[0] not in helpers]
        z = zy.get_zygote(libs, kernel_environment("", kernel_env), kernel_env)
        if z is not None and km.provisioner is None:
            km.kernel_id = km.kernel_id or str(uuid.uuid4())
            prov = zy.ZygoteProvisioner(kernel_id=km.kernel_id, kernel_spec=km.kernel_spec, parent=km)
            prov.zygote = z
            km.provisioner = prov
    devnull = open(os.devnull, "wb")
    try:
        await km.start_kernel(cwd=sandbox or None, env=env, stdout=devnull, stderr=devnull)
    finally:
        devnull.close()
    km.grading_started = time.monotonic()
    return km


launch_kernel = run_sync(async_launch_kernel)


# A kernel started ahead of time by grading.worker for the next notebook (or None).
PRESTARTED: dict = {}


def _not_run(reason: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename="NotRun", evalue=reason,
                        traceback=["NotRun: " + reason])


def cell_label(cell, index: int) -> str:
    nbg = cell.get("metadata", {}).get("nbgrader", {})
    return nbg.get("grade_id") or "cell %d" % (index + 1)


class GradingExecute(Execute):
    sandbox_dir = Unicode("", help="working directory of the kernel").tag(config=True)
    notebook_timeout = Float(600.0, help="seconds for the whole notebook (0: none)").tag(config=True)
    memory_limit = Int(0, help="bytes per kernel (0: none)").tag(config=True)
    kernel_options = Dict({}, help="extra options for grading.kernel").tag(config=True)
    kernel_env = Dict({}, help="environment variables for the kernel").tag(config=True)
    max_stream_chars = Int(20000, help="stream text kept per cell").tag(config=True)
    max_data_chars = Int(2_000_000, help="rich output kept per cell").tag(config=True)
    max_error_chars = Int(4000, help="characters kept of an error message").tag(config=True)
    kill_grace = Float(10.0, help="seconds past the notebook deadline before a hard kill").tag(config=True)

    # -- set-up -------------------------------------------------------------------------------
    def __init__(self, **kw):
        super().__init__(**kw)
        self.kernel_manager_class = GradingKernelManager
        self.shutdown_kernel = "immediate"
        self._deadline = None
        self._dead = None
        self._kill_reason = None
        self._kernel_pid = None
        self._kernel_proc = None

    async def async_start_new_kernel(self, **kwargs):
        t0 = time.monotonic()
        await async_launch_kernel(self.sandbox_dir, self.kernel_options, self.memory_limit, self.kernel_env,
                                  km=self.km)
        self._adopt(self.km, t0)

    def _adopt(self, km, t0=None):
        self._token = km.grading_token
        proc = getattr(getattr(km, "provisioner", None), "process", None)
        self._kernel_pid = getattr(proc, "pid", None)
        self._kernel_proc = proc
        self._kernel_t0 = t0 if t0 is not None else time.monotonic()
        self._start_watchdog()

    start_new_kernel = run_sync(async_start_new_kernel)

    async def async_start_new_kernel_client(self):
        kc = await super().async_start_new_kernel_client()
        REPORT["kernel_start_s"] = time.monotonic() - self._kernel_t0
        return kc

    start_new_kernel_client = run_sync(async_start_new_kernel_client)

    async def _async_cleanup_kernel(self):
        victims = self._descendants()
        try:
            await super()._async_cleanup_kernel()
        except Exception:  # the kernel is killed below in any case; never fail a grade here
            try:
                if self.kc is not None:
                    self.kc.stop_channels()
            except Exception:
                pass
            self.km = None
            self.kc = None
        finally:
            self._stop_watchdog()
            self._kill_tree(victims)

    _cleanup_kernel = run_sync(_async_cleanup_kernel)

    # -- process control -----------------------------------------------------------------------
    def _descendants(self):
        pid = getattr(self, "_kernel_pid", None)
        if not pid:
            return []
        try:
            import psutil

            return psutil.Process(pid).children(recursive=True)
        except Exception:
            return []

    def _kill_tree(self, victims=()):
        pid = getattr(self, "_kernel_pid", None)
        if pid:
            try:
                os.killpg(pid, signal.SIGKILL)  # the kernel runs in its own session
            except (ProcessLookupError, PermissionError, OSError):
                pass
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError, OSError):
                pass
        for p in victims:
            try:
                p.kill()
            except Exception:
                pass

    def _kill_kernel(self, reason: str) -> None:
        if not getattr(self, "_kill_reason", None):
            self._kill_reason = reason
        self._kill_tree(self._descendants())

    def _start_watchdog(self):
        self._watch_stop = threading.Event()
        pid = self._kernel_pid

        def watch():
            try:
                import psutil

                proc = psutil.Process(pid)
            except Exception:
                proc = None
            while not self._watch_stop.wait(0.5):
                now = time.monotonic()
                if self._deadline and now > self._deadline + self.kill_grace:
                    self._kill_kernel("notebook time limit (%gs) exceeded and the kernel did not "
                                      "stop; killed" % self.notebook_timeout)
                    return
                if proc is not None and self.memory_limit:
                    try:
                        rss = proc.memory_info().rss + sum(
                            c.memory_info().rss for c in proc.children(recursive=True))
                    except Exception:
                        continue
                    if rss > self.memory_limit * 1.5:
                        self._kill_kernel("memory limit exceeded (%.0f MiB resident); killed"
                                          % (rss / 2**20))
                        return

        self._watch_thread = threading.Thread(target=watch, daemon=True, name="kernel-watchdog")
        self._watch_thread.start()

    def _stop_watchdog(self):
        ev = getattr(self, "_watch_stop", None)
        if ev is not None:
            ev.set()

    # -- execution ----------------------------------------------------------------------------
    def preprocess(self, nb, resources=None, km=None):
        resources = resources if resources is not None else {}
        if self.sandbox_dir:
            resources.setdefault("metadata", {})["path"] = self.sandbox_dir
        self._deadline = (time.monotonic() + self.notebook_timeout) if self.notebook_timeout else None
        self._dead = None
        self._kill_reason = None
        self._snapshot_done = False
        self._kernel_pid = None
        t0 = time.monotonic()
        km = None
        pre = PRESTARTED.pop("km", None)
        if pre is not None and PRESTARTED.pop("sandbox", None) == self.sandbox_dir:
            km = pre
            self._adopt(km, t0)
        elif pre is not None:
            _shutdown(pre)
        try:
            return super().preprocess(nb, resources, km)
        finally:
            if km is not None:  # nbclient cleans up only the kernels it started itself
                self._cleanup_kernel()
            REPORT["execute_s"] = time.monotonic() - t0

    def _get_timeout(self, cell):
        timeout = super()._get_timeout(cell)
        if self._deadline:
            left = max(1, math.ceil(self._deadline - time.monotonic()))
            timeout = left if timeout is None else min(timeout, left)
        return timeout

    def on_cell_executed(self, **kwargs):
        self._last_reply = kwargs.get("execute_reply")
        return super().on_cell_executed(**kwargs)

    async def _async_command(self, cmd: dict, timeout: float):
        from queue import Empty

        msg_id = self.kc.execute(self._token + json.dumps(cmd), silent=True, store_history=False,
                                 stop_on_error=False)
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from the kernel")
            try:
                msg = await ensure_async(self.kc.shell_channel.get_msg(timeout=left))
            except Empty:
                raise TimeoutError("no answer from the kernel") from None
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg["content"].get("grader")

    def _command(self, cmd: dict, timeout: float = 20.0):
        return run_sync(self._async_command)(cmd, timeout)

    def _mark_dead(self, reason: str, kind: str) -> None:
        self._dead = reason
        _event(kind, reason)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code" or not cell.source.strip():
            return cell, resources
        label = cell_label(cell, index)
        is_test = nbutils.is_grade(cell) and not nbutils.is_solution(cell)
        is_instructor = is_test or (nbutils.is_locked(cell) and not nbutils.is_solution(cell))
        hidden = is_test and HIDDEN_BEGIN in cell.source
        if self._dead:
            cell.outputs = [_not_run(self._dead)]
            return cell, resources
        if self._deadline and time.monotonic() >= self._deadline:
            self._kill_kernel("notebook time limit")
            self._mark_dead("not run: the notebook exceeded its time limit of %gs"
                            % self.notebook_timeout, "timeout")
            cell.outputs = [_not_run(self._dead)]
            return cell, resources

        try:
            if not self._snapshot_done:
                self._snapshot_done = True
                info = self._command({"cmd": "snapshot"}, timeout=60)
                if not info or not info.get("ok"):
                    _event("review", "could not snapshot the pristine modules: %s" % (info or {}).get("error"))
            if is_instructor:
                info = self._command({"cmd": "before", "test": is_test, "hidden": hidden})
                if not info or not info.get("ok"):
                    _event("review", "the grader hook did not answer before %s (kernel tampered?)" % label, label)
                elif info.get("tampered") or info.get("rebound"):
                    what = sorted(set(info.get("tampered", [])))
                    names = sorted(set(info.get("rebound", [])))
                    text = "before test %s the grader restored " % label
                    parts = []
                    if what:
                        parts.append("tampered library objects: " + ", ".join(what[:12]) +
                                     (" ..." if len(what) > 12 else ""))
                    if names:
                        parts.append("re-bound names: " + ", ".join(names[:12]))
                    _event("tampering", text + "; ".join(parts), label)
        except (TimeoutError, DeadKernelError, RuntimeError) as exc:
            if self._kernel_alive():
                _event("review", "grader hook failed before %s: %s" % (label, exc), label)
            else:
                reason = self._death_reason()
                self._mark_dead(reason, "kernel-died")
                cell.outputs = [_not_run(reason)]
                return cell, resources

        self._cell_stream = {}
        self._cell_data = 0
        self._cell_truncated = 0
        self._last_reply = None
        try:
            cell = self.execute_cell(cell, index, store_history=True)
        except DeadKernelError:
            reason = self._death_reason(label)
            cell.outputs.append(NotebookNode(output_type="error", ename="KernelDied", evalue=reason,
                                             traceback=["KernelDied: " + reason]))
            kind = "timeout" if "time limit" in reason else (
                "memory" if "memory" in reason else "kernel-died")
            self._mark_dead("not run: " + reason, kind)
            REPORT["events"][-1]["cell"] = label
            return cell, resources
        except CellTimeoutError:
            # nbclient interrupted the cell but the kernel never became idle again
            self._kill_kernel("unresponsive")
            reason = ("%s exceeded its time limit and ignored the interrupt; the kernel was "
                      "killed" % label)
            cell.outputs.append(NotebookNode(output_type="error", ename="CellTimeoutError",
                                             evalue=reason, traceback=["CellTimeoutError: " + reason]))
            self._mark_dead("not run: an earlier cell (%s) hung" % label, "timeout")
            REPORT["events"][-1]["text"] = reason
            REPORT["events"][-1]["cell"] = label
            return cell, resources
        finally:
            if self._cell_truncated:
                _event("output", "output of %s truncated (%d characters dropped)"
                       % (label, self._cell_truncated), label)

        reply = (self._last_reply or {}).get("content", {})
        if reply.get("status") == "error":
            ename = reply.get("ename", "")
            if ename == "CellTimeoutError":
                if self._deadline and time.monotonic() >= self._deadline - 0.5:
                    self._kill_kernel("notebook time limit")
                    self._mark_dead("not run: the notebook exceeded its time limit of %gs"
                                    % self.notebook_timeout, "timeout")
                    REPORT["events"][-1]["cell"] = label
                else:
                    _event("timeout", "%s exceeded the %ss cell time limit and was interrupted"
                           % (label, self.timeout), label)
            elif ename == "MemoryError":
                _event("memory", "MemoryError in %s (memory limit %s)" % (label, _fmt_bytes(self.memory_limit)), label)
            elif ename == "SystemExit":
                _event("note", "%s called sys.exit(); IPython caught it and grading went on" % label, label)
            elif ename == "KeyboardInterrupt":
                _event("note", "%s was interrupted" % label, label)
        ginfo = reply.get("grader")
        if is_test:
            entry = REPORT["cells"].setdefault(label, {})
            entry["hidden"] = hidden
            if isinstance(ginfo, dict):
                if ginfo.get("origin"):
                    entry["origin"] = ginfo["origin"]
                if ginfo.get("suppressed_output"):
                    entry["suppressed_output"] = ginfo["suppressed_output"]
        return cell, resources

    def _kernel_alive(self) -> bool:
        proc = getattr(self, "_kernel_proc", None)
        return proc is not None and proc.poll() is None

    def _death_reason(self, label: str | None = None) -> str:
        if getattr(self, "_kill_reason", None):
            return self._kill_reason
        proc = getattr(self, "_kernel_proc", None)
        code = proc.poll() if proc is not None else None
        where = (" in %s" % label) if label else ""
        if code is None:
            return "the kernel stopped answering%s" % where
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = str(-code)
            if -code == signal.SIGKILL:
                return "the kernel was killed%s (%s: out of memory?)" % (where, name)
            return "the kernel crashed%s (%s)" % (where, name)
        return "the kernel exited%s with code %d (os._exit or a crash)" % (where, code)

    # -- output cap -------------------------------------------------------------------------
    def output(self, outs, msg, display_id, cell_index):
        msg_type = msg.get("msg_type")
        content = msg.get("content", {})
        if msg_type == "error":
            lim = self.max_error_chars
            if len(content.get("evalue", "")) > lim:
                self._cell_truncated += len(content["evalue"]) - lim
                content["evalue"] = content["evalue"][:lim] + " ... [truncated]"
            tb = content.get("traceback", [])
            if sum(len(t) for t in tb) > 20 * lim:
                kept = []
                total = 0
                for t in tb:
                    if total + len(t) > 20 * lim:
                        kept.append("... [traceback truncated by the grader]")
                        break
                    kept.append(t)
                    total += len(t)
                content["traceback"] = kept
            return super().output(outs, msg, display_id, cell_index)
        if msg_type == "stream":
            name = content.get("name", "stdout")
            used = self._cell_stream.get(name, 0)
            text = content.get("text", "")
            room = self.max_stream_chars - used
            if room <= 0 and name in self._cell_stream:
                self._cell_truncated += len(text)
                return None
            if room <= 0:
                room = 1000  # always keep a little of each stream (stderr decides grades)
            if len(text) > room:
                self._cell_truncated += len(text) - room
                content["text"] = text[:room] + "\n... [output truncated by the grader]\n"
            self._cell_stream[name] = used + len(text)
            return super().output(outs, msg, display_id, cell_index)
        if msg_type in ("display_data", "execute_result", "update_display_data"):
            size = sum(len(v) if isinstance(v, str) else len(json.dumps(v))
                       for v in content.get("data", {}).values())
            if self._cell_data + size > self.max_data_chars:
                self._cell_truncated += size
                if msg_type == "execute_result":
                    content["data"] = {"text/plain": "[result too large: dropped by the grader]"}
                    return super().output(outs, msg, display_id, cell_index)
                return None
            self._cell_data += size
        return super().output(outs, msg, display_id, cell_index)


def _shutdown(km) -> None:
    """Stop a kernel that will not be used (and everything it started)."""
    proc = getattr(getattr(km, "provisioner", None), "process", None)
    pid = getattr(proc, "pid", None)
    try:
        run_sync(km.shutdown_kernel)(now=True)
    except Exception:
        pass
    if pid:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass


def _fmt_bytes(n) -> str:
    if not n:
        return "none"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return ("%.0f %s" % (n, unit)) if unit == "B" else ("%.3g %s" % (n, unit))
        n /= 1024
    return str(n)
