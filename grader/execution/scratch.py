"""A private copy of the submission's folder for the kernel to run in."""

from __future__ import annotations

import os
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
            elif item.is_dir() and item.name not in {"grader-report", "__pycache__"} \
                    and not dest.resolve().is_relative_to(item.resolve()):
                # (A notebook saved straight in /tmp has the scratch folder itself as a sibling.)
                counted = _size_within(item, budget, files - 1)
                if counted is not None:
                    shutil.copytree(item, dest / item.name, symlinks=True)
                    budget, files = budget - counted[0], files - counted[1] - 1
        except OSError:
            continue  # an unreadable sibling is not the student's grade


def _size_within(folder: Path, budget: int, files: int) -> tuple[int, int] | None:
    """(bytes, entries) under `folder`, or None as soon as either exceeds what is left: a big
    sibling folder (a notebook in a home or /tmp) is given up without walking all of it."""
    size = count = 0
    stack = [folder]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                count += 1
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    size += entry.stat(follow_symlinks=False).st_size
                if size > budget or count > files:
                    return None
    return size, count
