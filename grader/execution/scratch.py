"""A private copy of the submission's folder for the kernel to run in."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

# Course material beside a notebook is copied; anything bigger (datasets, checkpoints) is not,
# so one student's 5 GB folder cannot fill the disk during a batch.
MAX_COPIED_BYTES = 200 * 2**20
# ... and few enough files that the copy never meets the kernel's file-count limit by itself
# (the default `files` is 10,000): a folder of 20,000 images is left out, not a grader error.
MAX_COPIED_FILES = 2_000


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
    budget, files = MAX_COPIED_BYTES, MAX_COPIED_FILES
    for item in sorted(submission.parent.iterdir()):
        if item == submission or item.suffix == ".ipynb" or item.name.startswith("."):
            continue
        try:
            if item.is_symlink():
                continue
            if item.is_file():
                size = item.stat().st_size
                if size <= budget and files >= 1:
                    shutil.copy2(item, dest / item.name)
                    budget, files = budget - size, files - 1
            elif item.is_dir() and item.name not in {"grader-report", "__pycache__"}:
                entries = list(item.rglob("*"))
                size = sum(f.stat().st_size for f in entries if f.is_file())
                if size <= budget and len(entries) + 1 <= files:
                    shutil.copytree(item, dest / item.name, symlinks=True)
                    budget, files = budget - size, files - len(entries) - 1
        except OSError:
            continue  # an unreadable sibling is not the student's grade
