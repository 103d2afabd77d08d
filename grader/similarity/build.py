"""The class's similarity report from a batch's output folder: OUT/similarity.html and
OUT/similarity.csv, rebuilt from every student's stored data each time the batch finishes
(result.json, the trusted side's OUT/<student>/similarity.json, and the notebook's code), so a
regraded student's pairs follow its new grading and nothing needs to be remembered between runs.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..result import read_result
from ..scoring import write_atomic
from . import EVIDENCE_FILE, Thresholds
from .code import code_text, read_code
from .pairs import Analysis, Student, analyse

HTML, CSV = "similarity.html", "similarity.csv"


@dataclass
class Written:
    html: Path
    csv: Path
    flagged: int
    seconds: float
    analysis: Analysis


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def starter_code(starter: Path) -> str | None:
    import nbformat

    try:
        return code_text(nbformat.read(str(starter), as_version=4))
    except Exception:  # noqa: BLE001 - without a starter nothing is boilerplate
        return None


def students_of(out: Path, notebooks: dict[str, Path | None]) -> list[Student]:
    """Each student of the batch with a result in OUT: its code, result and evidence."""
    students = []
    for name, notebook in sorted(notebooks.items()):
        result = read_result(out / name / "result.json")
        if result is None:
            continue
        code = read_code(notebook) if notebook is not None else None
        students.append(Student(name, code, result, _read_json(out / name / EVIDENCE_FILE)))
    return students


def write(out: Path, assignment: Any, notebooks: dict[str, Path | None],
          thresholds: Thresholds | None = None) -> Written:
    """`assignment` an Assignment (grader/assignment/); `notebooks` each student's notebook
    (None: none)."""
    from .report import render_html, similarity_csv

    started = time.monotonic()
    students = students_of(out, notebooks)
    try:
        expected = assignment.expected()
    except Exception:  # noqa: BLE001 - no reference designs: no design is the reference's
        expected = {}
    analysis = analyse(students, starter_code(assignment.starter), expected, thresholds)
    codes = {s.name: s.code or "" for s in students}
    html, csv = out / HTML, out / CSV
    write_atomic(csv, similarity_csv(analysis))
    write_atomic(html, render_html(analysis, {"id": assignment.id, "title": assignment.title},
                                   codes))
    return Written(html, csv, len(analysis.pairs), time.monotonic() - started, analysis)
