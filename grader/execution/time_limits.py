"""The two time limits on a notebook's run (one cell, the whole notebook), each with where its
value came from: a message must name the limit that stopped the notebook, not one that did not
(a `--timeout 120` that stopped a cell used to be reported as the cell's 300 s limit).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from ..paths import course_root


class Scope(str, Enum):
    CELL = "cell"
    NOTEBOOK = "notebook"

    def __str__(self) -> str:
        return self.value


class Origin(str, Enum):
    OPTION = "option"  # the grader's command line (--timeout)
    SPEC = "spec"  # the assignment's assignment.toml, [execution]

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class TimeLimit:
    scope: Scope
    seconds: float
    origin: Origin
    source: str  # where to change it: "--timeout 120", "assignments/x/assignment.toml …"

    @classmethod
    def from_option(cls, seconds: float, scope: Scope = Scope.NOTEBOOK) -> TimeLimit:
        """--timeout (the whole notebook's) or --cell-timeout (any one cell's)."""
        flag = "--timeout" if scope is Scope.NOTEBOOK else "--cell-timeout"
        return cls(scope, seconds, Origin.OPTION, f"{flag} {seconds:g}")

    @classmethod
    def from_spec(cls, scope: Scope, seconds: float, toml: Path) -> TimeLimit:
        key = "cell_timeout" if scope is Scope.CELL else "notebook_timeout"
        return cls(scope, seconds, Origin.SPEC, f"{_shown(toml)} [execution] {key}")

    def describe(self) -> str:
        """"its 300 s per-cell limit (assignments/x/assignment.toml [execution] cell_timeout)"."""
        kind = "per-cell limit" if self.scope is Scope.CELL else "limit"
        return f"its {self.seconds:g} s {kind} ({self.source})"

    def as_dict(self) -> dict[str, Any]:
        return {"scope": str(self.scope), "seconds": self.seconds, "origin": str(self.origin),
                "source": self.source}


@dataclass(frozen=True)
class TimeLimits:
    cell: TimeLimit
    notebook: TimeLimit

    @classmethod
    def of(cls, cell_seconds: float, notebook_seconds: float, toml: Path,
           option: float | None = None, cell_option: float | None = None) -> TimeLimits:
        """The spec's two limits, each replaced by its option when given: --timeout alone
        cannot let one long cell run (a 10-epoch fit on the full dataset), so the cell's
        limit has an option of its own."""
        notebook = TimeLimit.from_option(option) if option else \
            TimeLimit.from_spec(Scope.NOTEBOOK, notebook_seconds, toml)
        cell = TimeLimit.from_option(cell_option, Scope.CELL) if cell_option else \
            TimeLimit.from_spec(Scope.CELL, cell_seconds, toml)
        return cls(cell, notebook)

    def binding(self, remaining: float) -> TimeLimit:
        """The limit that stops the next cell: the notebook's once less of it remains than a
        cell may take."""
        return self.notebook if remaining < self.cell.seconds else self.cell


def _shown(path: Path) -> str:
    """Relative to the project when inside it: the path a TA would edit."""
    try:
        return str(path.resolve().relative_to(course_root()))
    except ValueError:
        return str(path)
