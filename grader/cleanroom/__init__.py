"""Clean rooms (trusted side): the student's function definitions, taken from the notebook's
source (never from the live session), run in a fresh sandboxed interpreter on inputs the grader
chose; the results come back as plain files that the grader validates.

Everything in this package runs in the grader's process, except `untrusted_numpy_harness.py`,
which is copied into the clean room and runs there beside the student's code: it never imports
the grader, and the grader never imports it.
"""
