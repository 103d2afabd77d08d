"""The result store: OUT/<student>/result.json, report.html and feedback/ (grader/batch/
feedback.py), written by the coordinator only.

Each student's result.json is written atomically, and only after its report.html and feedback,
so a result on disk is always complete and killing the batch loses nothing already written. A
student is current (skipped by the next run) when its result.json has the same
`notebook_sha256`, `assignment_version` and --full mode, and was complete; the RETRIED statuses
never are, nor is a grading with a check the grader failed on (no score yet). TA points
(grader/ta/manual_scores.py) are merged into every result written, and points merged earlier are
carried over when a student is regraded with an unchanged notebook.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from rich.console import Console
from rich.markup import escape

from ..ta import manual_scores
from ..result import BatchInfo, CheckResult, Execution, GradeResult, read_result, total
from ..scoring import NOT_GRADED, RETRIED, DataMode, RunStatus, write_atomic
from ..similarity import EVIDENCE_FILE
from ..assignment import Assignment
from . import feedback
from .discovery import Submission, shown_name


def result_path(out: Path, student: str) -> Path:
    return out / student / "result.json"


def status_of(result: GradeResult) -> RunStatus:
    return result.execution.status


def is_current(old: GradeResult | None, sha: str, version: str, mode: DataMode) -> bool:
    """Graded already: same notebook bytes, same assignment version, same data mode."""
    if old is None or old.batch is None:
        return False
    return (old.notebook_sha256 == sha and old.assignment_version == version
            and old.batch.complete and old.batch.full == (mode is DataMode.FULL))


def error_result(assignment: Assignment, status: str, message: str, notebook: Path | None = None,
                 sha: str = "") -> GradeResult:
    """Every check 0 points with `message`; the run status in execution.status."""
    checks = [CheckResult.error(spec, message) for spec in assignment.checks]
    from .. import __version__

    return GradeResult(
        assignment=assignment.id, assignment_title=assignment.title,
        assignment_version=assignment.version_key(), notebook=str(notebook or ""),
        notebook_sha256=sha, score=total(checks), max_score=assignment.max_score, checks=checks,
        execution=Execution(status=status, message=message, harvested=False),
        grader_version=__version__)


def not_graded_result(assignment: Assignment, notebook: Path, message: str) -> GradeResult:
    """The grader's side failed on the engine (e.g. a worker machine's set-up): no score."""
    from ..pipeline import grader_error_result

    return grader_error_result(assignment, notebook, message)


def as_text(value: Any) -> Any:
    """Strings a UTF-8 file can hold. A notebook's name that is not UTF-8 (in a student's
    folder) reaches the result as Python's surrogates, and writing report.html would fail."""
    if isinstance(value, str):
        return shown_name(value)
    if isinstance(value, dict):
        return {as_text(k): as_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_text(v) for v in value]
    return value


def writable(result: GradeResult) -> GradeResult:
    """The result as result.json holds it: text a UTF-8 file can hold, no similarity evidence
    (never in result.json, whoever passed it)."""
    return GradeResult.model_validate(as_text(result.as_dict()))


def comparable(result: GradeResult) -> str:
    """The result without when it was written: equal means nothing to rewrite."""
    data = result.as_dict()
    if isinstance(data.get("batch"), dict):
        data["batch"].pop("graded_at", None)
        data["batch"].pop("seconds", None)
    return json.dumps(data, sort_keys=True)


def html_renderer() -> Callable[[GradeResult], str] | None:
    try:
        from ..reports.html import render_html
    except Exception:  # the HTML report is optional for the batch
        return None
    return render_html


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class BatchStamp:
    """What the `batch` field of every result of one run shares."""

    root: Path  # the submissions folder, for each result's `source`
    mode: DataMode  # result.json keeps it as the batch field `full` (true for DataMode.FULL)


def batch_info(sub: Submission, stamp: BatchStamp, status: RunStatus, seconds: float = 0.0
               ) -> BatchInfo:
    source = ""
    if sub.notebook is not None:
        try:
            source = str(sub.notebook.relative_to(stamp.root))
        except ValueError:
            source = str(sub.notebook)
    return BatchInfo(student=sub.student, layout=sub.layout, source=source, status=status,
                     complete=status not in RETRIED, seconds=round(seconds, 3),
                     graded_at=now_utc(), full=stamp.mode is DataMode.FULL)


