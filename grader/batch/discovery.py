"""Which notebook is each student's: a flat folder of notebooks, or one folder per student.

    submissions/alice.ipynb            → student "alice" (the file's stem)
    submissions/bob/hw4.ipynb          → student "bob" (the folder's name; GitHub Classroom's
    submissions/carol/work/hw4.ipynb     and nbgrader's exports), notebooks found at any depth

Both layouts may be mixed. Names starting with "." (and `.ipynb_checkpoints`, `__pycache__`) are
ignored, and so is the output folder when it sits inside the submissions folder. Anything else at
the top that is no student's submission is skipped with its reason (`scan(...).skipped`), never
a reason to refuse the batch: a file that is not a notebook, a link, a name that is not UTF-8,
and a student named like one of the batch's own files in OUT (`lms.csv.ipynb` → OUT/lms.csv/
would collide with OUT/lms.csv). The batch lists them; the others are graded.

A student folder with several notebooks: the candidates are narrowed, in this order, to
  1. those whose `metadata.grader.assignment` names the assignment being graded (the starter
     notebooks carry it, and students' copies keep it);
  2. among several still, those named like the assignment's starter notebook (`lenet5.ipynb`);
and when exactly one remains it is graded. Otherwise the student gets an error result
("ambiguous": every check 0 points, the message lists the notebooks), as does a folder without
any notebook ("no_notebook") and a student id that is both a file and a folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..scoring import RunStatus

SKIP_DIRS = {".ipynb_checkpoints", "__pycache__", "__MACOSX"}
MAX_HINT_BYTES = 100 * 2**20  # same limit as notebook.load: bigger files are not parsed here
# The batch's own files beside OUT/<student>/ folders: a student of the same name would collide.
OUTPUT_NAMES = frozenset({"grades.csv", "summary.html", "lms.csv", "canvas.csv"})


@dataclass
class Submission:
    student: str
    notebook: Path | None  # None: no gradable notebook (see error)
    layout: str  # "file" (flat folder) or "folder" (one folder per student)
    error: str | None = None
    status: RunStatus | None = None  # NO_NOTEBOOK | AMBIGUOUS (with error)
    candidates: list[Path] = field(default_factory=list)


@dataclass
class Skipped:
    """An entry of the submissions folder that is no student's submission, and why."""

    name: str
    reason: str


@dataclass
class Found:
    submissions: list[Submission]
    skipped: list[Skipped]


def assignment_hint(path: Path) -> str | None:
    """metadata.grader.assignment, read cheaply; None for anything unreadable."""
    try:
        if path.stat().st_size > MAX_HINT_BYTES:
            return None
        raw = json.loads(path.read_bytes().decode("utf-8", errors="replace"))
        value = raw.get("metadata", {}).get("grader", {}).get("assignment")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _visible(path: Path) -> bool:
    return not path.name.startswith(".") and path.name not in SKIP_DIRS


def _notebooks_under(folder: Path, exclude: Path | None) -> list[Path]:
    found = []
    stack = [folder]
    while stack:
        current = stack.pop()
        try:
            entries = sorted(current.iterdir())
        except OSError:
            continue
        for entry in entries:
            if not _visible(entry) or entry.is_symlink():
                continue
            if entry.is_dir():
                if exclude is None or entry.resolve() != exclude:
                    stack.append(entry)
            elif entry.suffix == ".ipynb" and entry.is_file():
                found.append(entry)
    return sorted(found)


def choose(candidates: list[Path], assignment_id: str | None, starter_name: str | None,
           base: Path | None = None) -> tuple[Path | None, str | None]:
    """The notebook to grade among a student's candidates, or (None, why not)."""
    if len(candidates) == 1:
        return candidates[0], None
    if not candidates:
        return None, "no notebook (.ipynb) found in the student's folder"
    pool = candidates
    if assignment_id:
        named = [p for p in pool if assignment_hint(p) == assignment_id]
        if named:
            pool = named
    if len(pool) > 1 and starter_name:
        same = [p for p in pool if p.name == starter_name]
        if same:
            pool = same
    if len(pool) == 1:
        return pool[0], None
    listed = ", ".join(str(p.relative_to(base) if base else p) for p in pool[:10]) + \
        (" …" if len(pool) > 10 else "")
    return None, (f"{len(pool)} notebooks and none singled out: {listed}. Keep one notebook, or "
                  f"set metadata.grader.assignment = {assignment_id!r} in the one to grade")


