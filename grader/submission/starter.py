"""Is a submission the starter notebook as handed out? (summary.html flags such students.)

Only code is compared: outputs, markdown, metadata and blank lines are what running the starter
or opening it in Colab changes, not what a student wrote. A notebook counts as unchanged when its
non-empty code cells are, in order, the starter's, each compared line by line without trailing
spaces and blank lines.
"""

from __future__ import annotations

from pathlib import Path

import nbformat


def code_cells(nb: nbformat.NotebookNode) -> list[str]:
    """The notebook's code, normalised: one string per non-empty code cell."""
    cells = []
    for cell in nb.get("cells") or []:
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source") or ""
        if isinstance(source, list):  # nbformat keeps a list when read without normalising
            source = "".join(source)
        lines = [line.rstrip() for line in str(source).replace("\r\n", "\n").split("\n")]
        text = "\n".join(line for line in lines if line)
        if text:
            cells.append(text)
    return cells


def unchanged(nb: nbformat.NotebookNode | None, starter: Path) -> bool | None:
    """True when `nb`'s code is the starter's; None when either cannot be read."""
    if nb is None:
        return None
    try:
        original = nbformat.read(str(starter), as_version=4)
    except Exception:  # noqa: BLE001 - a missing or broken starter: we cannot tell
        return None
    return code_cells(nb) == code_cells(original)
