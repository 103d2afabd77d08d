"""Clean-up after a batch worker: the processes its gradings started, whatever became of it.

Each process tree a worker starts runs confined (grader/execution/confine.py): in a cgroup named
after the worker's pid, as a uid leased with a lock the worker holds, under a launcher that
kills its tree when the worker dies. Once the worker is gone, `kill_by_home_prefix` sweeps all
three (cgroups of dead owners, uids whose lock nobody holds), and, as before, every process
whose HOME lies in the worker's private folder.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from ..execution import confine


def kill_by_home_prefix(prefix: Path | str, exclude: set[int] | None = None) -> int:
    """SIGKILL every process whose HOME lies under `prefix`, and every leftover of a grader
    that is no longer alive; returns how many processes or trees."""
    killed = confine.sweep_leftovers()
    needle = str(prefix).rstrip("/").encode()
    skip = {os.getpid(), *(exclude or ())}
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
