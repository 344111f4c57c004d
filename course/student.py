"""The student's code as the checks see it: functions and objects on the other side of a channel.

A spec never touches the student's code directly. It asks :class:`Student` for a function by name
and calls it like a local one; the call goes over the channel as data, and the reply comes back as
data. Arguments are copied in and, after the call, copied back (:func:`copy_back`), so a function
that changes its arguments in place (an optimiser step, gradient clipping) has the same visible
effect as in a notebook. Errors in the student's code become a :class:`CheckFailure` that names the
student's own cell and line.
"""
from __future__ import annotations

import numpy as np

from .student_side.wire import Decoder, Encoder
from .verdict import CheckFailure

_MISSING = object()


class Student:
    """The student's namespace, reached through ``channel`` (anything with ``request``)."""

    def __init__(self, channel, cpu_limit: float | None = None):
        self.channel = channel
        self.cpu_limit = cpu_limit
        self.printed: list[str] = []

    # -- what specs use -----------------------------------------------------------------------

    def function(self, name: str) -> "RemoteFunction":
        """The student's function ``name``; a CheckFailure says when it is missing or not one."""
        reply = self.request({"op": "lookup", "name": name})[0]
        if reply["kind"] == "missing":
            raise CheckFailure(f"no function named {name} was found: run the cell that defines it "
                               "(and keep its name)")
        if reply["kind"] != "function":
            raise CheckFailure(f"{name} should be a function, but it is a {reply.get('type')}")
        return RemoteFunction(self, {"name": name}, name)

    def has(self, name: str) -> bool:
        return self.request({"op": "lookup", "name": name})[0]["kind"] != "missing"

    def value(self, name: str, default=_MISSING):
        """The value of the student's global ``name`` (as data, or a RemoteObject)."""
        if default is not _MISSING and not self.has(name):
            return default
        return self._value({"op": "get", "name": name}, name)

    def new(self, cls: str, *args, **kwargs) -> "RemoteObject":
        """An object of the importable class ``cls`` ("rnnkit.RNN"), made in the student's process."""
        return self._value({"op": "new", "cls": cls, **self._encode_call(args, kwargs)}, cls)

    def configure(self, **options) -> None:
        self.request({"op": "configure", **options})

    def forget(self) -> None:
        """Drop the objects the student's side keeps for this check."""
        self.request({"op": "forget"})

    # -- plumbing -----------------------------------------------------------------------------

    def request(self, msg: dict, blobs=()) -> tuple[dict, list]:
        reply, out = self.channel.request(msg, blobs, cpu_limit=self.cpu_limit)
        printed = (reply.get("stdout") or "") + (reply.get("stderr") or "")
        if printed:
            self.printed.append(printed)
        return reply, out

    def _encode_call(self, args, kwargs) -> dict:
        enc = Encoder(_handle_id)
        msg = {"args": enc.encode(list(args)), "kwargs": enc.encode(dict(kwargs))}
        self._blobs = enc.blobs
        return msg

    def _decoder(self, blobs) -> Decoder:
        return Decoder(blobs, lambda hid, type_name: RemoteObject(self, hid, type_name), _tensor)

    def _value(self, msg: dict, what: str):
        blobs, self._blobs = getattr(self, "_blobs", []), []
        reply, out = self.request(msg, blobs)
        if not reply.get("ok"):
            raise CheckFailure(student_error(reply.get("error", {}), what))
        return self._decoder(out).decode(reply.get("value"))

    def call(self, target: dict, args, kwargs, what: str):
        """Call the student's ``target`` and copy the arguments back (see module docstring)."""
        msg = {"op": "call", **target, **self._encode_call(args, kwargs)}
        blobs, self._blobs = self._blobs, []
        reply, out = self.request(msg, blobs)
        if not reply.get("ok"):
            raise CheckFailure(student_error(reply.get("error", {}), what))
        dec = self._decoder(out)
        value = dec.decode(reply.get("value"))
        copy_back(list(args), dec.decode(reply.get("args")))
        copy_back(dict(kwargs), dec.decode(reply.get("kwargs")))
        return value


