"""A task per student on a Dask distributed cluster: `grader grade SUBS --scheduler tcp://HOST:PORT`.

Needs `pip install 'dl-grader[dask]'` here and on every worker machine, and on each worker the
grader (the same version: a worker with another assignment version refuses), its datasets
(`--data-dir` is a path on the workers) and bubblewrap.

The task (`grade_on_worker`) carries the notebook's bytes, and for a student's folder the files
beside the notebook (up to MAX_SHIPPED_BYTES), since workers need not share the submissions
folder; it grades them in today's `python -m grader.batch.worker` subprocess on the worker
machine, so a segfault or a runaway kernel does not take the Dask worker down, with the batch's
deadline (SIGTERM, then SIGKILL). It returns the result JSON with the executed notebook (the
student's feedback, MAX_EXECUTED_BYTES at most), or why there is none; it never
writes into OUT: the coordinator does, atomically, as for the local pool.

Idempotent: the task writes only into a private folder it removes, and its key names the
assignment, the student, the notebook's sha256 and the grading options, so the same grading is
one task on the cluster. Dask reruns the task elsewhere when a worker is lost mid-task; a task
whose workers die `distributed.scheduler.allowed-failures` + 1 times (a notebook that kills its
worker or exhausts the machine's memory) ends as KilledWorker: that student gets worker_failed
and the batch goes on. A task that fails otherwise, or a worker whose set-up fails its preflight
(checked once per worker process: sandbox, dataset, packages, the reference's full marks), is the
grader's error: not graded, retried by the next run.

Dask cannot stop a running task: when the coordinator cancels it (Ctrl-C, an early stop) or goes
away, the task's state on its worker becomes "cancelled", and the task then stops its grading
process itself.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import socket
import tarfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..result import GradeResult
from ..scoring import RunStatus
from .executor import (BatchConfig, BatchError, BatchGraderError, GradingRequest, Outcome,
                       WorkerSettings)
from .procs import kill_by_home_prefix
from .worker_process import COMMAND, WorkerProcess, grading_request, private_folder

WORKER_WAIT = 60.0  # seconds the batch waits for a first worker to join
MAX_SHIPPED_BYTES = 50 * 2**20  # a student folder's files sent with the notebook
PREFLIGHT_LIMIT = 1800.0  # the first task of a worker process grades the reference
POLL = 0.5
RUNNING_EVERY = 2.0  # seconds between asking the scheduler which tasks run


@dataclass(frozen=True)
class StudentTask:
    """What one task carries to its worker."""

    student: str
    notebook_name: str
    notebook: bytes
    siblings: bytes  # a tar of the files beside a student folder's notebook; b"" for a file
    settings: WorkerSettings


# --- on the worker --------------------------------------------------------------------------

_READY: set[str] = set()  # settings whose preflight passed in this worker process
_READY_LOCK = threading.Lock()


def grade_on_worker(task: StudentTask) -> dict[str, Any]:
    """The Dask task: {"result": result.json's text (with the similarity evidence), "executed": the executed notebook's bytes or None} or
    {"failure": status, "message", "log"}, + seconds (of the grading, not of the worker's
    first-task preflight)."""
    problem = _ready(task.settings)
    if problem:
        return {"failure": str(RunStatus.GRADER_ERROR),
                "message": f"the Dask worker {_address()} cannot grade: {problem}"}
    started = time.monotonic()
    folder = private_folder()
    process = None
    try:
        notebook = _unpack(task, folder / "submission")
        process = WorkerProcess(folder, grading_request(task.settings, notebook, folder),
                                task.settings.limit)
        while not process.done():
            if _cancelled():
                process.stop()
                return {"failure": str(RunStatus.GRADER_ERROR), "message": (
                    "the grading was cancelled on its worker (its batch was stopped) before it "
                    "finished")}
            time.sleep(POLL)
        result, failure, message, log = process.outcome()
        seconds = time.monotonic() - started
        if result is not None:
            return {"result": result.to_json(evidence=True), "seconds": seconds,
                    "executed": process.executed()}
        return {"failure": str(failure), "message": message, "log": log, "seconds": seconds}
    finally:
        if process is not None and process.proc.poll() is None:  # left by an exception
            process.stop()
        kill_by_home_prefix(folder)
        shutil.rmtree(folder, ignore_errors=True)


def _ready(settings: WorkerSettings) -> str | None:
    """This machine's set-up, checked once per worker process and settings; None when fine."""
    key = _settings_key(settings)
    with _READY_LOCK:  # a worker's threads wait for the first check instead of repeating it
        if key in _READY:
            return None
        problem = _preflight(settings)
        if problem is None:
            _READY.add(key)
        return problem


