"""TA points, merged into results and the gradebook: for manual checks (written answers), and
overrides of automatic checks.

The file is a CSV with a header row: `student,check,points[,comment]` (column names are matched
case-insensitively; other columns are ignored, so a TA's own notes can stay in the sheet).

    student,check,points,comment
    alice,q2-1-answer,3,clear and correct
    bob,q2-1-answer,1.5,misses the second part

Rules, all checked before anything is graded (a bad file is a usage error, exit 2):

- `student` must be one of the batch's students, `check` one of the assignment's checks: a
  manual one (a written answer), or an automatic one the TA overrides (a regrade request, a
  grader mistake).
- `points` is a number from 0 to the check's maximum. An empty `points` cell means "not graded
  yet" and the row is skipped, so a TA can fill the sheet in several sittings.
- one row per (student, check).

Merging (into a new result, grader/result.py) sets the check's `points`, records
`details.ta_points` / `details.ta_comment`, replaces
the message with "graded by TA: 3/4 — comment", and recomputes the total. A manual check keeps
status `manual`. An overridden automatic check takes the status its new points give (passed,
partial, failed), is marked `details.ta_override`, and keeps what the grader found beside the
TA's: `details.auto_points`, `auto_status` and `auto_message`, also quoted in the message
("graded by TA: 3/3 — comment (the grader gave 1/3, partial: layer 2: ...)"), so every report
shows both. Merging is idempotent. A file, when given, is the whole truth: a check that had TA
points and has no row with points any more goes back to what the grader gave (a manual check to
ungraded). Without a file, points merged earlier stay in result.json (and survive a regrade of
the same notebook).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from .csv_input import open_with_header, raise_problems
from ..result import TA_KEYS, CheckResult, GradeResult, TAPoints, score_of
from ..scoring import CheckStatus

REQUIRED = ("student", "check", "points")


class ManualScoresError(Exception):
    """The scores file is unreadable or inconsistent with the batch (a usage error)."""


@dataclass(frozen=True)
class ManualScore:
    student: str
    check: str
    points: float
    comment: str = ""
    line: int = 0  # line in the file, for messages


def read(path: Path) -> list[ManualScore]:
    """Parse the file; every malformed row is reported at once, with its line number."""
    scores, errors = _parse(path)
    _raise(path, errors)
    return scores


def _parse(path: Path) -> tuple[list[ManualScore], list[str]]:
    """The well-formed rows, and a message per malformed one (a bad header raises at once)."""
    header, reader = open_with_header(path, ManualScoresError,
                                      f"{','.join(REQUIRED)}[,comment]")
    names = [h.strip().lower() for h in header]
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise ManualScoresError(f"{path}: the header row lacks column(s) {', '.join(missing)} "
                                f"(found: {', '.join(h for h in header if h.strip()) or 'none'}); "
                                f"expected {','.join(REQUIRED)}[,comment]")
    col = {name: names.index(name) for name in (*REQUIRED, "comment") if name in names}
    scores: list[ManualScore] = []
    errors: list[str] = []
    try:
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue

            def cell(name: str) -> str:
                i = col.get(name)
                return row[i].strip() if i is not None and i < len(row) else ""

            student, check, raw = cell("student"), cell("check"), cell("points")
            if not student or not check:
                errors.append(f"line {line}: student and check must not be empty")
                continue
            if not raw:
                continue  # not graded yet
            try:
                points = float(raw)
            except ValueError:
                errors.append(f"line {line}: points {raw!r} for {student}/{check} is not a number")
                continue
            if not math.isfinite(points):
                errors.append(f"line {line}: points {raw!r} for {student}/{check} is not a number")
                continue
            scores.append(ManualScore(student, check, points, cell("comment"), line))
    except csv.Error as exc:
        errors.append(f"line {reader.line_num}: {exc}")
    return scores, errors


def validate(scores: Iterable[ManualScore], assignment, students: Iterable[str],
             path: Path | str = "the scores file") -> None:
    """Unknown students or checks, automatic checks, points out of range, duplicate rows."""
    _raise(path, problems(scores, assignment, students))


def problems(scores: Iterable[ManualScore], assignment, students: Iterable[str]) -> list[str]:
    known = set(students)
    by_id = {c.id: c for c in assignment.checks}
    seen: dict[tuple[str, str], int] = {}
    errors: list[str] = []
    for s in scores:
        where = f"line {s.line}: " if s.line else ""
        if s.student not in known:
            errors.append(f"{where}unknown student {s.student!r} (not among the "
                          f"{len(known)} submissions of this batch)")
        spec = by_id.get(s.check)
        if spec is None:
            errors.append(f"{where}unknown check {s.check!r} for {assignment.id} (checks: "
                          f"{', '.join(by_id) or 'none'})")
        elif s.points < 0 or s.points > spec.points + 1e-9:
            errors.append(f"{where}{s.points:g} points for {s.student}/{s.check} is outside "
                          f"0..{spec.points:g} (the check's maximum)")
        key = (s.student, s.check)
        if key in seen:
            errors.append(f"{where}a second row for {s.student}/{s.check} "
                          f"(first on line {seen[key]})")
        else:
            seen[key] = s.line
    return errors


def load(path: Path, assignment, students: Iterable[str]) -> dict[str, list[ManualScore]]:
    """Read and validate; returns the scores grouped by student."""
    scores, errors = _parse(path)
    errors += problems(scores, assignment, students)
    errors.sort(key=lambda e: int(e.split(":")[0][5:]) if e.startswith("line ") and
                e.split(":")[0][5:].isdigit() else 0)
    _raise(path, errors)
    grouped: dict[str, list[ManualScore]] = {}
    for s in scores:
        grouped.setdefault(s.student, []).append(s)
    return grouped


def _raise(path: Path | str, errors: list[str]) -> None:
    raise_problems(path, errors, ManualScoresError)


def _ta_message(points: float, max_points: float, comment: str,
                auto: TAPoints | None = None) -> str:
    text = f"graded by TA: {points:g}/{max_points:g}" + (f" — {comment}" if comment else "")
    if auto is not None:
        found = str(auto.auto_message or "").strip()
        text += (f" (the grader gave {float(auto.auto_points or 0):g}/{max_points:g}, "
                 f"{auto.auto_status}" + (f": {found}" if found else "") + ")")
    return text


def _status_of(points: float, max_points: float) -> CheckStatus:
    if points >= max_points - 1e-9:
        return CheckStatus.PASSED
    return CheckStatus.FAILED if points <= 0 else CheckStatus.PARTIAL


def apply(result: GradeResult, scores: Iterable[ManualScore], *,
          authoritative: bool = True) -> GradeResult:
    """One student's TA points merged into a result: a new result (equal to the old one when
    nothing changed).

    authoritative: the scores are the whole truth for this student, so manual checks with TA
    points from an earlier merge and no score now go back to ungraded.
    """
    wanted = {s.check: s for s in scores}
    checks = []
    for check in result.checks:
        score = wanted.get(check.id)
        if score is not None:
            check = _with_ta_points(check, round(float(score.points), 2), score.comment)
        elif authoritative and check.ta is not None:
            check = _with_grader_points(check)
        checks.append(check)
    if checks == result.checks:
        return result
    return result.model_copy(update={"checks": checks, "score": score_of(checks)})


def _with_ta_points(check: CheckResult, points: float, comment: str) -> CheckResult:
    automatic = check.overridden or check.status != CheckStatus.MANUAL
    ta = check.ta
    if automatic and not check.overridden:  # the grader's verdict, kept once
        ta = TAPoints(ta_points=points, ta_override=True, auto_points=check.points,
                      auto_status=check.status, auto_message=check.message)
    elif ta is None:
        ta = TAPoints(ta_points=points, auto_message=check.message)
    ta = ta.model_copy(update={"ta_points": points, "ta_comment": comment})
    return check.model_copy(update={
        "points": points,
        "status": _status_of(points, check.max_points) if automatic else CheckStatus.MANUAL,
        "message": _ta_message(points, check.max_points, comment, ta if automatic else None),
        "details": {**_without_ta(check.details), **ta.as_details()}})


def _with_grader_points(check: CheckResult) -> CheckResult:
    """The TA's row is gone: back to what the grader gave (a manual check: ungraded)."""
    ta = check.ta
    assert ta is not None
    if ta.ta_override:
        points, status = float(ta.auto_points or 0), ta.auto_status or CheckStatus.FAILED
        message = ta.auto_message or ""
    else:
        points, status = 0.0, CheckStatus.MANUAL
        message = ta.auto_message if ta.auto_message is not None else "awaiting TA grading"
    return check.model_copy(update={"points": points, "status": status, "message": message,
                                    "details": _without_ta(check.details)})


def _without_ta(details: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in details.items() if k not in TA_KEYS}


def carried_over(old: GradeResult | None) -> list[ManualScore]:
    """TA points recorded in an earlier result.json, to re-apply after regrading the same file."""
    if old is None:
        return []
    student = old.batch.student if old.batch else ""
    return [ManualScore(student, c.id, c.ta.ta_points, c.ta.ta_comment)
            for c in old.checks if c.ta is not None]
