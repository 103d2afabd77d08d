"""summary.html: a class at a glance for the TA (written by `grader grade`).

The score histogram (inline SVG), each check's pass rate and mean points (so the question the
class struggled with stands out), the run statuses, and a student × check matrix: each student's
points per check coloured by status, flags (unchanged starter, cell errors, grader error,
timeout, ...) and a link to their report.html. One self-contained page: inline CSS and SVG, no
scripts, no network. Everything that comes from results (student ids are file names students
chose, messages come from notebooks) is escaped by Jinja's autoescape.

The matrix sorts without JavaScript: each column header links to an anchor (`#by-score`,
`#by-c3-desc`), and a CSS rule per anchor (`#by-score:target ~ .matrix tr { order: var(--by-score) }`)
orders the rows by a rank computed here. Without CSS the rows stay in student order.
"""

from __future__ import annotations

import math
import statistics
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape

# Left out of the class statistics: the run statuses where nothing was graded (scoring.py).
from ..result import GradeResult, as_result
from ..scoring import (GRADER_FAILED, NO_SUBMISSION, NOT_GRADED, PROCESS_FAILED, CheckStatus,
                       RunStatus)
from .template_cache import bytecode_cache

TEMPLATES = Path(__file__).resolve().parent / "templates"
CHECK_STATUSES = tuple(CheckStatus)
STRUGGLE_BELOW = 0.5  # a check whose mean share of points is under this is flagged
# Run statuses a TA should look at, with the words the matrix shows for them.
RUN_FLAGS = {RunStatus.GRADER_ERROR: "grader error", RunStatus.TIMEOUT: "timeout",
             RunStatus.WORKER_TIMEOUT: "timeout", RunStatus.KERNEL_DIED: "kernel died",
             RunStatus.INVALID_NOTEBOOK: "invalid notebook", RunStatus.NO_NOTEBOOK: "no notebook",
             RunStatus.AMBIGUOUS: "ambiguous", RunStatus.WORKER_FAILED: "not graded",
             RunStatus.START_FAILED: "not graded"}


