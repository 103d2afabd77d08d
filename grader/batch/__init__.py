"""`grader grade SUBMISSIONS --assignment ID --out grades/ -j 2`: a class's notebooks, graded in
parallel, resumably, into a gradebook.

What it writes into `--out`:

    <student>/result.json   the result (schema of `grader check`, plus a `batch` field: student,
                            status, complete, seconds, graded_at, full, source)
    <student>/report.html   the student's report (when grader.reports.html is available)
    <student>/worker.log    only when the grading process itself failed: its output
    grades.csv              student, total, max, one column per check id, status, message
    summary.html            the class at a glance (grader/reports/summary.py)

Students: see grader/batch/discovery.py (flat folder of notebooks and/or one folder per student;
which notebook is graded when a folder holds several).

Resuming: each student's result.json is written atomically, and only after the student's
report.html, so a result on disk is always complete. A student is skipped when its result.json
has the same `notebook_sha256` and `assignment_version` (and the same --full mode) and was
complete; `--force` regrades everyone. Killing the batch loses nothing already written.
grades.csv and summary.html are rebuilt from all students' result.json at the end of every run.

Run status (the gradebook's `status` column, also `execution.status` in result.json): what the
engine reports (`completed`, `timeout`, `kernel_died`, `start_failed`, `invalid_notebook`), or
one of the batch's own: `no_notebook`, `ambiguous` (see discovery), `worker_failed` (the grading
process crashed or was killed, e.g. by the OOM killer) and `worker_timeout` (it ran past the
batch's own limit, beyond the notebook's time limits). Those four give every check 0 points
and a message saying why; the two worker statuses are not cached, so the next run retries them.

TA points: `--manual scores.csv` (grader/manual_scores.py) is validated before anything is graded
and merged into every student's result.json and the gradebook. Points merged earlier are kept
when a student is regraded with an unchanged notebook.

Parallelism, and why one subprocess per student (`python -m grader.batch.worker`) rather than a
ProcessPoolExecutor: a worker that segfaults, is OOM-killed or hangs in C code breaks a whole
ProcessPoolExecutor (BrokenProcessPool fails every pending future), while a separate process per
student fails alone; the batch can stop a hung one by its own deadline (SIGTERM, then SIGKILL)
and then sweep its processes; and this process never imports TensorFlow or forks with threads
running. The cost, a Python start per student (~1 s), is small next to running a notebook.
Every worker gets a private TMPDIR; the kernels and training processes it starts have their HOME
there, so `procs.kill_by_home_prefix` finds them even if they left the worker's session; with
bubblewrap the kernel also dies with its worker (--die-with-parent, pid namespace). Workers die
with the batch (PR_SET_PDEATHSIG), so killing the batch leaves no kernel behind.

The kernels cannot see the submissions folder (other students' work) nor the output folder: both
are passed to the sandbox as hidden. A notebook from a flat folder is graded from a private copy
alone, so other students' files are not copied beside it; a student's own folder is copied as
`grader check` does (data files the notebook reads).
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from rich.console import Console
from rich.markup import escape
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

from .. import manual_scores, notebook as notebook_mod
from ..errors import GraderError
from ..pipeline import Options
from ..scoring import CheckResult, GradeResult, total, write_atomic
from ..spec import Assignment
from .discovery import Submission, discover
from .procs import kill_by_home_prefix

NOT_GRADED = ("no_notebook", "ambiguous", "worker_failed", "worker_timeout", "grader_error")
# Not cached: the next run tries again. grader_error results carry no score at all.
RETRIED = ("worker_failed", "worker_timeout", "grader_error")
# When the first few students all fail on the grader's side, the cause is the set-up, not them.
EARLY_STOP_AFTER = 3
RESERVED = {"grades.csv", "summary.html"}  # out/<student>/ must not clash with these
TERM_GRACE = 15.0  # seconds between SIGTERM and SIGKILL for a worker past its deadline
POLL = 0.2
PACKAGE_PARENT = Path(__file__).resolve().parents[2]


class BatchError(Exception):
    """A usage error of the batch as a whole (exit 2): no such folder, no submissions, bad CSV."""


class BatchGraderError(GraderError):
    """The grader's set-up fails for this batch (exit 3): canary, packages, or the first
    students all failing on the grader's side."""


