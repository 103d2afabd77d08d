"""Designs the measuring process trains while the notebook still runs.

The kernel exports a graded Keras model as its `fit()` starts (grader/kernel/head_start.py);
the measuring process, otherwise idle until the notebook's last cell, trains each such design
then. What the grader's training of a design gives depends on the design alone, as this process
reads it (architecture, loss, optimizer, input layout, pixel scaling) and on the budget, the
same for the whole grading; `design_key` is that. The final measurement of a model whose key
was trained early takes that result instead of training the same design again; any other model
is trained then, as it always was. Nothing of it outlives the process, which serves one
notebook: no result of one student's design can reach another's grading.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from ..scoring import TimedStatus

# The kernel's exports the watch trains, per graded name: its own cap
# (grader/kernel/head_start.py), enforced again here since the kernel's word is not ours.
MAX_PER_NAME = 3
_EXPORT_NAME = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)-(?P<n>[0-9]{1,3})\.keras")


def design_key(design: dict[str, Any], layout: tuple[int, ...], scaling: str) -> str:
    text = json.dumps([design, list(layout), scaling], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class Designs:
    """The designs trained so far in this process, by key, with their predictions' files."""

    def __init__(self) -> None:
        self._trained: dict[str, tuple[dict[str, Any], Path]] = {}

    def remember(self, key: str, timed: dict[str, Any], folder: Path) -> None:
        if timed.get("status") == TimedStatus.TRAINED:  # anything else is tried again at the end
            self._trained[key] = (dict(timed), folder / timed["predictions_file"])

    def knows(self, key: str) -> bool:
        return key in self._trained

    def recall(self, key: str, path: Path) -> dict[str, Any] | None:
        """The result trained for `key`, its predictions copied to `path`; None if not trained."""
        found = self._trained.get(key)
        if found is None:
            return None
        timed, predictions = found
        try:
            shutil.copyfile(predictions, path)
        except OSError:
            return None
        # `seconds` is what the grading waited for the training once the notebook was done.
        return {**timed, "predictions_file": path.name, "head_start": True, "seconds": 0.0}


class Watch:
    """The kernel's early exports for the timed objects, each trained once, in order."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.folder = Path(config["dir"])
        self.objects: dict[str, Any] = dict(config["objects"])  # name → input_shape hint
        self.training: dict[str, Any] = config["training"]
        self.images = Path(config["images"])
        self._done: set[str] = set()
        self._per_name: dict[str, int] = {}
        # The folder's mtime when last listed in full, and when: a kernel that floods the
        # folder costs a listing per change or per second, and a file written within the
        # mtime's tick after a listing waits a second at most.
        self._listed: tuple[int, float] | None = None

    def next_export(self) -> tuple[str, Path] | None:
        try:
            changed = self.folder.stat().st_mtime_ns
            if self._listed and self._listed[0] == changed and \
                    time.monotonic() - self._listed[1] < 1.0:
                return None
            entries = sorted(self.folder.iterdir(), key=lambda p: p.name)
        except OSError:
            return None
        for path in entries:
            match = _EXPORT_NAME.fullmatch(path.name)
            if path.name in self._done or match is None or match["name"] not in self.objects:
                continue
            self._done.add(path.name)
            name = match["name"]
            if self._per_name.get(name, 0) >= MAX_PER_NAME or path.is_symlink() or \
                    not path.is_file():
                continue
            self._per_name[name] = self._per_name.get(name, 0) + 1
            return name, path
        self._listed = (changed, time.monotonic())
        return None

    def step(self, train: Callable[[str, Path, "Watch"], None]) -> bool:
        """Train the next export, if there is one; False when there is none yet."""
        found = self.next_export()
        if found is None:
            return False
        train(*found, self)
        return True
