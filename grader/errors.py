"""The grader's own failures: never a student's score."""

from __future__ import annotations


class GraderError(Exception):
    """The grader's set-up failed (sandbox, interpreter, packages, dataset, its own processes).

    Nothing is scored: `grader check` exits 3 and `grader grade` leaves the student not graded,
    so a rerun, once the cause is fixed, grades them.
    """
