"""Code similarity between notebooks, by copydetect (winnowed k-gram fingerprints of the code
with names, strings and comments filtered out), with the starter notebook as boilerplate.

A notebook's text is its code cells, each preceded by a comment line naming it (`# In [3]`),
which the filter drops: the fingerprints are those of the code alone, so renamed variables,
changed or removed comments and reformatting leave them as they were, and since fingerprints
are a set, so does reordering cells. Every k-gram of the starter's code is boilerplate
(copydetect's own way, a window of 1): what every student was given matches nothing.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

MAX_CODE_CHARS = 400_000  # of one notebook's code: a pasted dataset is not code to compare


@dataclass
class Notebook:
    """One student's code, fingerprinted."""

    student: str
    text: str  # the code cells, as compared and as shown
    fingerprint: Any  # copydetect.CodeFingerprint


@dataclass
class CodeMatch:
    a: str
    b: str
    similarity_a: float  # fraction of a's own (non-starter) code found in b
    similarity_b: float
    tokens: int  # filtered characters of a that match
    slices_a: list[tuple[int, int]]  # character spans of a's text that match b
    slices_b: list[tuple[int, int]]

    @property
    def similarity(self) -> float:
        return max(self.similarity_a, self.similarity_b)


def code_text(nb: Any) -> str:
    """The code cells of a notebook node, each after a comment naming it as Jupyter does."""
    parts = []
    count = 0
    for index, cell in enumerate(nb.get("cells") or [], start=1):
        if cell.get("cell_type") != "code":
            continue
        count += 1
        source = cell.get("source") or ""
        source = "".join(source) if isinstance(source, list) else str(source)
        if not source.strip():
            continue
        parts.append(f"# In [{count}] (cell {index})\n{source.rstrip()}\n")
    return "\n".join(parts)[:MAX_CODE_CHARS]


def read_code(path: Path) -> str | None:
    """A notebook file's code text, or None when it cannot be read as a notebook."""
    from .. import notebook

    loaded = notebook.load(path)
    if loaded.error or loaded.node is None:
        return None
    return code_text(loaded.node)


def _fingerprint(text: str, noise: int, window: int, boilerplate: Any = None) -> Any:
    from copydetect import CodeFingerprint

    logging.getLogger().disabled, was = True, logging.getLogger().disabled
    try:
        return CodeFingerprint("notebook.py", noise, window, boilerplate=boilerplate,
                               fp=io.StringIO(text), language="python")
    finally:
        logging.getLogger().disabled = was


def boilerplate(starter_text: str | None, noise: int) -> np.ndarray:
    """Every k-gram hash of the starter's code (copydetect's boilerplate: a window of 1)."""
    if not starter_text:
        return np.array([], dtype=np.int64)
    return np.array(sorted(_fingerprint(starter_text, noise, 1).hashes), dtype=np.int64)


def fingerprint(student: str, text: str, starter: np.ndarray, noise: int, guarantee: int
                ) -> Notebook:
    return Notebook(student, text, _fingerprint(text, noise, max(1, guarantee - noise + 1),
                                                starter))


def compare(a: Notebook, b: Notebook) -> CodeMatch:
    from copydetect import compare_files

    if not a.fingerprint.hashes or not b.fingerprint.hashes:
        return CodeMatch(a.student, b.student, 0.0, 0.0, 0, [], [])
    tokens, (sim_a, sim_b), (slices_a, slices_b) = compare_files(a.fingerprint, b.fingerprint)
    return CodeMatch(a.student, b.student, float(sim_a), float(sim_b), int(tokens),
                     _spans(slices_a), _spans(slices_b))


def _spans(slices: Any) -> list[tuple[int, int]]:
    arr = np.asarray(slices)
    if arr.ndim != 2 or arr.shape[1] == 0:
        return []
    return [(int(s), int(e)) for s, e in zip(arr[0], arr[1])]
