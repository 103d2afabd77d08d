"""similarity.html and similarity.csv: the flagged pairs, for the TA only.

The HTML explains each flag in a sentence with both students' names and the evidence, and shows
the matching code of both notebooks side by side (the spans copydetect matched, highlighted;
only the cells holding a match). One self-contained page, autoescaped (student ids are file
names students chose, code is theirs), no scripts, like summary.html. The CSV has one row per
flagged pair: both students, the kinds of evidence, the figures and the sentences.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from . import OPTIONS, cli_flag
from .pairs import Analysis, Pair

TEMPLATES = Path(__file__).resolve().parent / "templates"
CSV_COLUMNS = ["student_a", "student_b", "evidence", "code_similarity", "weights_distance",
               "prediction_agreement", "design", "explanation"]
_CELL = re.compile(r"^# In \[\d+\] \(cell \d+\)$", re.M)


def _csv_cell(value: Any) -> str:
    """Spreadsheets run cells starting with = + - @ as formulas; student ids are chosen by them."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _figure(pair: Pair, kind: str, fmt: str) -> str:
    values = [f.value for f in pair.flags if f.kind == kind and f.value is not None]
    if not values:
        return ""
    return fmt.format(min(values) if kind == "weights" else max(values))


def similarity_csv(analysis: Analysis) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for p in analysis.pairs:
        designs = sorted({f.model or "" for f in p.flags if f.kind == "design"})
        writer.writerow([_csv_cell(p.a), _csv_cell(p.b), ";".join(p.kinds),
                         _figure(p, "code", "{:.3f}") if p.code else "",
                         _figure(p, "weights", "{:.4f}"), _figure(p, "predictions", "{:.4f}"),
                         ";".join(designs), _csv_cell(" ".join(f.sentence for f in p.flags))])
    return buffer.getvalue()


def highlighted(text: str, spans: list[tuple[int, int]]) -> list[dict[str, Any]]:
    """The cells of a notebook's code text that hold a matched span, each as escaped HTML with
    the matched characters in <mark>."""
    starts = [m.start() for m in _CELL.finditer(text)] or [0]
    bounds = list(zip(starts, starts[1:] + [len(text)]))
    merged: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        s, e = max(0, s), min(len(text), e)
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        elif s < e:
            merged.append((s, e))
    cells = []
    for lo, hi in bounds:
        first = text[lo:hi].split("\n", 1)[0]
        if _CELL.match(first):  # the cell's name is its title, not part of the code shown
            lo = min(hi, lo + len(first) + 1)
        inside = [(max(s, lo), min(e, hi)) for s, e in merged if s < hi and e > lo]
        if not inside:
            continue
        parts, at = [], lo
        for s, e in inside:
            parts.append(escape(text[at:s]))
            parts.append(Markup("<mark>") + escape(text[s:e]) + Markup("</mark>"))
            at = e
        parts.append(escape(text[at:hi]))
        cells.append({"title": first[2:] if _CELL.match(first) else "code",
                      "html": Markup("").join(parts)})
    return cells


def render_html(analysis: Analysis, assignment: dict[str, Any], codes: dict[str, str],
                generated: datetime | None = None) -> str:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)),
                      autoescape=select_autoescape(["html", "j2"], default=True),
                      trim_blocks=True, lstrip_blocks=True)
    pairs = []
    for p in analysis.pairs:
        view: dict[str, Any] = {"a": p.a, "b": p.b, "flags": p.flags, "kinds": p.kinds}
        if p.code is not None and any(f.kind == "code" for f in p.flags):
            view["code_a"] = highlighted(codes.get(p.a, ""), p.code.slices_a)
            view["code_b"] = highlighted(codes.get(p.b, ""), p.code.slices_b)
        pairs.append(view)
    options = [{"flag": cli_flag(name), "value": getattr(analysis.thresholds, name),
                "help": OPTIONS[name][2]} for name in OPTIONS]
    when = (generated or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    return env.get_template("similarity.html.j2").render(
        a=assignment, pairs=pairs, analysis=analysis, options=options, generated=when)
