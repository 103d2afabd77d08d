"""Renderers of a result (grader/result.py): terminal table (as plain text here), HTML,
Markdown, Gradescope, GitHub Classroom. Each reads the result model, so a saved result.json
(`GradeResult.from_json`) renders without re-grading."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from ..result import ResultLike, as_result
from ..scoring import write_atomic

FORMATS = {"json", "html", "md", "gradescope", "classroom", "terminal"}
# File names in the report folder; results.json is the name Gradescope looks for.
FILENAMES = {"json": "result.json", "html": "report.html", "md": "report.md",
             "gradescope": "results.json", "classroom": "classroom-result.b64",
             "terminal": "report.txt"}
DEFAULT_FORMATS = ("json", "html", "md")


def _json_default(value: Any) -> Any:
    return value.tolist() if hasattr(value, "tolist") else str(value)


def render(result: ResultLike, fmt: str) -> str:
    # Imported here: each renderer pulls in jinja2 templates only when used.
    result = as_result(result)
    if fmt == "json":
        return result.to_json() + "\n"
    if fmt == "html":
        from .html import render_html
        return render_html(result)
    if fmt == "md":
        from .markdown import render_markdown
        return render_markdown(result)
    if fmt == "gradescope":
        from .gradescope import to_gradescope
        return json.dumps(to_gradescope(result), indent=2, default=_json_default) + "\n"
    if fmt == "terminal":
        from .terminal import render_text
        return render_text(result)
    if fmt == "classroom":
        from .classroom import to_classroom
        return to_classroom(result)
    raise ValueError(f"unknown report format {fmt!r}; choose from {', '.join(sorted(FORMATS))}")


def write_all(result: ResultLike, out_dir: Path,
              formats: Iterable[str] = DEFAULT_FORMATS) -> dict[str, Path]:
    """Write each format to its file in out_dir (atomically); returns format -> path."""
    formats = list(formats)
    unknown = set(formats) - FORMATS
    if unknown:
        raise ValueError(f"unknown report format(s): {', '.join(sorted(unknown))}")
    written = {}
    for fmt in formats:
        path = Path(out_dir) / FILENAMES[fmt]
        write_atomic(path, render(result, fmt))
        written[fmt] = path
    return written