def default_jobs() -> int:
    """Half the usable cores (each kernel and each timed training uses two threads), at least 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 2
    return max(1, cores // 2)


@dataclass
class BatchOptions:
    out: Path
    jobs: int = 1
    force: bool = False
    manual: Path | None = None
    worker_timeout: float | None = None  # None: from the assignment's limits
    grading: Options = field(default_factory=Options)


@dataclass
class StudentOutcome:
    student: str
    action: str  # graded | skipped | error (not gradable: no_notebook, ambiguous)
    status: str
    score: float
    max_score: float
    seconds: float = 0.0
    message: str = ""


@dataclass
class BatchReport:
    outcomes: list[StudentOutcome]
    gradebook: Path
    summary: Path
    out: Path
    interrupted: bool = False

    def count(self, action: str) -> int:
        return sum(1 for o in self.outcomes if o.action == action)


# --- results ------------------------------------------------------------------------------------

def result_path(out: Path, student: str) -> Path:
    return out / student / "result.json"


def read_result(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("checks"), list) else None


def is_current(old: dict[str, Any] | None, sha: str, version: str, full: bool) -> bool:
    """Graded already: same notebook bytes, same assignment version, same data mode."""
    if not old:
        return False
    batch = old.get("batch") if isinstance(old.get("batch"), dict) else {}
    return (old.get("notebook_sha256") == sha and old.get("assignment_version") == version
            and batch.get("complete") is True and bool(batch.get("full")) == full)


def error_result(assignment: Assignment, status: str, message: str, notebook: Path | None = None,
                 sha: str = "") -> dict[str, Any]:
    """Every check 0 points with `message`; the run status in execution.status."""
    checks = [CheckResult.error(spec, message) for spec in assignment.checks]
    from .. import __version__

    result = GradeResult(
        assignment=assignment.id, assignment_title=assignment.title,
        assignment_version=assignment.version_key(), notebook=str(notebook or ""),
        notebook_sha256=sha, score=total(checks), max_score=assignment.max_score, checks=checks,
        models={}, execution={"status": status, "message": message, "harvested": False},
        cell_errors=[], data={}, timings={}, grader_version=__version__)
    return json.loads(result.to_json())


def _html_renderer() -> Callable[[dict[str, Any]], str] | None:
    try:
        from ..reports.html import render_html
    except Exception:  # the HTML report is optional for the batch
        return None
    return render_html


class _Writer:
    """Finishes one student's result (batch info, TA points) and writes its folder."""

    def __init__(self, out: Path, console: Console, manual: dict[str, list] | None):
        self.out = out
        self.console = console
        self.manual = manual
        self.render_html = _html_renderer()
        self.html_failed = False

    def finish(self, result: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
        student = result["batch"]["student"]
        if old and old.get("notebook_sha256") and \
                old.get("notebook_sha256") == result.get("notebook_sha256"):
            carried = manual_scores.carried_over(old)
            if carried:
                manual_scores.apply(result, carried, authoritative=False)
        if self.manual is not None:
            manual_scores.apply(result, self.manual.get(student, []))
        return result

    def write(self, result: dict[str, Any], log: Path | None = None) -> None:
        folder = self.out / result["batch"]["student"]
        folder.mkdir(parents=True, exist_ok=True)
        self.write_html(result, folder)
        if log is not None and log.is_file():
            shutil.copyfile(log, folder / "worker.log")
        else:
            (folder / "worker.log").unlink(missing_ok=True)
        write_atomic(folder / "result.json", json.dumps(result, indent=2, default=str))

    def write_html(self, result: dict[str, Any], folder: Path) -> None:
        if self.render_html is None:
            return
        try:
            write_atomic(folder / "report.html", self.render_html(result))
        except Exception as exc:  # a report bug must not cost the grade
            if not self.html_failed:
                self.html_failed = True
                self.console.print(f"[yellow]warning:[/] report.html not written "
                                   f"({escape(type(exc).__name__)}: {escape(str(exc))[:200]})")


# --- the worker processes ----------------------------------------------------------------------

@dataclass
class _Job:
    sub: Submission
    sha: str
    old: dict[str, Any] | None
    tmp: Path
    result_file: Path
    log_file: Path
    proc: subprocess.Popen
    started: float
    deadline: float
    log_handle: Any
    terminated_at: float | None = None


def worker_timeout(assignment: Assignment, grading: Options) -> float:
    """The batch's own limit for one student, well beyond the engine's: notebook time limit,
    kernel start, harvest, and the grader's timed training of each model."""
    notebook = grading.timeout or assignment.limits.notebook_timeout
    timed = sum(1 for c in assignment.checks if c.kind == "timed_training")
    training = assignment.training.wall_seconds_per_model * timed if assignment.training else 0
    return notebook + 120 + 330 + training + 120


def _hidden_paths(paths: list[Path]) -> list[str]:
    """Folders the kernel must not see, except those it needs (an ancestor of the grader or of
    Python itself would stop the kernel from starting)."""
    needed = [PACKAGE_PARENT, Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(),
              Path(tempfile.gettempdir()).resolve()]
    out = []
    for path in paths:
        path = path.resolve()
        if any(n == path or path in n.parents for n in needed):
            continue
        out.append(str(path))
    return out


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


class _Pool:
    command = [sys.executable, "-m", "grader.batch.worker"]  # + the request file

    def __init__(self, assignment: Assignment, options: BatchOptions, hidden: list[str],
                 batch_tmp: Path):
        self.assignment = assignment
        self.options = options
        self.hidden = hidden
        self.batch_tmp = batch_tmp
        self.limit = options.worker_timeout or worker_timeout(assignment, options.grading)
        self.counter = 0
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(PACKAGE_PARENT), *filter(None, [env.get("PYTHONPATH")])])
        env["PYTHONUNBUFFERED"] = "1"
        self.env = env

    def start(self, sub: Submission, sha: str, old: dict[str, Any] | None) -> _Job:
        self.counter += 1
        # Short paths: the kernel's Unix sockets live below TMPDIR, and a socket path is
        # limited to 107 bytes.
        tmp = self.batch_tmp / f"{self.counter:04d}"
        (tmp / "t").mkdir(parents=True)
        notebook = sub.notebook.resolve()
        if sub.layout == "file":  # graded alone: other students' files are not its siblings
            staged = tmp / "submission" / notebook.name
            staged.parent.mkdir()
            shutil.copyfile(notebook, staged)
            notebook = staged
        grading = self.options.grading
        request = {"notebook": str(notebook), "assignment": self.assignment.id,
                   "data_dir": str(grading.data_dir.resolve()) if grading.data_dir else None,
                   "full": grading.full, "timeout": grading.timeout, "sandbox": grading.sandbox,
                   "hidden": [*self.hidden, *(str(p.resolve()) for p in grading.hidden)],
                   "result": str(tmp / "result.json"), "private_tmp": str(tmp / "t"),
                   "parent_pid": os.getpid()}
        (tmp / "request.json").write_text(json.dumps(request), encoding="utf-8")
        log_file = tmp / "worker.log"
        handle = log_file.open("wb")
        env = dict(self.env, TMPDIR=str(tmp / "t"))
        proc = subprocess.Popen(
            [*self.command, str(tmp / "request.json")],
            stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT, env=env,
            cwd=str(tmp), start_new_session=True)
        now = time.monotonic()
        return _Job(sub, sha, old, tmp, tmp / "result.json", log_file, proc, now,
                    now + self.limit, handle)

    def check_deadline(self, job: _Job) -> None:
        now = time.monotonic()
        if job.terminated_at is None and now > job.deadline:
            job.terminated_at = now
            _signal_group(job.proc, signal.SIGTERM)  # the worker kills its kernels, then exits
        elif job.terminated_at is not None and now > job.terminated_at + TERM_GRACE:
            _signal_group(job.proc, signal.SIGKILL)

    def reap(self, job: _Job) -> tuple[dict[str, Any] | None, str, str]:
        """After the worker exited: its result, or (None, status, message)."""
        # The worker was reaped, so its pid may be reused: no killpg here. Its kernels and
        # training processes are found by their HOME, inside the worker's private folder.
        kill_by_home_prefix(job.tmp)
        job.log_handle.close()
        code = job.proc.returncode
        if job.terminated_at is not None:
            return None, "worker_timeout", (
                f"grading did not finish within the batch's limit of {self.limit:.0f} s and was "
                "stopped (the notebook's own time limits did not end it)")
        result = read_result(job.result_file) if code == 0 else None
        if result is not None:
            return result, "graded", ""
        why = f"exit code {code}" if code is None or code >= 0 else \
            f"killed by {_signal_name(code)}"
        hint = " (out of memory?)" if code == -signal.SIGKILL else ""
        tail = _tail(job.log_file)
        return None, "worker_failed", (
            f"the grading process failed ({why}{hint}); the student's notebook was not graded"
            + (f". Last output: {tail}" if tail else ""))

    def kill_all(self, jobs: list[_Job]) -> None:
        for job in jobs:
            _signal_group(job.proc, signal.SIGTERM)
        deadline = time.monotonic() + TERM_GRACE
        for job in jobs:
            try:
                job.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(job.proc, signal.SIGKILL)
                job.proc.wait()
            kill_by_home_prefix(job.tmp)
            job.log_handle.close()


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)  # the worker leads its own session (start_new_session)
    except OSError:
        try:
            proc.send_signal(sig)
        except OSError:
            pass


