"""``python -m grading`` is ``grade-class``."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
