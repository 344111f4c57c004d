"""What every spec needs: the student's functions, and comparisons that explain a difference.

These helpers run on the trusted side. Values they receive came from the student's process as
data (numpy arrays, lists, dicts, numbers) or as a :class:`~course.student.RemoteObject` for
anything that could not travel as data.
"""
from __future__ import annotations

import numpy as np

from ..student import RemoteObject
from ..verdict import CheckFailure

__all__ = ["CheckFailure", "student_function", "call_student", "expect_array", "expect_close",
           "expect_tuple", "expect_unchanged", "expect_grads_dict", "copy_params", "kind_of"]


def student_function(student, name: str):
    """The student's function ``name`` (a CheckFailure says when it is missing)."""
    return student.function(name)


def call_student(fn, *args, what: str | None = None, **kwargs):
    """Call the student's function; ``what`` names the call in messages."""
    return fn.call_as(what or fn.__name__, *args, **kwargs)


def kind_of(value) -> str:
    """A value's type as the student would name it."""
    if isinstance(value, RemoteObject):
        return value.type_name
    return type(value).__name__


def copy_params(params: dict) -> dict:
    return {k: np.array(v, copy=True) for k, v in params.items()}


def expect_tuple(out, n: int, what: str, names: str):
    """``out`` must be a tuple (or list) of ``n`` values; ``names`` shows them, e.g. "(h, cache)"."""
    if not isinstance(out, (tuple, list)) or len(out) != n:
        got = f"a {kind_of(out)} of {len(out)} values" if isinstance(out, (tuple, list)) else f"a {kind_of(out)}"
        raise CheckFailure(f"{what} should return a tuple {names}, got {got}")
    return tuple(out)


LEAVE_INPUTS = ("leave the inputs as they are: copy an array (a.copy()) before you change entries of it, "
                "and write a = a + b rather than a += b")


def expect_unchanged(originals: dict, passed: dict, what: str) -> None:
    """Fail when the student's function changed one of its array arguments in place.
    ``originals`` and ``passed`` map a name to the array (or dict of arrays) before and after."""
    for name, original in originals.items():
        given = passed[name]
        pairs = ([(f"{name}[{k!r}]", original[k], given.get(k)) for k in original]
                 if isinstance(original, dict) else [(name, original, given)])
        for label, before, after in pairs:
            if not isinstance(after, np.ndarray) or after.shape != before.shape or not np.array_equal(after, before):
                raise CheckFailure(f"{what} changed its argument {label} in place; {LEAVE_INPUTS}")


def _shape_hint(got: tuple, want: tuple, axes: tuple[str, ...] | None) -> str:
    def show(shape):
        names = {}
        for size, axis in zip(want, axes):
            names.setdefault(size, axis)
        return "(" + ", ".join(names.get(s, str(s)) for s in shape) + ")"

    hint = ""
    if sorted(got) == sorted(want) and got != want:
        hint = ": the same sizes in a different order (are the axes swapped or transposed?)"
    elif len(got) == len(want) - 1:
        hint = ": one axis is missing"
    elif len(got) == len(want) + 1:
        hint = ": it has an extra axis"
    if axes and len(want) == len(axes) and len(set(want)) == len(want) and len(got) == len(want):
        return f"has shape {show(got)}, expected {show(want)} {tuple(want)}{hint}"
    return f"has shape {tuple(got)}, expected {tuple(want)}{hint}"


def expect_array(value, name: str, shape=None, axes: tuple[str, ...] | None = None, integer: bool = False):
    """``value`` must be a numpy array (of ``shape``, of integers if asked) with finite entries."""
    if not isinstance(value, np.ndarray):
        kind = kind_of(value)
        if kind == "Tensor":
            raise CheckFailure(f"{name} is a torch tensor; return a numpy array")
        if isinstance(value, (list, tuple)):
            raise CheckFailure(f"{name} is a {kind}; return a numpy array (np.array(...))")
        raise CheckFailure(f"{name} should be a numpy array, got {'None' if value is None else 'a ' + kind}")
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise CheckFailure(f"{name} {_shape_hint(tuple(value.shape), tuple(shape), axes)}")
    if integer and value.dtype.kind not in "iu":
        raise CheckFailure(f"{name} should hold integers, but its dtype is {value.dtype}")
    if value.dtype.kind not in "biufc":
        raise CheckFailure(f"{name} should hold numbers, but its dtype is {value.dtype}")
    if value.dtype.kind in "fc" and not np.isfinite(value).all():
        bad = "NaN" if np.isnan(value).any() else "infinite values"
        raise CheckFailure(f"{name} contains {bad}")
    return value