def _f(value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return 0.0
    return out if math.isfinite(out) else 0.0


def run_status(result: GradeResult) -> RunStatus:
    return result.execution.status


def histogram(scores: list[float], max_score: float, width: int = 640,
              height: int = 220) -> dict[str, Any]:
    """Bars for the class's totals: one per point when the maximum is small, else 10 bins."""
    max_score = max(_f(max_score), 1e-9)
    if float(max_score).is_integer() and max_score <= 30:
        edges = [float(i) for i in range(int(max_score) + 1)] + [max_score + 1]
        labels = [f"{i:g}" for i in edges[:-1]]
    else:
        step = max_score / 10
        edges = [step * i for i in range(11)]
        edges[-1] = max_score + 1e-9
        labels = [f"{edges[i]:.3g}–{min(edges[i + 1], max_score):.3g}" for i in range(10)]
    counts = [0] * (len(edges) - 1)
    for s in scores:
        s = min(max(_f(s), 0.0), max_score)
        for i in range(len(counts)):
            if edges[i] <= s < edges[i + 1] or (i == len(counts) - 1 and s >= edges[i]):
                counts[i] += 1
                break
    left, right, top, bottom = 36, width - 10, 16, height - 34
    top_count = max(counts) if counts and max(counts) > 0 else 1
    slot = (right - left) / len(counts)
    bars = []
    for i, (count, label) in enumerate(zip(counts, labels)):
        h = (bottom - top) * count / top_count
        bars.append({"x": round(left + i * slot + 1, 1), "y": round(bottom - h, 1),
                     "w": round(max(slot - 2, 1), 1), "h": round(h, 1), "count": count,
                     "label": label, "cx": round(left + (i + 0.5) * slot, 1),
                     "show_label": len(counts) <= 16 or i % 2 == 0})
    yticks = sorted({0, top_count, math.ceil(top_count / 2)})
    return {"width": width, "height": height, "left": left, "right": right, "top": top,
            "bottom": bottom, "bars": bars,
            "yticks": [(round(bottom - (bottom - top) * t / top_count, 1), t) for t in yticks]}


def check_stats(checks_spec: list[dict[str, Any]],
                graded: list[GradeResult]) -> list[dict[str, Any]]:
    rows = []
    for spec in checks_spec:
        found = [c for r in graded for c in r.checks if c.id == spec["id"]]
        n = len(found)
        counts = {s: sum(1 for c in found if c.status == s) for s in CHECK_STATUSES}
        max_points = _f(spec.get("max_points"))
        mean = sum(c.points for c in found) / n if n else 0.0
        share = mean / max_points if max_points else 0.0
        manual = spec.get("kind") == "manual"
        ta_graded = sum(1 for c in found if c.ta is not None)
        rows.append({
            **spec, "n": n, "counts": counts, "mean": mean, "share": share,
            "pass_rate": counts["passed"] / n if n and not manual else None,
            "manual": manual, "ta_graded": ta_graded,
            "struggle": bool(n) and not (manual and ta_graded == 0) and share < STRUGGLE_BELOW,
            "segments": _segments(counts, n),
        })
    return rows


def _segments(counts: dict[str, int], n: int, width: float = 160) -> list[dict[str, Any]]:
    """A stacked bar of check statuses (passed, partial, failed, error, manual)."""
    out, x = [], 0.0
    for status in CHECK_STATUSES:
        if not n or not counts[status]:
            continue
        w = width * counts[status] / n
        out.append({"status": status, "x": round(x, 1), "w": round(w, 1), "count": counts[status]})
        x += w
    return out


def flags(result: GradeResult, status: RunStatus) -> list[dict[str, str]]:
    """What a TA should know about a student beyond the points."""
    out = []
    if status in RUN_FLAGS:
        message = result.execution.message or ""
        out.append({"kind": "run", "label": RUN_FLAGS[status], "title": message[:300]})
    not_scored = result.unscored
    if not_scored and status not in NOT_GRADED:
        out.append({"kind": "run", "label": "not scored yet",
                    "title": f"the grader failed on {', '.join(not_scored)}: graded again on the "
                             "next run, or a TA sets those checks' points"[:300]})
    if result.unchanged_starter is True:
        out.append({"kind": "starter", "label": "unchanged starter",
                    "title": "the notebook's code cells are the starter's, as handed out"})
    errors = len(result.cell_errors)
    if errors:
        out.append({"kind": "errors", "label": f"{errors} cell error{'s' if errors > 1 else ''}",
                    "title": "cells that raised an error when the grader ran the notebook"})
    if any(c.overridden for c in result.checks):
        out.append({"kind": "ta", "label": "TA override",
                    "title": "a TA set the points of an automatic check"})
    return out


def _cells(result: GradeResult, checks_spec: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_id = {c.id: c for c in result.checks}
    cells = []
    for spec in checks_spec:
        check = by_id.get(spec["id"])
        if check is None:
            cells.append({"status": "none", "points": None, "title": f"{spec['id']}: not graded"})
            continue
        manual = check.status == CheckStatus.MANUAL
        graded_by_ta = check.ta is not None
        # "awaiting": a written answer no TA has graded yet
        status = "awaiting" if manual and not graded_by_ta else str(check.status)
        message = " ".join(check.message.split())[:200]
        cells.append({"status": status, "points": check.points,
                      "ta": check.overridden or (graded_by_ta and manual),
                      "title": f"{spec['id']}: {check.points:g}/"
                               f"{_f(spec.get('max_points')):g} {status} — {message}"})
    return cells


def sort_keys(rows: list[dict[str, Any]], n_checks: int) -> list[str]:
    """Give each row its rank under each ordering (`order_<key>` and `order_<key>-desc`), for
    the CSS that sorts the matrix; ties keep the students' alphabetical order."""
    keys = {"student": lambda r: r["student"].lower(),
            "score": lambda r: r["score"] if r["graded"] else -1.0,
            "flags": lambda r: len(r["flags"])}
    for i in range(n_checks):
        keys[f"c{i}"] = lambda r, i=i: -1.0 if r["cells"][i]["points"] is None \
            else r["cells"][i]["points"]
    for name, key in keys.items():
        for descending in (False, True):
            ranked = sorted(rows, key=lambda r: r["student"].lower())
            ranked.sort(key=key, reverse=descending)  # stable: ties stay alphabetical
            suffix = f"{name}-desc" if descending else name
            for rank, row in enumerate(ranked, 1):
                row.setdefault("order", {})[suffix] = rank
    return [k for name in keys for k in (name, f"{name}-desc")]


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), bytecode_cache=bytecode_cache(),
                      autoescape=select_autoescape(["html", "j2"], default=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["points"] = lambda v: f"{_f(v):g}"
    env.filters["pct"] = lambda v: "–" if v is None else f"{100 * _f(v):.0f}%"
    return env


def render_summary(assignment: dict[str, Any], students: list[dict[str, Any]],
                   generated: datetime | None = None,
                   skipped: list[dict[str, str]] | None = None,
                   similar: int | None = None) -> str:
    """assignment: id, title, version, max_score, checks [{id, title, max_points, kind}];
    students: [{student, result (grader/result.py), report (relative path or None)}];
    skipped: [{name, reason}], entries of the submissions folder graded as nobody's;
    similar: pairs the similarity report (similarity.html beside it) flagged, None: no report."""
    max_score = _f(assignment.get("max_score"))
    rows = []
    for entry in sorted(students, key=lambda e: str(e["student"])):
        result = as_result(entry["result"])
        status = run_status(result)
        rows.append({"student": str(entry["student"]), "score": result.score or 0.0,
                     "max_score": result.max_score or max_score, "status": status,
                     "graded": status not in NOT_GRADED and result.score is not None,
                     "cell_errors": len(result.cell_errors),
                     "message": (result.execution.message or "")[:300],
                     "href": quote(str(entry["report"])) if entry.get("report") else None,
                     "result": result, "flags": flags(result, status),
                     "cells": _cells(result, list(assignment.get("checks") or []))})
    orders = sort_keys(rows, len(assignment.get("checks") or []))
    graded = [r for r in rows if r["graded"]]
    scores = [r["score"] for r in graded]
    stats = None
    if scores:
        stats = {"n": len(scores), "mean": statistics.fmean(scores),
                 "median": statistics.median(scores), "min": min(scores), "max": max(scores),
                 "stdev": statistics.pstdev(scores) if len(scores) > 1 else 0.0,
                 "full_marks": sum(1 for s in scores if s >= max_score - 1e-9)}
    statuses: dict[str, int] = {}
    for r in rows:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    checks = check_stats(list(assignment.get("checks") or []), [r["result"] for r in graded])
    struggles = sorted((c for c in checks if c["struggle"]), key=lambda c: c["share"])
    when = (generated or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    return _environment().get_template("summary.html.j2").render(
        a=assignment, rows=rows, stats=stats, hist=histogram(scores, max_score),
        statuses=sorted(statuses.items()), checks=checks, struggles=struggles, orders=orders,
        attention=[r for r in rows if r["status"] != RunStatus.COMPLETED or not r["graded"]],
        no_submission=sum(1 for r in rows if r["status"] in NO_SUBMISSION),
        process_failed=sum(1 for r in rows if r["status"] in PROCESS_FAILED),
        grader_failed=sum(1 for r in rows if r["status"] in GRADER_FAILED
                          or (r["status"] not in NOT_GRADED and not r["graded"])),
        generated=when,
        skipped=list(skipped or []), similar=similar)
