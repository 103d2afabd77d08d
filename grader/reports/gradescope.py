"""Gradescope's /autograder/results/results.json (gradescope-autograders.readthedocs.io/specs).

One test per check. Written answers are listed with max_score 0: Gradescope grades them as
separate, manually graded questions, and a 0/N "failed" test would mislead the student.
"""

from __future__ import annotations

from typing import Any

from ..result import CheckResult, GradeResult, ResultLike, as_result
from ..scoring import CheckStatus
from .cell_errors import views
from .text import clean, comparison_rows, fmt_points

MAX_OUTPUT = 8000  # Gradescope collapses a test's output; keep each one readable


def _test_output(check: CheckResult) -> str:
    lines = [clean(check.message, MAX_OUTPUT)]
    rows = comparison_rows(check)
    if rows:
        lines.append("\nexpected layer                 | found layer")
        for row in rows:
            mark = {"match": " ", "differs": "≠", "missing": "✗", "extra": "+"}[row["kind"]]
            lines.append(f"{mark} {str(row.get('expected') or '—'):<29}| {row.get('found') or '—'}")
    answer = check.details.get("answer")
    if check.status == CheckStatus.MANUAL and answer:
        lines.append("\nYour answer (graded by a TA):\n" + clean(answer, MAX_OUTPUT))
    return "\n".join(lines)[:MAX_OUTPUT]


def _summary(result: GradeResult) -> str:
    execution = result.execution
    lines = [f"{result.assignment_title or result.assignment}: "
             f"{fmt_points(result.score)} / {fmt_points(result.max_score)} points",
             f"notebook execution: {execution.status}"
             + (f" ({clean(execution.message, 500)})" if execution.message else "")]
    errors = views(result.cell_errors)
    for view in errors[:10]:
        line = f"{view.where}: {clean(view.ename, 100)}: {clean(view.summary, 300)}"
        if view.causes:
            line += (f"  <- fix this first: likely the cause of the {view.causes} "
                     f"NameError{'s' if view.causes > 1 else ''} after it")
        lines.append(line)
    if len(errors) > 10:
        lines.append(f"... and {len(errors) - 10} more cell errors")
    return "\n".join(lines)


def to_gradescope(result: ResultLike) -> dict[str, Any]:
    result = as_result(result)
    tests = []
    for number, check in enumerate(result.checks, 1):
        manual = check.status == CheckStatus.MANUAL
        name = (check.title or check.id) + (" (TA)" if check.overridden else "")
        test: dict[str, Any] = {
            "name": f"{name} ({fmt_points(check.max_points)} pts, graded by a TA)"
            if manual else name,
            "number": str(number),
            "score": check.points,
            "max_score": 0.0 if manual else check.max_points,
            "output": _test_output(check),
            "tags": [check.id, str(check.status)] + (["ta-override"] if check.overridden else []),
            "visibility": "visible",
            "extra_data": {"check_id": check.id, "grader_status": str(check.status)},
        }
        if not manual:  # Gradescope knows only passed/failed; partial credit shows as failed
            test["status"] = "passed" if check.status == CheckStatus.PASSED else "failed"
        tests.append(test)
    return {
        "score": float(result.score or 0),
        "execution_time": int(round(result.timings.get("total", 0.0))),
        "output": _summary(result),
        "output_format": "text",
        "stdout_visibility": "hidden",  # the grader's log is for instructors
        "tests": tests,
        "extra_data": {"assignment": result.assignment,
                       "assignment_version": result.assignment_version,
                       "max_score": result.max_score,
                       "notebook_sha256": result.notebook_sha256,
                       "grader_version": result.grader_version},
    }
