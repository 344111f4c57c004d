"""Kernel launcher used by the grader (run as a script, never imported by student code).

    python kernel.py CONFIG_JSON -f CONNECTION_FILE [ipykernel options]

It applies resource limits to its own process, then starts an ipykernel whose kernel class
understands a few *silent* grader commands.  The commands are sent by
:class:`grading.execute.GradingExecute` as ``execute_request`` messages with ``silent=True``;
they are answered by Python code in this file, never by the notebook, so nothing the grader
injects ever appears in a notebook, its outputs or the feedback.

Commands (the code of the request is ``TOKEN + json``):

``snapshot``   taken before the first cell: imports the modules the instructor cells use and
               records pristine copies of ``builtins``, those modules (their dicts, the code of
               their functions, the dicts of their classes) and a few IPython hooks.
``before``     sent before an instructor cell; for a test cell (``test: true``) it first
               restores everything recorded by ``snapshot``, re-binds the names instructor
               cells bound (``np``, checker functions) and hides student names that shadow
               builtins for the duration of the test.  After the cell ran, the kernel records
               the names it bound, puts the shadowing names back and, for cells with hidden
               tests, scrubs the cell from the input history and reports where an exception
               came from, so the feedback can show a message without showing hidden code.

Everything here runs inside the student's process: it defeats monkey-patching of the usual
comparison helpers, not a student who attacks the interpreter itself (see grading/README.md).
"""
import json
import os
import sys


def _apply_limits(cfg):
    import resource

    def setlim(which, value):
        if value is None:
            return
        try:
            soft, hard = resource.getrlimit(which)
            value = int(value)
            if hard != resource.RLIM_INFINITY:
                value = min(value, hard)
            resource.setrlimit(which, (value, hard if hard != resource.RLIM_INFINITY else value))
        except (ValueError, OSError):
            pass

    mem = cfg.get("memory_limit")
    if mem:
        # RLIMIT_DATA counts heap and private writable mappings (what numpy allocates) but not
        # shared libraries or reserved address space, so imports of big libraries still work.
        setlim(resource.RLIMIT_DATA, mem)
        if cfg.get("limit_address_space"):
            setlim(resource.RLIMIT_AS, mem)
    setlim(resource.RLIMIT_FSIZE, cfg.get("file_size_limit"))
    setlim(resource.RLIMIT_CORE, 0)
    if cfg.get("max_processes"):
        setlim(resource.RLIMIT_NPROC, cfg["max_processes"])
    try:  # die with the grading worker, whatever happens to it
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _drop_privileges(cfg, argv):
    """Run the kernel as an unprivileged user (only when the grader runs as root)."""
    user = cfg.get("kernel_user")
    if not user or os.geteuid() != 0:
        return argv
    import pwd
    import shutil

    pw = pwd.getpwnam(user)
    # the connection file is private to root: hand the kernel its own copy in the sandbox
    if "-f" in argv:
        i = argv.index("-f")
        src = argv[i + 1]
        dst = os.path.join(os.getcwd(), ".kernel-connection.json")
        shutil.copyfile(src, dst)
        os.chown(dst, pw.pw_uid, pw.pw_gid)
        os.chmod(dst, 0o600)
        argv = argv[:i + 1] + [dst] + argv[i + 2:]
    os.setgroups([])
    os.setgid(pw.pw_gid)
    os.setuid(pw.pw_uid)
    os.environ["USER"] = os.environ["LOGNAME"] = user
    return argv


