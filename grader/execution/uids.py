"""An unprivileged uid of its own for each process tree, when the grader runs as root.

Root ignores RLIMIT_NPROC and may read and write anything; a uid that nothing else on the machine
uses makes RLIMIT_NPROC an exact budget for one tree, lets the grader find and kill every process
of that tree by its uid, and keeps the tree away from files it was not given. Each uid is held
with a lock file (flock) while its tree lives, so the kernels of a parallel batch never share a
budget; a uid whose lock is free has no live owner, and any process still running as it is a
leftover of a grader that died, killed before the uid is handed out again.

The range is far above the usual login and subordinate-id ranges; GRADER_UID_BASE and
GRADER_UID_COUNT move it.
"""

from __future__ import annotations

import fcntl
import os
import random
from dataclasses import dataclass
from pathlib import Path

from . import processes

UID_BASE = int(os.environ.get("GRADER_UID_BASE", "2100000000"))
UID_COUNT = int(os.environ.get("GRADER_UID_COUNT", "4096"))
LOCK_DIRS = (Path("/run/dl-grader/uids"), Path("/tmp/dl-grader-uids"))


@dataclass
class UidLease:
    uid: int
    _lock_fd: int

    @property
    def gid(self) -> int:
        return self.uid  # a group of its own: it shares no group's files either

    def release(self) -> None:
        if self._lock_fd < 0:
            return
        kill_uid(self.uid)
        os.close(self._lock_fd)
        self._lock_fd = -1


def available() -> str | None:
    """None when uids can be leased here, else why not."""
    if os.geteuid() != 0:
        return "the grader does not run as root, so its processes already run unprivileged"
    if _lock_dir() is None:
        return "no folder for the uid locks (/run/dl-grader or /tmp/dl-grader-uids)"
    return None


def lease() -> UidLease | None:
    """A uid no other live process tree holds, or None when not root."""
    if available() is not None:
        return None
    folder = _lock_dir()
    assert folder is not None
    offsets = list(range(UID_COUNT))
    random.shuffle(offsets)  # parallel graders rarely race for the same lock
    for offset in offsets:
        uid = UID_BASE + offset
        fd = os.open(folder / str(uid), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        kill_uid(uid)  # leftovers of a grader that died holding it
        return UidLease(uid, fd)
    return None


def sweep_unowned() -> int:
    """Kill the processes of every uid of the range whose lock nobody holds (their grader
    died); returns how many uids were swept."""
    folder = _lock_dir() if os.geteuid() == 0 else None
    if folder is None:
        return 0
    running = {u for u in processes.uids_running() if UID_BASE <= u < UID_BASE + UID_COUNT}
    swept = 0
    for uid in running:
        fd = os.open(folder / str(uid), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # a live grader holds it
        else:
            kill_uid(uid)
            swept += 1
        finally:
            os.close(fd)
    return swept


def _lock_dir() -> Path | None:
    for folder in LOCK_DIRS:
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            st = folder.stat()
            if st.st_uid == os.geteuid() and not st.st_mode & 0o022:
                return folder
        except OSError:
            continue
    return None


def kill_uid(uid: int, timeout: float = 10.0) -> int:
    """SIGKILL every process running as `uid` until none is left; returns how many."""
    if uid < UID_BASE or uid >= UID_BASE + UID_COUNT:
        raise ValueError(f"uid {uid} is not one of the grader's")  # never anyone else's
    return processes.kill_until_none(lambda: processes.with_uid(uid), timeout)
