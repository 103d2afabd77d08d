"""OUT/<student>/feedback/: what a TA hands back to a student, and nothing else: report.html
and the notebook as the grader's kernel ran it, with a note before each cell that failed.

The executed notebook comes back from the grading process (grader/batch/worker.py writes it
beside its result; pipeline.grade's `executed_to`). Its outputs were written by the student's
code, so it is untrusted: it is read bounded (worker_process.MAX_EXECUTED_BYTES) and validated
with nbformat here, and the notes quote its text in code blocks, never as Markdown or HTML. It
holds nothing hidden: the kernel never had the holdout images or labels nor the reference, and
the grader's harvest cell is removed before the notebook leaves the runner. Its outputs are only
that run's: the ones the notebook was saved with are cleared first, so a cell the grader did
not run shows none (and a note says why, before the first such cell).
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

from ..result import CellError, GradeResult
from ..scoring import RunStatus

FOLDER = "feedback"
NOTE_TAG = "grader-note"
MAX_QUOTED = 3000  # characters of an error message quoted in a note
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def read_executed(data: bytes | None) -> nbformat.NotebookNode | None:
    """The executed notebook, if it is a valid nbformat 4 notebook; otherwise None."""
    if not data:
        return None
    try:
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
        nbformat.validate(nb)
    except Exception:  # noqa: BLE001 - whatever is wrong with it, the student gets no copy
        return None
    return nb


def notebook_name(result: GradeResult) -> str:
    """The file name the student gave the notebook (discovery only finds *.ipynb files)."""
    name = Path(result.notebook).name
    return name if name.endswith(".ipynb") and not name.startswith(".") else "notebook.ipynb"


def annotated(data: bytes | None, result: GradeResult) -> str | None:
    """The executed notebook with the grader's notes, as JSON text; None when there is none."""
    nb = read_executed(data)
    if nb is None:
        return None
    notes: dict[int, list[str]] = {}
    for error in result.cell_errors:
        if error.cell < len(nb.cells):
            notes.setdefault(error.cell, []).append(_error_note(error))
    stop = _first_cell_not_run(nb)
    if stop is not None and result.status in (RunStatus.TIMEOUT, RunStatus.KERNEL_DIED):
        notes.setdefault(stop, []).insert(0, _not_run_note(result.execution.message or ""))
    for index in sorted(notes, reverse=True):
        nb.cells.insert(index, _note_cell(nb, "\n\n".join(notes[index])))
    nb.cells.insert(0, _note_cell(nb, 
        "**Grader's note.** This is your notebook as the grader ran it: its outputs are the "
        "grader's run, not the ones you saved. The grader's notes (like this one) mark the cells "
        "that failed; your points, check by check, are in `report.html` beside this file."))
    return nbformat.writes(nb)


def _first_cell_not_run(nb: nbformat.NotebookNode) -> int | None:
    """The runner clears every code cell before running it, so a code cell with source and
    still no execution count was never run."""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and cell.source.strip() and \
                cell.get("execution_count") is None and not cell.get("outputs"):
            return index
    return None


def _quote(text: str) -> str:
    """Untrusted text as a fenced code block that it cannot close."""
    text = _CONTROL.sub("", _ANSI.sub("", text))[:MAX_QUOTED]
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def _error_note(error: CellError) -> str:
    count, line = error.execution_count, error.line
    parts = [f"`In [{count}]`"] * (count is not None) + [f"line {line}"] * (line is not None)
    where = f" ({', '.join(parts)})" if parts else ""
    quoted = f"{error.ename or 'Error'}: {error.evalue or ''}".rstrip(": ")
    hint = f"\n\n{_quote(error.hint)}" if error.hint else ""
    return (f"**Grader's note.** The cell below{where} raised an error when the grader ran it:"
            f"\n\n{_quote(quoted)}{hint}\n\nThe error costs no points by itself: points come only "
            "from the checks in `report.html`. Cells after it that use what it should have "
            "defined may fail too.")


def _not_run_note(message: str) -> str:
    return ("**Grader's note.** The grader did not run the cells from here on, so they have no "
            f"outputs:\n\n{_quote(message or 'the run stopped before them')}")


def _note_cell(nb: nbformat.NotebookNode, text: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_markdown_cell(text, metadata={"tags": [NOTE_TAG], "editable": False})
    if (nb.get("nbformat"), nb.get("nbformat_minor", 0)) < (4, 5):
        cell.pop("id", None)  # cell ids came with nbformat 4.5; older notebooks must not have one
    return cell