class ResultStore:
    """Finishes one student's result (TA points) and writes its folder."""

    def __init__(self, out: Path, console: Console, manual: dict[str, list] | None):
        self.out = out
        self.console = console
        self.manual = manual
        self.render_html = html_renderer()
        self.html_failed = False

    def read(self, student: str) -> GradeResult | None:
        return read_result(result_path(self.out, student))

    def finish(self, result: GradeResult, old: GradeResult | None) -> GradeResult:
        """The result with the TA's points (carried over from `old` for the same notebook,
        then --manual's), and not complete while a check is the grader's error."""
        assert result.batch is not None
        if old is not None and old.notebook_sha256 and \
                old.notebook_sha256 == result.notebook_sha256:
            carried = manual_scores.carried_over(old)
            if carried:
                result = manual_scores.apply(result, carried, authoritative=False)
        if self.manual is not None:
            result = manual_scores.apply(result, self.manual.get(result.batch.student, []))
        if result.status not in NOT_GRADED and result.unscored:
            # a check the grader failed on leaves no score yet: the next run grades it again
            result = result.model_copy(
                update={"batch": result.batch.model_copy(update={"complete": False})})
        return result

    def write(self, result: GradeResult, log: bytes | None = None,
              executed: bytes | None = None, evidence: dict[str, Any] | None = None) -> None:
        """A new grading: its reports, its feedback (with the executed notebook, or without
        one: an older one is removed), the worker's log if it failed, what the trusted side
        measured for the similarity report (grader/similarity/: beside result.json, never in
        it nor in feedback/), and result.json last."""
        result = writable(result)
        assert result.batch is not None
        folder = self.out / result.batch.student
        folder.mkdir(parents=True, exist_ok=True)
        self.write_html(result)
        similarity = folder / EVIDENCE_FILE  # the class's similarity report reads it
        if evidence is not None:
            write_atomic(similarity, json.dumps({"notebook_sha256": result.notebook_sha256,
                                                 **evidence}, default=str))
        else:
            similarity.unlink(missing_ok=True)
        self._write_feedback_notebook(folder, feedback.annotated(executed, result),
                                      feedback.notebook_name(result))
        if log is not None:
            (folder / "worker.log").write_bytes(log)
        else:
            (folder / "worker.log").unlink(missing_ok=True)
        write_atomic(folder / "result.json", result.to_json())

    def refresh(self, result: GradeResult) -> None:
        """The same grading with other TA points: its reports and result.json; the executed
        notebook in its feedback stays."""
        result = writable(result)
        assert result.batch is not None
        self.write_html(result)
        write_atomic(result_path(self.out, result.batch.student), result.to_json())

    def write_html(self, result: GradeResult, student: str | None = None) -> None:
        """report.html, and the same page in feedback/ for the student."""
        if self.render_html is None:
            return
        folder = self.out / (student or (result.batch.student if result.batch else ""))
        try:
            html = self.render_html(result)
        except Exception as exc:  # a report bug must not cost the grade
            if not self.html_failed:
                self.html_failed = True
                self.console.print(f"[yellow]warning:[/] report.html not written "
                                   f"({escape(type(exc).__name__)}: {escape(str(exc))[:200]})")
            return
        write_atomic(folder / feedback.FOLDER / "report.html", html)
        write_atomic(folder / "report.html", html)

    @staticmethod
    def _write_feedback_notebook(folder: Path, text: str | None, name: str) -> None:
        target = folder / feedback.FOLDER
        target.mkdir(parents=True, exist_ok=True)
        for stale in target.glob("*.ipynb"):
            if text is None or stale.name != name:
                stale.unlink(missing_ok=True)
        if text is not None:
            write_atomic(target / name, text)

    def keep(self, student: str, old: GradeResult) -> None:
        """A current result, skipped: rewritten only when the TA's points changed (or its
        reports are missing, as for results graded before feedback/ existed)."""
        finished = self.finish(old, None)
        if comparable(finished) != comparable(old):
            self.refresh(finished)
        elif not (self.out / student / "report.html").exists() or \
                not (self.out / student / feedback.FOLDER / "report.html").exists():
            self.write_html(old, student)
