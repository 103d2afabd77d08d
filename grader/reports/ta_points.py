"""What every report shows of a TA's points on a check (grader/ta/manual_scores.py merges them
into the result, grader/result.py keeps them as `TAPoints`)."""

from __future__ import annotations

from dataclasses import dataclass

from ..result import CheckResult


@dataclass(frozen=True)
class TAGrade:
    """What every report shows of a TA's points on a check (None when the TA gave none)."""

    points: float
    max_points: float
    comment: str
    override: bool  # an automatic check's points replaced; the grader's are below
    auto_points: float | None = None
    auto_status: str | None = None
    auto_message: str | None = None


def ta_grade(check: CheckResult) -> TAGrade | None:
    ta = check.ta
    if ta is None:
        return None
    return TAGrade(ta.ta_points, check.max_points, ta.ta_comment, ta.ta_override,
                   *((float(ta.auto_points or 0), str(ta.auto_status or ""),
                      str(ta.auto_message or "")) if ta.ta_override else ()))
