"""Step 6: the statuses of a grading. The result model itself, with the score of its checks and
result.json (schema_version 1), is grader/result.py."""

from __future__ import annotations

import os
import tempfile
from enum import Enum
from pathlib import Path

SCHEMA_VERSION = 1


class _Status(str, Enum):
    """A status that is its own JSON value and compares (and hashes) equal to it, so the plain
    strings of a result.json read back are found in the sets below."""

    __hash__ = str.__hash__

    def __str__(self) -> str:
        return self.value


class CheckStatus(_Status):
    PASSED = "passed"
    PARTIAL = "partial"
    FAILED = "failed"
    # The grader failed on this check (its data, its spec, its clean room), not the student: the
    # check is not scored, and neither is the notebook (score None) until a rerun or a TA's
    # points replace it. Never a zero.
    ERROR = "error"
    MANUAL = "manual"


class RunStatus(_Status):
    """`execution.status`: how the notebook's run ended, or why it was not graded."""

    COMPLETED = "completed"
    TIMEOUT = "timeout"
    KERNEL_DIED = "kernel_died"
    INVALID_NOTEBOOK = "invalid_notebook"
    # The kernel never ran the student's code (the grader's to fix): graded as GRADER_ERROR.
    START_FAILED = "start_failed"
    # The grader's own set-up failed (sandbox, interpreter, packages, dataset, its own
    # processes): nothing is scored, `grader check` exits 3, a rerun may fix it.
    GRADER_ERROR = "grader_error"
    # The batch's own (grader/batch): not gradable, or the grading process itself failed.
    NO_NOTEBOOK = "no_notebook"
    AMBIGUOUS = "ambiguous"
    WORKER_FAILED = "worker_failed"
    WORKER_TIMEOUT = "worker_timeout"


class DataMode(_Status):
    """Which data a notebook is graded on, one value from the command line to the measuring
    process and into result.json's `data.mode`: the assignment's subset (the default, fast) or
    the whole dataset (`--full`)."""

    SUBSET = "subset"
    FULL = "full"


class TimedStatus(_Status):
    """How the grader's own training of a model's design ended (the timed-training check)."""

    TRAINED = "trained"
    CANNOT_LEARN = "cannot_learn"  # the design: its weights cannot move under training
    DECLINED = "declined"  # the design: over the grader's size or time budget, or carries data
    ERROR = "error"  # the design failed the grader's training (a 0 on the check)
    # The grader could not rebuild or measure the design (a name its clean room lacks, a
    # constructor it cannot repeat, an export it cannot read): the check is not scored.
    GRADER_FAILED = "grader_failed"


class ModelStatus(_Status):
    """`models.<name>.status`: what the harvest found under a name the spec lists."""

    FOUND = "found"
    MISSING = "missing"
    WRONG_TYPE = "wrong_type"
    ERROR = "error"
    NOT_HARVESTED = "not_harvested"


# Run statuses where nothing was graded, the one definition the batch and every report use: a
# student with no (or no single) notebook gets 0 in the gradebook; one whose grading process
# failed or ran out of time, 0 in grades.csv (the notebook may have caused it) but no number in
# the LMS exports; one the grader failed on, no number at all. The last two (RETRIED) are graded
# again on the batch's next run.
NO_SUBMISSION = frozenset({RunStatus.NO_NOTEBOOK, RunStatus.AMBIGUOUS})
PROCESS_FAILED = frozenset({RunStatus.WORKER_FAILED, RunStatus.WORKER_TIMEOUT})
GRADER_FAILED = frozenset({RunStatus.GRADER_ERROR})
NOT_GRADED = NO_SUBMISSION | PROCESS_FAILED | GRADER_FAILED
RETRIED = PROCESS_FAILED | GRADER_FAILED

STATUSES = tuple(s.value for s in CheckStatus)

# `cell_errors[].note` in result.json: a notebook as submitted (Colab's `google.colab`, an
# `input()`, a leftover cell) may fail in places that have nothing to do with what is graded.
CELL_ERROR_NOTE = ("A cell that raised costs no points by itself: points come only from the "
                   "checks, which grade what the grader measures of the notebook's models and "
                   "functions, so this error matters only where it kept one of them from being "
                   "built or trained")


def write_atomic(path: Path, text: str) -> None:
    """Readers never see half a file, and a killed grader leaves the old file intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; reports are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
