"""Backends: the only module of rnnkit that knows whether it runs on numpy or torch.

Everything else writes the math once, against the array API, on the namespace that
:func:`namespace` returns::

    xp = namespace(x, h_prev)
    h = xp.tanh(x @ W_ih.T + h_prev @ W_hh.T)

torch is imported lazily: ``import rnnkit`` never imports it, and a numpy user never
pays for it. rnnkit computes its gradients by hand, so torch's autograd is switched
off inside rnnkit (see :func:`no_autograd`); tensors that require grad are accepted and
the results do not require grad.
"""

import contextlib
import functools
import sys

import numpy as np

__all__ = [
    "namespace",
    "is_torch",
    "sigmoid",
    "tanh",
    "multiply",
    "matmul",
    "zeros",
    "dtype_name",
    "device_of",
    "to_backend",
    "to_numpy",
    "asarray_like",
    "resolve_dtype",
    "no_autograd",
    "first_nonfinite",
    "check_floating",
    "check_like",
    "contiguous",
]

_FLOAT_NAMES = ("float32", "float64")


def is_torch(a):
    """True if ``a`` is a torch tensor (without importing torch)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(a, torch.Tensor)


def _kind(a):
    if isinstance(a, (np.ndarray, np.generic)):
        return "numpy"
    if is_torch(a):
        return "torch"
    raise TypeError(
        f"expected numpy arrays or torch tensors, got {type(a).__module__}.{type(a).__qualname__}"
        if type(a).__module__ != "builtins"
        else f"expected numpy arrays or torch tensors, got {type(a).__name__}"
    )


_NAMESPACES = {}


def _compat(kind):
    # array_api_compat is imported on first use: it takes ~0.1 s to import.
    if kind not in _NAMESPACES:
        if kind == "torch":
            import array_api_compat.torch as xp
        else:
            import array_api_compat.numpy as xp
        _NAMESPACES[kind] = xp
    return _NAMESPACES[kind]


_TYPE_KINDS = {np.ndarray: "numpy"}  # array type -> backend, filled in as types are seen


def namespace(*arrays):
    """The array-API namespace ``xp`` shared by ``arrays`` (``None`` entries are skipped).

    Raises ``TypeError`` if numpy arrays and torch tensors are mixed, or if an argument
    is neither (a list, say).
    """
    kinds = set()
    for a in arrays:
        if a is None:
            continue
        kind = _TYPE_KINDS.get(type(a))
        if kind is None:
            kind = _TYPE_KINDS[type(a)] = _kind(a)
        kinds.add(kind)
    if len(kinds) > 1:
        raise TypeError(
            "expected arrays of one backend, got a numpy array and a torch tensor; "
            "use one backend (convert with rnnkit.backend.to_backend or m.to(backend=...))"
        )
    kind = "torch" if "torch" in kinds else "numpy"
    xp = _NAMESPACES.get(kind)
    return xp if xp is not None else _compat(kind)


# ------------------------------------------------------------------ in-place math
#
# The array API has no ``out=``. The hot loops of the cells write their results into
# arrays they already hold (a step's gate block, the sequence's state buffer), so that a
# step allocates little and keeps nothing twice; these helpers are the one place that
# knows how: numpy's ``out=``, torch's ``out=``. Each returns the result (``out`` when
# given), so ``y = tanh(xp, a)`` and ``tanh(xp, a, out=a)`` read the same.


def sigmoid(xp, a, out=None):
    """σ(a) = 1 / (1 + exp(−a)), computed without overflow warnings, into ``out`` if given
    (``out`` may be ``a`` itself).

    numpy: exp(−a) overflows to inf for very negative a, which gives the correct
    σ(a) = 0; the warning is silenced, and all four operations run in place in ``out``
    (it is the hot spot of every gated cell). torch: its native ``sigmoid``.
    """
    if type(a) is not np.ndarray and is_torch(a):
        return sys.modules["torch"].sigmoid(a, out=out)
    out = np.negative(a, out=out)
    with np.errstate(over="ignore"):
        np.exp(out, out=out)
    out += 1.0
    return np.divide(1.0, out, out=out)  # (np.reciprocal has no AVX2 kernel; divide has)


def tanh(xp, a, out=None):
    """tanh(a), into ``out`` if given (``out`` may be ``a`` itself).

    numpy float64: computed as tanh(a) = 2σ(2a) − 1 = 2 / (1 + exp(−2a)) − 1, because
    numpy's float64 ``tanh`` has no vectorized kernel on common x86 CPUs (AVX2) and is
    2–3× slower than its ``exp``; the result differs from ``np.tanh`` by at most a few
    units in the last place of 1 (absolute error < 1e-15; tested in
    ``tests/test_fast_paths.py``). float32 and torch: the native ``tanh``.
    """
    if type(a) is np.ndarray:
        if a.dtype != np.float64:
            return np.tanh(a, out=out)
        out = np.multiply(a, -2.0, out=out)
        with np.errstate(over="ignore"):
            np.exp(out, out=out)
        out += 1.0
        np.divide(2.0, out, out=out)
        out -= 1.0
        return out
    return sys.modules["torch"].tanh(a, out=out)


def multiply(xp, a, b, out=None):
    """a ⊙ b, into ``out`` if given (``out`` may be ``a`` or ``b``)."""
    if out is None:
        return a * b
    if type(out) is np.ndarray:
        return np.multiply(a, b, out=out)
    return sys.modules["torch"].mul(a, b, out=out)


def matmul(xp, a, b, out=None):
    """a @ b, into ``out`` if given (``out`` must not overlap ``a`` or ``b``)."""
    if out is None:
        return a @ b
    if type(out) is np.ndarray:
        return np.matmul(a, b, out=out)
    return sys.modules["torch"].matmul(a, b, out=out)


def zeros(xp, shape, like):
    """Zeros of ``shape`` with the dtype and device of the array ``like``."""
    return xp.zeros(shape, dtype=like.dtype, device=device_of(like))


def device_of(a):
    """The device of ``a`` ("cpu" for numpy)."""
    if is_torch(a):
        return a.device
    return "cpu"


def dtype_name(a_or_dtype):
    """'float32', 'float64', ... for an array, a numpy dtype or a torch dtype."""
    d = getattr(a_or_dtype, "dtype", a_or_dtype)
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(d, torch.dtype):
        return str(d).replace("torch.", "")
    return np.dtype(d).name


def resolve_dtype(dtype, backend):
    """A dtype given as a string, numpy dtype or torch dtype, as ``backend``'s dtype object.

    Only float32 and float64 are supported.
    """
    name = dtype_name(dtype) if not isinstance(dtype, str) else dtype
    if name not in _FLOAT_NAMES:
        raise TypeError(f"dtype must be float32 or float64, got {name}")
    if backend == "torch":
        import torch

        return getattr(torch, name)
    return np.dtype(name)


def to_backend(a, backend, device=None, dtype=None):
    """Convert an array to ``backend`` ("numpy" or "torch"), device and dtype (a copy).

    ``dtype=None`` keeps the array's dtype; ``device=None`` keeps a torch tensor's device
    (cpu when coming from numpy).
    """
    if a is None:
        return None
    if backend not in ("numpy", "torch"):
        raise ValueError(f"backend must be 'numpy' or 'torch', got {backend!r}")
    name = dtype_name(a) if dtype is None else dtype_name(resolve_dtype(dtype, "numpy"))
    if backend == "numpy":
        if device not in (None, "cpu"):
            raise ValueError(f"numpy arrays live on the cpu, got device={device!r}")
        if is_torch(a):
            a = a.detach().cpu().numpy()
        return np.array(a, dtype=name, copy=True)
    import torch

    if not is_torch(a):
        a = torch.from_numpy(np.asarray(a))
    a = a.detach()
    return a.to(device=device if device is not None else a.device, dtype=getattr(torch, name), copy=True)


def to_numpy(a):
    """``a`` (numpy array, torch tensor on any device, list, scalar) as a numpy array."""
    if is_torch(a):
        return a.detach().cpu().numpy()
    return np.asarray(a)


def asarray_like(a, like):
    """The numpy array ``a`` in the backend and on the device of the array ``like``
    (keeping ``a``'s dtype)."""
    if is_torch(like):
        import torch

        return torch.from_numpy(np.ascontiguousarray(a)).to(like.device)
    return np.asarray(a)


def no_autograd(fn):
    """Decorator: run ``fn`` with torch's autograd switched off (rnnkit does its own BPTT).

    Costs nothing when torch has not been imported.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        torch = sys.modules.get("torch")
        ctx = torch.no_grad() if torch is not None else contextlib.nullcontext()
        with ctx:
            return fn(*args, **kwargs)

    return wrapper


def first_nonfinite(xp, a):
    """``(index, count)`` of the first non-finite entry of ``a`` and how many there are,
    or ``None`` when all entries are finite."""
    bad = ~xp.isfinite(a)
    count = int(xp.sum(xp.astype(bad, xp.int64)))
    if count == 0:
        return None
    flat = int(xp.argmax(xp.astype(xp.reshape(bad, (-1,)), xp.int8)))
    index = tuple(int(i) for i in np.unravel_index(flat, tuple(a.shape)))
    return index, count


def check_floating(a, what):
    """Raise ``TypeError`` unless ``a`` has dtype float32 or float64."""
    name = dtype_name(a)
    if name not in _FLOAT_NAMES:
        raise TypeError(f"{what} must have dtype float32 or float64, got {name}")


def check_like(a, what, like):
    """``a``'s namespace, after checking that ``a`` is an array of the backend, dtype and device
    of the parameter ``like``; the errors name what was expected and what came."""
    try:
        xp = namespace(a, like)
    except TypeError as e:
        if "one backend" not in str(e):
            raise TypeError(f"{what} must be a numpy array or a torch tensor, got {type(a).__name__}") from None
        raise TypeError(
            f"{what} is a {_backend_word(a)} but the parameters are {_backend_word(like)}s; "
            "use one backend (m.to(backend=...) converts a module's parameters)"
        ) from None
    check_floating(a, what)
    if dtype_name(a) != dtype_name(like):
        raise TypeError(
            f"{what} has dtype {dtype_name(a)} but the parameters are {dtype_name(like)}; "
            f"cast {what} or convert the parameters (m.to(dtype={dtype_name(a)!r}))"
        )
    if str(device_of(a)) != str(device_of(like)):
        raise ValueError(f"{what} is on device {device_of(a)} but the parameters are on {device_of(like)}")
    return xp


def _backend_word(a):
    return "torch tensor" if is_torch(a) else "numpy array"


def contiguous(a):
    """``a`` laid out row-major (C order), copied only if it is not already.

    The array API leaves memory layout to the library; rnnkit needs it in one place: a matmul
    against a contiguous matrix runs OpenBLAS's fastest kernel (see ``cells.base.hidden_blocks``).
    """
    if is_torch(a):
        return a.contiguous()
    return np.ascontiguousarray(a)
