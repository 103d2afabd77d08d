"""Autograder for deep-learning homework notebooks.

Pipeline (one sub-package per stage):
notebook → execution (sandboxed kernel) → harvest (plain artifacts) → checks → scoring → reports
"""

__version__ = "0.1.0"
