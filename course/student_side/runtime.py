"""The student's side of a check: a namespace that answers requests with data.

This code runs in the untrusted process (a sandbox when grading, or the student's own notebook
kernel when they practise). It holds the student's namespace, runs notebook cells in it and calls
the student's functions on the arguments that the checker sends; it knows no expected value and
decides nothing. Whatever it answers is only data for the checker to judge.

Requests (``op``) and what they answer:

=============  ==================================================================================
``run_cell``   run one notebook cell: its printed output, the value of its last expression,
               figures as PNG, and the error with the student's own lines
``lookup``     what a name is: ``function``, ``missing`` or another kind (with its type)
``call``       call a function (or a method of a handle) on decoded arguments: the result, and
               the arguments as they are afterwards (so in-place changes reach the checker)
``get``        the value of a global name or of an attribute of a handle
``new``        construct an object of an importable class: a handle to it
``configure``  switch an option of this process (e.g. ``refuse_numpy_on_tensors``)
=============  ==================================================================================
"""
from __future__ import annotations

import ast
import builtins
import contextlib
import importlib
import io
import linecache
import sys
import traceback

from .wire import Decoder, Encoder, WireError, torch_tensor

STREAM_LIMIT = 20_000   # characters of printed output kept per stream and request
REPR_LIMIT = 2_000


class BoundedText(io.TextIOBase):
    """A text stream that keeps the first ``limit`` characters and counts the rest."""

    def __init__(self, limit: int = STREAM_LIMIT):
        self.parts, self.kept, self.dropped, self.limit = [], 0, 0, limit

    def writable(self) -> bool:
        return True

    def write(self, text) -> int:
        text = str(text)
        room = self.limit - self.kept
        if room > 0:
            self.parts.append(text[:room])
            self.kept += min(room, len(text))
        self.dropped += max(0, len(text) - max(room, 0))
        return len(text)

    def text(self) -> str:
        out = "".join(self.parts)
        if self.dropped:
            out += f"\n[{self.dropped} more characters were printed and not kept]\n"
        return out


class StudentRuntime:
    """Answers the checker's requests against ``namespace``.

    ``capture``: collect what the student's code prints and send it back (grading); when False
    the output goes where it would anyway (the student's notebook, when they practise).
    """

    def __init__(self, namespace: dict, capture: bool = True):
        self.ns = namespace
        self.capture = capture
        self.handles: dict[int, object] = {}
        self._handle_ids: dict[int, int] = {}
        self.figures = False

    # -- dispatch -------------------------------------------------------------------------

    def handle(self, msg: dict, blobs) -> tuple[dict, list[bytes]]:
        """The reply (message, blobs) to one request; never raises."""
        op = msg.get("op")
        method = getattr(self, "op_" + op, None) if isinstance(op, str) and op.isidentifier() else None
        if method is None:
            return {"ok": False, "error": {"type": "ProtocolError", "message": f"unknown request {op!r}"}}, []
        out, err = BoundedText(), BoundedText()
        encoder = Encoder(self._handle_of)
        try:
            with self._captured(out, err):
                reply = method(msg, Decoder(blobs, self._resolve, torch_tensor), encoder)
        except BaseException as exc:  # noqa: BLE001 - everything the student's code raises is data
            if isinstance(exc, KeyboardInterrupt) and not self.capture:
                raise
            reply, encoder.blobs = {"ok": False, "error": describe_error(exc)}, []
        if self.capture:
            reply["stdout"], reply["stderr"] = out.text(), err.text()
        reply["id"] = msg.get("id")
        return reply, encoder.blobs

    @contextlib.contextmanager
    def _captured(self, out, err):
        if not self.capture:
            yield
            return
        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = out, err
        try:
            yield
        finally:
            sys.stdout, sys.stderr = saved

    # -- handles: objects that stay on this side ------------------------------------------

    def _handle_of(self, obj) -> int:
        hid = self._handle_ids.get(id(obj))
        if hid is None:
            hid = self._handle_ids[id(obj)] = len(self.handles) + 1
            self.handles[hid] = obj
        return hid

    def _resolve(self, hid, type_name):
        if hid not in self.handles:
            raise WireError(f"no object with handle {hid!r}")
        return self.handles[hid]

    # -- requests -------------------------------------------------------------------------

    def op_lookup(self, msg, dec, enc):
        name = str(msg.get("name"))
        if name not in self.ns:
            return {"ok": True, "kind": "missing"}
        value = self.ns[name]
        kind = "function" if callable(value) and not isinstance(value, type) else "other"
        return {"ok": True, "kind": kind, "type": type(value).__name__}

    def op_get(self, msg, dec, enc):
        value = self._target(msg, dec)
        return {"ok": True, "value": enc.encode(value)}

    def op_call(self, msg, dec, enc):
        fn = self._target(msg, dec)
        args = dec.decode(msg.get("args", {"$": "list", "v": []}))
        kwargs = dec.decode(msg.get("kwargs", {"$": "dict", "v": []}))
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise WireError("call arguments must be a list and a dict")
        result = fn(*args, **kwargs)
        return {"ok": True, "value": enc.encode(result), "args": enc.encode(args), "kwargs": enc.encode(kwargs)}

    def op_new(self, msg, dec, enc):
        module_name, _, cls_name = str(msg.get("cls")).rpartition(".")
        cls = getattr(importlib.import_module(module_name), cls_name)
        args = dec.decode(msg.get("args", {"$": "list", "v": []}))
        kwargs = dec.decode(msg.get("kwargs", {"$": "dict", "v": []}))
        obj = cls(*args, **kwargs)
        return {"ok": True, "value": {"$": "handle", "id": self._handle_of(obj), "type": type(obj).__name__}}

    def op_forget(self, msg, dec, enc):
        self.handles.clear()
        self._handle_ids.clear()
        return {"ok": True}

    def op_configure(self, msg, dec, enc):
        if "refuse_numpy_on_tensors" in msg:
            refuse_numpy_on_tensors(bool(msg["refuse_numpy_on_tensors"]))
        if "figures" in msg:
            self.figures = bool(msg["figures"])
        return {"ok": True}

    def op_run_cell(self, msg, dec, enc):
        label, source = str(msg.get("label", "cell")), str(msg.get("source", ""))
        value = run_source(source, label, self.ns)
        reply = {"ok": True, "repr": None}
        if value is not None:
            reply["repr"] = _short_repr(value)
        if self.figures:
            reply["figures"] = [{"$": "png", "i": i} for i in _collect_figures(enc.blobs)]
        return reply

    def _target(self, msg, dec):
        """The object a request is about: a global ``name``, or ``attr`` of the ``handle``."""
        if "handle" in msg:
            obj = self._resolve(msg["handle"], "")
            attr = msg.get("attr")
            return obj if attr is None else getattr(obj, str(attr))
        name = str(msg.get("name"))
        if name not in self.ns:
            raise NameError(f"name {name!r} is not defined")
        return self.ns[name]


