"""What may leave the instructor's machine: the grader without any solution.

Students' workflows must be able to read a GitHub Action's repository, and whoever has a
Gradescope image can read its autograder zip. Grading needs only what `grader calibrate` wrote
(reference/<id>/expected.json, thresholds.json, designs.json, constraints.txt), never the
reference notebooks, so neither bundle carries one: `grading_files` selects the files, and
`solution_leaks` refuses any bundle holding a notebook under reference/ or a file that contains a
reference solution's own code under another name (a renamed copy, the code pasted into a .py).

`grader publish --out DIR` writes an action repository: action.yml at its root, the grader, and
each assignment's starter, spec and calibration files.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import nbformat

from ..submission import starter as starter_mod
from ..paths import PACKAGE_ROOT
from ..assignment import Assignment

# This grader's own checkout (its source, pyproject.toml, action files), wherever GRADER_HOME
# points the assignments.
SOURCE_ROOT = PACKAGE_ROOT

# What grading reads from reference/<id>/ (grader/assignment/__init__.py,
# grader/training/baselines.py, gradescope setup.sh).
CALIBRATION_FILES = ("expected.json", "thresholds.json", "designs.json", "constraints.txt")
# Besides grader/: what installing and running the grader (and the action) needs.
PROJECT_FILES = ("pyproject.toml", "README.md")
ACTION_FILES = ("action.yml", "action/grade.sh", "action/not_graded.py", "action/allow-userns.sh",
                "examples/classroom.yml")
MARKER = ".grader-publish.json"  # a folder `grader publish` wrote, safe to rewrite
# Grader source that holds an answer no file comparison finds: numpy-backprop's checks compute
# the expected values with the grader's own forward and backward pass.
SOLUTION_BEARING_SOURCE = {
    "grader/cleanroom/numpy_reference.py": "numpy-backprop (Homework 4, Part 1): the grader's "
                                           "own forward and backward pass, which its checks "
                                           "compare with"}
# Source that only those assignments' grading imports: left out of bundles without them.
ANSWER_SOURCE = {"grader/cleanroom/numpy_reference.py": {"numpy-backprop"},
                 "grader/checks/backprop_checks.py": {"numpy-backprop"},
                 "grader/cleanroom/numpy_run.py": {"numpy-backprop"}}
MIN_SOLUTION_LINE = 12  # characters: shorter lines (`H = sigmoid(Z1)`) are anyone's code
LEAK_SHARE = 0.5  # a file with half of a solution's own lines carries that solution


class PublishError(Exception):
    """The output folder is not ours to overwrite, or a bundle would carry a solution."""


def grading_files(assignments: list[Assignment]) -> dict[str, Path]:
    """Archive name → file: the grader's source and, per assignment, its starter, spec and
    calibration files. No reference notebook."""
    out: dict[str, Path] = {}
    needs = {a.id for a in assignments}
    for path in sorted((SOURCE_ROOT / "grader").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            name = path.relative_to(SOURCE_ROOT).as_posix()
            if ANSWER_SOURCE.get(name, needs) & needs:
                out[name] = path
    for name in PROJECT_FILES:
        out[name] = SOURCE_ROOT / name
    for assignment in assignments:
        for path in sorted(assignment.folder.rglob("*")):
            if path.is_file() and ".ipynb_checkpoints" not in path.parts:
                out[f"assignments/{assignment.id}/"
                    f"{path.relative_to(assignment.folder).as_posix()}"] = path
        for name in CALIBRATION_FILES:
            path = assignment.reference_dir / name
            if path.is_file():
                out[f"reference/{assignment.id}/{name}"] = path
    return out


@dataclass(frozen=True)
class Solution:
    """A reference notebook, as the leak check knows it."""

    path: Path
    sha: bytes
    own_lines: frozenset[str]  # its code lines the starter does not have


def solutions(assignments: list[Assignment]) -> list[Solution]:
    out = []
    for assignment in assignments:
        try:
            given = _lines(nbformat.read(str(assignment.starter), as_version=4))
        except Exception:  # noqa: BLE001 - no starter: every line of the solution is its own
            given = set()
        for path in (assignment.reference, *(nb for _, nb in assignment.reference_variants)):
            if not path.is_file():
                continue
            data = path.read_bytes()
            try:
                lines = _lines(nbformat.reads(data.decode("utf-8"), as_version=4))
            except Exception:  # noqa: BLE001 - not a notebook: compared by its bytes only
                lines = set()
            own = frozenset(l for l in lines - given if len(l) >= MIN_SOLUTION_LINE)
            out.append(Solution(path, data, own))
    return out


def _lines(nb: nbformat.NotebookNode) -> set[str]:
    return {line.strip() for cell in starter_mod.code_cells(nb) for line in cell.split("\n")
            if line.strip() and not line.strip().startswith("#")}


def solution_leaks(files: dict[str, bytes | Path], known: list[Solution]) -> list[str]:
    """Why each offending file may not be shipped (empty: the bundle carries no solution)."""
    problems = []
    for name, content in sorted(files.items()):
        data = content if isinstance(content, bytes) else content.read_bytes()
        if name.startswith("reference/") and name.endswith(".ipynb"):
            problems.append(f"{name}: a notebook under reference/")
            continue
        for solution in known:
            if data == solution.sha:
                problems.append(f"{name}: a copy of {solution.path.name}")
                break
            if len(solution.own_lines) >= 4 and _share(data, solution.own_lines) >= LEAK_SHARE:
                problems.append(f"{name}: holds the code of {solution.path.name}")
                break
    return problems


def _share(data: bytes, own: frozenset[str]) -> float:
    text = data.decode("utf-8", errors="replace")
    if text.lstrip().startswith("{"):  # a notebook (or JSON): compare its code, however stored
        try:
            lines = _lines(nbformat.reads(text, as_version=4))
        except Exception:  # noqa: BLE001 - other JSON: its lines as they are
            lines = {line.strip() for line in text.splitlines()}
    else:
        lines = {line.strip() for line in text.splitlines()}
    return len(own & lines) / len(own)


def check_no_solution(files: dict[str, bytes | Path], assignments: list[Assignment]) -> None:
    problems = solution_leaks(files, solutions(assignments))
    if problems:
        raise PublishError("refusing to write a bundle that carries a solution:\n  "
                           + "\n  ".join(problems))


def action_files(assignments: list[Assignment]) -> dict[str, Path]:
    out = grading_files(assignments)
    for name in ACTION_FILES:
        out[name] = SOURCE_ROOT / name
    return out


def publish(assignments: list[Assignment], target: Path) -> list[str]:
    """Write an action repository into `target` (empty, or one this command wrote before:
    its files are replaced, a .git folder is kept). Returns the names written."""
    files = action_files(assignments)
    check_no_solution(files, assignments)
    _clear(target)
    for name, path in files.items():
        dest = target / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest)
    (target / MARKER).write_text(json.dumps(
        {"assignments": [a.id for a in assignments], "files": sorted(files)}, indent=1) + "\n")
    return sorted(files)


def _clear(target: Path) -> None:
    if not target.exists():
        target.mkdir(parents=True)
        return
    if not target.is_dir():
        raise PublishError(f"{target} is a file, not a folder")
    entries = [p for p in target.iterdir() if p.name != ".git"]
    if entries and not (target / MARKER).is_file():
        raise PublishError(f"{target} is not empty and was not written by grader publish: give "
                           "an empty or new folder (a git checkout of the action repository "
                           "whose only content is .git is fine)")
    for entry in entries:
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def has_constraints(assignment: Assignment) -> bool:
    return (assignment.reference_dir / "constraints.txt").is_file()


def solution_bearing(files: list[str]) -> list[str]:
    """Warnings for grader source that is itself an answer (see SOLUTION_BEARING_SOURCE)."""
    return [f"{name} is {why}; anyone who can read this bundle can read it"
            for name, why in SOLUTION_BEARING_SOURCE.items() if name in files]