# --- the batch ---------------------------------------------------------------------------------

def _line(console: Console, student: str, result: dict[str, Any], status: str,
          seconds: float | None, width: int) -> None:
    got = result.get("score")
    score = f"{'—' if got is None else format(float(got), 'g')}/" \
        f"{float(result.get('max_score') or 0):g}"
    colour = "green" if status == "completed" else "red" if status in NOT_GRADED else "yellow"
    secs = f"{seconds:7.1f} s" if seconds is not None else ""
    console.print(f"{escape(student):<{width}}  {score:>9}  [{colour}]{status:<16}[/]  {secs}",
                  highlight=False, soft_wrap=True)


def run(root: Path, assignment: Assignment, options: BatchOptions,
        console: Console | None = None) -> BatchReport:
    console = console or Console()
    root = Path(root)
    if not root.is_dir():
        raise BatchError(f"not a folder: {root} (grader grade takes a folder of notebooks or "
                         "of student folders; use grader check for one notebook)")
    if options.jobs < 1:
        raise BatchError("-j must be at least 1")
    out = Path(options.out).resolve()
    if out == root.resolve():
        raise BatchError("--out must not be the submissions folder itself")
    subs = discover(root, assignment.id, assignment.starter.name, exclude=out)
    if not subs:
        raise BatchError(f"no submissions in {root}: expected notebooks (*.ipynb) or one folder "
                         "per student")
    clash = sorted(s.student for s in subs if s.student in RESERVED)
    if clash:
        raise BatchError(f"submission(s) named like the batch's own output files: "
                         f"{', '.join(clash)}; rename them")
    manual = None
    if options.manual is not None:
        try:
            manual = manual_scores.load(options.manual, assignment, [s.student for s in subs])
        except manual_scores.ManualScoresError as exc:
            raise BatchError(str(exc)) from None
    out.mkdir(parents=True, exist_ok=True)
    version = assignment.version_key()
    full = bool(options.grading.full)
    writer = _Writer(out, console, manual)
    width = min(max(len(s.student) for s in subs), 32)
    outcomes: list[StudentOutcome] = []
    todo: list[tuple[Submission, str, dict[str, Any] | None]] = []
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")

    skipped = 0
    for sub in subs:
        old = read_result(result_path(out, sub.student))
        if sub.notebook is None:
            result = error_result(assignment, sub.status or "no_notebook", sub.error or "")
            result["batch"] = _batch_info(sub, root, sub.status or "no_notebook", True, 0.0,
                                          now, full)
            writer.finish(result, None)
            if old is None or _comparable(old) != _comparable(result):
                writer.write(result)
            outcomes.append(StudentOutcome(sub.student, "error", result["execution"]["status"],
                                           0.0, assignment.max_score))
            _line(console, sub.student, result, result["execution"]["status"], None, width)
            continue
        try:
            sha = notebook_mod.file_sha256(sub.notebook)
        except OSError as exc:
            result = error_result(assignment, "worker_failed", f"the notebook could not be "
                                  f"read: {exc}", sub.notebook)
            result["batch"] = _batch_info(sub, root, "worker_failed", False, 0.0, now, full)
            writer.write(writer.finish(result, None))
            outcomes.append(StudentOutcome(sub.student, "graded", "worker_failed", 0.0,
                                           assignment.max_score))
            _line(console, sub.student, result, "worker_failed", None, width)
            continue
        if not options.force and is_current(old, sha, version, full):
            skipped += 1
            before = _comparable(old)
            writer.finish(old, None)
            if _comparable(old) != before:  # new TA points: rewrite result and report
                writer.write(old)
            elif not (out / sub.student / "report.html").exists():
                writer.write_html(old, out / sub.student)
            outcomes.append(StudentOutcome(sub.student, "skipped", _status(old),
                                           float(old.get("score") or 0),
                                           float(old.get("max_score") or 0)))
            continue
        todo.append((sub, sha, old))
    if skipped:
        console.print(f"{skipped} student(s) already graded with the same notebook and "
                      f"assignment version: skipped (--force regrades them)", highlight=False,
                      soft_wrap=True)

    interrupted = False
    if todo:
        _preflight(assignment, options.grading)
        hidden = _hidden_paths([root, out])
        batch_tmp = _batch_tmp()
        try:
            _grade_all(todo, assignment, options, hidden, batch_tmp, writer, console, root, full,
                       width, outcomes)
        except KeyboardInterrupt:  # the workers are stopped; keep what was written
            interrupted = True
        finally:
            kill_by_home_prefix(batch_tmp)
            shutil.rmtree(batch_tmp, ignore_errors=True)

    gradebook, summary = rebuild(out, assignment, [s.student for s in subs], console)
    return BatchReport(outcomes, gradebook, summary, out, interrupted)