def _make_kernel_class(cfg):
    import builtins
    import importlib
    import linecache
    import threading
    import types

    from ipykernel.ipkernel import IPythonKernel

    token = cfg["token"]
    protected_prefixes = set(cfg.get("protected", [])) | {"builtins", "numpy", "math"}
    aliases = dict(cfg.get("aliases", {}))
    eager = list(cfg.get("eager_imports", []))
    message_modules = tuple(cfg.get("message_modules", []))
    max_hidden_output = int(cfg.get("suppressed_output_note", 1))

    # references captured now, before any student code can run
    _dict_clear = dict.clear
    _dict_update = dict.update
    _getframe = sys._getframe
    _isinstance = isinstance
    _len = len
    _list = list
    _set = set
    _sorted = sorted
    _type = type
    _getattr = getattr
    _setattr = setattr
    _hasattr = hasattr
    _id = id
    _str = str
    _FunctionType = types.FunctionType
    _ModuleType = types.ModuleType
    _sys_modules = sys.modules
    _settrace = sys.settrace
    _setprofile = sys.setprofile
    _threading_settrace = threading.settrace
    _excepthook = sys.excepthook
    _builtins_dict = builtins.__dict__
    _object_setattr = object.__setattr__
    HEAPTYPE = 1 << 9
    SAFE_HOOK_MODULES = {"matplotlib", "matplotlib_inline", "ipykernel", "IPython", "ipywidgets", "comm",
                         "traitlets", "ipympl", "plotly", "bokeh"}
    METHODS = (types.FunctionType, classmethod, staticmethod, property)

    def top(name):
        return name.split(".", 1)[0]

    class State:
        snapshot = None
        recorded = {}          # user name -> object bound by an instructor cell
        armed = None           # dict for the cell about to run
        student_files = set()  # code file names of cells run before the current test cell
        shadow_saved = {}
        initial_user_names = set()

    state = State()

    def code_like(value):
        return _isinstance(value, (_ModuleType, _type) + METHODS) or callable(value)

    def is_protected_module(name):
        return top(name) in protected_prefixes

    def take_snapshot(shell):
        for name in eager:
            try:
                importlib.import_module(name)
            except BaseException:  # a missing checker module is reported by the tests themselves
                pass
        modules = {}
        functions = []
        classes = []
        for name, mod in _list(_sys_modules.items()):
            if not _isinstance(mod, _ModuleType) or not is_protected_module(name):
                continue
            d = mod.__dict__
            # only what is code (functions, classes, modules, ufuncs...): libraries change their own
            # data at run time (caches, lazily started helpers), which must not be reset
            modules[name] = (mod, d, {k: v for k, v in d.items() if code_like(v)})
            for value in _list(d.values()):
                if _type(value) is _FunctionType:
                    functions.append((value, value.__code__, value.__defaults__, value.__kwdefaults__))
                elif _isinstance(value, _type) and (value.__flags__ & HEAPTYPE) and \
                        _getattr(value, "__module__", "") == name:
                    cd = {k: v for k, v in vars(value).items() if code_like(v)}
                    classes.append((value, cd, True))
                    for attr in cd.values():
                        if _type(attr) is _FunctionType:
                            functions.append((attr, attr.__code__, attr.__defaults__, attr.__kwdefaults__))
        # IPython hooks a student could use to rewrite or spy on the test cells
        ipy = {
            "ast_transformers": _list(shell.ast_transformers),
            "input_transformers_post": _list(shell.input_transformers_post),
            "input_transformers_cleanup": _list(getattr(shell, "input_transformers_cleanup", [])),
            "events": {k: _list(v) for k, v in shell.events.callbacks.items()},
            "custom_exceptions": shell.custom_exceptions,
            "instance_attrs": _set(vars(shell)),
        }
        state.initial_user_names = _set(shell.user_ns)
        shell_classes = []
        for cls in _type(shell).__mro__ + _type(shell.kernel).__mro__:
            if cls.__flags__ & HEAPTYPE:
                cd = {k: v for k, v in vars(cls).items() if _isinstance(v, METHODS)}
                shell_classes.append((cls, cd, False))
        state.snapshot = {
            "builtins": dict(_builtins_dict),
            "modules": modules,
            "functions": functions,
            "classes": classes + shell_classes,
            "ipython": ipy,
        }
        return {"modules": _len(modules)}

    def safe_hook(cb):
        """Event callbacks that libraries register (matplotlib's inline backend...) stay."""
        mod = _getattr(cb, "__module__", None) or _getattr(_getattr(cb, "__func__", None), "__module__", None)
        return _isinstance(mod, _str) and top(mod) in SAFE_HOOK_MODULES

    def restore(shell):
        """Put back pristine builtins/modules/functions; returns what had been tampered with."""
        snap = state.snapshot
        changed = []
        # builtins first, using only references captured at start-up
        saved = snap["builtins"]
        for k in _list(_builtins_dict):
            if k not in saved:
                changed.append("builtins." + k + " added")
        for k, v in saved.items():
            if _builtins_dict.get(k, changed) is not v and k != "_":
                changed.append("builtins." + k)
        _dict_clear(_builtins_dict)
        _dict_update(_builtins_dict, saved)
        _settrace(None)
        _setprofile(None)
        _threading_settrace(None)
        sys.excepthook = _excepthook
        for name, (mod, d, saved_d) in snap["modules"].items():
            if _sys_modules.get(name) is not mod:
                changed.append("sys.modules[%r]" % name)
                _sys_modules[name] = mod
            if mod.__dict__ is not d:
                continue
            for k, v in saved_d.items():
                if k == "__warningregistry__":
                    continue
                if d.get(k, changed) is not v:
                    changed.append(name + "." + k)
                    d[k] = v
        for fn, code, defaults, kwdefaults in snap["functions"]:
            if fn.__code__ is not code or fn.__defaults__ is not defaults or fn.__kwdefaults__ is not kwdefaults:
                changed.append(_getattr(fn, "__module__", "?") + "." + _getattr(fn, "__qualname__", "?") + ".__code__")
                fn.__code__ = code
                fn.__defaults__ = defaults
                fn.__kwdefaults__ = kwdefaults
        for cls, cd, strict in snap["classes"]:
            current = vars(cls)
            for k, v in cd.items():
                if current.get(k, changed) is not v:
                    try:
                        _setattr(cls, k, v)
                        changed.append(cls.__module__ + "." + cls.__qualname__ + "." + k)
                    except (TypeError, AttributeError):
                        pass
            if not strict:
                continue
            for k in _list(current):
                if k not in cd and callable(current[k]):
                    try:
                        delattr(cls, k)
                        changed.append(cls.__module__ + "." + cls.__qualname__ + "." + k + " added")
                    except (TypeError, AttributeError):
                        pass
        ipy = snap["ipython"]
        if _list(shell.ast_transformers) != ipy["ast_transformers"]:
            changed.append("IPython ast_transformers")
            shell.ast_transformers[:] = ipy["ast_transformers"]
        if _list(shell.input_transformers_post) != ipy["input_transformers_post"]:
            changed.append("IPython input_transformers_post")
            shell.input_transformers_post[:] = ipy["input_transformers_post"]
        if _hasattr(shell, "input_transformers_cleanup") and \
                _list(shell.input_transformers_cleanup) != ipy["input_transformers_cleanup"]:
            changed.append("IPython input_transformers_cleanup")
            shell.input_transformers_cleanup[:] = ipy["input_transformers_cleanup"]
        for k, v in _list(shell.events.callbacks.items()):
            saved = ipy["events"].get(k, [])
            keep = [cb for cb in v if cb in saved or safe_hook(cb)]
            if _len(keep) != _len(v):
                changed.append("IPython event " + k)
                v[:] = keep
        if shell.custom_exceptions != ipy["custom_exceptions"]:
            changed.append("IPython custom_exceptions")
            shell.set_custom_exc((), None)
        for k in _list(vars(shell)):
            if k not in ipy["instance_attrs"] and callable(vars(shell)[k]) and _hasattr(_type(shell), k):
                changed.append("IPython shell." + k)
                delattr(shell, k)
        return changed

    def rebind_names(shell):
        ns = shell.user_ns
        changed = []
        for name, obj in state.recorded.items():
            if ns.get(name, changed) is not obj:
                changed.append(name)
                ns[name] = obj
        for name, modname in aliases.items():
            mod = _sys_modules.get(modname)
            if name in ns and mod is not None and ns[name] is not mod and name not in state.recorded:
                changed.append(name)
                ns[name] = mod
        # student names that shadow builtins are hidden while the test runs, then put back
        state.shadow_saved = {}
        builtin_names = state.snapshot["builtins"]
        for name in _list(ns):
            if name in builtin_names and not name.startswith("_") and name not in state.recorded \
                    and name not in state.initial_user_names:
                state.shadow_saved[name] = ns.pop(name)
        return changed

    def record_names(shell):
        ns = shell.user_ns
        for name, value in _list(ns.items()):
            if name.startswith("_"):
                continue
            if _isinstance(value, _ModuleType):
                modname = value.__name__
            elif callable(value):
                modname = _getattr(value, "__module__", None)
                if not _isinstance(modname, _str):
                    continue
            else:
                continue
            if is_protected_module(modname):
                state.recorded[name] = value

    def code_files():
        return _set(k for k in _list(linecache.cache)
                    if _isinstance(k, _str) and ("ipykernel_" in k or k.startswith("<ipython-input")))

    def filter_stream(stream):
        """Drop what student code (functions defined in earlier cells, their threads) writes to
        ``stream`` during a hidden test: it could echo the hidden inputs into the feedback.

        The stream object itself stays (ipykernel and IPython check its class and patch its
        ``write``); only its ``write`` is wrapped, as an instance attribute removed afterwards."""
        had_attr = "write" in vars(stream)
        original = stream.write
        dropped = [0]

        def write(text, *args, **kwargs):
            f = _getframe(1)
            depth = 0
            while f is not None and depth < 60:
                if f.f_code.co_filename in state.student_files:
                    dropped[0] += _len(text) if _isinstance(text, _str) else 0
                    return _len(text) if _isinstance(text, _str) else 0
                f = f.f_back
                depth += 1
            return original(text, *args, **kwargs)

        stream.write = write

        def undo():
            if vars(stream).get("write") is write:
                if had_attr:
                    stream.write = original
                else:
                    del stream.write
            return dropped[0]

        return undo

    def exception_origin(shell, cell_file_candidates):
        tb = _getattr(sys, "last_traceback", None)
        value = _getattr(sys, "last_value", None)
        if tb is None:
            return None
        frames = []
        while tb is not None:
            f = tb.tb_frame
            frames.append((f.f_code.co_filename, tb.tb_lineno, f.f_code.co_name,
                           f.f_globals.get("__name__", "") if _isinstance(f.f_globals, dict) else "",
                           f.f_globals is shell.user_ns))
            tb = tb.tb_next
        cell_line = None
        cell_index = None
        for i, (fname, lineno, co_name, modname, is_user) in enumerate(frames):
            if fname not in state.student_files and is_user and co_name == "<module>":
                cell_line = lineno
                cell_index = i
        # where did it come from?  student code anywhere on the way: the student's own error (its
        # message may show the hidden inputs); else the test line itself; else a course checker;
        # else a library called directly by the hidden test (numpy.testing: shows the values)
        deeper = frames[cell_index + 1:] if cell_index is not None else frames
        origin = "unknown"
        if any(f[0] in state.student_files for f in deeper):
            origin = "student"
        elif cell_index is not None and cell_index == _len(frames) - 1:
            origin = "test"
        elif message_modules and any(f[3] in message_modules or top(f[3]) in message_modules for f in deeper):
            origin = "checker"
        elif deeper:
            origin = "library"
        return {
            "ename": _type(value).__name__ if value is not None else "",
            "cell_line": cell_line,
            "origin": origin,
            "frames": [(f[0], f[1], f[2], f[3]) for f in frames[-8:]],
        }

    def scrub_history(shell, code):
        """Remove a hidden test cell from everything later student cells could read."""
        note = "# (hidden test cell)"
        hm = shell.history_manager
        for lst in (getattr(hm, "input_hist_parsed", None), getattr(hm, "input_hist_raw", None)):
            if lst:
                for i in range(_len(lst)):
                    if lst[i] and (lst[i] == code or lst[i].strip() == code.strip()):
                        lst[i] = note
        ns = shell.user_ns
        for k in _list(ns):
            if k in ("_i", "_ii", "_iii", "_ih", "In") or (k.startswith("_i") and k[2:].isdigit()):
                v = ns[k]
                if _isinstance(v, _str) and v.strip() == code.strip():
                    ns[k] = note
                elif _isinstance(v, _list):
                    for i in range(_len(v)):
                        if _isinstance(v[i], _str) and v[i].strip() == code.strip():
                            v[i] = note
        for k in _list(linecache.cache):
            entry = linecache.cache.get(k)
            try:
                if entry and "".join(entry[2]).strip() == code.strip():
                    del linecache.cache[k]
            except Exception:
                pass
        try:
            db = hm.db
            db.execute("UPDATE input SET source=?, source_raw=? WHERE source_raw=?", (note, note, code))
        except Exception:
            pass

    class GraderKernel(IPythonKernel):
        async def do_execute(self, code, silent, *args, **kwargs):
            if silent and _isinstance(code, _str) and code.startswith(token):
                try:
                    info = self._grader_command(json.loads(code[_len(token):]))
                    info["ok"] = True
                except BaseException as exc:  # never let a grader command kill the kernel
                    info = {"ok": False, "error": "%s: %s" % (_type(exc).__name__, exc)}
                return {"status": "ok", "execution_count": self.execution_count,
                        "user_expressions": {}, "payload": [], "grader": info}
            armed, state.armed = state.armed, None
            if armed is None:
                # a student cell: remember the file name its code gets, to recognise it later
                before = code_files()
                try:
                    return await super().do_execute(code, silent, *args, **kwargs)
                finally:
                    state.student_files |= code_files() - before
            return await self._run_instructor_cell(armed, code, silent, *args, **kwargs)

        def _grader_command(self, cmd):
            shell = self.shell
            what = cmd.get("cmd")
            if what == "snapshot":
                return take_snapshot(shell)
            if what == "before":
                info = {}
                if cmd.get("test"):
                    info["tampered"] = restore(shell)
                    info["rebound"] = rebind_names(shell)
                state.armed = cmd
                return info
            raise ValueError("unknown grader command %r" % what)

        async def _run_instructor_cell(self, armed, code, silent, *args, **kwargs):
            shell = self.shell
            hidden = bool(armed.get("hidden"))
            undo = []
            if hidden:
                for stream in (sys.stdout, sys.stderr):
                    try:
                        undo.append(filter_stream(stream))
                    except Exception:
                        pass
            try:
                sys.last_traceback = None
                sys.last_value = None
            except Exception:
                pass
            try:
                reply = await super().do_execute(code, silent, *args, **kwargs)
            finally:
                info = {}
                dropped = 0
                for u in undo:
                    try:
                        dropped += u()
                    except Exception:
                        pass
                if dropped:
                    info["suppressed_output"] = dropped
                record_names(shell)
                if armed.get("test"):
                    ns = shell.user_ns
                    for name, value in state.shadow_saved.items():
                        if name not in ns:
                            ns[name] = value
                    state.shadow_saved = {}
            if reply.get("status") == "error" and armed.get("test"):
                try:
                    info["origin"] = exception_origin(shell, None)
                except Exception as exc:  # pragma: no cover - diagnostic only
                    info["origin_error"] = _str(exc)
            if hidden:
                scrub_history(shell, code)
            reply["grader"] = info
            return reply

    return GraderKernel


