"""Checks that grade the course's exercises against rnnkit.

A test cell in an exercise notebook calls::

    from rnnkit.checks import check
    check("sequence_data.pad_sequences", batch=3, seed=0)

``check`` runs the student's code **in a fresh Python process**: it collects the definitions the
student made (functions, classes, imports and constants of the cells run so far), executes them there
next to pristine numpy and rnnkit, calls the spec ``pad_sequences`` of the module
``rnnkit.checks.sequence_data`` and prints what is wrong in the student's terms. Because the
comparison happens in that process, redefining ``np.allclose``, ``numpy.testing`` or builtins in a
notebook cell changes nothing, and the check says so. Importing rnnkit's own implementation (or
torch) for the part being graded is refused there.

Specs are plain functions ``spec(student_namespace, rng, **params)`` that raise
:class:`CheckFailure` with a message, or return a short success note. See ``sequence_data.py``.
"""
from rnnkit.checks.core import CheckFailure, check, expect_array, expect_close, student_function

__all__ = ["check", "CheckFailure", "expect_array", "expect_close", "student_function"]
