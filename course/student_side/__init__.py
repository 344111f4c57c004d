"""What runs in the student's process: the protocol (``wire``) and the request handler (``runtime``).

This package is bound into the grading sandbox on its own; it needs only the standard library and
numpy, and imports nothing else of the course.
"""
