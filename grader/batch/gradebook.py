"""grades.csv and summary.html, rebuilt from every student's result.json in the store."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from rich.console import Console

from ..scoring import write_atomic
from ..spec import Assignment
from .store import read_result, result_path, status_of


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
                         status_of(result), _csv_cell(message[:300])])
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
    write_atomic(summary, render_summary(info, entries))
    return gradebook, summary


def _note_stale(out: Path, known: set[str], console: Console | None) -> None:
    stale = sorted(p.parent.name for p in out.glob("*/result.json") if p.parent.name not in known)
    if stale and console is not None:
        console.print(f"note: {len(stale)} folder(s) in {out} have no submission any more and are "
                      f"left out of the gradebook: {', '.join(stale[:10])}"
                      + (" …" if len(stale) > 10 else ""), highlight=False, markup=False)