def discover(root: Path, assignment_id: str | None = None, starter_name: str | None = None,
             exclude: Path | None = None) -> list[Submission]:
    """Every student under `root`, sorted by id; `exclude` (the output folder) is skipped."""
    return scan(root, assignment_id, starter_name, exclude).submissions


def scan(root: Path, assignment_id: str | None = None, starter_name: str | None = None,
         exclude: Path | None = None) -> Found:
    """Every student under `root`, sorted by id, and what was skipped at the top and why."""
    exclude = exclude.resolve() if exclude is not None else None
    files: dict[str, Path] = {}
    folders: dict[str, Path] = {}
    skipped: list[Skipped] = []
    for entry in sorted(root.iterdir()):
        if not _visible(entry) or _is_output(entry, exclude):
            continue
        why = why_skipped(entry)
        if why:
            skipped.append(Skipped(shown_name(entry.name), why))
        elif entry.is_dir():
            folders[entry.name] = entry
        else:
            files[entry.stem] = entry
    subs = []
    for student in sorted(set(files) | set(folders)):
        if student in files and student in folders:
            subs.append(Submission(student, None, "folder", status=RunStatus.AMBIGUOUS, error=(
                f"both {files[student].name} and the folder {student}/ exist for this student; "
                "keep one"), candidates=[files[student]]))
        elif student in files:
            subs.append(Submission(student, files[student], "file", candidates=[files[student]]))
        else:
            candidates = _notebooks_under(folders[student], exclude)
            chosen, why = choose(candidates, assignment_id, starter_name, folders[student])
            status = None if chosen else (RunStatus.NO_NOTEBOOK if not candidates else
                                         RunStatus.AMBIGUOUS)
            subs.append(Submission(student, chosen, "folder", why, status, candidates))
    return Found(subs, skipped)


def _is_output(entry: Path, exclude: Path | None) -> bool:
    try:
        return exclude is not None and entry.resolve() == exclude
    except (OSError, RuntimeError):  # a link loop is no output folder
        return False


def why_skipped(entry: Path) -> str | None:
    """Why a visible top-level entry is no student's submission; None when it is one."""
    if shown_name(entry.name) != entry.name:  # OUT/<student>/ and the CSVs need a UTF-8 name
        return "its name is not valid UTF-8: rename it to grade it"
    if entry.is_symlink():
        return "a symbolic link (links are not followed): copy the notebook in to grade it"
    if entry.is_dir():
        student = entry.name
    elif not entry.is_file():
        return "not a regular file"
    elif entry.suffix != ".ipynb":
        return (f"its extension is {entry.suffix}, not .ipynb: rename it to grade it"
                if entry.suffix.lower() == ".ipynb" else "not a notebook (.ipynb)")
    else:
        student = entry.stem
    if student in OUTPUT_NAMES:
        return (f"named like the batch's own {student}, which it writes in the output folder "
                f"beside each student's folder: rename it to grade it")
    return None


def shown_name(name: str) -> str:
    """A file name as text a UTF-8 file can hold: bytes that are not UTF-8 (kept by Python as
    surrogates) become �, and so does any other lone surrogate."""
    try:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def assignment_hints(root: Path, exclude: Path | None = None) -> dict[str, int]:
    """How many notebooks under `root` name each assignment in their metadata."""
    exclude = exclude.resolve() if exclude is not None else None
    counts: dict[str, int] = {}
    for path in _notebooks_under(root, exclude):
        hint = assignment_hint(path)
        if hint:
            counts[hint] = counts.get(hint, 0) + 1
    return counts
