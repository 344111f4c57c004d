"""Shared test helpers: central-difference gradients and error measures (float64)."""

import numpy as np
import pytest


def rel_error(a, b):
    """max |a − b| / max(max |a|, max |b|): a relative error that tiny entries cannot inflate."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(np.abs(a).max(initial=0.0), np.abs(b).max(initial=0.0))
    return 0.0 if scale == 0.0 else float(np.abs(a - b).max() / scale)


def numerical_grad(f, a, eps=1e-6, entries=None, rng=None):
    """Central differences (f(a + ε e_k) − f(a − ε e_k)) / 2ε of the scalar ``f()`` with
    respect to the array ``a`` (modified in place and restored). With ``entries=n`` only
    n random entries are probed; returns ``(indices, values)`` of the probed entries."""
    flat = a.reshape(-1)  # a view: a must be contiguous
    assert np.shares_memory(flat, a)
    idx = np.arange(flat.size)
    if entries is not None and flat.size > entries:
        idx = (rng or np.random.default_rng(0)).choice(flat.size, entries, replace=False)
    values = np.empty(len(idx))
    for n, k in enumerate(idx):
        old = flat[k]
        flat[k] = old + eps
        plus = f()
        flat[k] = old - eps
        minus = f()
        flat[k] = old
        values[n] = (plus - minus) / (2 * eps)
    return idx, values


def check_grads(f, arrays, analytic, entries=None, tol=1e-7):
    """Compare ``analytic[name]`` with central differences of ``f()`` for each ``arrays[name]``;
    returns the largest relative error (and asserts it is at most ``tol``)."""
    rng = np.random.default_rng(1)
    worst = 0.0
    for name, a in arrays.items():
        idx, num = numerical_grad(f, a, entries=entries, rng=rng)
        ana = np.asarray(analytic[name]).reshape(-1)[idx]
        err = rel_error(ana, num)
        assert err <= tol, f"{name}: relative error {err:.2e} > {tol:.0e}"
        worst = max(worst, err)
    return worst


def split_bptt(grads):
    """The gradient dict of ``sequence_backward`` as ``(dx, dstate0, parameter gradients)``
    (``dstate0`` a pair ``(dh0, dc0)`` for the LSTM)."""
    grads = dict(grads)
    dx = grads.pop("x")
    dstate0 = (grads.pop("h0"), grads.pop("c0")) if "c0" in grads else grads.pop("h0")
    return dx, dstate0, grads


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
