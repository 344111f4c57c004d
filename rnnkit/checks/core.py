"""The machinery behind :func:`check`: collect the student's code, run it in a fresh process,
compare with rnnkit, and explain the difference.

Kernel side (``check``)          fresh process (``rnnkit.checks.runner``)
-----------------------          ----------------------------------------
gather definitions from ``In``   pristine numpy and rnnkit, imports guarded
warn about tampering        ->   exec the definitions, call the spec
print message / raise       <-   verdict as JSON in a private file
"""
from __future__ import annotations

import ast
import builtins
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

# Pristine references, taken when this module is first imported (in the fresh process this is
# before any student code runs). Comparisons below use only these.
_ndarray = np.ndarray
_isinstance = builtins.isinstance
_type = builtins.type
_allclose = np.allclose
_isfinite = np.isfinite
_asarray = np.asarray
_abs = np.abs

#: rnnkit modules a student may use in any exercise: they give no answers away.
ALLOWED_RNNKIT = ("rnnkit.gradcheck", "rnnkit.data", "rnnkit.viz")
#: modules whose use is refused for graded code (the spec may allow more or forbid more).
FORBIDDEN = ("rnnkit", "torch")
STUDENT = "__student__"
#: separates notebook cells in the collected source, so each cell is parsed on its own
CELL_BREAK = "\n# ---- next cell ----\n"


class CheckFailure(AssertionError):
    """A graded check failed; the message says what is wrong in the student's terms."""


# --------------------------------------------------------------------------------------------
# Kernel side
# --------------------------------------------------------------------------------------------

def check(spec: str, *, timeout: float = 120, source: str | None = None, **params):
    """Grade the student's code with the spec ``module.function`` of ``rnnkit.checks``.

    ``params`` (JSON values) are passed to the spec; ``seed=None`` means fresh random inputs.
    Prints a one-line verdict (returns None, so a test cell shows only that line); raises
    :class:`CheckFailure` when the check fails.
    """
    if source is None:
        source = student_source()
    for warning in tampering_warnings(source):
        print("Note:", warning)
    verdict = _run_isolated(spec, params, source, timeout)
    if verdict["ok"]:
        print(f"✔ {verdict['message']}")
        return None
    print(f"✘ {verdict['message']}")
    raise CheckFailure(verdict["message"]) from None


def student_source() -> str:
    """The code of the notebook cells run so far, from IPython's input history, without the test
    cells (those that use rnnkit.checks)."""
    try:
        shell = get_ipython()  # noqa: F821  (defined inside IPython)
    except NameError:
        import __main__

        return getattr(__main__, "__student_source__", "")
    cells = shell.user_ns.get("In", [])
    return CELL_BREAK.join(c for c in cells[1:] if c and "rnnkit.checks" not in c)


def _run_isolated(spec: str, params: dict, source: str, timeout: float) -> dict:
    """Run one check in a fresh process: a child forked from the warm zygote when it is up,
    else a new Python process. Returns the verdict dict."""
    with tempfile.TemporaryDirectory(prefix="rnnkit-check-") as tmp:
        result_path = os.path.join(tmp, "verdict.json")
        request = {"spec": spec, "params": params, "source": source, "result": result_path,
                   "timeout": timeout}
        status = _Zygote.run(request, tmp)
        if status is None:  # no zygote: a plain new process
            status = _run_process(request, tmp)
        if status["status"] == "timeout":
            return {"ok": False, "message": f"your code did not finish within {timeout:.0f} s "
                                            "(an endless loop, or far too much work?)"}
        try:
            with open(result_path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {"ok": False, "message": "the check could not run your code (the process ended with "
                                            f"status {status.get('code')}{status.get('detail', '')})"}


def _check_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHONSTARTUP")}
    env["MPLBACKEND"] = "Agg"
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    return env


def _run_process(request: dict, cwd: str) -> dict:
    try:
        proc = subprocess.run([sys.executable, "-m", "rnnkit.checks.runner"], input=json.dumps(request),
                              text=True, capture_output=True, timeout=request["timeout"], cwd=cwd,
                              env=_check_env())
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "code": None}
    tail = (proc.stderr or "").strip().splitlines()[-2:]
    return {"status": "done" if proc.returncode == 0 else "died", "code": proc.returncode,
            "detail": (": " + " | ".join(tail)) if tail else ""}


class _Zygote:
    """The kernel's connection to its ``rnnkit.checks.zygote`` process, started on first use."""

    proc = None

    @classmethod
    def run(cls, request: dict, cwd: str) -> dict | None:
        import select

        proc = cls.proc
        if proc is None or proc.poll() is not None:
            try:
                proc = cls.proc = subprocess.Popen(
                    [sys.executable, "-m", "rnnkit.checks.zygote"], stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=tempfile.gettempdir(), env=_check_env())
            except OSError:
                return None
        try:
            proc.stdin.write(json.dumps(request) + "\n")
            proc.stdin.flush()
            ready, _, _ = select.select([proc.stdout], [], [], request["timeout"] + 60)
            line = proc.stdout.readline() if ready else ""
            return json.loads(line)
        except (OSError, ValueError):
            proc.kill()
            cls.proc = None
            return None