def _eager_imports(cfg, libraries=True, helpers=True):
    import importlib

    helper_names = set(cfg.get("helper_modules", []))
    names = cfg.get("eager_imports", [])
    if libraries:  # libraries first, before the working directory is on the path
        for name in names:
            if name.split(".")[0] not in helper_names:
                try:
                    importlib.import_module(name)
                except BaseException:
                    pass
    if helpers:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        for name in names:
            if name.split(".")[0] in helper_names:
                try:
                    importlib.import_module(name)
                except BaseException:
                    pass


def _strip_own_dir():
    here = os.path.dirname(os.path.abspath(__file__))
    # the grading package must not be importable from the kernel by accident
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]


def run_kernel(cfg, argv):
    """Limits are applied; become the kernel (never returns normally)."""
    argv = _drop_privileges(cfg, argv)
    sys.argv[1:] = argv
    # import what the instructor cells will import while the kernel boots (a pre-started kernel
    # does this while the grader is still busy with the previous notebook)
    _eager_imports(cfg)
    kernel_class = _make_kernel_class(cfg)
    from ipykernel.kernelapp import IPKernelApp

    IPKernelApp.launch_instance(kernel_class=kernel_class)


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--zygote":
        return zygote(json.loads(sys.argv[2]))
    cfg = json.loads(sys.argv.pop(1))
    _strip_own_dir()
    _apply_limits(cfg)
    run_kernel(cfg, sys.argv[1:])


