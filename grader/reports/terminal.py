"""The `grader check` table: colour on a TTY, plain text otherwise (rich decides).

Renders the result dict (result.json), like every other report, so `grader report -f terminal`
shows a saved result the way `grader check` did. Student text is printed with markup off: a
message holding "[red]" or "[/]" is text, not styling.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .ta_points import ta_grade
from ..result import CellError, CheckResult, ResultLike, as_result
from ..scoring import RunStatus
from .cell_errors import ErrorView, views
from .text import clean

_STYLE = {"passed": "green", "partial": "yellow", "failed": "red", "error": "red bold",
          "manual": "cyan"}
MAX_ERRORS = 5


def _points(value: Any) -> str:
    try:
        return "—" if value is None else f"{float(value):g}"
    except (TypeError, ValueError):
        return "?"


def _first_line(text: Any, limit: int = 400) -> str:
    lines = clean(text, 100_000).strip().splitlines()
    line = lines[0] if lines else ""
    return line if len(line) <= limit else line[:limit] + "…"


def _status(check: CheckResult) -> Text:
    status = str(check.status)
    text = Text(status, style=_STYLE.get(status, ""))
    grade = ta_grade(check)
    if grade is not None and grade.override:
        text.append(" (TA)", style="bold cyan")
    return text


def _reason(check: CheckResult) -> Text:
    grade = ta_grade(check)
    if grade is None or not grade.override:
        return Text(_first_line(check.message))
    text = Text(f"TA: {grade.points:g}/{grade.max_points:g}", style="bold cyan")
    if grade.comment:
        text.append(f" — {_first_line(grade.comment, 200)}")
    text.append(f"\ngrader: {grade.auto_points or 0:g}/{grade.max_points:g} {grade.auto_status}"
                f": {_first_line(grade.auto_message, 300)}", style="dim")
    return text


def render(result: ResultLike, console: Console | None = None) -> None:
    console = console or Console()
    r = as_result(result)
    execution = r.execution
    if r.grader_error:
        console.print(Text.assemble((f"{r.assignment}: not graded", "bold red"),
                                    f" ({r.notebook}): {execution.message or ''}"),
                      soft_wrap=True)
        return
    table = Table(title=Text(f"{r.assignment}: {r.notebook}"), title_justify="left",
                  show_lines=False, expand=False)
    table.add_column("check")
    table.add_column("points", justify="right")
    table.add_column("max", justify="right")
    table.add_column("status")
    table.add_column("reason", overflow="fold")
    for check in r.checks:
        table.add_row(Text(check.id), _points(check.points), _points(check.max_points),
                      _status(check), _reason(check))
    table.add_section()
    table.add_row("total", _points(r.score), _points(r.max_score), "", "")
    console.print(table)
    if any(c.overridden for c in r.checks):
        console.print("(TA): points set by a TA; the grader's own verdict is shown beneath",
                      style="dim", highlight=False)
    not_scored = r.unscored
    if not_scored:
        console.print(Text.assemble(("not scored yet", "bold red"), ": the grader failed on "
                                    f"{', '.join(not_scored)}, not the notebook; grade it again "
                                    "once that is fixed, or a TA sets those points"),
                      soft_wrap=True)
    if execution.status != RunStatus.COMPLETED:
        console.print(Text.assemble((f"notebook: {execution.status}", "red"),
                                    f": {execution.message or ''}"), soft_wrap=True)
    render_cell_errors(r.cell_errors, console)


def render_text(result: ResultLike, width: int = 100) -> str:
    """The same as plain text (`grader report -f terminal --out FILE`)."""
    import io

    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
    render(result, console)
    return console.file.getvalue()


def render_cell_errors(cell_errors: list[CellError], console: Console) -> None:
    """Each error as `In [k] (cell n), line l: Error: what`, the first one marked when the
    NameErrors after it are likely its consequence."""
    shown = views(cell_errors)
    for view in shown[:MAX_ERRORS]:
        console.print(_error_lines(view, shown[0]), soft_wrap=True, highlight=False)
    if len(shown) > MAX_ERRORS:
        console.print(f"... and {len(shown) - MAX_ERRORS} more cell errors (see report.html)",
                      highlight=False)
    if cell_errors and cell_errors[0].note:  # the same for every cell
        console.print(cell_errors[0].note, style="dim", highlight=False)


def _error_lines(view: ErrorView, first_error: ErrorView) -> Text:
    text = Text.assemble((view.where, "yellow bold"), ": ", (view.ename, "bold"),
                         f": {_first_line(view.summary, 300)}" if view.summary else "")
    if view.causes:
        first = "the first error, and " if view is first_error else ""
        text.append(f"\n  ← fix this first: {first}likely the cause of the {view.causes} "
                    f"NameError{'s' if view.causes > 1 else ''} after it", style="bold")
    elif view.caused_by:
        text.append(f"\n  probably because {view.caused_by} failed: a failing cell leaves its "
                    "variables undefined", style="dim")
    entry, deeper = view.entry_frame, view.deeper
    if entry is not None and entry.code:
        text.append(f"\n  {entry.line} │ {_first_line(entry.code, 200)}", style="dim")
    if deeper is not None:
        text.append(f"\n  raised in {deeper.describe()}"
                    + (f": {_first_line(deeper.code, 200)}" if deeper.code else ""), style="dim")
    if view.student_frame is None and view.origin is not None:
        text.append(f"\n  raised in {view.origin.describe()} (your own line is not in the "
                    "traceback; see report.html)", style="dim")
    return text
