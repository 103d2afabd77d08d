"""report.html: one self-contained page (inline CSS and SVG, no scripts, no network).

Everything from the result is escaped by Jinja's autoescape: messages, layer names, answers and
tracebacks come from the student's notebook and are untrusted. The view helpers here say which
model a check belongs to and draw its training curves and gauges; the text every renderer shows
alike (cleaned student text, points, shapes, icons, architecture rows) is in text.py.
"""

from __future__ import annotations

import math
from typing import Any

from jinja2 import ChainableUndefined, Environment, PackageLoader, select_autoescape

from .ta_points import ta_grade
from ..result import CheckResult, GradeResult, ModelResult, ResultLike, as_result
from ..scoring import CheckStatus
from .cell_errors import views
from .text import HTML_ICON, STATUS_ICON, clean, comparison_rows, fmt_points, fmt_shape
from .template_cache import bytecode_cache

def _numbers(values: Any) -> list[float]:
    if not isinstance(values, list):
        return []
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError):
        return []


def curve_of(src: Any) -> dict[str, list[float]] | None:
    """Per-epoch curves from a check's details or a model's `timed_training` summary."""
    if not isinstance(src, dict):
        return None
    acc = src.get("train_accuracy", src.get("accuracy_curve"))
    if acc is None and isinstance(src.get("accuracy"), list):
        acc = src["accuracy"]
    curve = {"loss": _numbers(src.get("loss")), "accuracy": _numbers(acc),
             "val_loss": _numbers(src.get("val_loss")),
             "val_accuracy": _numbers(src.get("val_accuracy")),
             "seconds": _numbers(src.get("seconds_per_epoch"))}
    return curve if curve["loss"] or curve["accuracy"] else None


def gauge_of(check: CheckResult) -> dict[str, Any] | None:
    """A measured value against its threshold: holdout accuracy (higher is better) or MSE."""
    d = check.details
    if not isinstance(d.get("threshold"), (int, float)):
        return None
    for key, label, higher in (("accuracy", "holdout accuracy", True),
                               ("mse", "reconstruction error", False)):
        if isinstance(d.get(key), (int, float)):
            return {"label": label, "value": float(d[key]), "threshold": float(d["threshold"]),
                    "higher_better": higher}
    return None


def object_of(check: CheckResult, models: dict[str, ModelResult]) -> str | None:
    """Which model a check is about: its details say so, or there is only one model."""
    name = check.details.get("object")
    if isinstance(name, str) and name in models:
        return name
    with_layers = [n for n, m in models.items() if m.layers]
    return with_layers[0] if len(with_layers) == 1 else None


def model_views(result: GradeResult) -> list[dict[str, Any]]:
    """Per model: its summary, the architecture comparisons, training curve and gauges."""
    models = result.models
    views: dict[str | None, dict[str, Any]] = {
        name: _empty_view(name, m) for name, m in models.items()}
    for name, view in views.items():
        timed = models[name].timed_training
        if timed is not None:
            view["timed"] = timed
            view["curve"] = curve_of(timed.model_dump())
    for check in result.checks:
        rows = comparison_rows(check)
        gauge = gauge_of(check)
        curve = curve_of(check.details)
        if not (rows or gauge or curve):
            continue
        name = object_of(check, models)
        view = views.setdefault(name, _empty_view(name, None))
        if rows:
            view["comparisons"].append({"check": check, "rows": rows})
        if gauge:
            view["gauges"].append({"check": check, **gauge})
            # The grader's own training run: its holdout accuracy goes on the curve's chart.
            if curve or check.details.get("kind") == "timed_training":
                view["timed_gauge"] = gauge
        if curve:
            view["curve"] = curve
    return list(views.values())


def _empty_view(name: str | None, summary: ModelResult | None) -> dict[str, Any]:
    return {"name": name, "summary": summary,
            "comparisons": [], "gauges": [], "curve": None, "timed": None, "timed_gauge": None}


# ---- SVG geometry (numbers only; the template draws and escapes) ----

def _scale(lo: float, hi: float, a: float, b: float):
    span = (hi - lo) or 1.0
    return lambda v: round(a + (v - lo) * (b - a) / span, 1)


def _nice_step(raw: float) -> float:
    """1, 2, 2.5 or 5 times a power of ten: axis ticks people can read."""
    if raw <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)


