"""grader/execution/processes.py, the one module that finds and kills processes: real trees of
sleeping processes are found by each of its ways and killed, none survives, no zombie is left."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

from grader.execution import processes

PROCESSES_PY = Path(processes.__file__)

# Run as launch.py runs (`python -I -S`, processes.py loaded by its path): become a subreaper,
# start a tree whose grandchild escapes into a session of its own, then kill all below.
SUBREAPER_SCRIPT = """
import ctypes, importlib.util, json, os, subprocess, sys, time
spec = importlib.util.spec_from_file_location("p", sys.argv[1])
processes = importlib.util.module_from_spec(spec)
spec.loader.exec_module(processes)
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
subprocess.Popen(["sh", "-c", "setsid sleep 60 & sleep 60 & exit 0"])
deadline = time.monotonic() + 10
while len(processes.descendants(os.getpid())) < 2 and time.monotonic() < deadline:
    processes.reap_children()  # the sh that exited
    time.sleep(0.01)
found = processes.descendants(os.getpid())
killed = processes.kill_tree(os.getpid(), include_root=False, reap=True)
try:
    os.waitpid(-1, os.WNOHANG)
    zombies = True
except ChildProcessError:
    zombies = False
print(json.dumps({"found": len(found), "killed": killed,
                  "left": processes.descendants(os.getpid()), "children_left": zombies}))
"""


def _gone(pids: list[int], seconds: float = 10.0) -> bool:
    """Whether every one of `pids` is gone, reaped and all (zombies are not gone), in time."""
    deadline = time.monotonic() + seconds
    while any(processes.alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.01)
    return not any(processes.alive(pid) for pid in pids)


def _wait_for(find, count: int, seconds: float = 10.0) -> list[int]:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = find()
        if len(found) >= count:
            return found
        time.sleep(0.01)
    return find()


def test_a_subreaper_finds_and_kills_its_whole_tree_and_reaps_it():
    out = subprocess.run([sys.executable, "-I", "-S", "-c", SUBREAPER_SCRIPT, str(PROCESSES_PY)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    # The setsid'd sleep came back to the subreaper, and both sleeps were killed and reaped.
    assert report == {"found": 2, "killed": 2, "left": [], "children_left": False}


def test_a_tree_below_a_process_is_found_parents_first_and_killed():
    proc = subprocess.Popen(["sh", "-c", "sleep 60 & sleep 60 & wait"])
    try:
        tree = _wait_for(lambda: processes.descendants(proc.pid), 2)
        assert len(tree) == 2 and processes.parents()[tree[0]] == proc.pid
        assert processes.kill_tree(proc.pid) == 3
        proc.wait(timeout=10)  # the sh may see its children die and exit before its SIGKILL
        assert _gone(tree) and processes.descendants(proc.pid) == []
    finally:
        proc.kill()
        proc.wait()


def test_processes_are_found_by_their_environment_and_killed_once():
    token = f"GRADER_TEST_TOKEN={secrets.token_hex(8)}".encode()
    proc = subprocess.Popen(["sleep", "60"], env={**os.environ, "GRADER_TEST_TOKEN": token[18:].decode()})
    try:
        found = _wait_for(lambda: processes.with_environ(lambda env: token in env), 1)
        assert found == [proc.pid]
        assert processes.with_environ(lambda env: token in env, exclude=[proc.pid]) == []
        assert processes.kill(found) == 1
        assert proc.wait(timeout=10) == -9
        assert processes.with_environ(lambda env: token in env) == []
        assert processes.kill([proc.pid]) == 0  # reaped: nothing to reach
    finally:
        proc.kill()
        proc.wait()


def test_a_process_group_is_signalled_whole():
    proc = subprocess.Popen(["sh", "-c", "sleep 60 & sleep 60 & wait"], start_new_session=True)
    tree = _wait_for(lambda: processes.descendants(proc.pid), 2)
    assert processes.signal_group(proc.pid)
    assert proc.wait(timeout=10) == -9
    assert len(tree) == 2 and _gone(tree)  # their new parent reaped them
    assert not processes.signal_group(proc.pid)  # the group is gone
    assert not processes.alive(proc.pid) and processes.alive(os.getpid())


def test_processes_are_found_by_uid_and_zombies_count_for_rlimit_nproc_only():
    me = os.getuid()
    zombie = subprocess.Popen(["true"])
    try:
        deadline = time.monotonic() + 10
        while not processes.is_zombie(zombie.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert processes.is_zombie(zombie.pid) and processes.alive(zombie.pid)
        live = processes.with_uid(me)
        assert os.getpid() in live and zombie.pid not in live
        assert me in processes.uids_running()
        before = processes.count_with_real_uid(me)
    finally:
        zombie.wait()
    assert before >= 2  # this process and its zombie at least
    assert processes.count_with_real_uid(2**31 - 7) == 0


def test_cgroup_members_are_the_live_pids_its_procs_files_list(tmp_path):
    zombie = subprocess.Popen(["true"])
    try:
        deadline = time.monotonic() + 10
        while not processes.is_zombie(zombie.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        (tmp_path / "memory").write_text(f"{os.getpid()}\n{zombie.pid}\n")
        (tmp_path / "pids").write_text(f"{os.getppid()}\n")
        files = [tmp_path / "memory", tmp_path / "pids", tmp_path / "gone"]
        assert processes.in_cgroup(files) == {os.getpid(), os.getppid()}
    finally:
        zombie.wait()
