"""report.md: for a GitHub Actions job summary ($GITHUB_STEP_SUMMARY) or a pull-request comment.

Student text is neutralised, not trusted: HTML is entity-escaped, Markdown punctuation that could
make links, images or tables is backslash-escaped, and @mentions cannot ping anyone. Long text goes
in <details><pre> blocks (a <pre> block runs to its closing tag, so blank lines cannot end it).
"""

from __future__ import annotations

import html as _html
import re
from typing import Any

from jinja2 import ChainableUndefined, Environment, PackageLoader

from ..result import ResultLike, as_result
from ..scoring import CheckStatus
from .cell_errors import views
from .text import STATUS_ICON, clean, comparison_rows, fmt_points
from .template_cache import bytecode_cache

MAX_CELL = 300  # the reason column shows a first line; full text is in the details below
MAX_BLOCK = 4000  # characters of one message, traceback or answer
MAX_TOTAL = 60_000  # PR comments are capped at 65,536 characters
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~!#])")
LOST_POINTS = (CheckStatus.PARTIAL, CheckStatus.FAILED, CheckStatus.ERROR)


def _neutral(text: str) -> str:
    # No @mention pings anyone; no line can be an Actions workflow command ("::error::") if the
    # report is ever echoed to a job log.
    return text.replace("@", "@\u200b").replace("::", ":\u200b:")


def _first_line(text: Any, limit: int) -> str:
    lines = clean(text, 100_000).strip().splitlines()
    line = lines[0] if lines else ""
    return line[:limit] + "…" if len(line) > limit else line


def md_inline(text: Any, limit: int = MAX_CELL) -> str:
    """One table cell or line of Markdown prose: first line only, escaped."""
    return _neutral(_MD_SPECIAL.sub(r"\\\1", _html.escape(_first_line(text, limit), quote=False)))


def html_inline(text: Any, limit: int = MAX_CELL) -> str:
    """One line inside raw HTML (a <summary>), where Markdown escapes would show literally."""
    return _neutral(_html.escape(_first_line(text, limit), quote=False))


def md_pre(text: Any, limit: int = MAX_BLOCK) -> str:
    """Text for inside <pre>: HTML-escaped (GitHub decodes entities there), bounded."""
    return _neutral(_html.escape(clean(text, limit), quote=False))


def _environment(block_limit: int) -> Environment:
    # Autoescape off: this is Markdown, and each value goes through md_inline or md_pre instead.
    env = Environment(loader=PackageLoader("grader.reports", "templates"), autoescape=False,
                      bytecode_cache=bytecode_cache(),
                      undefined=ChainableUndefined, trim_blocks=True, lstrip_blocks=True,
                      keep_trailing_newline=True)
    env.filters.update(md=md_inline, h=html_inline, points=fmt_points,
                       pre=lambda text: md_pre(text, block_limit))
    env.globals.update(icon=STATUS_ICON, comparison_rows=comparison_rows)
    return env


def render_markdown(result: ResultLike, max_chars: int = MAX_TOTAL) -> str:
    """The report; long blocks are cut shorter until it fits a PR comment (65,536 characters)."""
    result = as_result(result)
    checks = result.checks
    auto = [c for c in checks if c.status != CheckStatus.MANUAL]
    context = dict(
        r=result, checks=checks,
        ok=bool(auto) and all(c.status == CheckStatus.PASSED for c in auto),
        problems=[c for c in checks if c.status in LOST_POINTS],
        manual=[c for c in checks if c.status == CheckStatus.MANUAL],
        overrides=[c for c in checks if c.overridden],
        execution=result.execution, cell_errors=result.cell_errors,
        error_views=views(result.cell_errors))
    for block_limit in (MAX_BLOCK, 1000, 200):
        text = _environment(block_limit).get_template("report.md.j2").render(**context)
        text = re.sub(r"\n{3,}", "\n\n", text)
        if len(text) <= max_chars:
            break
    return text
