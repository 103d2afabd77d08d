"""What a batch prints while it runs, whatever the engine: a progress bar naming the students
being graded, and one line per student as it finishes."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

from .store import NOT_GRADED


def progress_bar(console: Console) -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                    MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("ETA"),
                    TimeRemainingColumn(), console=console, transient=False)


def running_names(students: list[str]) -> str:
    names = ", ".join(students)
    return escape(names if len(names) <= 40 else names[:39] + "…")


def student_line(console: Console, student: str, result: dict[str, Any], status: str,
                 seconds: float | None, width: int) -> None:
    got = result.get("score")
    score = f"{'—' if got is None else format(float(got), 'g')}/" \
        f"{float(result.get('max_score') or 0):g}"
    colour = "green" if status == "completed" else "red" if status in NOT_GRADED else "yellow"
    secs = f"{seconds:7.1f} s" if seconds is not None else ""
    console.print(f"{escape(student):<{width}}  {score:>9}  [{colour}]{str(status):<16}[/]  {secs}",
                  highlight=False, soft_wrap=True)