# -- fork server ---------------------------------------------------------------------------------
# Starting a kernel costs ~0.5 s of CPU, nearly all of it importing ipykernel, IPython, zmq and
# numpy.  A zygote imports them once per grading worker and forks one kernel per notebook.

def zygote(common):
    """Answer JSON lines on stdin: {"spawn": cmd, "cwd", "env"} -> {"pid"}; {"status": pid} -> {"exit"}."""
    import signal

    _strip_own_dir()
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # die with the grading worker
    except Exception:
        pass
    import ipykernel.ipkernel  # noqa: F401
    import ipykernel.kernelapp  # noqa: F401
    import IPython.core.interactiveshell  # noqa: F401

    _eager_imports(common, helpers=False)
    exits = {}
    children = set()

    def reap(*_):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            exits[pid] = os.waitstatus_to_exitcode(status)
            children.discard(pid)

    signal.signal(signal.SIGCHLD, reap)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out = sys.stdout
    out.write(json.dumps({"ready": os.getpid()}) + "\n")
    out.flush()
    while True:
        line = sys.stdin.buffer.readline()
        if not line:
            break
        try:
            req = json.loads(line)
        except ValueError:
            continue
        if "spawn" in req:
            pid = os.fork()
            if pid == 0:
                _zygote_child(req)  # never returns
            children.add(pid)
            reply = {"pid": pid}
        elif "status" in req:
            reap()
            pid = int(req["status"])
            reply = {"exit": exits.pop(pid, None) if pid not in children else None}
        else:
            reply = {"error": "unknown request"}
        out.write(json.dumps(reply) + "\n")
        out.flush()
    for pid in list(children):  # the worker went away: so do the kernels
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass


def _zygote_child(req):
    import signal

    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.setsid()
        fd = os.open(os.devnull, os.O_RDWR)
        for i in (0, 1, 2):
            os.dup2(fd, i)
        if fd > 2:
            os.close(fd)
        if req.get("cwd"):
            os.chdir(req["cwd"])
        os.environ.clear()
        os.environ.update(req.get("env") or {})
        os.environ["JPY_PARENT_PID"] = str(os.getppid())
        cmd = req["spawn"]
        cfg = json.loads(cmd[2])
        _apply_limits(cfg)
        try:  # a fresh process would have fresh random state
            import random

            random.seed()
            if "numpy" in sys.modules:
                sys.modules["numpy"].random.seed()
        except Exception:
            pass
        run_kernel(cfg, cmd[3:])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    except BaseException:
        code = 1
    finally:
        os._exit(code)


if __name__ == "__main__":
    main()
