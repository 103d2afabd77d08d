"""Step 1: read and validate a submitted notebook. A bad file is a graded error, never a traceback."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import nbformat

# Notebooks larger than this are refused before parsing: a class's worth of 200 MB files
# would otherwise exhaust the grader's memory.
MAX_NOTEBOOK_BYTES = 100 * 1024 * 1024


@dataclass
class LoadedNotebook:
    path: Path
    sha256: str
    node: nbformat.NotebookNode | None  # None when invalid
    error: str | None = None

    @property
    def assignment_hint(self) -> str | None:
        """`metadata.grader.assignment`, which the starter notebooks carry."""
        if self.node is None:
            return None
        grader_meta = self.node.metadata.get("grader") or {}
        value = grader_meta.get("assignment") if isinstance(grader_meta, dict) else None
        return value if isinstance(value, str) else None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load(path: Path) -> LoadedNotebook:
    sha = file_sha256(path)
    size = path.stat().st_size
    if size == 0:
        return LoadedNotebook(path, sha, None, "the notebook file is empty")
    if size > MAX_NOTEBOOK_BYTES:
        return LoadedNotebook(path, sha, None, f"the notebook is {size / 2**20:.0f} MB, over the "
                              f"{MAX_NOTEBOOK_BYTES // 2**20} MB limit (clear its outputs)")
    text = path.read_bytes().decode("utf-8", errors="replace")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        return LoadedNotebook(path, sha, None, f"the file is not valid notebook JSON "
                              f"(line {exc.lineno}, column {exc.colno}: {exc.msg})")
    if not isinstance(raw, dict) or "cells" not in raw and "worksheets" not in raw:
        return LoadedNotebook(path, sha, None, "the file is JSON but not a Jupyter notebook")
    try:
        node = nbformat.reads(text, as_version=4)
    except Exception as exc:  # nbformat raises many types for malformed input
        return LoadedNotebook(path, sha, None, f"the notebook is not valid nbformat 4: {_one_line(exc)}")
    try:
        nbformat.validate(node)
    except nbformat.ValidationError as exc:
        return LoadedNotebook(path, sha, None, f"the notebook is not valid nbformat 4: {_one_line(exc)}")
    if not any(c.cell_type == "code" for c in node.cells):
        return LoadedNotebook(path, sha, node, "the notebook has no code cells")
    return LoadedNotebook(path, sha, node)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
