"""Fabricated result.json dicts for report and batch tests: only what a test is about, with the
fields every result has (grader/result.py) filled in."""

from __future__ import annotations

from typing import Any


def check_json(id: str = "c1", **fields: Any) -> dict[str, Any]:
    return {"id": id, "title": fields.pop("title", id), "points": 0.0, "max_points": 1.0,
            "status": "passed", "message": "", **fields}


def result_json(checks: list[dict[str, Any]] | None = None, **fields: Any) -> dict[str, Any]:
    execution = {"status": "completed", "message": "", "harvested": True,
                 **fields.pop("execution", {})}
    return {"assignment": "x", "assignment_title": "x", "assignment_version": "1",
            "notebook": "n.ipynb", "notebook_sha256": "", "score": 0.0, "max_score": 1.0,
            "checks": [check_json(**c) for c in checks or []], "execution": execution,
            "grader_version": "test", **fields}
