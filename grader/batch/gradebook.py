"""The gradebook files, rebuilt from every student's result.json in the store: grades.csv and
summary.html for the TA, and for the course's LMS lms.csv (always) and canvas.csv (with a
roster, grader/batch/roster.py).

In the LMS exports a student who was not graded (grader_error, or a grading process that failed
or ran out of time: the RETRIED statuses, which the next run grades) has an empty score, never a
zero, so an import changes nothing for them; so has a roster student without a submission.

canvas.csv is Canvas's gradebook import format, as its importer reads it: the header `Student,
ID, SIS User ID, SIS Login ID, Section` and one assignment column `<title> (<Canvas assignment
id>)` (with `--canvas-assignment ID`; without it `<title>`, which Canvas matches by title or
creates), then a `Points Possible` row. Canvas finds each student by `ID` (its user id), else by
`SIS User ID` or `SIS Login ID`, else by name; a submission without a roster row is exported
under its own name, so Canvas's import preview lists it as an unknown student.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from rich.console import Console

from ..result import GradeResult
from ..scoring import RETRIED, write_atomic
from ..assignment import Assignment
from .discovery import Skipped
from .roster import RosterMatch
from .store import read_result, result_path, status_of

CANVAS_STUDENT_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]


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


def gradebook_csv(assignment: Assignment, students: list[tuple[str, GradeResult]]) -> str:
    check_ids = [c.id for c in assignment.checks]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["student", "total", "max", *check_ids, "status", "message"])
    for student, result in students:
        points = {c.id: c.points for c in result.checks}
        message = " ".join(str(result.execution.message or "").split())
        score = result.score  # None: not graded (a grader error), not a zero
        writer.writerow([_csv_cell(student), "" if score is None else f"{score:g}",
                         f"{result.max_score:g}",
                         *("" if points.get(cid) is None else f"{points[cid]:g}"
                           for cid in check_ids),
                         status_of(result), _csv_cell(message[:300])])
    return buffer.getvalue()


def exported_score(result: GradeResult | None) -> str:
    """The points an LMS gets: empty when the student was not graded (never a zero)."""
    if result is None or result.score is None or status_of(result) in RETRIED:
        return ""
    return f"{result.score:g}"


def _percent(score: str, max_score: float) -> str:
    return f"{round(100 * float(score) / max_score, 2):g}" if score and max_score else ""


def _lms_rows(rows: list[tuple[str, GradeResult]], roster: RosterMatch | None
              ) -> list[tuple[str, str, str, GradeResult | None]]:
    """(student id, name, submission, result) for every submission, then every roster student
    without one. Without a roster the submission's name is the student id."""
    out = []
    for student, result in rows:
        entry = roster.entry(student) if roster else None
        student_id = entry.student_id if entry else ("" if roster else student)
        out.append((student_id, entry.name if entry else "", student, result))
    for entry in roster.absent if roster else []:
        out.append((entry.student_id, entry.name, "", None))
    return out


def lms_csv(assignment: Assignment, rows: list[tuple[str, GradeResult]],
            roster: RosterMatch | None) -> str:
    """student_id, name, score, max, percent, status, submission: one row a student."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["student_id", "name", "score", "max", "percent", "status", "submission"])
    max_score = float(assignment.max_score)
    for student_id, name, submission, result in _lms_rows(rows, roster):
        score = exported_score(result)
        status = status_of(result) if result is not None else "no_submission"
        writer.writerow([_csv_cell(student_id), _csv_cell(name), score, f"{max_score:g}",
                         _percent(score, max_score), status, _csv_cell(submission)])
    return buffer.getvalue()


def canvas_csv(assignment: Assignment, rows: list[tuple[str, GradeResult]],
               roster: RosterMatch, canvas_assignment: str | None = None) -> str:
    """Canvas's gradebook import CSV (see the module's docstring)."""
    column = f"{assignment.title} ({canvas_assignment})" if canvas_assignment else \
        assignment.title
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*CANVAS_STUDENT_COLUMNS, column])
    writer.writerow(["Points Possible", "", "", "", "", f"{float(assignment.max_score):g}"])
    for student, result in rows:
        entry = roster.entry(student)
        if entry is None:  # Canvas's preview lists it as a student it does not know
            writer.writerow([_csv_cell(student), "", "", "", "", exported_score(result)])
            continue
        writer.writerow([_csv_cell(entry.name or entry.student_id), _csv_cell(entry.canvas_id),
                         _csv_cell(entry.student_id), _csv_cell(entry.sis_login_id),
                         _csv_cell(entry.section), exported_score(result)])
    for entry in roster.absent:
        writer.writerow([_csv_cell(entry.name or entry.student_id), _csv_cell(entry.canvas_id),
                         _csv_cell(entry.student_id), _csv_cell(entry.sis_login_id),
                         _csv_cell(entry.section), ""])
    return buffer.getvalue()


def write_exports(out: Path, assignment: Assignment, rows: list[tuple[str, GradeResult]],
                  roster: RosterMatch | None, canvas_assignment: str | None = None,
                  console: Console | None = None) -> list[Path]:
    """lms.csv, and canvas.csv when there is a roster (an older one is removed without)."""
    lms, canvas = out / "lms.csv", out / "canvas.csv"
    write_atomic(lms, lms_csv(assignment, rows, roster))
    if roster is not None:
        write_atomic(canvas, canvas_csv(assignment, rows, roster, canvas_assignment))
        return [lms, canvas]
    if canvas.exists():
        canvas.unlink()
        if console is not None:
            console.print(f"note: removed {canvas} of an earlier run: it is rebuilt only with "
                          "--roster", highlight=False, markup=False)
    return [lms]


def read_rows(out: Path, students: list[str]) -> list[tuple[str, GradeResult]]:
    """(student, result) for each student with a result in the store, by student."""
    rows = []
    for student in sorted(students):
        result = read_result(result_path(out, student))
        if result is not None:
            rows.append((student, result))
    return rows


def rebuild(out: Path, assignment: Assignment, students: list[str],
            console: Console | None = None, skipped: list[Skipped] | None = None,
            similar: int | None = None) -> tuple[Path, Path]:
    """grades.csv and summary.html from every student's result.json in `out`; summary.html also
    lists what discovery skipped in the submissions folder, and why, and links similarity.html
    with its number of flagged pairs (`similar`; None: no similarity report)."""
    from ..reports.summary import render_summary

    rows = read_rows(out, students)
    _note_stale(out, set(students), console)
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
    write_atomic(summary, render_summary(info, entries, skipped=[
        {"name": s.name, "reason": s.reason} for s in skipped or []], similar=similar))
    return gradebook, summary


def _note_stale(out: Path, known: set[str], console: Console | None) -> None:
    stale = sorted(p.parent.name for p in out.glob("*/result.json") if p.parent.name not in known)
    if stale and console is not None:
        console.print(f"note: {len(stale)} folder(s) in {out} have no submission any more and are "
                      f"left out of the gradebook: {', '.join(stale[:10])}"
                      + (" …" if len(stale) > 10 else ""), highlight=False, markup=False)
