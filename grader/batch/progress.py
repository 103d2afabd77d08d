"""What a batch prints while it runs, whatever the engine: a progress bar naming the students
being graded, and one line per student as it finishes."""

from __future__ import annotations


from rich.console import Console
from rich.markup import escape
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

from ..result import GradeResult
from ..scoring import NOT_GRADED, RunStatus


def progress_bar(console: Console) -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                    MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("ETA"),
                    TimeRemainingColumn(), console=console, transient=False)


def running_names(students: list[str]) -> str:
    names = ", ".join(students)
    return escape(names if len(names) <= 40 else names[:39] + "…")


class StudentLines:
    """One line per finished student: id, score, status, seconds, in aligned columns."""

    def __init__(self, console: Console, width: int):
        self.console = console
        self.width = width  # of the student column

    def print(self, student: str, result: GradeResult, status: str,
              seconds: float | None = None) -> None:
        got = result.score
        score = f"{'—' if got is None else format(got, 'g')}/{result.max_score:g}"
        colour = "green" if status == RunStatus.COMPLETED else \
            "red" if status in NOT_GRADED else "yellow"
        secs = f"{seconds:7.1f} s" if seconds is not None else ""
        self.console.print(f"{escape(student):<{self.width}}  {score:>9}  "
                           f"[{colour}]{str(status):<16}[/]  {secs}", highlight=False,
                           soft_wrap=True)
