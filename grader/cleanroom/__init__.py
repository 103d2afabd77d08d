"""Clean rooms (trusted side): the student's function definitions, taken from the notebook's
source (never from the live session), run in a fresh sandboxed interpreter on inputs the grader
chose; the results come back as plain files that the grader validates.

Everything in this package runs in the grader's process. What runs in the clean room beside the
student's code (grader/kernel/numpy_harness.py) is untrusted like the kernel: it never imports
the grader, and the grader never imports it.
"""