def line_chart(title: str, series: list[tuple[str, list[float], str]], *, unit_range: bool = False,
               threshold: float | None = None, marker: float | None = None) -> dict[str, Any] | None:
    """Curves over epochs; accuracy charts may show a threshold line and the holdout point."""
    # A diverged run logs nan/inf: those epochs get no point rather than breaking the scale.
    series = [(n, [x if math.isfinite(x) else None for x in v], c) for n, v, c in series if v]
    if not any(x is not None for _, v, _ in series for x in v):
        return None
    w, h, left, right, top, bottom = 360, 200, 44, 12, 24, 30
    values = [x for _, v, _ in series for x in v if x is not None] + \
        [x for x in (threshold, marker) if x is not None]
    if unit_range:
        lo, hi = max(0.0, math.floor((min(values) - 0.02) * 10) / 10), 1.0
    else:
        lo, hi = 0.0, max(values) or 1.0
    step = _nice_step((hi - lo) / 4)
    hi = lo + step * math.ceil(round((hi - lo) / step, 6))
    ticks = [lo + step * i for i in range(int(round((hi - lo) / step)) + 1)]
    epochs = max(len(v) for _, v, _ in series)
    x = _scale(1, max(2, epochs), left, w - right)
    y = _scale(lo, hi, h - bottom, top)
    chart = {
        "title": title, "width": w, "height": h, "left": left, "right": w - right, "top": top,
        "bottom": h - bottom,
        "yticks": [(y(t), f"{round(t, 6):g}") for t in ticks],
        "xticks": [(x(e), str(e)) for e in range(1, epochs + 1)],
        "series": [{"name": n, "color": c,
                    "points": " ".join(f"{x(i + 1)},{y(val)}" for i, val in enumerate(v)
                                       if val is not None),
                    "dots": [(x(i + 1), y(val), f"epoch {i + 1}: {val:.4f}")
                             for i, val in enumerate(v) if val is not None]}
                   for n, v, c in series],
        "threshold": None, "marker": None,
    }
    if threshold is not None:
        chart["threshold"] = {"y": y(threshold), "label": f"threshold {threshold:.3f}"}
    if marker is not None:
        chart["marker"] = {"x": x(epochs), "y": y(marker), "label": f"holdout {marker:.3f}"}
    return chart


def gauge_chart(g: dict[str, Any]) -> dict[str, Any]:
    """A bar for the measured value with a tick at the threshold."""
    w = 400  # viewBox units; the SVG stretches to its column
    hi = 1.0 if g["higher_better"] else max(g["value"], g["threshold"]) * 1.25 or 1.0
    x = _scale(0.0, hi, 0, w)
    ok = g["value"] >= g["threshold"] if g["higher_better"] else g["value"] <= g["threshold"]
    return {"width": w, "bar": max(0.0, x(min(g["value"], hi))),
            "tx": min(w - 1.5, max(1.5, x(min(g["threshold"], hi)))), "ok": ok,
            "text": f"{g['label']} {g['value']:.4f} "
                    f"({'≥' if g['higher_better'] else '≤'} {g['threshold']:.4f} expected)"}


def charts_for(view: dict[str, Any]) -> list[dict[str, Any]]:
    curve = view.get("curve")
    if not curve:
        return []
    timed = view.get("timed_gauge")
    charts = [
        line_chart("loss per epoch", [("training loss", curve["loss"], "#c0392b"),
                                      ("validation loss", curve["val_loss"], "#e67e22")]),
        line_chart("accuracy per epoch", [("training accuracy", curve["accuracy"], "#2471a3"),
                                          ("validation accuracy", curve["val_accuracy"], "#17a589")],
                   unit_range=True, threshold=timed["threshold"] if timed else None,
                   marker=timed["value"] if timed else None),
    ]
    return [c for c in charts if c]


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("grader.reports", "templates"),
                      bytecode_cache=bytecode_cache(),
                      autoescape=select_autoescape(["html", "j2"], default=True),
                      # A result from an older grader may lack a field: render it empty.
                      undefined=ChainableUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(points=fmt_points, clean=clean, shape=fmt_shape)
    env.globals.update(icon=HTML_ICON, charts_for=charts_for, gauge_chart=gauge_chart,
                       ta_grade=ta_grade)
    return env


def render_html(result: ResultLike) -> str:
    result = as_result(result)
    checks = result.checks
    return _environment().get_template("report.html.j2").render(
        r=result, checks=checks, models=model_views(result),
        error_views=views(result.cell_errors),
        manual=[c for c in checks if c.status == CheckStatus.MANUAL],
        not_scored=result.unscored,
        counts={s: sum(1 for c in checks if c.status == s) for s in STATUS_ICON},
        # None: not scored (a grader error), which the page must not draw as 0 %
        percent=None if result.score is None else 100 * result.score / (result.max_score or 1))
