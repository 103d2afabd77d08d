"""The `grader check` table: colour on a TTY, plain text otherwise (rich decides)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from ..scoring import GradeResult

_STYLE = {"passed": "green", "partial": "yellow", "failed": "red", "error": "red bold",
          "manual": "cyan"}


def _points(value: float | None) -> str:
    return "—" if value is None else f"{value:g}"


def render(result: GradeResult, console: Console | None = None) -> None:
    console = console or Console()
    if result.grader_error:
        console.print(f"[bold red]{result.assignment}: not graded[/] ({result.notebook}): "
                      f"{result.execution.get('message', '')}", highlight=False, soft_wrap=True)
        return
    table = Table(title=f"{result.assignment}: {result.notebook}", title_justify="left",
                  show_lines=False, expand=False)
    table.add_column("check")
    table.add_column("points", justify="right")
    table.add_column("max", justify="right")
    table.add_column("status")
    table.add_column("reason", overflow="fold")
    for check in result.checks:
        table.add_row(check.id, _points(check.points), _points(check.max_points),
                      f"[{_STYLE.get(check.status, '')}]{check.status}[/]",
                      check.message.splitlines()[0] if check.message else "")
    table.add_section()
    table.add_row("total", _points(result.score), _points(result.max_score), "", "")
    console.print(table)
    execution = result.execution
    if execution.get("status") not in (None, "completed"):
        console.print(f"[red]notebook: {execution['status']}[/]: {execution.get('message', '')}")
    for err in result.cell_errors[:5]:
        where = f"cell {err['cell'] + 1}" + (f", line {err['line']}" if err.get("line") else "")
        console.print(f"[yellow]{where}[/]: {err['ename']}: {err['evalue'][:200]}", markup=True,
                      highlight=False)
    if len(result.cell_errors) > 5:
        console.print(f"... and {len(result.cell_errors) - 5} more cell errors (see result.json)")
    if result.cell_errors and result.cell_errors[0].get("note"):  # the same for every cell
        console.print(result.cell_errors[0]["note"], style="dim", highlight=False)
