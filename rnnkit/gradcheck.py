r"""The numerical gradient checker: compare a hand-written (analytic) gradient with central differences.

For a scalar function :math:`f` and each entry :math:`x_i`:

.. math:: \frac{\partial f}{\partial x_i} \approx \frac{f(x + \epsilon e_i) - f(x - \epsilon e_i)}{2\epsilon}

with error :math:`O(\epsilon^2)`. The analytic value :math:`a` and the numerical value :math:`n` are compared
by their relative error

.. math:: \mathrm{rel}(a, n) = \frac{|a - n|}{\max(|a| + |n|,\ \mathrm{tiny})}

which is about 1e-10 to 1e-7 for a correct float64 gradient and around 1e-2 to 1 for a wrong one.

Rounding limits what the numerical gradient can resolve: ``f`` is only known to about
:math:`\varepsilon_{\text{mach}} |f|` (:math:`\varepsilon_{\text{mach}} \approx 2.2 \times 10^{-16}`), so the
central difference carries an absolute error of about :math:`\varepsilon_{\text{mach}} |f| / \epsilon`.
A tiny gradient entry (say 1e-5 in a loss of 30) therefore cannot be checked to a relative 1e-6. By default
``tiny`` is set from that noise, :math:`\mathrm{tiny} = \mathrm{noise} / \mathrm{tol}` with
:math:`\mathrm{noise} = 10\,\varepsilon_{\text{mach}} \max(|f|, 1) / \epsilon`, which means: an entry passes
when :math:`|a - n| \le \mathrm{tol}\,(|a| + |n|)` *or* when :math:`|a - n|` is within the rounding noise.
Pass ``tiny=1e-8`` for the plain CS231n rule.

``f`` takes **no arguments**: it recomputes the loss from the arrays it closes over, and the checker
perturbs those very arrays in place (and puts every entry back)::

    W = rng.standard_normal((4, 3)); h = rng.standard_normal((5, 2, 3)); d = rng.standard_normal((5, 2, 4))
    f = lambda: squared_error(linear_forward(h, W)[0], d)[0]
    y, cache = linear_forward(h, W)
    grads = linear_backward(squared_error(y, d)[1]["y"], cache)      # {"h": dh, "W": dW}
    report = grad_check(f, {"W": W, "h": h}, grads)
    print(report)          # a small table; report.passed is True when every check passed

Only numpy **float64** arrays are accepted: float32 has about 7 significant digits, too few for
central differences (see :func:`check_float64`).
"""

from dataclasses import dataclass

import numpy as np

__all__ = ["numerical_gradient", "relative_error", "grad_check", "GradCheckReport", "GradCheckResult", "check_float64"]

DEFAULT_EPS = 1e-6
DEFAULT_TOL = 1e-6
DEFAULT_TINY = 1e-8  # for relative_error() used on its own
NOISE_FACTOR = 10  # safety factor on the rounding-noise estimate


def check_float64(x, name="x"):
    """Raise a ``TypeError`` that explains what to do unless ``x`` is a writable numpy float64 array."""
    if not isinstance(x, np.ndarray):
        raise TypeError(
            f"{name} is a {type(x).__module__}.{type(x).__name__}; the gradient checker works on numpy float64 "
            "arrays (rnnkit runs the same code on numpy, so check the numpy version)"
        )
    if x.dtype == np.float32 or x.dtype == np.float16:
        raise TypeError(
            f"{name} is {x.dtype}: refusing to check gradients in low precision. Central differences divide "
            f"f(x + eps) - f(x - eps) by 2*eps; in float32 (about 7 significant digits) that difference is mostly "
            f"rounding noise, so even a correct gradient would show large errors. Convert every array the loss "
            f"depends on with .astype(np.float64) for the check."
        )
    if x.dtype != np.float64:
        raise TypeError(f"{name} has dtype {x.dtype}, expected float64 (only real floating arrays have gradients)")
    if not x.flags.writeable:
        raise ValueError(f"{name} is read-only; the checker must change its entries in place (and restores them)")