def _comparable(result: dict[str, Any]) -> str:
    """The result without when it was written: equal means nothing to rewrite."""
    data = json.loads(json.dumps(result, default=str))
    if isinstance(data.get("batch"), dict):
        data["batch"].pop("graded_at", None)
        data["batch"].pop("seconds", None)
    return json.dumps(data, sort_keys=True)


def _status(result: dict[str, Any]) -> str:
    return str((result.get("execution") or {}).get("status") or "unknown")


def _batch_info(sub: Submission, root: Path, status: str, complete: bool, seconds: float,
                graded_at: str, full: bool) -> dict[str, Any]:
    source = ""
    if sub.notebook is not None:
        try:
            source = str(sub.notebook.relative_to(root))
        except ValueError:
            source = str(sub.notebook)
    return {"student": sub.student, "layout": sub.layout, "source": source, "status": status,
            "complete": complete, "seconds": round(seconds, 3), "graded_at": graded_at,
            "full": full}


def _batch_tmp() -> Path:
    """The workers' private folders. Kernel sockets are created about 50 bytes below a worker's
    folder and a socket path is limited to 107 bytes: a long TMPDIR falls back to /tmp."""
    base = tempfile.gettempdir()
    if len(base) > 40 and os.access("/tmp", os.W_OK):
        base = "/tmp"
    _remove_stale(Path(base))
    folder = Path(tempfile.mkdtemp(prefix="grb-", dir=base))
    (folder / "pid").write_text(str(os.getpid()))
    return folder


