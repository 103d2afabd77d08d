"""What grading is doing right now, for a person watching `grader check` on a terminal.

The pipeline and the runner report each phase through one callback, `Progress`:
`progress(Phase.CELL, {"number": 3, "total": 12, "execution_count": 3, "cell": 5})`. The callback
only displays: nothing it receives is trusted or scored, and a failing display must not cost a
grade (`notify` swallows its errors). `TerminalProgress` draws it with rich on stderr, and stays
silent when stderr is not a terminal (CI logs, pipes) or with `--json`.
"""

from __future__ import annotations

import contextlib
from enum import Enum
from typing import Any, Callable, Iterator

from rich.console import Console
from rich.markup import escape


class Phase(str, Enum):
    KERNEL_START = "kernel_start"  # the sandboxed kernel is starting
    CELL = "cell"  # one of the student's code cells: number, total, execution_count, cell
    HARVEST = "harvest"  # the kernel exports the graded variables
    CLEANROOM = "cleanroom"  # numpy functions run in the numpy-only clean room
    MEASURE = "measure"  # the trusted process loads, describes and predicts the models
    TRAINING = "training"  # ... and trains the grader's own copy of them (objects, seconds)
    SCORE = "score"  # the checks compare with the reference


Progress = Callable[[Phase, dict[str, Any]], None]


def notify(progress: Progress | None, phase: Phase, **info: Any) -> None:
    """Report a phase; a display that fails is ignored (it must never change a grade)."""
    if progress is None:
        return
    try:
        progress(phase, info)
    except Exception:  # noqa: BLE001 - a broken display is not the student's or the grade's
        pass


def describe(phase: Phase, info: dict[str, Any]) -> str:
    """One line of plain text for a phase, as the terminal shows it."""
    if phase is Phase.KERNEL_START:
        return "starting the notebook's kernel" + (" in the sandbox" if info.get("sandboxed")
                                                    else "")
    if phase is Phase.CELL:
        count = info.get("execution_count")
        label = f" (In [{count}])" if count is not None else ""
        return f"running cell {info.get('number')} of {info.get('total')}{label}"
    if phase is Phase.HARVEST:
        return "collecting the notebook's variables"
    if phase is Phase.CLEANROOM:
        return "running your numpy functions in the clean room"
    if phase is Phase.MEASURE:
        names = ", ".join(info.get("objects") or [])
        return f"measuring {names or 'the models'} on the grader's private images"
    if phase is Phase.TRAINING:
        names = ", ".join(info.get("objects") or [])
        limit = info.get("max_cpu_seconds")
        bound = f", up to {limit:g} CPU s each" if isinstance(limit, (int, float)) else ""
        return f"measuring, and training the grader's copy of {names}{bound}"
    if phase is Phase.SCORE:
        return "scoring the checks"
    return str(phase.value)


class TerminalProgress:
    """A spinner beside the current phase, on a terminal only (rich's status line)."""

    def __init__(self, console: Console, enabled: bool = True) -> None:
        self.console = console
        self.enabled = enabled and console.is_terminal
        self._status: Any = None

    def __call__(self, phase: Phase, info: dict[str, Any]) -> None:
        if self._status is None:
            return
        self._status.update(escape(describe(phase, info)) + " …")

    @contextlib.contextmanager
    def shown(self) -> Iterator["TerminalProgress"]:
        """Display while the block runs; the spinner's line is erased when it ends."""
        if not self.enabled:
            yield self
            return
        with self.console.status("preparing the notebook …", spinner="dots") as status:
            self._status = status
            try:
                yield self
            finally:
                self._status = None
