"""The one place that finds processes (in /proc) and kills them.

Finding: by parent links (`descendants`), by uid (`with_uid`, `uids_running`,
`count_with_real_uid`), by environment (`with_environ`), by cgroup (`in_cgroup`), one
process's state (`is_zombie`, `alive`), the CPU time a set of them used (`cpu_seconds`).
Killing: `kill` (once), `kill_until_none` (again and again, for trees that fork while being
killed), `kill_tree`, `signal_group` (a process group).

Standard library only, and no imports of the grader's: the launcher (launch.py, run as a
script with `python -I -S`) loads this file by its path.

A subreaper sees the whole tree: launch.py makes itself a child subreaper
(PR_SET_CHILD_SUBREAPER), so a process of its tree that double-forks, calls setsid or empties
its environment is re-parented to the launcher, never to init, and "every descendant of the
launcher" is the whole tree.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Callable, Iterable, Iterator


def _pids() -> Iterator[int]:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            yield int(entry)


def _stat_fields(pid: int) -> list[bytes] | None:
    """/proc/PID/stat from field 3 (the state) on; None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    return stat[stat.rfind(b")") + 2:].split()


def _status_uids(pid: int) -> tuple[bool, list[str]] | None:
    """(zombie, [real, effective, saved, fs uid]) from /proc/PID/status, not the owner of
    /proc/PID: a process that made itself non-dumpable shows root as that owner."""
    zombie = False
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("State:"):
                    zombie = line.split()[1] == "Z"
                elif line.startswith("Uid:"):
                    return zombie, line.split()[1:]
    except (OSError, IndexError):
        pass
    return None


# --- finding --------------------------------------------------------------------------------------

def parents() -> dict[int, int]:
    """pid → parent pid of every live process visible in /proc (zombies are left out: a
    SIGKILL cannot remove them, their parent's wait does)."""
    table = {}
    for pid in _pids():
        fields = _stat_fields(pid)
        if fields is not None and len(fields) > 1 and fields[0] != b"Z":
            table[pid] = int(fields[1])
    return table


def descendants(root: int) -> list[int]:
    """Every live process below `root`, parents before their children."""
    children: dict[int, list[int]] = {}
    for pid, ppid in parents().items():
        children.setdefault(ppid, []).append(pid)
    found, queue = [], list(children.get(root, ()))
    while queue:
        pid = queue.pop(0)
        found.append(pid)
        queue.extend(children.get(pid, ()))
    return found


def cpu_seconds(pids: Iterable[int]) -> float:
    """The user and system CPU time the live processes among `pids` used, with their reaped
    children's: the kernel's accounting, whatever the processes say."""
    ticks = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None and len(fields) > 14:
            ticks += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def with_uid(uid: int) -> list[int]:
    """Live processes with `uid` among their uids (zombies are left out)."""
    wanted = str(uid)
    found = []
    for pid in _pids():
        status = _status_uids(pid)
        if status is not None and not status[0] and wanted in status[1]:
            found.append(pid)
    return found


def uids_running() -> set[int]:
    """Every uid (real, effective, saved or fs) some process runs as, zombies included."""
    found: set[int] = set()
    for pid in _pids():
        status = _status_uids(pid)
        if status is not None:
            try:
                found.update(int(u) for u in status[1])
            except ValueError:
                continue
    return found


def count_with_real_uid(uid: int) -> int:
    """Processes whose real uid is `uid`, zombies included: what RLIMIT_NPROC counts."""
    wanted = str(uid)
    count = 0
    for pid in _pids():
        status = _status_uids(pid)
        count += status is not None and status[1][:1] == [wanted]
    return count


def with_environ(match: Callable[[list[bytes]], bool], exclude: Iterable[int] = ()) -> list[int]:
    """Processes whose environment (NUL-separated NAME=value items) satisfies `match`; this
    process and `exclude` are left out. Only processes whose environ we may read are seen."""
    skip = {os.getpid(), *exclude}
    found = []
    for pid in _pids():
        if pid in skip:
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as fh:
                env = fh.read().split(b"\0")
        except OSError:
            continue
        if match(env):
            found.append(pid)
    return found


def in_cgroup(procs_files: Iterable[str | os.PathLike]) -> set[int]:
    """Live members listed in a cgroup's `cgroup.procs` files (one a hierarchy on cgroup v1;
    zombies are left out: they wait for their parent, not for a signal)."""
    pids: set[int] = set()
    for path in procs_files:
        try:
            with open(path) as fh:
                pids.update(int(p) for p in fh.read().split())
        except (OSError, ValueError):
            continue
    return {pid for pid in pids if not is_zombie(pid)}


def is_zombie(pid: int) -> bool:
    """Whether `pid` is a zombie, or gone already: either way no signal can end it."""
    fields = _stat_fields(pid)
    return fields is None or fields[:1] == [b"Z"]


def alive(pid: int) -> bool:
    """Whether a process `pid` exists (one we may not signal exists too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- killing --------------------------------------------------------------------------------------

def kill(pids: Iterable[int], sig: int = signal.SIGKILL) -> int:
    """Send `sig` to each of `pids` once; returns how many it reached."""
    sent = 0
    for pid in pids:
        try:
            os.kill(pid, sig)
            sent += 1
        except OSError:
            pass
    return sent


def reap_children() -> None:
    """Wait for every child of this process that has exited (a subreaper's orphans)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def kill_until_none(find: Callable[[], Iterable[int]], timeout: float = 10.0, *,
                    reap: bool = False) -> int:
    """SIGKILL what `find` returns, again and again, until it returns nothing (or `timeout`
    passes): a process may start another while its siblings are being killed. `reap`: also
    wait for this process's own dead children each round (a subreaper's). Returns how many
    were killed."""
    killed = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = list(find())
        if not pids:
            break
        killed += kill(pids)
        time.sleep(0.01)
        if reap:
            reap_children()
    return killed


def kill_tree(root: int, *, include_root: bool = True, timeout: float = 10.0,
              reap: bool = False) -> int:
    """SIGKILL everything below `root` until nothing is left, then `root`; returns how many.

    Children go before their parents, and the root last: while it lives, the orphans of
    killed processes come back to it (a subreaper) and are found on the next round instead of
    escaping to init."""
    killed = kill_until_none(lambda: list(reversed(descendants(root))), timeout, reap=reap)
    if include_root:
        killed += kill([root])
    return killed


def signal_group(pgid: int, sig: int = signal.SIGKILL) -> bool:
    """Send `sig` to process group `pgid`; False when it could not (gone, or not ours)."""
    try:
        os.killpg(pgid, sig)
    except OSError:
        return False
    return True