def _remove_stale(base: Path) -> None:
    """Folders of batches that were killed (their process is gone) are removed."""
    for folder in base.glob("grb-*"):
        try:
            pid = int((folder / "pid").read_text())
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (OSError, ValueError):
            continue  # not ours to judge (another user's, or being created)


def _preflight(assignment: Assignment, grading: Options) -> None:
    """Fail once, before starting workers, for what would fail every student: an unavailable
    sandbox or dataset (usage errors, exit 2). Also downloads a missing dataset once, here,
    rather than in every worker at the same time."""
    from .. import environment
    from ..execution import sandbox

    sandbox.resolve(grading.sandbox)
    if assignment.data is not None:
        from .. import data

        data.load(assignment.data.dataset, grading.data_dir)
    environment.verify(assignment.packages)
    from .. import canary

    canary.ensure_reference_scores_full_marks(assignment, grading)


def _grade_all(todo, assignment: Assignment, options: BatchOptions, hidden: list[str],
               batch_tmp: Path, writer: _Writer, console: Console, root: Path, full: bool,
               width: int, outcomes: list[StudentOutcome]) -> None:
    pool = _Pool(assignment, options, hidden, batch_tmp)
    pending = list(todo)
    running: list[_Job] = []
    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                        MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("ETA"),
                        TimeRemainingColumn(), console=console, transient=False)
    jobs = min(options.jobs, len(todo))
    console.print(f"grading {len(todo)} submission(s) of {assignment.id} with {jobs} worker(s)",
                  highlight=False)
    try:
        with progress:
            task = progress.add_task("starting", total=len(todo))
            while pending or running:
                while pending and len(running) < options.jobs:
                    sub, sha, old = pending.pop(0)
                    try:
                        running.append(pool.start(sub, sha, old))
                    except OSError as exc:  # e.g. the notebook vanished since discovery
                        outcomes.append(_failed_start(sub, sha, assignment, writer, root, full,
                                                      exc, progress.console, width))
                        progress.advance(task)
                progress.update(task, description=_describe(running))
                time.sleep(POLL)
                for job in list(running):
                    if job.proc.poll() is None:
                        pool.check_deadline(job)
                        continue
                    running.remove(job)
                    outcomes.append(_collect(pool, job, assignment, writer, root, full,
                                             progress.console, width))
                    progress.advance(task)
                    _stop_if_the_grader_is_broken(outcomes)
            progress.update(task, description="done")
    except BaseException:  # Ctrl-C or a bug: stop every worker (and its kernel) before leaving
        pool.kill_all(running)
        raise


