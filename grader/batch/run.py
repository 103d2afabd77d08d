"""The coordinator: discover the class, settle who needs no grading, check the set-up once, feed
the engine, and write each outcome into the store as it arrives.

Whatever the engine, only this process writes into OUT, one result per student per run (an
outcome for a student already recorded is ignored), so a result on disk is complete and a rerun
resumes. When the first EARLY_STOP_AFTER students graded all fail on the grader's side, the
cause is the set-up, not them: the batch stops (exit 3) and nobody was scored. What discovery
skipped (a file that is no notebook, a name colliding with OUT's own files) never stops the
batch: it is listed in the report and in summary.html, and every other student is graded.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from ..ta import manual_scores
from ..submission import notebook as notebook_mod
from ..pipeline import Options
from ..result import GradeResult
from ..scoring import RunStatus
from ..similarity import Thresholds
from ..assignment import Assignment
from .discovery import Skipped, Submission, scan
from .executor import (BatchConfig, BatchError, BatchGraderError, Executor, GradingRequest,
                       Outcome, WorkerSettings)
from .gradebook import read_rows, rebuild, write_exports
from .progress import StudentLines, progress_bar, running_names
from .roster import RosterError, RosterMatch
from .roster import load as load_roster
from .store import (BatchStamp, ResultStore, batch_info, comparable, error_result, is_current,
                    not_graded_result, status_of)

EARLY_STOP_AFTER = 3
POLL = 0.2


@dataclass
class BatchOptions:
    out: Path
    jobs: int = 1
    force: bool = False
    manual: Path | None = None
    worker_timeout: float | None = None  # None: from the assignment's limits
    grading: Options = field(default_factory=Options)
    scheduler: str | None = None  # a Dask scheduler's address; None: the local pool
    students: tuple[str, ...] = ()  # --student: regrade only these (even if unchanged)
    roster: Path | None = None  # --roster: who each submission is, for the LMS exports
    canvas_assignment: str | None = None  # Canvas's id of the assignment, for canvas.csv
    # the similarity report's thresholds (grader/similarity/, `--similar-*` options)
    similarity: Thresholds = field(default_factory=Thresholds)


@dataclass
class StudentOutcome:
    student: str
    action: str  # graded | skipped | error (not gradable: no_notebook, ambiguous) | untouched
    # (not named by --student: left as it was)
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
    exports: list[Path] = field(default_factory=list)  # lms.csv, canvas.csv
    skipped: list[Skipped] = field(default_factory=list)  # not students' submissions, and why
    similarity: Any = None  # grader.similarity.build.Written; None: the report failed

    def count(self, action: str) -> int:
        return sum(1 for o in self.outcomes if o.action == action)


def default_jobs() -> int:
    """Half the usable cores (each kernel and each timed training uses two threads), at least 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 2
    return max(1, cores // 2)


def worker_timeout(assignment: Assignment, grading: Options) -> float:
    """The batch's own limit for one student, well beyond the engine's: notebook time limit,
    kernel start, harvest, and the grader's timed training of each model."""
    notebook = grading.timeout or assignment.limits.notebook_timeout
    timed = sum(1 for c in assignment.checks if c.kind == "timed_training")
    budget = assignment.training
    training = budget.wall_seconds_per_model * timed if budget else 0
    return notebook + 120 + 330 + training + 120


def make_executor(config: BatchConfig, scheduler: str | None) -> Executor:
    if scheduler:
        from .dask_executor import DaskExecutor  # only then is dask imported

        return DaskExecutor(config, scheduler)
    from .local import LocalExecutor

    return LocalExecutor(config)


@dataclass
class _Batch:
    """One run's fixed context."""

    root: Path
    out: Path
    assignment: Assignment
    options: BatchOptions
    subs: list[Submission]
    store: ResultStore
    stamp: BatchStamp
    console: Console
    lines: StudentLines
    roster: RosterMatch | None = None
    selected: frozenset[str] = frozenset()  # --student; empty: everyone
    skipped: list[Skipped] = field(default_factory=list)


@dataclass
class _Todo:
    sub: Submission
    request: GradingRequest
    old: GradeResult | None


def run(root: Path, assignment: Assignment, options: BatchOptions,
        console: Console | None = None) -> BatchReport:
    batch = _open(Path(root), assignment, options, console or Console())
    outcomes: list[StudentOutcome] = []
    todo = _settle_known(batch, outcomes)
    interrupted = False
    if todo:
        try:
            _grade(batch, todo, outcomes)
        except KeyboardInterrupt:  # the engine stopped its workers; keep what was written
            interrupted = True
    students = [s.student for s in batch.subs]
    similar = _similarity(batch)
    gradebook, summary = rebuild(batch.out, assignment, students, batch.console, batch.skipped,
                                 similar.flagged if similar is not None else None)
    exports = write_exports(batch.out, assignment, read_rows(batch.out, students), batch.roster,
                            options.canvas_assignment, batch.console)
    return BatchReport(outcomes, gradebook, summary, batch.out, interrupted, exports,
                       batch.skipped, similar)


def _similarity(batch: _Batch) -> Any:
    """similarity.html and similarity.csv, from every student's stored data (a regraded
    student's pairs follow). For the TA only, and never a reason to lose the gradebook."""
    from ..similarity.build import write

    try:
        return write(batch.out, batch.assignment, {s.student: s.notebook for s in batch.subs},
                     batch.options.similarity)
    except Exception as exc:  # noqa: BLE001 - a report bug must not cost the batch
        batch.console.print(f"warning: similarity report not written ({type(exc).__name__}: "
                            f"{str(exc)[:200]})", highlight=False, markup=False)
        return None


def _open(root: Path, assignment: Assignment, options: BatchOptions, console: Console) -> _Batch:
    """Everything checked before anything is written (usage errors, exit 2)."""
    if not root.is_dir():
        raise BatchError(f"not a folder: {root} (grader grade takes a folder of notebooks or "
                         "of student folders; use grader check for one notebook)")
    if options.jobs < 1:
        raise BatchError("-j must be at least 1")
    out = Path(options.out).resolve()
    if out == root.resolve():
        raise BatchError("--out must not be the submissions folder itself")
    found = scan(root, assignment.id, assignment.starter.name, exclude=out)
    subs = found.submissions
    if not subs:
        raise BatchError(f"no submissions in {root}: expected notebooks (*.ipynb) or one folder "
                         "per student" + "".join(f"\n  skipped {s.name}: {s.reason}"
                                                 for s in found.skipped[:20]))
    students = [s.student for s in subs]
    selected = _selected(options.students, students, found.skipped)
    manual = None
    if options.manual is not None:
        try:
            manual = manual_scores.load(options.manual, assignment, students)
        except manual_scores.ManualScoresError as exc:
            raise BatchError(str(exc)) from None
    roster = _roster(options, students)
    out.mkdir(parents=True, exist_ok=True)
    for line in roster.summary() if roster is not None else []:
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    width = min(max(len(s.student) for s in subs), 32)
    return _Batch(root, out, assignment, options, subs, ResultStore(out, console, manual),
                  BatchStamp(root, options.grading.mode), console,
                  StudentLines(console, width), roster, selected, found.skipped)


def _selected(wanted: tuple[str, ...], students: list[str],
              skipped: list[Skipped] | None = None) -> frozenset[str]:
    """--student IDs, each one of the batch's students (else a usage error naming the close
    ones, or why discovery skipped it)."""
    unknown = [w for w in dict.fromkeys(wanted) if w not in students]
    if unknown:
        why = {Path(s.name).stem if s.name.endswith(".ipynb") else s.name: s
               for s in skipped or []}
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, students, n=3, cutoff=0.6)
            if name in why:
                hints.append(f"{name!r} (skipped {why[name].name}: {why[name].reason})")
                continue
            hints.append(f"{name!r}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
        raise BatchError(f"--student: no submission named {'; '.join(hints)} among the "
                         f"{len(students)} in the submissions folder")
    return frozenset(wanted)


def _roster(options: BatchOptions, students: list[str]) -> RosterMatch | None:
    if options.canvas_assignment is not None and not options.canvas_assignment.isdigit():
        raise BatchError(f"--canvas-assignment {options.canvas_assignment!r}: Canvas's id of the "
                         "assignment is a number (the one in its address: "
                         ".../courses/123/assignments/4567 → 4567)")
    if options.roster is None:
        if options.canvas_assignment is not None:
            raise BatchError("--canvas-assignment needs --roster: canvas.csv names students by "
                             "the roster's ids")
        return None
    try:
        return load_roster(options.roster).match(students)
    except RosterError as exc:
        raise BatchError(str(exc)) from None


def _settle_known(batch: _Batch, outcomes: list[StudentOutcome]) -> list[_Todo]:
    """Record the students with nothing to grade, skip the current ones; return the rest."""
    todo = []
    skipped = 0
    version = batch.assignment.version_key()
    for sub in batch.subs:
        old = batch.store.read(sub.student)
        if batch.selected and sub.student not in batch.selected:
            outcomes.append(_untouched(batch, sub, old))
            continue
        if sub.notebook is None:
            outcomes.append(_not_gradable(batch, sub, old))
            continue
        try:
            sha = notebook_mod.file_sha256(sub.notebook)
        except OSError as exc:
            outcomes.append(_unreadable(batch, sub, exc))
            continue
        if not batch.options.force and not batch.selected and \
                is_current(old, sha, version, batch.stamp.mode):
            skipped += 1
            batch.store.keep(sub.student, old)
            outcomes.append(StudentOutcome(sub.student, "skipped", status_of(old),
                                           float(old.score or 0), old.max_score))
            continue
        todo.append(_Todo(sub, GradingRequest(sub.student, sub.notebook, sub.layout, sha), old))
    if skipped:
        batch.console.print(f"{skipped} student(s) already graded with the same notebook and "
                            f"assignment version: skipped (--force regrades them)",
                            highlight=False, soft_wrap=True)
    if batch.selected:
        batch.console.print(f"--student: regrading {len(batch.selected)} student(s), even if "
                            f"unchanged; the other {len(batch.subs) - len(batch.selected)} are "
                            "left as they are", highlight=False, soft_wrap=True)
    return todo


def _untouched(batch: _Batch, sub: Submission, old: GradeResult | None) -> StudentOutcome:
    """Not named by --student: its result stays (TA points from --manual still merge in)."""
    if old is None:
        return StudentOutcome(sub.student, "untouched", "not_graded", 0.0,
                              batch.assignment.max_score)
    batch.store.keep(sub.student, old)
    return StudentOutcome(sub.student, "untouched", status_of(old), float(old.score or 0),
                          old.max_score)


def _not_gradable(batch: _Batch, sub: Submission, old: GradeResult | None) -> StudentOutcome:
    status = sub.status or RunStatus.NO_NOTEBOOK
    result = error_result(batch.assignment, status, sub.error or "")
    result = batch.store.finish(
        result.model_copy(update={"batch": batch_info(sub, batch.stamp, status)}), None)
    if old is None or comparable(old) != comparable(result):
        batch.store.write(result)
    batch.lines.print(sub.student, result, status)
    return StudentOutcome(sub.student, "error", str(status), 0.0, batch.assignment.max_score)


def _unreadable(batch: _Batch, sub: Submission, exc: OSError) -> StudentOutcome:
    status = RunStatus.WORKER_FAILED
    result = error_result(batch.assignment, status, f"the notebook could not be read: {exc}",
                          sub.notebook)
    result = batch.store.finish(
        result.model_copy(update={"batch": batch_info(sub, batch.stamp, status)}), None)
    batch.store.write(result)
    batch.lines.print(sub.student, result, status)
    return StudentOutcome(sub.student, "graded", str(status), 0.0, batch.assignment.max_score)


def _grade(batch: _Batch, todo: list[_Todo], outcomes: list[StudentOutcome]) -> None:
    grading = batch.options.grading
    settings = WorkerSettings(
        batch.assignment.id, batch.assignment.version_key(), grading,
        batch.options.worker_timeout or worker_timeout(batch.assignment, grading),
        hidden=(str(batch.root.resolve()), str(batch.out)))
    config = BatchConfig(batch.assignment, settings, jobs=batch.options.jobs)
    with make_executor(config, batch.options.scheduler) as executor:
        executor.prepare()
        batch.console.print(executor.describe(len(todo)), highlight=False)
        for item in todo:
            executor.submit(item.request)
        try:
            _follow(batch, executor, todo, outcomes)
        except BaseException:  # Ctrl-C, an early stop or a bug: stop every worker first
            executor.cancel_all()
            raise


def _follow(batch: _Batch, executor: Executor, todo: list[_Todo],
            outcomes: list[StudentOutcome]) -> None:
    left = {item.request.student: item for item in todo}
    progress = progress_bar(batch.console)
    with progress:
        bar = progress.add_task("starting", total=len(todo))
        while left:
            progress.update(bar, description=running_names(executor.running()))
            for outcome in executor.collect(POLL):
                item = left.pop(outcome.request.student, None)
                if item is None:  # already recorded: never graded twice
                    continue
                outcomes.append(_record(batch, item, outcome))
                progress.advance(bar)
                _stop_if_the_grader_is_broken(outcomes)
        progress.update(bar, description="done")


def _record(batch: _Batch, item: _Todo, outcome: Outcome) -> StudentOutcome:
    """One finished student into the store, and its line on the terminal."""
    sub, log, evidence = item.sub, None, None
    graded = outcome.result
    if graded is not None:
        result = graded.model_copy(update={"notebook": str(sub.notebook),  # not the private
                                           "evidence": None})  # copy it was graded from
        evidence = graded.evidence  # for similarity.json, never result.json
        status = status_of(result)
    elif outcome.failure == RunStatus.GRADER_ERROR:
        result = not_graded_result(batch.assignment, sub.notebook, outcome.message)
        status = outcome.failure
    else:
        status = outcome.failure or RunStatus.WORKER_FAILED
        result = error_result(batch.assignment, status, outcome.message, sub.notebook,
                              item.request.sha)
        log = outcome.log
    result = batch.store.finish(result.model_copy(
        update={"batch": batch_info(sub, batch.stamp, status, outcome.seconds)}), item.old)
    batch.store.write(result, log, outcome.executed if graded is not None else None, evidence)
    batch.lines.print(sub.student, result, status, outcome.seconds)
    return StudentOutcome(sub.student, "graded", str(status), float(result.score or 0),
                          result.max_score, outcome.seconds,
                          str(result.execution.message or "")[:300])


def _stop_if_the_grader_is_broken(outcomes: list[StudentOutcome]) -> None:
    graded = [o for o in outcomes if o.action == "graded"]
    if len(graded) == EARLY_STOP_AFTER and \
            all(o.status == RunStatus.GRADER_ERROR for o in graded):
        raise BatchGraderError(f"the first {EARLY_STOP_AFTER} students all failed on the "
                               f"grader's side ({graded[-1].message}); stopped. Fix the cause "
                               "and run the same command again: nobody was scored.")
