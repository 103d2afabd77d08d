"""The one interface every batch engine implements, and what flows through it.

The coordinator (grader/batch/run.py) hands an engine one `GradingRequest` per student and
collects one `Outcome` per request; it never learns where or how the grading ran. An engine
(grader/batch/local.py: a subprocess per student on this machine; grader/batch/dask_executor.py:
a task per student on a Dask cluster) only grades: it never writes into the output folder, so
"written atomically, resumable, nothing graded twice" is the coordinator's, for every engine.

Adding an engine is one module with a class like `Executor` below, plus the line in
`run.make_executor` that picks it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..errors import GraderError
from ..pipeline import Options
from ..result import GradeResult
from ..scoring import RunStatus
from ..assignment import Assignment

# How an engine says a request was not graded; every other outcome carries a result.
FAILURES = (RunStatus.WORKER_FAILED, RunStatus.WORKER_TIMEOUT, RunStatus.GRADER_ERROR)


class BatchError(Exception):
    """A usage error of the batch as a whole (exit 2): no such folder, no submissions, bad CSV,
    a Dask scheduler that cannot be reached."""


class BatchGraderError(GraderError):
    """The grader's set-up fails for this batch (exit 3): canary, packages, no engine workers,
    or the first students all failing on the grader's side."""


@dataclass(frozen=True)
class WorkerSettings:
    """What the machine grading a student needs to know besides the notebook; small and
    picklable, since a Dask task carries it to another machine."""

    assignment_id: str
    version: str  # the coordinator's assignment version: a worker with another one refuses
    grading: Options
    limit: float  # seconds one student's grading may take, beyond the notebook's own limits
    hidden: tuple[str, ...]  # folders of this batch the kernels must not see (submissions, out)


@dataclass(frozen=True)
class BatchConfig:
    """What every request of one batch shares."""

    assignment: Assignment
    worker: WorkerSettings
    jobs: int  # students graded at once, where the engine decides that

    @property
    def grading(self) -> Options:
        return self.worker.grading


@dataclass(frozen=True)
class GradingRequest:
    """One student's notebook to grade, as found on the coordinator's disk."""

    student: str
    notebook: Path
    layout: str  # "file": graded alone; "folder": with the files of the student's folder
    sha: str  # notebook_sha256 of the bytes the coordinator saw


@dataclass
class Outcome:
    """A finished request: its result, or why there is none (`failure`, `message`)."""

    request: GradingRequest
    result: GradeResult | None
    failure: RunStatus | None = None  # one of FAILURES when result is None
    message: str = ""
    log: bytes | None = None  # the grading process's output, kept beside a failure
    seconds: float = 0.0
    executed: bytes | None = None  # the notebook as the kernel ran it (untrusted, unvalidated)

    @classmethod
    def failed(cls, request: GradingRequest, failure: RunStatus, message: str,
               log: bytes | None = None, seconds: float = 0.0) -> "Outcome":
        assert failure in FAILURES, failure
        return cls(request, None, failure, message, log, seconds)


class Executor(Protocol):
    """Grades requests somewhere. Used as a context manager: leaving it frees every process,
    task and temporary folder the engine made, whatever happened."""

    def __enter__(self) -> "Executor": ...

    def __exit__(self, *exc: object) -> None: ...

    def prepare(self) -> None:
        """Fail once, before any student, for what would fail them all (raises BatchError or
        a GraderError)."""

    def describe(self, count: int) -> str:
        """The line printed before grading, e.g. 'grading 12 submission(s) of x with 2
        worker(s)'."""

    def submit(self, request: GradingRequest) -> None:
        """Queue one request; never raises for one student's trouble (that is an Outcome)."""

    def collect(self, timeout: float) -> list[Outcome]:
        """Requests finished since the last call, waiting at most `timeout` seconds."""

    def running(self) -> list[str]:
        """Students being graded now, for the progress bar."""

    def cancel_all(self) -> None:
        """Stop everything still queued or running (Ctrl-C, or the batch stops early)."""
