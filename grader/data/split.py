"""The student's subset and the grader's private holdout, fixed by a seed.

Subset mode: `train_per_class` training and `test_per_class` test images per class. The holdout
is `holdout_per_class` images per class from the *training* split, disjoint from what the
notebook gets. Full mode gives the notebook everything except the holdout, so the holdout stays
private either way. The grader's own training of a design uses the subset's training images in
both modes (`graders_training`): its bars were calibrated there, and the check says so.

The seed in assignment.toml, which students receive, fixes what the notebook gets. Which images
form the holdout is fixed by a second, instructor-side secret (`holdout_secret`, from
GRADER_HOLDOUT_SECRET): with it, the holdout cannot be recomputed from the public files and the
public seed. Without it the holdout is the seed's own draw, as calibration uses.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..scoring import DataMode
from .sources import Dataset

Pair = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Split:
    train: Pair
    test: Pair
    holdout: Pair
    graders_training: Pair  # the subset's training images, whatever the notebook gets

    def write_student_npz(self, path: Path) -> None:
        """What the notebook's load_data() returns; the holdout never goes in it."""
        np.savez(path, x_train=self.train[0], y_train=self.train[1],
                 x_test=self.test[0], y_test=self.test[1])

    def write_graders_training_npz(self, path: Path) -> None:
        """What the grader trains designs on itself (grader/training), in load_data()'s keys."""
        np.savez(path, x_train=self.graders_training[0], y_train=self.graders_training[1])


class SplitError(ValueError):
    pass


def _per_class(labels: np.ndarray, rng: np.random.Generator, counts: list[int]) -> list[np.ndarray]:
    """For each count, that many indices per class, disjoint across counts, kept in file order."""
    picked: list[list[np.ndarray]] = [[] for _ in counts]
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        if sum(counts) > len(members):
            raise SplitError(f"class {cls} has {len(members)} images; the split asks for "
                             f"{sum(counts)}")
        start = 0
        for slot, count in enumerate(counts):
            picked[slot].append(members[start:start + count])
            start += count
    return [np.sort(np.concatenate(parts)) for parts in picked]


def _secret_holdout(labels: np.ndarray, train_idx: np.ndarray, per_class: int, secret: str
                    ) -> np.ndarray:
    """`per_class` images per class outside the student's subset, drawn with the secret."""
    digest = hashlib.sha256(f"grader-holdout:{secret}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "big"))
    rest = np.ones(len(labels), dtype=bool)
    rest[train_idx] = False
    picked = [rng.choice(np.flatnonzero(rest & (labels == cls)), per_class, replace=False)
              for cls in np.unique(labels)]
    return np.sort(np.concatenate(picked))


def make_split(dataset: Dataset, *, seed: int, train_per_class: int, test_per_class: int,
               holdout_per_class: int, mode: DataMode = DataMode.SUBSET,
               holdout_secret: str | None = None) -> Split:
    rng = np.random.default_rng(seed)
    x_train, y_train = dataset.train
    x_test, y_test = dataset.test
    holdout_idx, train_idx = _per_class(y_train, rng, [holdout_per_class, train_per_class])
    if holdout_secret:
        holdout_idx = _secret_holdout(y_train, train_idx, holdout_per_class, holdout_secret)
    subset = (x_train[train_idx], y_train[train_idx])
    if DataMode(mode) is DataMode.FULL:
        whole = np.setdiff1d(np.arange(len(y_train)), holdout_idx)
        train, test_idx = (x_train[whole], y_train[whole]), np.arange(len(y_test))
    else:
        train, (test_idx,) = subset, _per_class(y_test, rng, [test_per_class])
    return Split(train=train, test=(x_test[test_idx], y_test[test_idx]),
                 holdout=(x_train[holdout_idx], y_train[holdout_idx]), graders_training=subset)
