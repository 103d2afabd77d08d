"""Files a process the grader does not trust wrote while it may still be running (the kernel's
early exports and claims, a clean room's report).

A check of the path, then an open of it, leaves the writer time to swap in a link or a pipe in
between, and a pipe blocks whoever opens or reads it. So the path is opened without following a
link and without blocking, and the descriptor, not the path, must show a regular file under the
cap; only then is it read.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

MAX_JSON_BYTES = 2**20


def open_regular(path: Path, max_bytes: int) -> int | None:
    """A descriptor of `path` if it is a regular file of at most `max_bytes`; else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
    except OSError:
        info = None
    if info is None or not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
        os.close(fd)
        return None
    return fd


def read_json(path: Path, max_bytes: int = MAX_JSON_BYTES) -> dict[str, Any] | None:
    """The JSON object in `path`, or None unless it is a small regular file holding one."""
    fd = open_regular(path, max_bytes)
    if fd is None:
        return None
    try:
        loaded = json.loads(os.read(fd, max_bytes + 1))
    except (OSError, ValueError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return None
    finally:
        os.close(fd)
    return loaded if isinstance(loaded, dict) else None


def copy(path: Path, target: Path, max_bytes: int) -> bool:
    """`path` copied to a new file `target` the writer cannot reach, if it is a regular file of
    at most `max_bytes` (also while copying: it may grow); False, and no `target`, otherwise."""
    fd = open_regular(path, max_bytes)
    if fd is None:
        return False
    try:
        out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError:
        os.close(fd)
        return False
    copied, ok = 0, True
    try:
        while ok:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            copied += len(chunk)
            ok = copied <= max_bytes
            if ok:
                os.write(out, chunk)
    except OSError:
        ok = False
    finally:
        os.close(fd)
        os.close(out)
    if not ok:
        target.unlink(missing_ok=True)
    return ok
