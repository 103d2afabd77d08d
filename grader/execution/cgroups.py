"""A cgroup per process tree: memory including tmpfs pages, a process count, and a way to kill
every member at once, whatever it did to its session, environment or parent.

Created as a child of the grader's own cgroup, so the tree stays inside whatever limits the
grader itself runs under. cgroup v2 where its memory and pids controllers can be enabled (root,
or a delegated subtree such as `systemd-run --user --scope -p Delegate=yes`), else cgroup v1's
memory and pids hierarchies (root). Processes join through grader/execution/launch.py, which
writes its own pid into `cgroup.procs` before it starts anything: children inherit the cgroup.
"""

from __future__ import annotations

import errno
import functools
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import processes

PREFIX = "dl-grader-"  # children named dl-grader-<grader pid>-<label>-<token>
CONTROLLERS = ("memory", "pids")


@dataclass(frozen=True)
class _Parent:
    """Where children of one controller are made."""

    version: int
    path: Path


@dataclass
class Cgroup:
    """One process tree's cgroup(s): v2 has one folder for both controllers, v1 one each."""

    version: int
    dirs: dict[str, Path]  # controller → folder
    _events_seen: dict[str, int] = field(default_factory=dict)

    @property
    def folders(self) -> list[Path]:
        return list(dict.fromkeys(self.dirs.values()))

    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.folders]

    def members(self) -> set[int]:
        """Live members (a zombie waits for its parent, not for a signal)."""
        return processes.in_cgroup(self.procs_files())

    def oom_kills(self) -> int:
        folder = self.dirs.get("memory")
        if folder is None:
            return 0
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        return _field(folder / name, "oom_kill")

    def pids_refused(self) -> int:
        folder = self.dirs.get("pids")
        return 0 if folder is None else _field(folder / "pids.events", "max")

    def memory_peak_mb(self) -> int | None:
        folder = self.dirs.get("memory")
        if folder is None:
            return None
        name = "memory.peak" if self.version == 2 else "memory.max_usage_in_bytes"
        try:
            return int((folder / name).read_text().split()[0]) // 2**20
        except (OSError, ValueError, IndexError):
            return None

    def kill(self, timeout: float = 10.0) -> bool:
        """SIGKILL every member until none is left; True when the cgroup is empty."""
        if self.version == 2:
            for folder in self.folders:
                try:
                    (folder / "cgroup.kill").write_text("1")
                except OSError:
                    pass
        # v1 has no cgroup.kill: a member forking now is caught next round.
        processes.kill_until_none(self.members, timeout)
        return not self.members()

    def remove(self) -> None:
        for folder in self.folders:
            _rmdir(folder)