def _scalar(value):
    """The float value of ``f()``, with an explanation when ``f`` returned something else."""
    if isinstance(value, (tuple, list)):
        raise TypeError(
            f"f returned a {type(value).__name__} of {len(value)} values; it must return only the scalar loss, "
            "e.g. lambda: cross_entropy(logits, targets)[0]"
        )
    array = np.asarray(value)
    if array.size != 1:
        raise TypeError(f"f must return a scalar loss, got an array of shape {array.shape}; sum it (or take the loss)")
    if array.dtype == np.float32 or array.dtype == np.float16:
        raise TypeError(
            f"f returned a {array.dtype} value: part of the computation runs in low precision "
            "(is some parameter or input still float32?). Use float64 everywhere for the check."
        )
    return float(array.reshape(()))


def _partial_derivative(f, x, index, eps):
    """Central difference of ``f`` along entry ``index`` of ``x``; the entry is restored afterwards."""
    old = x[index]
    try:
        x[index] = old + eps
        f_plus = _scalar(f())
        x[index] = old - eps
        f_minus = _scalar(f())
    finally:
        x[index] = old
    return (f_plus - f_minus) / (2 * eps)


def numerical_gradient(f, x, eps=DEFAULT_EPS):
    r"""Gradient of the scalar ``f()`` with respect to every entry of ``x`` by central differences.

    .. math:: \frac{\partial f}{\partial x_i} \approx \frac{f(x + \epsilon e_i) - f(x - \epsilon e_i)}{2\epsilon}

    ``f`` takes no arguments and reads ``x`` (a numpy float64 array) itself; ``x`` is modified in place
    one entry at a time and restored exactly. Costs ``2 * x.size`` calls of ``f``.
    """
    check_float64(x)
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        grad[index] = _partial_derivative(f, x, index, eps)
    return grad


def relative_error(a, n, tiny=DEFAULT_TINY):
    r"""Entry-wise :math:`|a - n| / \max(|a| + |n|, \mathrm{tiny})`."""
    a, n = np.asarray(a, dtype=np.float64), np.asarray(n, dtype=np.float64)
    return np.abs(a - n) / np.maximum(np.abs(a) + np.abs(n), tiny)


@dataclass
class GradCheckResult:
    """The check of one input: its worst entry and whether it passed."""

    name: str
    shape: tuple
    max_rel_error: float
    worst_index: tuple
    analytic: float  # analytic gradient at the worst entry
    numerical: float  # numerical gradient at the worst entry
    passed: bool
    checked: int  # number of entries compared
    note: str = ""


class GradCheckReport:
    """Results of :func:`grad_check`, one :class:`GradCheckResult` per input name.

    ``report.passed`` is True when every input passed (``bool(report)`` too, so ``assert report`` works;
    ``assert report.passed, report`` also prints the table on failure). ``report["W"]`` is one result.
    ``print(report)`` shows a table.
    """

    def __init__(self, results, eps, tol, tiny, noise=None):
        self.results = {r.name: r for r in results}
        self.eps, self.tol, self.tiny, self.noise = eps, tol, tiny, noise

    @property
    def passed(self):
        return all(r.passed for r in self.results.values())

    @property
    def max_rel_error(self):
        return max((r.max_rel_error for r in self.results.values()), default=0.0)

    def __bool__(self):
        return self.passed

    def __getitem__(self, name):
        return self.results[name]

    def __iter__(self):
        return iter(self.results.values())

    def __str__(self):
        header = ("name", "shape", "max rel error", "worst entry", "analytic", "numerical", "result")
        rows = [
            (
                r.name,
                str(r.shape),
                f"{r.max_rel_error:.2e}",
                str(r.worst_index),
                f"{r.analytic:.6g}",
                f"{r.numerical:.6g}",
                "ok" if r.passed else "FAIL",
            )
            for r in self.results.values()
        ]
        widths = [max(len(row[i]) for row in [header] + rows) for i in range(len(header))]
        lines = [
            f"gradient check: central differences, eps={self.eps:g}; pass when max rel error <= {self.tol:g}",
            f"rel = |a - n| / max(|a| + |n|, tiny), tiny = {self.tiny:.2g}",
        ]
        if self.noise is not None:
            lines[-1] += f" (differences below {self.noise:.2g}, the numerical gradient's rounding noise, never fail)"
        lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
        lines += [f"note ({r.name}): {r.note}" for r in self.results.values() if r.note]
        lines.append("all passed" if self.passed else "FAILED: " + ", ".join(r.name for r in self if not r.passed))
        return "\n".join(lines)

    __repr__ = __str__


