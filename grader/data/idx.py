"""The IDX format of (Fashion-)MNIST's original files, gzipped or not."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

_MAGIC_UBYTE = 0x08  # the third byte: element type unsigned byte


class IdxError(ValueError):
    pass


def read_idx(path: Path) -> np.ndarray:
    """Decode an IDX file into a uint8 array of its declared shape."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != _MAGIC_UBYTE:
        raise IdxError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    header = 4 + 4 * ndim
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(dims))
    if len(raw) - header != expected:
        raise IdxError(f"{path}: {len(raw) - header} data bytes, header says {expected}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)
