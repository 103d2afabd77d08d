"""Finding a worker's processes by their HOME, which lies in the worker's private folder."""

from __future__ import annotations

import os
import signal
from pathlib import Path


def kill_by_home_prefix(prefix: Path | str, exclude: set[int] | None = None) -> int:
    """SIGKILL every process whose HOME lies under `prefix`; returns how many."""
    needle = str(prefix).rstrip("/").encode()
    skip = {os.getpid(), *(exclude or ())}
    killed = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in skip:
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                env = fh.read().split(b"\0")
        except OSError:
            continue
        for item in env:
            if item.startswith(b"HOME=") and (item[5:] == needle or
                                             item[5:].startswith(needle + b"/")):
                try:
                    os.kill(int(entry), signal.SIGKILL)
                    killed += 1
                except OSError:
                    pass
                break
    return killed
