"""What every check may read: harvested objects, the reference's expectations, private labels."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..harvest.artifacts import HarvestedObject
from ..result import CheckResult
from ..assignment import CheckSpec

if TYPE_CHECKING:  # only a type here: importing the runner loads nbclient into every check
    from ..execution.runner import ExecutionRecord


class Unavailable(Exception):
    """What a check needs is missing (no such variable, nothing harvested): zero, with the why."""


def guarded(fn: Callable[[CheckSpec, "GradingContext"], CheckResult]):
    """A check that may raise Unavailable; the student gets 0 points and its message."""
    @functools.wraps(fn)
    def wrapper(spec: CheckSpec, ctx: "GradingContext") -> CheckResult:
        try:
            return fn(spec, ctx)
        except Unavailable as exc:
            return CheckResult.scored(spec, 0.0, str(exc))
    return wrapper


@dataclass
class GradingContext:
    objects: dict[str, HarvestedObject]
    expected: dict[str, Any]  # reference/<id>/expected.json
    thresholds: dict[str, Any]  # reference/<id>/thresholds.json
    execution: ExecutionRecord
    holdout_labels: np.ndarray | None = None
    holdout_images: np.ndarray | None = None
    notebook: Any = None  # the submitted nbformat.NotebookNode, for checks that read its source
    notes: dict[str, Any] = field(default_factory=dict)

    def expected_object(self, name: str) -> dict[str, Any]:
        return (self.expected.get("objects") or {}).get(name) or {}

    def threshold(self, name: str, metric: str) -> dict[str, Any]:
        return ((self.thresholds.get("objects") or {}).get(name) or {}).get(metric) or {}

    def why_missing(self, name: str) -> str:
        """A student-readable reason an object is unavailable, with the first cell error."""
        obj = self.objects.get(name)
        status = obj.status if obj else "not_harvested"
        if status == "missing":
            reason = f"no variable `{name}`: the notebook never defined it"
        elif status == "wrong_type":
            reason = f"`{name}` is a {obj.type}, not a Keras model or a PyTorch module"
        elif status == "error":
            reason = f"`{name}` could not be inspected: {obj.message}"
        else:
            reason = obj.message if obj and obj.message else f"`{name}` could not be harvested"
            if self.execution.message:
                reason = f"{reason} ({self.execution.message})"
            return reason
        errors = self.execution.cell_errors
        if errors:
            # The cell that should have bound the name, if one raised; else the first error.
            binding = [e for e in errors if self._binds(e.cell, name)]
            cause = binding[-1] if binding else errors[0]
            reason += (f" (cell {cause.cell + 1} raised {cause.ename}"
                       f"{': ' + cause.evalue[:120] if cause.evalue else ''})")
        return reason

    def _binds(self, index: int, name: str) -> bool:
        """Whether code cell `index` of the notebook assigns `name` (read with ast, not run)."""
        import ast

        cells = getattr(self.notebook, "cells", None) or []
        if not 0 <= index < len(cells):
            return False
        source = str(cells[index].get("source", ""))
        source = "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                           for line in source.replace("\r\n", "\n").split("\n"))
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError):
            return False
        return any(isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Store)
                   for n in ast.walk(tree))