_TAMPER_TARGETS = {"np", "numpy", "builtins", "__builtins__", "testing", "math"}


def tampering_warnings(source: str) -> list[str]:
    """Messages about student code that redefines numpy, numpy.testing or builtins."""
    found = []
    for tree in _parse_cells(source):
        for node in ast.walk(tree):
            targets = []
            if _isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                targets = node.targets if _isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if _isinstance(target, ast.Attribute):
                    root = target
                    while _isinstance(root, ast.Attribute):
                        root = root.value
                    if _isinstance(root, ast.Name) and root.id in _TAMPER_TARGETS:
                        found.append(ast.unparse(target))
            if _isinstance(node, ast.Call) and _isinstance(node.func, ast.Name) and node.func.id == "setattr":
                if node.args and _isinstance(node.args[0], ast.Name) and node.args[0].id in _TAMPER_TARGETS:
                    found.append(f"setattr({node.args[0].id}, ...)")
    return [f"your code redefines {name}; checks run in a separate process with the real one, "
            "so this does not change your grade" for name in dict.fromkeys(found)]


def _parse_cells(source: str):
    for cell in source.split(CELL_BREAK):
        try:
            yield ast.parse(cell)
        except SyntaxError:
            continue


# --------------------------------------------------------------------------------------------
# Fresh-process side: which student code runs, and which imports it may make
# --------------------------------------------------------------------------------------------

def definitions(source: str) -> str:
    """Keep the top-level statements that define things (functions, classes, imports, literal
    constants) and drop everything that computes (training loops, plots, prints, patches)."""
    kept = []
    for tree in _parse_cells(source):
        for node in tree.body:
            if _isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef,
                                  ast.Import, ast.ImportFrom)):
                kept.append(ast.unparse(node))
            elif _isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                targets = node.targets if _isinstance(node, ast.Assign) else [node.target]
                if all(_isinstance(t, ast.Name) for t in targets) and _is_literal(node.value):
                    kept.append(ast.unparse(node))
    return "\n\n".join(kept)


def _is_literal(node) -> bool:
    try:
        ast.literal_eval(node)
        return True
    except (ValueError, TypeError, SyntaxError, RecursionError):
        return False


#: ways to import a module by name at run time, around the import statement the guard watches
_DYNAMIC_IMPORT = {"__import__", "import_module", "importlib", "__builtins__", "builtins", "__loader__"}