class RemoteFunction:
    """A function of the student's, called over the channel: ``fn(x, h, params)``."""

    def __init__(self, student: Student, target: dict, name: str):
        self.student, self.target, self.__name__ = student, target, name

    def __call__(self, *args, **kwargs):
        return self.student.call(self.target, args, kwargs, self.__name__)

    def call_as(self, what: str, *args, **kwargs):
        """The same call, with ``what`` naming it in messages (``"merge(h_f, h_b, 'sum')"``)."""
        return self.student.call(self.target, args, kwargs, what)


class RemoteObject:
    """An object that lives in the student's process (a model, an instance of a student class)."""

    def __init__(self, student: Student, hid: int, type_name: str):
        self.student, self.hid, self.type_name = student, hid, type_name

    def get(self, attr: str):
        return self.student._value({"op": "get", "handle": self.hid, "attr": attr}, f"{self.type_name}.{attr}")

    def method(self, name: str) -> RemoteFunction:
        return RemoteFunction(self.student, {"handle": self.hid, "attr": name}, f"{self.type_name}.{name}")

    def __repr__(self) -> str:
        return f"<student's {self.type_name} #{self.hid}>"


def _handle_id(obj):
    return obj.hid if isinstance(obj, RemoteObject) else None


def _tensor(array: np.ndarray, device: str):
    import torch

    return torch.from_numpy(array)


def copy_back(original, after) -> None:
    """Make the checker's ``original`` argument look like ``after``, the same argument as the
    student's function left it: arrays are overwritten in place, dicts and lists get the student's
    entries, generators the student's state. Identity is kept wherever the shape allows."""
    if isinstance(original, np.ndarray):
        if isinstance(after, np.ndarray) and after.shape == original.shape and original.flags.writeable:
            np.copyto(original, after, casting="unsafe")
    elif isinstance(original, dict) and isinstance(after, dict):
        for key in [k for k in original if k not in after]:
            del original[key]
        for key, value in after.items():
            if key in original and _same_kind(original[key], value):
                copy_back(original[key], value)
            else:
                original[key] = value
    elif isinstance(original, list) and isinstance(after, list):
        for i, value in enumerate(after[:len(original)]):
            if _same_kind(original[i], value):
                copy_back(original[i], value)
            else:
                original[i] = value
        original[len(after):] = []
        original.extend(after[len(original):])
    elif isinstance(original, tuple) and isinstance(after, tuple) and len(original) == len(after):
        for o, a in zip(original, after):
            copy_back(o, a)
    elif isinstance(original, np.random.Generator) and isinstance(after, np.random.Generator):
        original.bit_generator.state = after.bit_generator.state
    elif _is_tensor(original) and _is_tensor(after) and tuple(original.shape) == tuple(after.shape):
        with _no_grad():
            original.copy_(after)


def _same_kind(a, b) -> bool:
    """True when ``a`` can be updated in place to become ``b``."""
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.shape == b.shape and a.dtype == b.dtype
    if _is_tensor(a):
        return _is_tensor(b) and tuple(a.shape) == tuple(b.shape) and a.dtype == b.dtype
    return type(a) is type(b) and isinstance(a, (dict, list, tuple, np.random.Generator))


def _is_tensor(value) -> bool:
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def _no_grad():
    import torch

    return torch.no_grad()


def student_error(error: dict, what: str) -> str:
    """The message for an exception raised in the student's code, with their cell and line."""
    kind, message = error.get("type", "Exception"), str(error.get("message", ""))
    if kind == "NotImplementedError" and not message.startswith("the magic"):
        return f"{what} is not implemented yet (it raises NotImplementedError)"
    if kind == "SystemExit":
        return f"{what} called sys.exit(); return a value instead"
    if kind == "WireError":
        return f"{what} returned something that is not data the checker can read ({message})"
    text = f"{what} raised {kind}" + (f": {message}" if message else "")
    where = error.get("where") or []
    if where:
        last = where[-1]
        text += f" (in {last['cell']}, line {last['line']}"
        text += f": {last['code']})" if last.get("code") else ")"
    return text
