"""What every report shows the same way: the student's text made safe to show (no terminal
codes or control characters, bounded), points, shapes as Keras prints them, status icons, and
the architecture check's expected-vs-found rows. Plain functions of result.json's values.
"""

from __future__ import annotations

import re
from typing import Any

from ..result import CheckResult

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
MAX_TEXT = 20_000  # per traceback / answer: a notebook can print megabytes

STATUS_ICON = {"passed": "✅", "partial": "🟡", "failed": "❌", "error": "💥", "manual": "📝"}
# The page uses symbols every common font has (headless browsers and printers lack emoji fonts).
HTML_ICON = {"passed": "✓", "partial": "◐", "failed": "✗", "error": "⚠", "manual": "✎"}


def clean(text: Any, limit: int = MAX_TEXT) -> str:
    """Plain text: no terminal colour codes or control characters, bounded length."""
    out = _CONTROL.sub("", _ANSI.sub("", str(text if text is not None else "")))
    return out if len(out) <= limit else out[:limit] + f"\n… ({len(out) - limit:,} more characters)"


def fmt_points(value: Any) -> str:
    if value is None:  # not scored (a grader error), never shown as a number
        return "—"
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return "?"


def fmt_shape(shape: Any) -> str:
    """[None, 128] -> (None, 128), as Keras prints it."""
    if isinstance(shape, (list, tuple)):
        return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"
    return "" if shape is None else str(shape)


def comparison_rows(check: CheckResult) -> list[dict[str, Any]]:
    """The `layers` check's expected-vs-found rows, each with what kind of difference it shows."""
    rows = check.details.get("comparison")
    out = []
    for n, row in enumerate(rows if isinstance(rows, list) else [], 1):
        if not isinstance(row, dict):
            continue
        e, f = row.get("expected"), row.get("found")
        kind = "extra" if e is None else "missing" if f is None else \
            "match" if row.get("match") else "differs"
        out.append({**row, "n": n, "kind": kind,
                    "label_differs": kind == "differs" and e != f,
                    "shape_differs": kind == "differs"
                    and row.get("expected_shape") != row.get("found_shape")})
    return out
