"""A Keras archive's sizes, read from its zip directory before Keras opens it.

A `.keras` file is a zip (config.json, metadata.json, model.weights.h5). The harvest caps its
size on disk (grader/harvest/artifacts.py), but deflate turns 3 GiB of one repeated byte into
3 MB, and Keras reads config.json whole into memory: the measuring process would run out of
memory on it, and the student would see no reason. So each member's declared size is held to a
cap before anything is inflated. The declared size is what gets read: zipfile stops inflating a
member there (and fails its CRC check if it held more).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from ..harvest.artifacts import MAX_EXPORT_BYTES

MAX_JSON_BYTES = 16 * 2**20  # config.json, metadata.json: a large CNN's config is ~100 kB
# Weights barely compress (random floats), so a real archive inflates to about its own size.
MAX_INFLATED_BYTES = 2 * MAX_EXPORT_BYTES
MAX_MEMBERS = 64  # Keras writes three files, and a few more for layers with assets


def check(path: Path) -> None:
    """Raises ValueError, naming the member, its sizes and the cap, when the archive at `path`
    would inflate beyond what the grader reads. A file that is not a zip is left to Keras, which
    says so itself."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError):
        return
    if len(members) > MAX_MEMBERS:
        raise ValueError(f"the exported model's archive holds {len(members):,} files; a Keras "
                         f"archive holds a handful, and the grader opens at most {MAX_MEMBERS}")
    for info in members:
        if info.filename.endswith(".json") and info.file_size > MAX_JSON_BYTES:
            raise ValueError(_refusal(f"its {info.filename}", info.file_size,
                                      info.compress_size, MAX_JSON_BYTES))
    total = sum(info.file_size for info in members)
    if total > MAX_INFLATED_BYTES:
        raise ValueError(_refusal("the archive", total, path.stat().st_size, MAX_INFLATED_BYTES))


def _refusal(what: str, inflated: int, compressed: int, cap: int) -> str:
    return (f"the exported model was not loaded: {what} inflates to {size(inflated)} from "
            f"{size(compressed)} compressed, and the grader reads at most {size(cap)}")


def size(n: int) -> str:
    """Bytes for a reader: 3.0 GiB, 16 MiB, 812 bytes."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} bytes"
