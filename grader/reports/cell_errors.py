"""Cell errors as a student reads them: which cell (`In [k]`, as Jupyter labels it), which of
their own lines, and which error to fix first.

Read from the traceback text IPython formatted (result.json's `cell_errors[].traceback`):

    Cell In[6], line 1                      <- a frame of the student's own code
    ----> 1 gradients, L = back_propagation(X, Y, weights)
    File .../keras/src/layers/input_spec.py:239, in assert_input_compatibility(...)
    --> 239     raise ValueError(               <- a library frame

The student's deepest frame says where their code went wrong. Only when the traceback holds
none (it was cut, or the error surfaced in a callback) does a view name the library frame the
error came from, preferring Keras's. A cell that fails leaves its variables undefined, so the
NameErrors after an error are most likely its consequence: the first error (or, when other
errors came between, the last one before them that is not a NameError) says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..result import CellError
from .text import clean

_STUDENT = re.compile(r"^\s*Cell In\[(\d+)\], line (\d+)(?:, in (.+))?\s*$")
_LIBRARY = re.compile(r"^\s*File (.+?):(\d+)(?:, in (.+))?\s*$")
_ARROW = re.compile(r"^\s*-+>\s*(\d+)\s?(.*)$")
_KERAS_WRAPPER = "traceback_utils.py"  # Keras's re-raise, never where an error came from
_FRAMEWORKS = ("keras", "tensorflow", "numpy", "sklearn", "pandas")


@dataclass(frozen=True)
class Frame:
    where: str  # "In [5]" for the student's code, else the file (from the framework's folder)
    line: int | None
    function: str | None = None
    code: str | None = None  # the line's source, as the traceback shows it
    student: bool = False

    def describe(self) -> str:
        text = f"{self.where}, line {self.line}" if self.line else self.where
        return text + (f", in {self.function}" if self.function else "")


@dataclass
class ErrorView:
    label: str  # "In [6]" (or "cell 8" when the cell never got an execution count)
    cell: int | None  # 1-based position among all cells
    ename: str
    summary: str  # the error's most telling line
    entry_frame: Frame | None  # the failing cell's own line
    student_frame: Frame | None  # the deepest of the student's frames (maybe another cell's)
    origin: Frame | None  # a library frame: only when no student frame is known
    causes: int = 0  # NameErrors after this error that it likely caused
    caused_by: str | None = None  # for those NameErrors: the first error's label
    raw: CellError | None = None  # the error as result.json holds it

    @property
    def where(self) -> str:
        """`In [6] (cell 8), line 1` — the place a student looks for."""
        text = self.label + (f" (cell {self.cell})" if self.cell is not None else "")
        if self.entry_frame is not None and self.entry_frame.line:
            text += f", line {self.entry_frame.line}"
        return text

    @property
    def deeper(self) -> Frame | None:
        """The student's own frame in another cell the error was raised in, if any."""
        frame = self.student_frame
        return frame if frame is not None and frame != self.entry_frame else None


def frames(traceback: str) -> list[Frame]:
    """The traceback's frames, outermost first, each with the line it points at."""
    out: list[Frame] = []
    current: dict[str, Any] | None = None
    for line in clean(traceback, 100_000).splitlines():
        student, library = _STUDENT.match(line), _LIBRARY.match(line)
        if student or library:
            if current:
                out.append(Frame(**current))
            if student:
                current = {"where": f"In [{student.group(1)}]", "line": int(student.group(2)),
                           "function": _name(student.group(3)), "student": True}
            else:
                current = {"where": _short_path(library.group(1)),
                           "line": int(library.group(2)), "function": _name(library.group(3))}
            continue
        arrow = _ARROW.match(line)
        if arrow and current is not None and current.get("code") is None:
            current["code"] = arrow.group(2).strip()
            current["line"] = int(arrow.group(1))
    if current:
        out.append(Frame(**current))
    return out


def _name(function: str | None) -> str | None:
    """`back_propagation(X, Y_T, weights)` → `back_propagation`"""
    return re.sub(r"\(.*\)\s*$", "", function).strip() or None if function else None


def _short_path(path: str) -> str:
    """site-packages/keras/src/layers/input_spec.py → keras/src/layers/input_spec.py"""
    parts = path.replace("\\", "/").split("/")
    for i, part in enumerate(parts):
        if part in _FRAMEWORKS and i < len(parts) - 1:
            return "/".join(parts[i:])
    return path


def _origin(all_frames: list[Frame]) -> Frame | None:
    """The library frame an error came from: Keras's deepest (not its re-raise), else the last."""
    library = [f for f in all_frames if not f.student and not f.where.endswith(_KERAS_WRAPPER)]
    keras = [f for f in library if f.where.startswith("keras/")]
    return (keras or library or [None])[-1]


def summary(ename: Any, evalue: Any) -> str:
    """One line: Keras's "Exception encountered when calling X" hides the message after it."""
    lines = [line.strip() for line in clean(evalue, 4000).splitlines() if line.strip()]
    telling = [line for line in lines if not line.startswith("Exception encountered when")]
    return (telling or lines or [""])[0]


def views(cell_errors: list[CellError] | list[dict[str, Any]]) -> list[ErrorView]:
    """The cell errors as every report shows them (result.json's form is read as CellError)."""
    out = []
    for err in (CellError.model_validate(e) if isinstance(e, dict) else e for e in cell_errors):
        found = frames(err.traceback)
        mine = [f for f in found if f.student]
        count = err.execution_count
        cell = err.cell + 1
        label = f"In [{count}]" if count is not None else f"cell {cell}"
        entry = next((f for f in mine if f.where == label), None)
        out.append(ErrorView(label=label, cell=cell if count is not None else None,
                             ename=err.ename or "Error",
                             summary=summary(err.ename, err.evalue),
                             entry_frame=entry, student_frame=mine[-1] if mine else None,
                             origin=None if mine else _origin(found), raw=err))
    _link_causes(out)
    return out


def _link_causes(shown: list[ErrorView]) -> None:
    """Each NameError after the first error is put down to the last error before it that is
    not itself a NameError (a cell that failed half-way), else to the first error: a timed-out
    `sleep` in cell 2 is not why cell 9 lacks the `gradients` cell 8 failed to compute."""
    for i, view in enumerate(shown[1:], 1):
        if view.ename != "NameError":
            continue
        cause = next((v for v in reversed(shown[:i]) if v.ename != "NameError"), shown[0])
        cause.causes += 1
        view.caused_by = cause.label
