"""Linux bubblewrap around the student's kernel: read-only system, private /tmp and home, no network.

Inside, the kernel sees the system read-only, its own scratch folder writable, and none of the
grader's secrets (reference solutions, thresholds, the datasets holding holdout labels, other
students' reports). Where bwrap cannot run (no user namespaces), grading falls back to process
limits only, and every report says so.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

MODES = ("auto", "bwrap", "none")


class SandboxUnavailable(Exception):
    pass


@functools.lru_cache(maxsize=1)
def bwrap_path() -> str | None:
    """The bwrap binary, if it exists and can create the namespaces we need here."""
    path = shutil.which("bwrap")
    if not path:
        return None
    try:
        probe = subprocess.run([path, "--ro-bind", "/", "/", "--unshare-all", "--cap-drop", "ALL",
                                "--die-with-parent", "true"], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return path if probe.returncode == 0 else None


def resolve(mode: str) -> str:
    """'auto' → 'bwrap' when it works, else 'none'; an explicit 'bwrap' must work."""
    if mode not in MODES:
        raise ValueError(f"unknown sandbox {mode!r} (choose from {', '.join(MODES)})")
    if mode == "none":
        return "none"
    if bwrap_path():
        return "bwrap"
    if mode == "bwrap":
        raise SandboxUnavailable("bwrap is not installed or cannot create namespaces here "
                                 "(apt-get install bubblewrap; user namespaces must be enabled)")
    return "none"


@dataclass
class Mounts:
    writable: list[Path] = field(default_factory=list)  # the scratch work/home, harvest output
    readable: list[Path] = field(default_factory=list)  # grader files the kernel must read
    hidden: list[Path] = field(default_factory=list)  # replaced by empty folders inside


def wrap(command: list[str], mounts: Mounts, cwd: Path) -> list[str]:
    args = [bwrap_path() or "bwrap",
            "--ro-bind", "/", "/",
            "--dev", "/dev", "--proc", "/proc",
            "--tmpfs", "/tmp", "--tmpfs", "/dev/shm",
            "--unshare-all",  # network, pid, ipc, uts, cgroup, user namespaces: no network
            "--cap-drop", "ALL",
            "--die-with-parent"]
    for path in mounts.hidden:
        if path.exists():
            args += ["--tmpfs", str(path)] if path.is_dir() else ["--ro-bind", "/dev/null", str(path)]
    for path in mounts.readable:
        args += ["--ro-bind", str(path), str(path)]
    for path in mounts.writable:
        args += ["--bind", str(path), str(path)]
    args += ["--chdir", str(cwd), "--"]
    return args + command