def _stop_if_the_grader_is_broken(outcomes: list[StudentOutcome]) -> None:
    graded = [o for o in outcomes if o.action == "graded"]
    if len(graded) == EARLY_STOP_AFTER and all(o.status == "grader_error" for o in graded):
        raise BatchGraderError(f"the first {EARLY_STOP_AFTER} students all failed on the "
                               f"grader's side ({graded[-1].message}); stopped. Fix the cause "
                               "and run the same command again: nobody was scored.")


def _failed_start(sub: Submission, sha: str, assignment: Assignment, writer: _Writer, root: Path,
                  full: bool, exc: OSError, console: Console, width: int) -> StudentOutcome:
    message = f"grading could not start: {exc}"
    result = error_result(assignment, "worker_failed", message, sub.notebook, sha)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    result["batch"] = _batch_info(sub, root, "worker_failed", False, 0.0, now, full)
    writer.write(writer.finish(result, None))
    _line(console, sub.student, result, "worker_failed", None, width)
    return StudentOutcome(sub.student, "graded", "worker_failed", 0.0, assignment.max_score)


def _describe(running: list[_Job]) -> str:
    names = ", ".join(j.sub.student for j in running)
    return escape(names if len(names) <= 40 else names[:39] + "…")


def _collect(pool: _Pool, job: _Job, assignment: Assignment, writer: _Writer, root: Path,
             full: bool, console: Console, width: int) -> StudentOutcome:
    result, status, message = pool.reap(job)
    seconds = time.monotonic() - job.started
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    log = None
    if result is None:
        result = error_result(assignment, status, message, job.sub.notebook, job.sha)
        log = job.log_file
    else:
        status = _status(result)
        result["notebook"] = str(job.sub.notebook)  # not the private copy it was graded from
    result["batch"] = _batch_info(job.sub, root, status, status not in RETRIED, seconds, now,
                                  full)
    writer.write(writer.finish(result, job.old), log)
    _line(console, job.sub.student, result, status, seconds, width)
    return StudentOutcome(job.sub.student, "graded", status, float(result.get("score") or 0),
                          float(result.get("max_score") or 0), seconds,
                          str((result.get("execution") or {}).get("message") or "")[:300])


