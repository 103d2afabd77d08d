"""Gradescope's /autograder/results/results.json (gradescope-autograders.readthedocs.io/specs).

One test per check. Written answers are listed with max_score 0: Gradescope grades them as
separate, manually graded questions, and a 0/N "failed" test would mislead the student.
"""

from __future__ import annotations

from typing import Any

from ..manual_scores import is_override
from .cell_errors import views
from .text import clean, comparison_rows, fmt_points

MAX_OUTPUT = 8000  # Gradescope collapses a test's output; keep each one readable


def _test_output(check: dict[str, Any]) -> str:
    lines = [clean(check.get("message", ""), MAX_OUTPUT)]
    rows = comparison_rows(check)
    if rows:
        lines.append("\nexpected layer                 | found layer")
        for row in rows:
            mark = {"match": " ", "differs": "≠", "missing": "✗", "extra": "+"}[row["kind"]]
            lines.append(f"{mark} {str(row.get('expected') or '—'):<29}| {row.get('found') or '—'}")
    details = check.get("details") or {}
    if check.get("status") == "manual" and details.get("answer"):
        lines.append("\nYour answer (graded by a TA):\n" + clean(details["answer"], MAX_OUTPUT))
    return "\n".join(lines)[:MAX_OUTPUT]


def _summary(result: dict[str, Any]) -> str:
    execution = result.get("execution") or {}
    lines = [f"{result.get('assignment_title') or result.get('assignment')}: "
             f"{fmt_points(result.get('score'))} / {fmt_points(result.get('max_score'))} points",
             f"notebook execution: {execution.get('status', 'unknown')}"
             + (f" ({clean(execution['message'], 500)})" if execution.get("message") else "")]
    errors = views(result.get("cell_errors") or [])
    for view in errors[:10]:
        line = f"{view.where}: {clean(view.ename, 100)}: {clean(view.summary, 300)}"
        if view.causes:
            line += (f"  <- fix this first: likely the cause of the {view.causes} "
                     f"NameError{'s' if view.causes > 1 else ''} after it")
        lines.append(line)
    if len(errors) > 10:
        lines.append(f"... and {len(errors) - 10} more cell errors")
    return "\n".join(lines)


def to_gradescope(result: dict[str, Any]) -> dict[str, Any]:
    tests = []
    for number, check in enumerate(result.get("checks") or [], 1):
        manual = check.get("status") == "manual"
        name = str(check.get("title") or check.get("id")) + (" (TA)" if is_override(check) else "")
        test: dict[str, Any] = {
            "name": f"{name} ({fmt_points(check.get('max_points'))} pts, graded by a TA)"
            if manual else name,
            "number": str(number),
            "score": float(check.get("points") or 0),
            "max_score": 0.0 if manual else float(check.get("max_points") or 0),
            "output": _test_output(check),
            "tags": [str(check.get("id")), str(check.get("status"))]
            + (["ta-override"] if is_override(check) else []),
            "visibility": "visible",
            "extra_data": {"check_id": check.get("id"), "grader_status": check.get("status")},
        }
        if not manual:  # Gradescope knows only passed/failed; partial credit shows as failed
            test["status"] = "passed" if check.get("status") == "passed" else "failed"
        tests.append(test)
    timings = result.get("timings") or {}
    return {
        "score": float(result.get("score") or 0),
        "execution_time": int(round(float(timings.get("total") or 0))),
        "output": _summary(result),
        "output_format": "text",
        "stdout_visibility": "hidden",  # the grader's log is for instructors
        "tests": tests,
        "extra_data": {"assignment": result.get("assignment"),
                       "assignment_version": result.get("assignment_version"),
                       "max_score": result.get("max_score"),
                       "notebook_sha256": result.get("notebook_sha256"),
                       "grader_version": result.get("grader_version")},
    }
