"""Code similarity between notebooks, by copydetect (winnowed k-gram fingerprints of the code
with names, strings and comments filtered out), with the starter notebook as boilerplate.

A notebook's text is its code cells, each preceded by a comment line naming it (`# In [3]`),
which the filter drops: the fingerprints are those of the code alone, so renamed variables,
changed or removed comments and reformatting leave them as they were, and since fingerprints
are a set, so does reordering cells. Every k-gram of the starter's code is boilerplate
(copydetect's own way, a window of 1): what every student was given matches nothing.
"""

from __future__ import annotations

import functools
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
    from ..submission import notebook

    loaded = notebook.load(path)
    if loaded.error or loaded.node is None:
        return None
    return code_text(loaded.node)


def kgram_hashes(text: str, k: int) -> np.ndarray:
    """A fixed polynomial hash of every k-gram (int64). copydetect hashes them with Python's
    hash(), which is salted per process (PYTHONHASHSEED), so the fingerprints winnowing selects,
    and the figures, changed from run to run; this one gives the same every run."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    n = len(codes) - k + 1
    if n <= 0:
        return np.array([], dtype=np.int64)
    h = np.zeros(n, dtype=np.uint64)
    base = np.uint64(1_000_003)
    with np.errstate(over="ignore"):
        for j in range(k):
            h = h * base + codes[j:j + n]
    return h.view(np.int64)


@functools.lru_cache(maxsize=1024)
def _filtered(text: str) -> tuple[str, np.ndarray]:
    """copydetect's filter of Python code (most of a fingerprint's cost: pygments), once per
    text: each notebook is fingerprinted up to three times (with the starter as boilerplate,
    with the class's common code too, and whole)."""
    from copydetect.utils import filter_code

    logging.getLogger().disabled, was = True, logging.getLogger().disabled
    try:
        return filter_code(text, "notebook.py", "python")
    finally:
        logging.getLogger().disabled = was


def _fingerprint(text: str, noise: int, window: int, boilerplate: Any = None) -> Any:
    """copydetect's CodeFingerprint of `text` as Python, built as its constructor does (its
    filter, winnowing, boilerplate removal and token coverage) with kgram_hashes' hashes."""
    from copydetect import CodeFingerprint
    from copydetect.utils import get_token_coverage, winnow

    filtered, offsets = _filtered(text)
    hashes, idx = winnow(kgram_hashes(filtered, noise), window_size=window,
                         remove_duplicates=False)
    if boilerplate is not None and len(boilerplate) > 0:
        keep = ~np.isin(hashes, boilerplate)
        hashes, idx = hashes[keep], idx[keep]
    by_hash: dict[Any, list[int]] = {}
    for value, i in zip(hashes, idx):
        by_hash.setdefault(value, []).append(i)
    fp = CodeFingerprint.__new__(CodeFingerprint)
    fp.filename, fp.raw_code, fp.filtered_code, fp.offsets = "notebook.py", text, filtered, offsets
    fp.hashes, fp.hash_idx, fp.k = set(hashes), by_hash, noise
    fp.token_coverage = get_token_coverage(by_hash, noise, len(filtered))
    return fp


def boilerplate(starter_text: str | None, noise: int) -> np.ndarray:
    """Every k-gram hash of the starter's code (copydetect's boilerplate: a window of 1)."""
    if not starter_text:
        return np.array([], dtype=np.int64)
    return np.array(sorted(_fingerprint(starter_text, noise, 1).hashes), dtype=np.int64)


def fingerprint(student: str, text: str, starter: np.ndarray | None, noise: int,
                guarantee: int) -> Notebook:
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
