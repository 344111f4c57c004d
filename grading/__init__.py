"""The instructor's grading command (``grade-class``): nbgrader autograde, in parallel, safely.

See grading/README.md for the design, the options and what is and is not sandboxed.
"""
__version__ = "1.0"
