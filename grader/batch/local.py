"""The embedded engine: one `python -m grader.batch.worker` process per student on this machine,
`jobs` at once (grader/batch/worker_process.py says why processes).

Every worker gets a private folder inside the batch's; leaving the executor stops what still
runs and kills every process whose HOME lies in the batch's folder, so Ctrl-C, an early stop or
a bug leaves no kernel behind. Workers die with the batch process (PR_SET_PDEATHSIG), so killing
it (even by SIGKILL) does too.

The kernels cannot see the submissions folder (other students' work) nor the output folder: both
are passed to the sandbox as hidden. A notebook from a flat folder is graded from a private copy
alone, so other students' files are not copied beside it; a student's own folder is copied as
`grader check` does (data files the notebook reads).
"""

from __future__ import annotations

import shutil
import signal
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from ..scoring import RunStatus
from . import preflight
from .executor import BatchConfig, GradingRequest, Outcome
from .procs import kill_by_home_prefix
from .worker_process import (COMMAND, TERM_GRACE, WorkerProcess, grading_request,
                             private_folder)


@dataclass
class _Running:
    request: GradingRequest
    process: WorkerProcess


class LocalExecutor:
    command = COMMAND  # the worker's command line, less its request file

    def __init__(self, config: BatchConfig):
        self.config = config
        self.pending: deque[GradingRequest] = deque()
        self.active: list[_Running] = []
        self.folder: Path | None = None
        self.started = 0

    def __enter__(self) -> "LocalExecutor":
        self.folder = private_folder()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel_all()
        if self.folder is not None:
            kill_by_home_prefix(self.folder)
            shutil.rmtree(self.folder, ignore_errors=True)

    def prepare(self) -> None:
        preflight.check(self.config.assignment, self.config.grading)

    def describe(self, count: int) -> str:
        return (f"grading {count} submission(s) of {self.config.assignment.id} with "
                f"{min(self.config.jobs, count)} worker(s)")

    def submit(self, request: GradingRequest) -> None:
        self.pending.append(request)

    def collect(self, timeout: float) -> list[Outcome]:
        outcomes = self._start_pending()
        time.sleep(timeout)
        for job in list(self.active):
            if job.process.done():
                self.active.remove(job)
                outcomes.append(self._outcome(job))
        return outcomes

    def running(self) -> list[str]:
        return [job.request.student for job in self.active]

    def cancel_all(self) -> None:
        self.pending.clear()
        for job in self.active:
            job.process.signal(signal.SIGTERM)
        deadline = time.monotonic() + TERM_GRACE
        for job in self.active:
            job.process.wait_or_kill(deadline)
        self.active.clear()

    def _start_pending(self) -> list[Outcome]:
        failed = []
        while self.pending and len(self.active) < self.config.jobs:
            request = self.pending.popleft()
            try:
                self.active.append(_Running(request, self._start(request)))
            except OSError as exc:  # e.g. the notebook vanished since discovery
                failed.append(Outcome.failed(request, RunStatus.WORKER_FAILED,
                                             f"grading could not start: {exc}"))
        return failed

    def _start(self, request: GradingRequest) -> WorkerProcess:
        assert self.folder is not None, "use the executor as a context manager"
        self.started += 1
        # Short paths: the kernel's Unix sockets live below TMPDIR (at most 107 bytes a path).
        folder = self.folder / f"{self.started:04d}"
        folder.mkdir(parents=True)
        notebook = request.notebook.resolve()
        if request.layout == "file":  # graded alone: other students' files are not its siblings
            staged = folder / "submission" / notebook.name
            staged.parent.mkdir()
            shutil.copyfile(notebook, staged)
            notebook = staged
        settings = self.config.worker
        return WorkerProcess(folder, grading_request(settings, notebook, folder),
                             settings.limit, self.command)

    @staticmethod
    def _outcome(job: _Running) -> Outcome:
        result, failure, message, log = job.process.outcome()
        if result is None:
            return Outcome.failed(job.request, failure, message, log, job.process.seconds)
        return Outcome(job.request, result, seconds=job.process.seconds)
