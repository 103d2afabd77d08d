"""The `result` output GitHub Classroom's autograding-grading-reporter reads.

The reporter reads env `<STEP_ID>_RESULTS`, base64-decodes it, and expects the JSON the
classroom-resources graders emit: {"version": 1, "status": "pass"|"fail"|"error", "max_score",
"tests": [{"name", "status", "score", "message", "test_code", "filename", "line_no",
"duration"}]}. What it does with them (classroom-resources/autograding-grading-reporter, src/):

- the grade Classroom records ("Points X/Y", notify-classroom.js) is the sum of tests[].score
  over max_score, and nothing is recorded when max_score is 0;
- its summary table (aggregate-results.js) shows `passed tests / all tests × max_score`, and its
  per-test log (console-results.js) `passed / all × 100`: only the number of tests whose
  status is "pass" counts there, not their scores;
- the job fails on a "fail" or "error" status.

So that the table, the log and the recorded grade agree, every test here is worth the same
unit of points: a check of 3 points is three tests, of which as many pass as it earned units
("Layers in order (1/3)" passed, "(2/3)", "(3/3)" failed for 1 point of 3). The unit is the
largest that divides every check's maximum and points, as long as that needs at most
MAX_TESTS tests; otherwise (points like 1.23 of 2) it divides the maxima only, and the earned
fraction of a unit rides on one failed test: the recorded grade is exact, and the table shows
at most that fraction less.

Written answers are left out (neither score nor max): Classroom cannot hold a TA's grade, and
counting them would show every student a shortfall. A grader error has max_score 0, so
Classroom records nothing (a rerun grades the notebook; it is never the student's zero). The
reporter prints each message to the job log, where a line starting with "::" is a workflow
command: student text must not form one.
"""

from __future__ import annotations

import base64
import json
import math
from functools import reduce
from typing import Any

from ..result import CheckResult, ResultLike, as_result
from ..scoring import CheckStatus, RunStatus
from .text import clean

_STATUS = {CheckStatus.PASSED: "pass", CheckStatus.PARTIAL: "fail", CheckStatus.FAILED: "fail",
           CheckStatus.ERROR: "error"}
MAX_MESSAGE = 2000
MAX_TESTS = 50  # one test per unit of points: more would bury the job log
_CENTS = 100  # points are kept to two decimals (result.CheckResult.scored)


def _safe(text: Any) -> str:
    # A zero-width space keeps "::error::" or "::add-mask::" in student text from being a command.
    return clean(text, MAX_MESSAGE).replace("::", ":\u200b:")


def _cents(value: Any) -> int:
    try:
        return max(0, round(float(value or 0) * _CENTS))
    except (TypeError, ValueError):
        return 0


def unit_of(checks: list[CheckResult]) -> int:
    """The points (in hundredths) one test is worth."""
    maxima = [_cents(c.max_points) for c in checks if _cents(c.max_points)]
    if not maxima:
        return _CENTS
    exact = reduce(math.gcd, maxima + [_cents(c.points) for c in checks])
    if sum(maxima) // exact <= MAX_TESTS:
        return exact
    unit = reduce(math.gcd, maxima)
    while sum(maxima) // unit > MAX_TESTS:  # maxima like 0.01 and 100: coarser, never finer
        unit *= 2
    return unit


def _tests_of(check: CheckResult, unit: int, filename: str) -> list[dict[str, Any]]:
    """A check as `max / unit` tests: its earned units pass, the others fail (or error)."""
    status = _STATUS[check.status]
    top, got = _cents(check.max_points), min(_cents(check.points), _cents(check.max_points))
    count = max(1, math.ceil(top / unit))
    full, rest = divmod(got, unit)
    title = (check.title or check.id) + (" (TA)" if check.overridden else "")
    message = _safe(check.message)
    tests = []
    for k in range(count):
        passed = k < full
        score = unit if passed else (rest if k == full else 0)
        tests.append({
            "name": _safe(f"{title} ({k + 1}/{count})" if count > 1 else title),
            "status": "pass" if passed else ("fail" if status == "pass" else status),
            "score": min(score, top - k * unit) / _CENTS,
            "message": message if passed or k == full else
            _safe(f"{check.id}: {unit / _CENTS:g} more "
                  f"point{'' if unit == _CENTS else 's'} of this check, not earned (see above)"),
            "test_code": check.id, "filename": filename, "line_no": 0,
            "duration": 0})
    return tests


def classroom_payload(result: ResultLike) -> dict[str, Any]:
    result = as_result(result)
    filename = result.notebook.rsplit("/", 1)[-1]
    graded = [c for c in result.checks if c.status in _STATUS]
    unit = unit_of(graded)
    tests = [t for check in graded for t in _tests_of(check, unit, filename)]
    execution = result.execution.status
    if execution == RunStatus.GRADER_ERROR:  # no points: an error test the job log shows, a rerun fixes
        tests.append({"name": "grader", "status": "error", "score": 0.0,
                      "message": _safe(result.execution.message),
                      "test_code": "grader_error", "filename": filename, "line_no": 0,
                      "duration": 0})
    verdicts = {_STATUS[c.status] for c in graded} | {t["status"] for t in tests}
    if execution != RunStatus.COMPLETED or "error" in verdicts:
        overall = "error"
    elif "fail" in verdicts:
        overall = "fail"
    else:
        overall = "pass"
    max_score = sum(_cents(c.max_points) for c in graded) / _CENTS
    return {"version": 1, "status": overall, "max_score": max_score, "tests": tests}


def to_classroom(result: ResultLike) -> str:
    """Base64 of the payload: what a step writes as `result=...` to $GITHUB_OUTPUT."""
    payload = json.dumps(classroom_payload(result), ensure_ascii=True, separators=(",", ":"))
    return base64.b64encode(payload.encode("ascii")).decode("ascii")
