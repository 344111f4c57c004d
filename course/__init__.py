"""The course's own code: the checks, the sandbox that runs student code, and the protocol between them.

In a notebook, a test cell reads::

    from course import check
    check("vanilla_rnn.step_forward", batch=3, input_size=4, hidden_size=5)
"""
from .practice import check

__all__ = ["check"]
