"""Seconds the similarity report adds to a batch: `python3 bench/similarity_scale.py [N ...]`
(default 12 and 300) writes N synthetic graded submissions of fashion-mlp into a temporary
output folder (notebooks built from tests/similarity_class.py's styles, the reference's design,
independent weights and holdout labels of 2,000 images, two pairs of copies) and times
grader.similarity.build.write on it, as `grader grade` calls it once the class is graded.

The figure is the time, not a false-positive rate: the synthetic class has 25 styles, so past
25 students several share a style's cells (with their own numbers) and are rightly flagged.
Each size is also timed for a class with one code and one set of weights (every pair's models
match and the same code explains it: the worst case of the same-code rule).
"""

from __future__ import annotations

import itertools
import re
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from grader import assignment as spec  # noqa: E402
from grader.similarity.build import write  # noqa: E402
from similarity_class import (REFERENCE_LAYERS, holdout_predictions,  # noqa: E402
                              honest_cells, notebook, renamed_and_reordered, trained_weights,
                              write_student)


def own_numbers(cells: list[str], i: int) -> list[str]:
    """Each student's own numbers (epochs, sizes, seeds, ...): the styles are shared, the
    numbers in them are not, as in a real class."""
    count = iter(range(10**6))
    return [re.sub(r"\b\d+\b", lambda m: str(int(m.group()) + (i * 7 + next(count)) % 13),
                   cell) for cell in cells]


def make_class(n: int, root: Path) -> dict[str, Path]:
    """n students: student000 and student001 share code (renamed, reordered), student002 and
    student003 the same trained weights; the rest honest."""
    fashion = spec.load("fashion-mlp")
    rng = np.random.default_rng(n)
    labels = rng.integers(0, 10, 2000)
    out, subs = root / "out", root / "subs"
    subs.mkdir(parents=True)
    notebooks = {}
    copied = trained_weights(rng), holdout_predictions(rng, labels)
    rows = [(x, y) for y in range(5) for x in range(5)]
    first: list[str] = []
    for i in range(n):
        cells = own_numbers(honest_cells(*rows[i % 25]), i)
        if i == 0:
            first = cells
        if i == 1:
            cells = renamed_and_reordered(first)
        student = f"student{i:03d}"
        path = subs / f"{student}.ipynb"
        nbformat.write(notebook(fashion.starter, cells), str(path))
        notebooks[student] = path
        weights, predictions = copied if i in (2, 3) else (trained_weights(rng),
                                                          holdout_predictions(rng, labels))
        write_student(out, student, f"sha{i}", REFERENCE_LAYERS, weights, predictions)
    return notebooks


def identical_class(n: int, root: Path) -> dict[str, Path]:
    """n students with one code and one set of trained weights: every pair's models match, and
    the same code explains it (the same-code rule's worst case)."""
    fashion = spec.load("fashion-mlp")
    rng = np.random.default_rng(0)
    weights, predictions = trained_weights(rng), holdout_predictions(
        rng, rng.integers(0, 10, 2000))
    (root / "subs").mkdir(parents=True)
    notebooks = {}
    for i in range(n):
        student = f"student{i:03d}"
        path = root / "subs" / f"{student}.ipynb"
        nbformat.write(notebook(fashion.starter, honest_cells(1, 2)), str(path))
        notebooks[student] = path
        write_student(root / "out", student, f"sha{i}", REFERENCE_LAYERS, weights, predictions)
    return notebooks


def main(sizes: list[int]) -> None:
    fashion = spec.load("fashion-mlp")
    for n, build in itertools.product(sizes, (make_class, identical_class)):
        with tempfile.TemporaryDirectory() as tmp:
            notebooks = build(n, Path(tmp))
            started = time.monotonic()
            written = write(Path(tmp) / "out", fashion, notebooks)
            seconds = time.monotonic() - started
            print(f"{n} submissions{' (identical)' if build is identical_class else ''}: "
                  f"{seconds:.2f} s, {written.flagged} pair(s) flagged, "
                  f"{written.analysis.compared_code} pair(s) compared by copydetect "
                  f"of {n * (n - 1) // 2}", flush=True)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [12, 300])