def forbidden_uses(source: str, allowed: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    """Names of forbidden modules the code imports or reaches (``rnnkit.cells...``, ``torch``)."""
    uses = []

    def refused(module: str) -> bool:
        if any(module == a or module.startswith(a + ".") for a in allowed):
            return False
        return any(module == f or module.startswith(f + ".") for f in forbidden)

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return uses
    for node in ast.walk(tree):
        if _isinstance(node, ast.Import):
            uses += [a.name for a in node.names if refused(a.name)]
        elif _isinstance(node, ast.ImportFrom) and node.module:
            names = [f"{node.module}.{a.name}" for a in node.names]
            if refused(node.module) and not all(not refused(n) for n in names):
                uses += [n for n in names if refused(n)]
        elif _isinstance(node, ast.Attribute) and _dotted(node) and refused(_dotted(node)):
            # `import rnnkit.gradcheck` binds the name `rnnkit`: `rnnkit.cells...` must not follow
            uses.append(_dotted(node))
        elif _isinstance(node, ast.Name) and node.id in _DYNAMIC_IMPORT:
            uses.append(node.id)
        elif _isinstance(node, ast.Attribute) and (node.attr in _DYNAMIC_IMPORT or ast.unparse(node) == "sys.modules"):
            uses.append(ast.unparse(node))
        elif _isinstance(node, ast.Constant) and _isinstance(node.value, str) and refused(node.value.strip()):
            uses.append(repr(node.value))
    return list(dict.fromkeys(uses))


def _dotted(node) -> str | None:
    """``a.b.c`` for an attribute chain rooted at a plain name, else None."""
    parts = []
    while _isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not _isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


class ImportGuard:
    """While active, imports made *by student code* of refused modules raise ImportError."""

    def __init__(self, allowed, forbidden):
        self.allowed, self.forbidden = tuple(allowed), tuple(forbidden)
        self._original = builtins.__import__

    def _guarded(self, name, globals=None, locals=None, fromlist=(), level=0):
        if globals is not None and globals.get("__name__") == STUDENT and level == 0:
            wanted = [f"{name}.{f}" for f in fromlist] if fromlist else [name]
            for module in wanted:
                allowed = any(module == a or module.startswith(a + ".") for a in self.allowed)
                if not allowed and any(module == f or module.startswith(f + ".") for f in self.forbidden):
                    raise ImportError(f"{module} is not available while grading: "
                                      "this exercise asks you to write that part yourself")
        return self._original(name, globals, locals, fromlist, level)

    def __enter__(self):
        builtins.__import__ = self._guarded
        return self

    def __exit__(self, *exc):
        builtins.__import__ = self._original
        return False


# --------------------------------------------------------------------------------------------
# Helpers for specs: find the student's function, compare arrays and explain differences
# --------------------------------------------------------------------------------------------

def student_function(namespace: dict, name: str):
    """The student's function ``name``, or a CheckFailure that says it is missing."""
    fn = namespace.get(name)
    if fn is None:
        raise CheckFailure(f"no function named {name} was found: run the cell that defines it "
                           "(and keep its name)")
    if not callable(fn):
        raise CheckFailure(f"{name} should be a function, but it is a {_type(fn).__name__}")
    return fn


def call_student(fn, *args, what: str | None = None, **kwargs):
    """Call the student's function; its NotImplementedError or crash becomes a clear failure."""
    what = what or getattr(fn, "__name__", "your function")
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise CheckFailure(f"{what} is not implemented yet (it raises NotImplementedError)") from None
    except CheckFailure:
        raise
    except SystemExit:
        raise CheckFailure(f"{what} called sys.exit(); return a value instead") from None
    except Exception as exc:  # the student's bug, reported in their terms
        raise CheckFailure(f"{what} raised {_type(exc).__name__}: {exc}") from None


def _shape_hint(got: tuple, want: tuple, axes: tuple[str, ...] | None) -> str:
    def show(shape):
        if axes and len(shape) == len(axes) and len(want) == len(axes):
            names = {}
            for size, axis in zip(want, axes):
                names.setdefault(size, axis)
            return "(" + ", ".join(names.get(s, str(s)) for s in shape) + ")"
        return str(tuple(shape))

    hint = ""
    if sorted(got) == sorted(want) and got != want:
        hint = ": the same sizes in a different order (are the axes swapped or transposed?)"
    elif len(got) == len(want) - 1:
        hint = ": one axis is missing"
    elif len(got) == len(want) + 1:
        hint = ": it has an extra axis"
    if axes and len(want) == len(axes) and len(set(want)) == len(want):
        return f"has shape {show(got)}, expected {show(want)} {tuple(want)}{hint}"
    return f"has shape {tuple(got)}, expected {tuple(want)}{hint}"


def expect_array(value, name: str, shape=None, axes: tuple[str, ...] | None = None,
                 integer: bool = False):
    """Check that ``value`` is a numpy array of the right shape with finite entries."""
    if not _isinstance(value, _ndarray) or _type(value) is not _ndarray:
        kind = _type(value).__name__
        if kind == "Tensor":
            raise CheckFailure(f"{name} is a torch tensor; return a numpy array")
        if _isinstance(value, (list, tuple)):
            raise CheckFailure(f"{name} is a {kind}; return a numpy array (np.array(...))")
        raise CheckFailure(f"{name} should be a numpy array, got {kind}")
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise CheckFailure(f"{name} {_shape_hint(tuple(value.shape), tuple(shape), axes)}")
    if integer and value.dtype.kind not in "iu":
        raise CheckFailure(f"{name} should hold integers, but its dtype is {value.dtype}")
    if value.dtype.kind == "f" and not _isfinite(value).all():
        bad = "NaN" if np.isnan(value).any() else "infinite values"
        raise CheckFailure(f"{name} contains {bad}")
    return value


def expect_close(got, want, name: str, *, rtol: float = 1e-6, atol: float = 1e-8,
                 axes: tuple[str, ...] | None = None, scales: dict | None = None,
                 mistakes: dict | None = None):
    """Compare ``got`` with the reference ``want`` and explain a difference.

    ``scales`` maps a factor c to a hint shown when got ≈ c·want (e.g. ``{T: "summed instead of
    averaged over time"}``); ``mistakes`` maps a message to the value a known mistake produces.
    """
    want = _asarray(want)
    got = expect_array(got, name, shape=want.shape, axes=axes)
    got64, want64 = got.astype(np.float64), want.astype(np.float64)
    if _allclose(got64, want64, rtol=rtol, atol=atol):
        return got
    for message, wrong in (mistakes or {}).items():
        wrong = _asarray(wrong, dtype=np.float64)
        if wrong.shape == want64.shape and _allclose(got64, wrong, rtol=rtol, atol=atol):
            raise CheckFailure(f"{name} is wrong: {message}")
    for factor, hint in (scales or {}).items():
        if _allclose(got64, factor * want64, rtol=max(rtol, 1e-5), atol=atol):
            raise CheckFailure(f"{name} is {_factor_words(factor)} the expected value: {hint}")
    diff = _abs(got64 - want64)
    where = np.unravel_index(int(np.argmax(diff)), diff.shape) if diff.ndim else ()
    idx = tuple(int(i) for i in where)
    raise CheckFailure(
        f"{name} differs from the expected value: largest difference {diff.max():.3g} at index "
        f"{idx} (yours {got64[idx]:.6g}, expected {want64[idx]:.6g}); "
        f"{int((diff > atol + rtol * _abs(want64)).sum())} of {diff.size} entries differ"
    )


def _factor_words(factor: float) -> str:
    if factor == -1:
        return "minus"
    if factor > 1:
        return f"{factor:g} times"
    return f"1/{1 / factor:g} of"