def _as_float64_array(value, name):
    if value is None:
        raise ValueError(f"analytic gradient for {name!r} is None (did the backward pass return it?)")
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, RuntimeError) as error:
        raise TypeError(f"analytic gradient for {name!r} could not be read as a numpy array: {error}") from None


def grad_check(f, inputs, analytic, eps=DEFAULT_EPS, tol=DEFAULT_TOL, tiny=None, num_checks=None, seed=0):
    r"""Compare analytic gradients with numerical ones for every array in ``inputs``.

    ``f()`` returns the scalar loss computed from the arrays in ``inputs`` (a dict name -> numpy float64
    array, perturbed in place and restored); ``analytic`` maps the same names to the gradients your
    backward pass computed. Each input passes when its maximum relative error
    :math:`|a - n| / \max(|a| + |n|, \mathrm{tiny})` is at most ``tol``.

    ``tiny`` defaults to ``noise / tol`` where ``noise = 10 * 2.2e-16 * max(|f()|, 1) / eps`` is the rounding
    noise of a central difference (see the module docstring): differences below it never count as errors.

    ``num_checks`` (optional) compares only that many randomly chosen entries per input (chosen with
    ``seed``), for large arrays. Returns a :class:`GradCheckReport`; print it to see the table.
    """
    missing = [name for name in inputs if name not in analytic]
    extra = [name for name in analytic if name not in inputs]
    if missing:
        raise ValueError(f"analytic has no gradient for {missing}; it has {list(analytic)}")
    if extra:
        raise ValueError(f"analytic has gradients for {extra}, which are not in inputs {list(inputs)}")
    for name, x in inputs.items():
        check_float64(x, f"inputs[{name!r}]")
    noise = None
    if tiny is None:
        noise = NOISE_FACTOR * np.finfo(np.float64).eps * max(abs(_scalar(f())), 1.0) / eps
        tiny = noise / tol
    rng = np.random.default_rng(seed)
    results = []
    for name, x in inputs.items():
        a = _as_float64_array(analytic[name], name)
        if a.shape != x.shape:
            hint = " (it looks transposed)" if a.shape == x.shape[::-1] and x.ndim == 2 else ""
            raise ValueError(
                f"analytic gradient for {name!r} has shape {a.shape}, expected {x.shape} "
                f"(the shape of inputs[{name!r}]){hint}"
            )
        indices = list(np.ndindex(x.shape))
        if num_checks is not None and num_checks < len(indices):
            chosen = rng.choice(len(indices), size=num_checks, replace=False)
            indices = [indices[i] for i in sorted(chosen)]
        if not indices:  # an empty array has nothing to check
            results.append(GradCheckResult(name, x.shape, 0.0, (), 0.0, 0.0, True, 0))
            continue
        numerical = np.array([_partial_derivative(f, x, index, eps) for index in indices])
        analytic_values = np.array([a[index] for index in indices])
        errors = relative_error(analytic_values, numerical, tiny)
        worst = int(np.argmax(errors))
        note = ""
        if not np.any(numerical) and np.any(analytic_values):
            note = "the numerical gradient is zero everywhere: does f read this very array (not a copy)?"
        results.append(
            GradCheckResult(
                name=name,
                shape=x.shape,
                max_rel_error=float(errors[worst]),
                worst_index=indices[worst],
                analytic=float(analytic_values[worst]),
                numerical=float(numerical[worst]),
                passed=bool(errors[worst] <= tol),
                checked=len(indices),
                note=note,
            )
        )
    return GradCheckReport(results, eps, tol, tiny, noise)
