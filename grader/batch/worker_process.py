"""One student's grading as a `python -m grader.batch.worker` process, with a deadline.

Both engines run every student this way, on whichever machine grades it: the local pool many at
once on this machine, a Dask task one on its worker. A process per student rather than a pool
of long-lived processes: a worker that segfaults, is OOM-killed or hangs in C code fails alone
(a ProcessPoolExecutor's BrokenProcessPool fails every pending future); a hung one is stopped by
its deadline (SIGTERM, then SIGKILL) and its processes swept; and the engine never imports
TensorFlow nor forks with threads running. The cost, a Python start per student (~1 s), is small
next to running a notebook.

Every process gets a private folder; its TMPDIR is inside, and so is the HOME of each kernel and
training process it starts, so `procs.kill_by_home_prefix` finds them even if they left the
worker's session. With bubblewrap the kernel also dies with its worker (--die-with-parent, pid
namespace). The worker dies with the process that started it (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ..execution import processes
from ..scoring import RunStatus
from .executor import WorkerSettings
from .procs import kill_by_home_prefix
from .store import read_result

COMMAND = [sys.executable, "-m", "grader.batch.worker"]  # + the request file
TERM_GRACE = 15.0  # seconds between SIGTERM and SIGKILL for a worker past its deadline
LOG_KEPT = 256 * 2**10  # bytes of a failed worker's output kept as worker.log
# The executed notebook carried back to the coordinator (its outputs are bounded by the runner,
# its own source by notebook.py); a bigger one is not carried, and the feedback lacks it.
MAX_EXECUTED_BYTES = 40 * 2**20
PACKAGE_PARENT = Path(__file__).resolve().parents[2]


def safe_hidden(paths: list[str] | tuple[str, ...]) -> list[str]:
    """Folders the kernel must not see, except those it needs on this machine (an ancestor of
    the grader or of Python itself would stop the kernel from starting)."""
    needed = [PACKAGE_PARENT, Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(),
              Path(tempfile.gettempdir()).resolve()]
    kept = []
    for text in paths:
        path = Path(text).resolve()
        if not any(n == path or path in n.parents for n in needed):
            kept.append(str(path))
    return kept


def worker_env(private_tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(PACKAGE_PARENT), *filter(None, [env.get("PYTHONPATH")])])
    env["PYTHONUNBUFFERED"] = "1"
    env["TMPDIR"] = str(private_tmp)
    return env


def grading_request(settings: WorkerSettings, notebook: Path | None, folder: Path
                    ) -> dict[str, Any]:
    """The worker's request file, with this machine's paths (no notebook: --preflight)."""
    grading = settings.grading
    return {"notebook": str(notebook or ""), "assignment": settings.assignment_id,
            "version": settings.version,
            # the grading options as their own model serialises them, with this machine's paths
            "options": grading.model_copy(update={
                "data_dir": grading.data_dir.resolve() if grading.data_dir else None,
                "hidden": (*map(Path, safe_hidden(settings.hidden)),
                           *(p.resolve() for p in grading.hidden))}).model_dump(mode="json"),
            "result": str(folder / "result.json"),
            "executed": str(folder / "executed.ipynb") if notebook else None,
            "private_tmp": str(folder / "t"), "parent_pid": os.getpid()}


class WorkerProcess:
    """A started worker: poll it, stop it, and read what it left once it exited."""

    def __init__(self, folder: Path, request: dict[str, Any], limit: float,
                 command: list[str] | None = None):
        self.folder = folder
        self.limit = limit
        (folder / "t").mkdir(parents=True, exist_ok=True)
        (folder / "request.json").write_text(json.dumps(request), encoding="utf-8")
        self.result_file = Path(request["result"])
        self.executed_file = Path(request["executed"]) if request.get("executed") else None
        self.log_file = folder / "worker.log"
        self._log = self.log_file.open("wb")
        try:
            self.proc = subprocess.Popen(
                [*(command or COMMAND), str(folder / "request.json")],
                stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                env=worker_env(folder / "t"), cwd=str(folder), start_new_session=True)
        except BaseException:
            self._log.close()
            raise
        self.started = time.monotonic()
        self.terminated_at: float | None = None

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    def done(self) -> bool:
        """Whether it exited; past its deadline it is sent SIGTERM, then SIGKILL."""
        if self.proc.poll() is not None:
            return True
        now = time.monotonic()
        if self.terminated_at is None and now > self.started + self.limit:
            self.terminated_at = now
            self.signal(signal.SIGTERM)  # the worker kills its kernels, then exits
        elif self.terminated_at is not None and now > self.terminated_at + TERM_GRACE:
            self.signal(signal.SIGKILL)
        return False

    def signal(self, sig: int) -> None:
        if not processes.signal_group(self.proc.pid, sig):  # the worker leads its own session
            try:
                self.proc.send_signal(sig)
            except OSError:
                pass

    def wait_or_kill(self, deadline: float) -> None:
        """After SIGTERM: wait until `deadline`, then SIGKILL; then sweep its processes."""
        try:
            self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.proc.wait()
        self.sweep()

    def stop(self) -> None:
        self.signal(signal.SIGTERM)
        self.wait_or_kill(time.monotonic() + TERM_GRACE)

    def sweep(self) -> None:
        # Once reaped its pid may be reused: no killpg. Its kernels and training processes
        # are found by their HOME, inside its private folder.
        kill_by_home_prefix(self.folder)
        self._log.close()

    def outcome(self) -> tuple[dict[str, Any] | None, RunStatus | None, str, bytes | None]:
        """After it exited: (result, None, "", None) or (None, failure, message, log)."""
        self.sweep()
        code = self.proc.returncode
        if self.terminated_at is not None:
            return None, RunStatus.WORKER_TIMEOUT, (
                f"grading did not finish within the batch's limit of {self.limit:.0f} s and was "
                "stopped (the notebook's own time limits did not end it)"), self.log()
        result = read_result(self.result_file) if code == 0 else None
        if result is not None:
            return result, None, "", None
        why = f"exit code {code}" if code is None or code >= 0 else \
            f"killed by {_signal_name(code)}"
        hint = " (out of memory?)" if code == -signal.SIGKILL else ""
        tail = _tail(self.log_file)
        return None, RunStatus.WORKER_FAILED, (
            f"the grading process failed ({why}{hint}); the student's notebook was not graded"
            + (f". Last output: {tail}" if tail else "")), self.log()

    def executed(self) -> bytes | None:
        """The executed notebook the worker left, as bytes (untrusted: whoever uses it validates
        it), or None: none written, or over MAX_EXECUTED_BYTES."""
        if self.executed_file is None:
            return None
        try:
            with self.executed_file.open("rb") as fh:
                data = fh.read(MAX_EXECUTED_BYTES + 1)
        except OSError:
            return None
        return data if len(data) <= MAX_EXECUTED_BYTES else None

    def log(self) -> bytes | None:
        try:
            with self.log_file.open("rb") as fh:
                fh.seek(max(0, self.log_file.stat().st_size - LOG_KEPT))
                return fh.read()
        except OSError:
            return None


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def _tail(path: Path, lines: int = 6, chars: int = 600) -> str:
    try:
        text = path.read_bytes()[-20_000:].decode("utf-8", errors="replace")
    except OSError:
        return ""
    kept = [line for line in text.strip().splitlines() if line.strip()][-lines:]
    return " | ".join(kept)[-chars:]


def private_folder() -> Path:
    """A folder for one batch's (or one task's) workers, removed by whoever made it. Kernel
    sockets are created about 50 bytes below a worker's folder and a socket path is limited to
    107 bytes: a long TMPDIR falls back to /tmp. Folders left by a killed batch or Dask worker
    (their process is gone) are removed first."""
    base = tempfile.gettempdir()
    if len(base) > 40 and os.access("/tmp", os.W_OK):
        base = "/tmp"
    _remove_stale(Path(base))
    folder = Path(tempfile.mkdtemp(prefix="grb-", dir=base))
    (folder / "pid").write_text(str(os.getpid()))
    return folder


def _remove_stale(base: Path) -> None:
    for folder in base.glob("grb-*"):
        try:
            pid = int((folder / "pid").read_text())
        except (OSError, ValueError):
            continue  # not ours to judge (another user's, or being created)
        if not processes.alive(pid):
            shutil.rmtree(folder, ignore_errors=True)