def _preflight(settings: WorkerSettings) -> str | None:
    folder = private_folder()
    try:
        process = WorkerProcess(folder, grading_request(settings, None, folder), PREFLIGHT_LIMIT,
                                [*COMMAND, "--preflight"])
        while not process.done():
            time.sleep(POLL)
        process.sweep()
        try:
            return json.loads((folder / "result.json").read_text(encoding="utf-8"))["problem"]
        except (OSError, ValueError, KeyError, TypeError):
            tail = (process.log() or b"")[-600:].decode("utf-8", errors="replace").strip()
            return f"the preflight process failed (exit {process.proc.returncode}): {tail}"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _unpack(task: StudentTask, into: Path) -> Path:
    into.mkdir(parents=True)
    if task.siblings:
        with tarfile.open(fileobj=io.BytesIO(task.siblings)) as tar:
            # Packed by the coordinator with regular files only; "data" also refuses links
            # and paths outside `into` where this Python has it.
            if hasattr(tarfile, "data_filter"):
                tar.extractall(into, filter="data")
            else:
                tar.extractall(into)
    notebook = into / Path(task.notebook_name).name
    notebook.write_bytes(task.notebook)
    return notebook


def _cancelled() -> bool:
    try:
        from distributed import get_worker

        worker = get_worker()
        state = worker.state.tasks.get(worker.get_current_task())
    except Exception:  # not in a Dask worker, or its internals moved: rely on the deadline
        return False
    return state is None or state.state == "cancelled"


def _address() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except Exception:
        return "(unknown)"


# --- on the coordinator ---------------------------------------------------------------------

def _settings_key(settings: WorkerSettings) -> str:
    text = json.dumps([settings.assignment_id, settings.version, repr(settings.grading),
                       settings.limit, list(settings.hidden)])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _pack_siblings(notebook: Path) -> bytes:
    """The files `grader check` would copy beside the notebook (execution/scratch.py: other
    notebooks, hidden names and symlinks left out), as far as MAX_SHIPPED_BYTES allows."""
    buffer = io.BytesIO()
    budget, added = MAX_SHIPPED_BYTES, 0
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for item in sorted(notebook.parent.iterdir()):
            if item.suffix == ".ipynb" or item.name.startswith(".") or item.is_symlink() or \
                    item.name in {"grader-report", "__pycache__"}:
                continue
            try:
                files = [item] if item.is_file() else \
                    [f for f in sorted(item.rglob("*")) if f.is_file() and not f.is_symlink()]
                size = sum(f.stat().st_size for f in files)
                if size > budget:
                    continue
                for f in files:
                    tar.add(f, arcname=str(f.relative_to(notebook.parent)), recursive=False)
            except OSError:
                continue  # an unreadable sibling is not the student's grade
            budget -= size
            added += len(files)
    return buffer.getvalue() if added else b""