# --------------------------------------------------------------------------------------------
# running cells
# --------------------------------------------------------------------------------------------

def run_source(source: str, label: str, namespace: dict):
    """Run a cell's source in ``namespace`` the way a notebook does; return the value of its last
    line when that line is an expression (None otherwise)."""
    filename = f"<{label}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    tree = ast.parse(source, filename=filename)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    exec(compile(tree, filename, "exec"), namespace)
    if last is not None:
        return eval(compile(last, filename, "eval"), namespace)
    return None


def describe_error(exc: BaseException) -> dict:
    """The exception as data: its type, message and the student's own lines on the way to it."""
    where = []
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.startswith("<cell"):
            where.append({"cell": frame.filename.strip("<>"), "line": frame.lineno,
                          "code": (frame.line or "").strip()[:200], "function": frame.name})
    if isinstance(exc, SyntaxError) and exc.filename and str(exc.filename).startswith("<cell"):
        where.append({"cell": str(exc.filename).strip("<>"), "line": exc.lineno,
                      "code": (exc.text or "").strip()[:200], "function": "<module>"})
    try:
        message = str(exc)
    except Exception:  # noqa: BLE001 - a student's exception whose __str__ fails
        message = "(its message could not be read)"
    return {"type": type(exc).__name__, "message": message[:REPR_LIMIT], "where": where[-5:]}


def _short_repr(value) -> str:
    try:
        text = repr(value)
    except Exception as exc:  # noqa: BLE001
        text = f"<{type(value).__name__} whose repr raised {type(exc).__name__}>"
    return text if len(text) <= REPR_LIMIT else text[:REPR_LIMIT] + " ..."


def _collect_figures(blobs: list) -> list[int]:
    """Save the open matplotlib figures as PNG blobs (and close them); their blob indices."""
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return []
    found = []
    for number in plt.get_fignums():
        buf = io.BytesIO()
        try:
            plt.figure(number).savefig(buf, format="png", dpi=72)
        except Exception:  # noqa: BLE001 - a broken figure is the student's; skip it
            continue
        blobs.append(buf.getvalue())
        found.append(len(blobs) - 1)
    plt.close("all")
    return found


NUMPY_ON_TENSOR = ("a numpy function was given a torch tensor. On a GPU that fails, so it is refused "
                   "here too: use the functions of xp = array_namespace(...) instead (xp.tanh, xp.exp, "
                   "xp.concat, ...)")


def refuse_numpy_on_tensors(refuse: bool = True) -> None:
    """Make numpy refuse torch tensors in this process, as it must on a GPU; ``refuse=False``
    gives torch its own ``Tensor.__array__`` back (a check switches the refusal off when it ends,
    so the student's kernel, or the test process, is left as it was)."""
    if not refuse and "torch" not in sys.modules:
        return
    import torch

    current = torch.Tensor.__array__
    original = getattr(current, "original", current)
    if not refuse:
        torch.Tensor.__array__ = original
        return

    def refusing(self, *args, **kwargs):
        raise TypeError(NUMPY_ON_TENSOR)

    refusing.original = original
    torch.Tensor.__array__ = refusing


class NotebookShim:
    """The little of IPython's ``get_ipython()`` that notebook cells use, for a process without
    IPython: ``%matplotlib`` is accepted, other magics and shell commands are refused."""

    def run_line_magic(self, name, line, *args, **kwargs):
        if name == "matplotlib":
            return None
        raise NotImplementedError(f"the magic %{name} is not available when the notebook is graded")

    def run_cell_magic(self, name, line, cell, *args, **kwargs):
        raise NotImplementedError(f"the magic %%{name} is not available when the notebook is graded")

    def system(self, command, *args, **kwargs):
        raise NotImplementedError("shell commands (!...) are not run when the notebook is graded")

    getoutput = system


def install_notebook_builtins() -> None:
    """``get_ipython()`` and ``display()`` for cells run outside IPython."""
    shim = NotebookShim()
    builtins.get_ipython = lambda: shim
    builtins.display = lambda *objs, **kwargs: [print(_short_repr(o)) for o in objs if o is not None] and None
