"""Finding and killing a process tree by parent links (/proc/PID/stat), as a subreaper sees it.

grader/execution/launch.py makes itself a child subreaper (PR_SET_CHILD_SUBREAPER): a process of
its tree that double-forks, calls setsid or empties its environment is re-parented to the
launcher, never to init, so "every descendant of the launcher" is the whole tree.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Callable


def parents() -> dict[int, int]:
    """pid → parent pid of every live process visible in /proc (zombies are left out: a
    SIGKILL cannot remove them, their parent's wait does)."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) > 1 and fields[0] != b"Z":
            table[int(entry)] = int(fields[1])
    return table


def descendants(root: int) -> list[int]:
    """Every process below `root`, parents before their children."""
    children: dict[int, list[int]] = {}
    for pid, ppid in parents().items():
        children.setdefault(ppid, []).append(pid)
    found, queue = [], list(children.get(root, ()))
    while queue:
        pid = queue.pop(0)
        found.append(pid)
        queue.extend(children.get(pid, ()))
    return found


def kill_until_none(find: Callable[[], list[int]], timeout: float = 10.0) -> int:
    """SIGKILL what `find` returns, again and again, until it returns nothing (or `timeout`
    passes): a process may start another while its siblings are being killed. Returns how
    many were killed."""
    killed = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = find()
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except OSError:
                pass
        time.sleep(0.01)
    return killed


def kill_tree(root: int, *, include_root: bool = True, timeout: float = 10.0) -> int:
    """SIGKILL everything below `root` until nothing is left, then `root`; returns how many.

    The root goes last: while it lives, the orphans of killed processes come back to it (a
    subreaper) and are found on the next round instead of escaping to init."""
    killed = kill_until_none(lambda: list(reversed(descendants(root))), timeout)
    if include_root:
        try:
            os.kill(root, signal.SIGKILL)
            killed += 1
        except OSError:
            pass
    return killed