class DaskExecutor:
    def __init__(self, config: BatchConfig, scheduler: str):
        try:
            import distributed  # noqa: F401
        except ImportError:
            raise BatchError("--scheduler needs Dask: pip install 'dl-grader[dask]' (here and "
                             "on every worker machine)") from None
        self.config = config
        self.scheduler = scheduler
        self.client: Any = None
        self.futures: dict[str, tuple[GradingRequest, Any]] = {}
        self.not_sent: list[Outcome] = []
        self._running: list[str] = []
        self._asked = 0.0

    def __enter__(self) -> "DaskExecutor":
        from distributed import Client

        problem = _unreachable(self.scheduler)
        if problem is None:
            try:
                self.client = Client(self.scheduler, set_as_default=False)
            except Exception as exc:  # TLS without its configuration, a scheduler gone, …
                problem = f"{type(exc).__name__}: {exc}"
        if problem is not None:
            raise BatchError(f"cannot reach the Dask scheduler at {self.scheduler} ({problem}): "
                             "start one with `dask scheduler` and its workers with `dask worker "
                             f"{self.scheduler}`")
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel_all()
        if self.client is not None:
            self.client.close()

    def prepare(self) -> None:
        try:
            self.client.wait_for_workers(1, timeout=WORKER_WAIT)
        except TimeoutError:
            raise BatchGraderError(f"no Dask worker joined the scheduler at {self.scheduler} "
                                   f"within {WORKER_WAIT:.0f} s: start them with `dask worker "
                                   f"{self.scheduler}`") from None

    def describe(self, count: int) -> str:
        threads = self.client.nthreads()  # {worker address: threads}
        return (f"grading {count} submission(s) of {self.config.assignment.id} on the Dask "
                f"cluster at {self.scheduler} ({len(threads)} worker(s), "
                f"{sum(threads.values())} thread(s))")

    def submit(self, request: GradingRequest) -> None:
        try:
            task = self._task(request)
        except OSError as exc:  # e.g. the notebook vanished since discovery
            self.not_sent.append(Outcome.failed(request, RunStatus.WORKER_FAILED,
                                                f"grading could not start: {exc}"))
            return
        settings = self.config.worker
        key = f"grade-{settings.assignment_id}-{request.student}-{request.sha[:16]}-" \
              f"{_settings_key(settings)}"
        future = self.client.submit(grade_on_worker, task, key=key, retries=0)
        self.futures[future.key] = (request, future)

    def _task(self, request: GradingRequest) -> StudentTask:
        notebook = request.notebook
        siblings = _pack_siblings(notebook) if request.layout == "folder" else b""
        return StudentTask(request.student, notebook.name, notebook.read_bytes(), siblings,
                           self.config.worker)

    def collect(self, timeout: float) -> list[Outcome]:
        outcomes, self.not_sent = self.not_sent, []
        done = [key for key, (_, future) in self.futures.items() if future.done()]
        if not done and not outcomes:
            time.sleep(timeout)
            done = [key for key, (_, future) in self.futures.items() if future.done()]
        for key in done:
            request, future = self.futures.pop(key)
            outcomes.append(self._outcome(request, future))
        return outcomes

    def _outcome(self, request: GradingRequest, future: Any) -> Outcome:
        from distributed.scheduler import KilledWorker

        if future.status == "finished":
            return _from_task(request, future.result())
        if future.status == "cancelled":
            return Outcome.failed(request, RunStatus.GRADER_ERROR,
                                  "its Dask task was cancelled (the scheduler went away?)")
        exc = future.exception()
        if isinstance(exc, KilledWorker):
            return Outcome.failed(request, RunStatus.WORKER_FAILED, (
                f"the Dask workers grading this notebook died {exc.allowed_failures + 1} times "
                f"(last: {getattr(exc.last_worker, 'address', exc.last_worker)}), as when a "
                "notebook kills its worker or exhausts the machine's memory; the notebook was "
                "not graded"))
        return Outcome.failed(request, RunStatus.GRADER_ERROR,
                              f"its Dask task failed: {type(exc).__name__}: {exc}")

    def running(self) -> list[str]:
        now = time.monotonic()
        if now - self._asked >= RUNNING_EVERY and self.futures:
            self._asked = now
            try:
                keys = {k for ks in self.client.processing().values() for k in ks}
            except Exception:  # only the progress bar's text
                keys = set()
            self._running = [self.futures[k][0].student for k in keys if k in self.futures]
        return self._running

    def cancel_all(self) -> None:
        if self.futures and self.client is not None:
            try:
                self.client.cancel([future for _, future in self.futures.values()], force=True)
            except Exception:  # the scheduler is gone: its tasks are too
                pass
        self.futures.clear()


def _unreachable(address: str) -> str | None:
    """Why nothing listens at the address, tried before Dask's client (which retries for
    distributed.comm.timeouts.connect, 30 s by default, and leaves a half-made client to
    complain at exit); None when something does."""
    import dask.config
    from dask.utils import parse_timedelta
    from distributed.comm import get_address_host_port

    try:
        host, port = get_address_host_port(address)
    except (ValueError, TypeError) as exc:
        return str(exc)
    timeout = parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), "s")
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((host, port), timeout=min(5.0, timeout)).close()
            return None
        except OSError as exc:
            if time.monotonic() > deadline:
                return str(exc)
        time.sleep(1.0)


def _from_task(request: GradingRequest, data: dict[str, Any]) -> Outcome:
    seconds = float(data.get("seconds") or 0.0)
    if isinstance(data.get("result"), str):
        executed = data.get("executed")
        return Outcome(request, GradeResult.from_json(data["result"]), seconds=seconds,
                       executed=executed if isinstance(executed, bytes) else None)
    return Outcome.failed(request, RunStatus(data.get("failure") or RunStatus.WORKER_FAILED),
                          str(data.get("message") or ""), data.get("log"), seconds)