def _field(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def _rmdir(folder: Path, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            folder.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as exc:  # EBUSY while the last members are being released
            if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                return
            time.sleep(0.02)


# --- where this process's cgroups are ------------------------------------------------------------

def _mounts() -> list[tuple[Path, str, set[str]]]:
    """(mount point, fs type, super options) of every cgroup filesystem."""
    found = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, rest = left.split(), right.split()
        if len(fields) >= 5 and rest and rest[0] in ("cgroup", "cgroup2"):
            options = set(rest[2].split(",")) if len(rest) > 2 else set()
            found.append((Path(fields[4]), rest[0], options))
    return found


def _own_paths() -> dict[str, str]:
    """controller → this process's cgroup path; '' → its cgroup v2 path."""
    paths: dict[str, str] = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return paths
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            paths[name] = path
    return paths


@functools.lru_cache(maxsize=1)
def parents() -> tuple[dict[str, _Parent], dict[str, str]]:
    """For each controller, the folder children are made in, or why there is none."""
    mounts, own = _mounts(), _own_paths()
    found: dict[str, _Parent] = {}
    why: dict[str, str] = {}
    v2 = next((m for m in mounts if m[1] == "cgroup2"), None)
    if v2 is not None and "" in own:
        base = v2[0] / own[""].lstrip("/")
        usable, reason = _enable_v2(base)
        for name in CONTROLLERS:
            if name in usable:
                found[name] = _Parent(2, base)
            else:
                why[name] = reason.get(name, "") or f"cgroup v2 has no {name} controller here"
    for name in CONTROLLERS:
        if name in found:
            continue
        v1 = next((m for m in mounts if m[1] == "cgroup" and name in m[2]), None)
        if v1 is None or name not in own:
            why.setdefault(name, f"no cgroup v1 {name} hierarchy is mounted")
            continue
        base = v1[0] / own[name].lstrip("/")
        if os.access(base, os.W_OK):
            found[name] = _Parent(1, base)
            why.pop(name, None)
        else:
            why[name] = (f"{base} is not writable by this user (cgroup v1 needs root)")
    return found, why


def _enable_v2(base: Path) -> tuple[set[str], dict[str, str]]:
    """The controllers children of `base` can use, enabling them if we may."""
    try:
        offered = set((base / "cgroup.controllers").read_text().split())
        enabled = set((base / "cgroup.subtree_control").read_text().split())
    except OSError as exc:
        return set(), {n: f"cannot read {base}: {exc.strerror}" for n in CONTROLLERS}
    wanted = [n for n in CONTROLLERS if n in offered and n not in enabled]
    if not wanted or not os.access(base / "cgroup.subtree_control", os.W_OK):
        reason = {} if os.access(base, os.W_OK) else \
            {n: f"{base} is not delegated to this user" for n in CONTROLLERS}
        return enabled & set(CONTROLLERS), reason
    if not _write_subtree(base, wanted) and _only_member_is_us(base):
        # "No internal processes": move this grader into a leaf of its own, then enable.
        leaf = base / f"{PREFIX}{os.getpid()}-grader"
        try:
            leaf.mkdir(exist_ok=True)
            (leaf / "cgroup.procs").write_text(str(os.getpid()))
        except OSError:
            pass
        _write_subtree(base, wanted)
    try:
        enabled = set((base / "cgroup.subtree_control").read_text().split())
    except OSError:
        enabled = set()
    return enabled & set(CONTROLLERS), {n: f"cannot enable the {n} controller in {base} (it "
                                        "holds other processes; run the grader in a delegated "
                                        "scope of its own)" for n in CONTROLLERS}


def _write_subtree(base: Path, names: list[str]) -> bool:
    try:
        (base / "cgroup.subtree_control").write_text(" ".join(f"+{n}" for n in names))
        return True
    except OSError:
        return False


def _only_member_is_us(base: Path) -> bool:
    try:
        return set((base / "cgroup.procs").read_text().split()) == {str(os.getpid())}
    except OSError:
        return False


def create(label: str, memory_bytes: int, pids_max: int) -> tuple[Cgroup | None, dict[str, str]]:
    """A fresh cgroup with these caps, and, per controller not available, the reason."""
    found, why = parents()
    why = dict(why)
    if not found:
        return None, why
    sweep_stale()
    name = f"{PREFIX}{os.getpid()}-{label}-{secrets.token_hex(4)}"
    dirs: dict[str, Path] = {}
    for controller, parent in found.items():
        folder = parent.path / name
        try:
            folder.mkdir(exist_ok=True)
            _set_caps(parent.version, controller, folder, memory_bytes, pids_max)
        except OSError as exc:
            why[controller] = f"cannot set up {folder}: {exc.strerror}"
            _rmdir(folder)
            continue
        dirs[controller] = folder
    if not dirs:
        return None, why
    versions = {found[c].version for c in dirs}
    return Cgroup(max(versions), dirs), why


def _set_caps(version: int, controller: str, folder: Path, memory_bytes: int,
              pids_max: int) -> None:
    if controller == "pids":
        (folder / "pids.max").write_text(str(pids_max))
    elif version == 2:
        (folder / "memory.max").write_text(str(memory_bytes))
        _try_write(folder / "memory.swap.max", "0")
    else:
        (folder / "memory.limit_in_bytes").write_text(str(memory_bytes))
        _try_write(folder / "memory.memsw.limit_in_bytes", str(memory_bytes))  # no swap either


def _try_write(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except OSError:
        pass  # no swap accounting here: nothing to cap


def sweep_stale() -> int:
    """Empty and remove the cgroups of graders that died before cleaning up; returns how many."""
    found, _ = parents()
    removed = 0
    for parent in {p.path for p in found.values()}:
        try:
            children = [c for c in parent.iterdir() if c.name.startswith(PREFIX)]
        except OSError:
            continue
        for child in children:
            owner = child.name[len(PREFIX):].split("-", 1)[0]
            if not owner.isdigit() or processes.alive(int(owner)):
                continue
            stale = Cgroup(2 if (child / "cgroup.kill").exists() else 1, {"any": child})
            stale.kill(timeout=2.0)
            stale.remove()
            removed += 1
    return removed
