"""A private copy of the submission's folder for the kernel to run in."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

# Course material beside a notebook is copied; anything bigger (datasets, checkpoints) is not,
# so one student's 5 GB folder cannot fill the disk during a batch.
MAX_COPIED_BYTES = 200 * 2**20


@dataclass
class Scratch:
    root: Path  # removed when grading ends
    work: Path  # the kernel's working directory; boot.py copies the submission into it
    home: Path  # the kernel's private HOME
    private: Path  # the grader's files (kernel config, holdout images); never the cwd
    submission: Path  # the copy of the submission's folder, read-only to the kernel
    tmp: Path  # the kernel's TMPDIR

    @property
    def notebook_name(self) -> str:
        return "submission.ipynb"

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def create(submission: Path) -> Scratch:
    root = Path(tempfile.mkdtemp(prefix="grader-"))
    scratch = Scratch(root, root / "work", root / "home", root / "private", root / "submission",
                      root / "tmp")
    for folder in (scratch.work, scratch.home, scratch.private, scratch.submission, scratch.tmp):
        folder.mkdir()
    _copy_siblings(submission, scratch.submission)
    return scratch


def _copy_siblings(submission: Path, dest: Path) -> None:
    """Copy the files next to the notebook, except other notebooks (other students' work)."""
    budget = MAX_COPIED_BYTES
    for item in sorted(submission.parent.iterdir()):
        if item == submission or item.suffix == ".ipynb" or item.name.startswith("."):
            continue
        try:
            if item.is_symlink():
                continue
            if item.is_file():
                size = item.stat().st_size
                if size <= budget:
                    shutil.copy2(item, dest / item.name)
                    budget -= size
            elif item.is_dir() and item.name not in {"grader-report", "__pycache__"}:
                size = sum(f.stat().st_size for f in item.rglob("*") if f.is_file())
                if size <= budget:
                    shutil.copytree(item, dest / item.name, symlinks=True)
                    budget -= size
        except OSError:
            continue  # an unreadable sibling is not the student's grade
