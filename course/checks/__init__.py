"""One spec module per exercise, and the helpers they share (:mod:`course.checks.expect`).

A spec module declares ``POLICY`` (what the student's code may import when graded) and ``SPECS``
(the names test cells may call); each spec is ``spec(student, rng, **params) -> note`` and raises
:class:`~course.verdict.CheckFailure` with a message in the student's terms.
"""

#: rnnkit modules every exercise may use: they give no answer away
HELPERS = ("rnnkit.gradcheck", "rnnkit.data", "rnnkit.viz")
