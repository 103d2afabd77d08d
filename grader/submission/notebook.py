"""Step 1: read and validate a submitted notebook. A bad file is a graded error, never a traceback."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

# Notebooks larger than this are refused before parsing: a class's worth of 200 MB files
# would otherwise exhaust the grader's memory.
MAX_NOTEBOOK_BYTES = 100 * 1024 * 1024

# What git writes into a file it could not merge: `<<<<<<< HEAD`, `=======`, `>>>>>>> branch`
# at the start of a line (a notebook's JSON never has them there).
_CONFLICT_MARKER = re.compile(r"^(<{7}|={7}|>{7})(?=\s|$)", re.MULTILINE)
# metadata.grader.assignment, read from text that is not JSON (a conflicted notebook).
_HINT_IN_TEXT = re.compile(r'"grader"\s*:\s*\{\s*"assignment"\s*:\s*"([\w.-]+)"')


@dataclass
class LoadedNotebook:
    path: Path
    sha256: str
    node: nbformat.NotebookNode | None  # None when invalid
    error: str | None = None
    text_hint: str | None = None  # the assignment named in a file that is not valid JSON

    @property
    def assignment_hint(self) -> str | None:
        """`metadata.grader.assignment`, which the starter notebooks carry."""
        if self.node is None:
            return self.text_hint
        grader_meta = self.node.metadata.get("grader") or {}
        value = grader_meta.get("assignment") if isinstance(grader_meta, dict) else None
        return value if isinstance(value, str) else None


def _accept_cell_ids(node: nbformat.NotebookNode) -> None:
    """Cell ids arrived in nbformat 4.5, but VS Code and jupytext write them into files that
    declare an older minor version: the notebook is fine, its version number is not."""
    if node.get("nbformat_minor", 0) < 5 and any("id" in c for c in node.get("cells", [])):
        node["nbformat_minor"] = 5


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
        conflict = _CONFLICT_MARKER.search(text)
        if conflict:
            return LoadedNotebook(path, sha, None, _conflict_message(text, conflict, path.name),
                                  text_hint=_hint_in_text(text))
        return LoadedNotebook(path, sha, None, f"the file is not valid notebook JSON "
                              f"(line {exc.lineno}, column {exc.colno}: {exc.msg})")
    if not isinstance(raw, dict) or "cells" not in raw and "worksheets" not in raw:
        return LoadedNotebook(path, sha, None, "the file is JSON but not a Jupyter notebook")
    try:
        node = nbformat.reads(text, as_version=4)
    except Exception as exc:  # nbformat raises many types for malformed input
        return LoadedNotebook(path, sha, None, f"the notebook is not valid nbformat 4: {_one_line(exc)}")
    _accept_cell_ids(node)
    try:
        nbformat.validate(node)
    except nbformat.ValidationError as exc:
        return LoadedNotebook(path, sha, None, f"the notebook is not valid nbformat 4: {_one_line(exc)}")
    if not any(c.cell_type == "code" for c in node.cells):
        return LoadedNotebook(path, sha, node, "the notebook has no code cells")
    return LoadedNotebook(path, sha, node)


def _conflict_message(text: str, first: re.Match[str], name: str) -> str:
    line = text.count("\n", 0, first.start()) + 1
    return (f"the notebook contains unresolved git merge-conflict markers (<<<<<<<, =======, "
            f">>>>>>>; the first at line {line}), so it is not valid notebook JSON: resolve the "
            f"conflict (keep one version, e.g. `git checkout --ours -- {name}`, or merge with "
            f"nbdime), then submit again")


def _hint_in_text(text: str) -> str | None:
    """The assignment a conflicted notebook names, when both sides of the conflict agree."""
    names = set(_HINT_IN_TEXT.findall(text))
    return names.pop() if len(names) == 1 else None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
