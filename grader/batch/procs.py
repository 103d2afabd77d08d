"""Clean-up after a batch worker: the processes its gradings started, whatever became of it.

Each process tree a worker starts runs confined (grader/execution/confine.py): in a cgroup named
after the worker's pid, as a uid leased with a lock the worker holds, under a launcher that
kills its tree when the worker dies. Once the worker is gone, `kill_by_home_prefix` sweeps all
three (cgroups of dead owners, uids whose lock nobody holds), and, as before, every process
whose HOME lies in the worker's private folder.
"""

from __future__ import annotations

from pathlib import Path

from ..execution import confine, processes


def kill_by_home_prefix(prefix: Path | str, exclude: set[int] | None = None) -> int:
    """SIGKILL every process whose HOME lies under `prefix`, and every leftover of a grader
    that is no longer alive; returns how many processes or trees."""
    killed = confine.sweep_leftovers()
    needle = str(prefix).rstrip("/").encode()

    def home_under_prefix(env: list[bytes]) -> bool:
        home = next((item[5:] for item in env if item.startswith(b"HOME=")), None)
        return home is not None and (home == needle or home.startswith(needle + b"/"))

    return killed + processes.kill(processes.with_environ(home_under_prefix, exclude or ()))