# --- gradebook and summary ---------------------------------------------------------------------

def _csv_cell(value: Any) -> str:
    """Spreadsheets run cells starting with = + - @ as formulas; file names are student-chosen."""
    text = str(value)
    if text[:1] in ("=", "+", "@", "\t", "\r") or (text[:1] == "-" and not _is_number(text)):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def gradebook_csv(assignment: Assignment, students: list[tuple[str, dict[str, Any]]]) -> str:
    check_ids = [c.id for c in assignment.checks]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["student", "total", "max", *check_ids, "status", "message"])
    for student, result in students:
        points = {c.get("id"): c.get("points") for c in result.get("checks") or []
                  if isinstance(c, dict)}
        message = " ".join(str((result.get("execution") or {}).get("message") or "").split())
        score = result.get("score")  # None: not graded (a grader error), not a zero
        writer.writerow([_csv_cell(student), "" if score is None else f"{float(score):g}",
                         f"{float(result.get('max_score') or 0):g}",
                         *("" if points.get(cid) is None else f"{float(points[cid]):g}"
                           for cid in check_ids),
                         _status(result), _csv_cell(message[:300])])
    return buffer.getvalue()


def rebuild(out: Path, assignment: Assignment, students: list[str],
            console: Console | None = None) -> tuple[Path, Path]:
    """grades.csv and summary.html from every student's result.json in `out`."""
    from ..reports.summary import render_summary

    rows = []
    for student in sorted(students):
        result = read_result(result_path(out, student))
        if result is not None:
            rows.append((student, result))
    known = set(students)
    stale = sorted(p.parent.name for p in out.glob("*/result.json") if p.parent.name not in known)
    if stale and console is not None:
        console.print(f"note: {len(stale)} folder(s) in {out} have no submission any more and are "
                      f"left out of the gradebook: {', '.join(stale[:10])}"
                      + (" …" if len(stale) > 10 else ""), highlight=False, markup=False)
    gradebook = out / "grades.csv"
    write_atomic(gradebook, gradebook_csv(assignment, rows))
    info = {"id": assignment.id, "title": assignment.title, "version": assignment.version_key(),
            "max_score": assignment.max_score,
            "checks": [{"id": c.id, "title": c.title, "max_points": c.points, "kind": c.kind}
                       for c in assignment.checks]}
    entries = [{"student": s, "result": r,
                "report": f"{s}/report.html" if (out / s / "report.html").is_file() else None}
               for s, r in rows]
    summary = out / "summary.html"
    write_atomic(summary, render_summary(info, entries))
    return gradebook, summary
