"""The `result` output GitHub Classroom's autograding-grading-reporter reads.

The reporter reads env `<STEP_ID>_RESULTS`, base64-decodes it, and expects the JSON the
classroom-resources graders emit: {"version": 1, "status": "pass"|"fail"|"error", "max_score",
"tests": [{"name", "status", "score", "message", "test_code", "filename", "line_no",
"duration"}]}. It adds up tests[].score against max_score and fails the job on "fail"/"error".

Written answers are left out (neither score nor max): Classroom cannot hold a TA's grade, and
counting them would show every student a shortfall. The reporter prints each message to the job
log, where a line starting with "::" is a workflow command: student text must not form one.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from .html import clean

_STATUS = {"passed": "pass", "partial": "fail", "failed": "fail", "error": "error"}
MAX_MESSAGE = 2000


def _safe(text: Any) -> str:
    # A zero-width space keeps "::error::" or "::add-mask::" in student text from being a command.
    return clean(text, MAX_MESSAGE).replace("::", ":\u200b:")


def classroom_payload(result: dict[str, Any]) -> dict[str, Any]:
    notebook = str(result.get("notebook") or "")
    filename = notebook.rsplit("/", 1)[-1]
    tests = []
    for check in result.get("checks") or []:
        status = _STATUS.get(str(check.get("status")))
        if status is None:  # manual: graded by a TA elsewhere
            continue
        tests.append({"name": _safe(check.get("title") or check.get("id")), "status": status,
                      "score": float(check.get("points") or 0), "message": _safe(check.get("message")),
                      "test_code": str(check.get("id") or ""), "filename": filename,
                      "line_no": 0, "duration": 0})
    execution = (result.get("execution") or {}).get("status")
    if execution == "grader_error":  # no points: an error test the job log shows, a rerun fixes
        tests.append({"name": "grader", "status": "error", "score": 0.0,
                      "message": _safe((result.get("execution") or {}).get("message")),
                      "test_code": "grader_error", "filename": filename, "line_no": 0,
                      "duration": 0})
    if execution not in (None, "completed") or any(t["status"] == "error" for t in tests):
        overall = "error"
    elif any(t["status"] == "fail" for t in tests):
        overall = "fail"
    else:
        overall = "pass"
    max_score = sum(float(c.get("max_points") or 0) for c in result.get("checks") or []
                    if c.get("status") in _STATUS)
    return {"version": 1, "status": overall, "max_score": max_score, "tests": tests}


def to_classroom(result: dict[str, Any]) -> str:
    """Base64 of the payload: what a step writes as `result=...` to $GITHUB_OUTPUT."""
    payload = json.dumps(classroom_payload(result), ensure_ascii=True, separators=(",", ":"))
    return base64.b64encode(payload.encode("ascii")).decode("ascii")