def expect_close(got, want, name: str, *, rtol: float = 1e-6, atol: float = 1e-8,
                 axes: tuple[str, ...] | None = None, scales: dict | None = None,
                 mistakes: dict | None = None):
    """Compare ``got`` with the reference ``want`` and explain a difference.

    ``mistakes`` maps a message to the value a known mistake produces: when ``got`` matches one,
    the message names the mistake. ``scales`` maps a factor c to a hint shown when
    ``got ≈ c · want``. Otherwise the message shows the first entry that differs."""
    want = np.asarray(want)
    got = expect_array(got, name, shape=want.shape, axes=axes)
    got64, want64 = got.astype(np.float64), want.astype(np.float64)
    if np.allclose(got64, want64, rtol=rtol, atol=atol):
        return got
    for message, wrong in (mistakes or {}).items():
        wrong = np.asarray(wrong, dtype=np.float64)
        if wrong.shape == want64.shape and np.allclose(got64, wrong, rtol=rtol, atol=atol):
            raise CheckFailure(f"{name} is wrong: {message}")
    for factor, hint in (scales or {}).items():
        if np.allclose(got64, factor * want64, rtol=max(rtol, 1e-5), atol=atol):
            raise CheckFailure(f"{name} is {_factor_words(factor)} the expected value: {hint}")
    raise CheckFailure(f"{name} differs from the expected value: {first_difference(got64, want64, rtol, atol)}")


def first_difference(got: np.ndarray, want: np.ndarray, rtol: float, atol: float) -> str:
    """Where the first differing entry is, both values, and how many entries differ."""
    bad = ~np.isclose(got, want, rtol=rtol, atol=atol)
    flat = int(np.flatnonzero(bad)[0])
    idx = tuple(int(i) for i in np.unravel_index(flat, want.shape)) if want.ndim else ()
    where = f" at index {idx}" if idx else ""
    return (f"the first difference is{where}: yours {got[idx]:.6g}, expected {want[idx]:.6g} "
            f"({int(bad.sum())} of {bad.size} entries differ)")


def _factor_words(factor: float) -> str:
    if factor == -1:
        return "minus"
    if factor > 1:
        return f"{factor:g} times"
    return f"1/{1 / factor:g} of"


def expect_grads_dict(grads, keys, what: str) -> dict:
    """``grads`` must be a dict with (at least) ``keys``."""
    if not isinstance(grads, dict):
        raise CheckFailure(f"{what} should be a dict with keys {list(keys)}, got a {kind_of(grads)}")
    missing = [k for k in keys if k not in grads]
    if missing:
        raise CheckFailure(f"{what} has no entry {missing[0]!r} (expected keys {list(keys)})")
    return grads


def blame_parts(student, run, parts, what: str):
    """Run ``run()``; when it fails, check the student's earlier functions it builds on, ``parts``
    (``[(name, spec), ...]``, each ``spec(student, rng)``), and name the first one that is itself
    wrong: a composite fails because of its parts more often than because of its own code."""
    try:
        return run()
    except CheckFailure as failure:
        if "not implemented yet" in str(failure):
            raise
        for name, spec in parts:
            if not student.has(name):
                continue
            try:
                spec(student, np.random.default_rng(2024))
            except CheckFailure as part_failure:
                raise CheckFailure(f"{failure}. {what} uses your {name}, which does not pass its own check "
                                   f"yet; fix it first: {part_failure}") from None
        raise
