"""Limits that hold, in bubblewrap and with `--sandbox none`: a tmpfs filler, a disk filler (big
files, many small files), a process spawner and an escaper, each graded with small limits. The
report names the cap, its value and the cell; grading goes on; afterwards no process is left,
the host's shared memory is back and nothing outside the grader's scratch was written.

Cheap notebooks (no TensorFlow) graded as numpy-backprop, whose kernel needs numpy only.
Run with `pytest -m hostile`.
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import subprocess
import tempfile
from pathlib import Path

import nbformat
import pytest

import notebook_factory as nf

from grader import cli, pipeline, assignment as spec
from grader.execution import cgroups, confine, processes, sandbox, uids

pytestmark = [pytest.mark.hostile, pytest.mark.slow]  # each case runs a kernel

MODES = ["bwrap", "none"]
# Every process a case leaves running has this in its command line; this run's own number, so
# that a second test run on the machine (its sleeps) is not counted as this one's leftovers.
MARK = f"4242{os.getpid():07d}"

CASES: dict[str, tuple[str, dict[str, int]]] = {
    # /dev/shm and /tmp are tmpfs: RAM, which RLIMIT_AS does not count; the cgroup does. The
    # kernel holds ~700 MB of address space before the cell runs, so RLIMIT_AS may refuse one
    # of the cell's own 1 MB buffers first (a MemoryError): on a busy machine either comes first.
    "tmpfs-filler": ("import tempfile\n"
                     "tmp = tempfile.gettempdir()\n"
                     "places = ['/dev/shm', tmp, '/dev/shm', tmp, '/dev/shm', '/dev/shm']\n"
                     "for i, where in enumerate(places):\n"
                     "    with open(f'{where}/fill{i}', 'wb') as f:\n"
                     "        for _ in range(200):\n"
                     "            f.write(b'x' * 2**20)",
                     {"memory_mb": 700, "disk_mb": 4096}),
    # One allocation the address-space cap refuses at once: a MemoryError, the kernel lives on.
    "allocator": ("x = bytearray(8 * 2**30)", {"memory_mb": 2048}),
    "big-files": ("for i in range(8):\n    with open(f'big{i}', 'wb') as f:\n"
                  "        for _ in range(40):\n            f.write(b'x' * 2**20)",
                  {"disk_mb": 64}),
    "small-files": ("import os\nos.makedirs('many', exist_ok=True)\nfor i in range(50_000):\n"
                    "    open(f'many/{i}', 'w').write('x')", {"files": 500}),
    "spawner": ("import subprocess\nchildren = []\nfor _ in range(300):\n"
                f"    children.append(subprocess.Popen(['sleep', '{MARK}1']))",
                {"processes": 40}),
    # An emptied environment, its own session, a double fork and nohup: nothing that carries
    # the kernel's marks, parented to init if nothing catches it.
    "escaper": ("import subprocess, time\n"
                "subprocess.Popen(['/usr/bin/env', '-i', '/usr/bin/setsid', '/bin/sh', '-c', "
                f"'(nohup sleep {MARK}2 >/dev/null 2>&1 &); sleep {MARK}3 &'], "
                "start_new_session=True, env={})\ntime.sleep(1)", {}),
}
EXPECTED = {"tmpfs-filler": ("memory", "memory limit of 700 MB"),
            "allocator": ("memory", "memory limit of 2,048 MB"),
            "big-files": ("disk", "disk limit of 64 MB"),
            "small-files": ("files", "file-count limit of 500 files"),
            "spawner": ("processes", "process limit of 40 processes")}


def modes() -> list:
    unusable = sandbox.bwrap_path() is None
    skip = pytest.mark.skipif(unusable, reason="bubblewrap unavailable")
    return [pytest.param(m, marks=skip if m == "bwrap" else ()) for m in MODES]


notebook = nf.of_cells


def assignment_with(**limits: int) -> spec.Assignment:
    base = spec.load("numpy-backprop")
    return dataclasses.replace(base, limits=base.limits.model_copy(
        update={"cell_timeout": 60, "notebook_timeout": 120, **limits}))


def shmem_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("Shmem:"):
            return int(line.split()[1]) // 1024
    return 0


def _uid_unowned(uid: int) -> bool:
    """No live grader holds this uid's lock (other graders on the machine hold theirs)."""
    folder = uids._lock_dir()
    if folder is None:
        return False
    fd = os.open(folder / str(uid), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def leftovers() -> list[str]:
    """Processes a case may have left: its marked sleeps, and any process of the grader's uids
    that no live grader holds."""
    out = subprocess.run(["ps", "-eo", "pid,uid,stat,args"], capture_output=True,
                         text=True).stdout.splitlines()[1:]
    found = []
    for line in out:
        pid, uid, stat, *args = line.split(None, 3)
        if stat.startswith("Z"):
            continue
        ours = uids.UID_BASE <= int(uid) < uids.UID_BASE + uids.UID_COUNT
        if MARK in " ".join(args) or (ours and _uid_unowned(int(uid))):
            found.append(line)
    return found


def own_cgroups() -> list[Path]:
    found, _ = cgroups.parents()
    return [c for p in {p.path for p in found.values()} for c in p.iterdir()
            if c.name.startswith(f"{cgroups.PREFIX}{os.getpid()}-")]


@dataclasses.dataclass
class Graded:
    result: object
    shmem_before: int
    shmem_after: int
    scratch_left: list[str]
    processes_left: list[str]
    cgroups_left: list[Path]


def grade_case(folder: Path, mode: str, code: str, limits: dict[str, int]) -> Graded:
    """Grade x = 1, the case, y = 2, with every scratch folder of the grader inside `folder`."""
    path = notebook(folder / "nb" / "a.ipynb", "x = 1", code, "y = 2")
    scratch = folder / "tmp"
    scratch.mkdir()
    before = shmem_mb()
    saved, tempfile.tempdir = tempfile.tempdir, str(scratch)
    try:
        result = pipeline.grade(path, assignment_with(**limits), pipeline.Options(sandbox=mode))
    finally:
        tempfile.tempdir = saved
    return Graded(result, before, shmem_mb(), sorted(os.listdir(scratch)), leftovers(),
                  own_cgroups())


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    cache: dict[tuple[str, str], Graded] = {}

    def run(name: str, mode: str) -> Graded:
        if (name, mode) not in cache:
            code, limits = CASES[name]
            cache[name, mode] = grade_case(tmp_path_factory.mktemp(f"{name}-{mode}"), mode,
                                           code, limits)
        return cache[name, mode]
    return run


@pytest.mark.parametrize("mode", modes())
@pytest.mark.parametrize("name", list(EXPECTED))
def test_a_reached_limit_is_reported_with_its_value_and_cell(graded, name, mode):
    case = graded(name, mode)
    result = case.result
    assert not result.grader_error, result.execution
    limit, text = EXPECTED[name]
    hits = result.limits.hits
    assert hits, (result.execution, result.cell_errors)
    assert hits[0].limit == limit and hits[0].cell == 1
    assert hits[0].message.startswith(f"{text} reached in cell 2 (In [2])"), hits
    assert text in result.execution.message


@pytest.mark.parametrize("mode", modes())
@pytest.mark.parametrize("name", ["big-files", "small-files"])
def test_a_filler_is_stopped_and_reported_as_the_kernels_death(graded, name, mode):
    result = graded(name, mode).result
    assert result.execution.status == "kernel_died"
    assert result.execution.message.endswith("the kernel was stopped")
    assert result.limits.hits[0].stopped is True


@pytest.mark.parametrize("mode", modes())
def test_a_tmpfs_filler_meets_the_memory_cap_by_whichever_mechanism_is_first(graded, mode):
    """The cgroup (tmpfs pages): the kernel is killed. RLIMIT_AS (a 1 MB buffer): the cell
    raises MemoryError and the kernel, its address space spent, goes on or dies later. The cap
    is reported either way (the test above)."""
    result = graded("tmpfs-filler", mode).result
    hit = result.limits.hits[0]
    raised = [e.ename for e in result.cell_errors if e.cell == 1]
    if hit.stopped:
        assert result.execution.status == "kernel_died", result.execution
        assert result.execution.message.endswith("the kernel was stopped")
    else:
        assert raised == ["MemoryError"] and "MemoryError" in hit.detail, (hit, raised)
        assert result.execution.status in ("completed", "kernel_died"), result.execution


@pytest.mark.parametrize("mode", modes())
def test_a_refused_allocation_is_reported_and_the_kernel_goes_on(graded, mode):
    result = graded("allocator", mode).result
    [hit] = result.limits.hits
    assert hit.stopped is False and "MemoryError" in hit.detail
    assert [e.ename for e in result.cell_errors] == ["MemoryError"]
    assert result.execution.status == "completed" and result.execution.harvested


@pytest.mark.parametrize("mode", modes())
def test_the_process_cap_refuses_forks_and_the_kernel_goes_on(graded, mode):
    result = graded("spawner", mode).result
    assert any(e.ename == "BlockingIOError" for e in result.cell_errors), result.cell_errors
    assert result.execution.status == "completed" and result.execution.harvested


@pytest.mark.parametrize("mode", modes())
@pytest.mark.parametrize("name", list(CASES))
def test_nothing_is_left_afterwards(graded, name, mode):
    case = graded(name, mode)
    assert case.processes_left == []
    assert case.scratch_left == []  # the scratch, and everything written in it, is gone
    assert case.cgroups_left == []
    # The fillers wrote up to 1.2 GB of tmpfs: none of it is still held.
    assert case.shmem_after - case.shmem_before < 150, (case.shmem_before, case.shmem_after)


@pytest.mark.parametrize("mode", modes())
def test_the_grader_records_which_mechanisms_held(graded, mode):
    limits = graded("escaper", mode).result.limits
    assert limits.values["processes"] == spec.load("numpy-backprop").limits.processes
    held = limits.held_by
    assert "address space (RLIMIT_AS)" in held["memory"] and held["file_size"] == ["RLIMIT_FSIZE"]
    assert "subreaper (the launcher)" in held["cleanup"]
    if mode == "bwrap":
        assert "pid namespace" in held["cleanup"]
        assert any("tmpfs" in m for m in held["disk"])
    root = os.geteuid() == 0
    if root and mode == "bwrap" and confine._bwrap_as_unprivileged(uids.UID_BASE) is None:
        assert any(m.startswith("unprivileged uid") for m in held["user"])


# --- without cgroups: the other mechanisms still end everything --------------------------------

@pytest.fixture
def no_cgroups(monkeypatch):
    why = {"memory": "disabled by the test", "pids": "disabled by the test"}
    monkeypatch.setattr(cgroups, "parents", lambda: ({}, why))


@pytest.mark.parametrize("mode", modes())
def test_without_cgroups_an_escaper_is_still_killed(tmp_path, no_cgroups, mode):
    """bwrap: its pid namespace and the uid; none: the launcher, a subreaper, finds it by
    parent links although it emptied its environment and left the session."""
    case = grade_case(tmp_path, mode, *CASES["escaper"])
    assert case.result.execution.status == "completed", case.result.execution
    assert case.processes_left == []
    missing = {m.mechanism: m for m in case.result.limits.missing}
    assert missing["cgroup memory"].why == "disabled by the test"
    assert "Delegate=yes" in missing["cgroup pids"].enable


@pytest.mark.skipif(os.geteuid() != 0 or not sandbox.bwrap_path(), reason="needs root and bwrap")
def test_without_cgroups_the_uid_caps_processes(tmp_path, no_cgroups):
    """RLIMIT_NPROC of the tree's own uid: root ignores it, the leased uid does not."""
    if confine._bwrap_as_unprivileged(uids.UID_BASE) is not None:
        pytest.skip("bwrap cannot run as an unprivileged user here")
    case = grade_case(tmp_path, "bwrap", *CASES["spawner"])
    assert any(e.ename == "BlockingIOError" for e in case.result.cell_errors)
    assert case.processes_left == []


def test_missing_mechanisms_are_printed(tmp_path, no_cgroups, capsys):
    path = notebook(tmp_path / "a.ipynb", "x = 1")
    code = cli.main(["check", str(path), "--out", str(tmp_path / "report"), "--sandbox", "none"])
    assert code == 0
    err = capsys.readouterr().err
    assert "limits not in force here" in err and "cgroup memory (disabled by the test)" in err


@pytest.mark.parametrize("mode", modes())
def test_the_measuring_process_is_confined_like_the_kernel(tmp_path, mode):
    """It loads student-made files: its own cgroup, uid and caps, and nothing left after."""
    import time

    from grader import measure
    from grader.execution.limits import Limits

    worker = measure.Worker(tmp_path / "measure", [], Limits(memory_mb=3072, processes=64),
                            sandbox.Mounts() if mode == "bwrap" else None)
    try:
        deadline = time.monotonic() + 60
        while not worker.confinement._launched() and time.monotonic() < deadline:
            time.sleep(0.1)
        launched = worker.confinement._launched()
        assert launched, "the launcher never started"
        held = worker.confinement.enforcement.held_by
        assert "address space (RLIMIT_AS)" in held["memory"]
        if cgroups.parents()[0]:
            assert worker.confinement.cgroup.members()  # the launcher and its tree are inside
        lease = worker.confinement.lease
        if lease is not None:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not processes.with_uid(lease.uid):
                time.sleep(0.1)
            assert processes.with_uid(lease.uid)  # its tree runs as the leased uid, not root
    finally:
        worker.close()
    assert leftovers() == []


@pytest.mark.parametrize("version", [1, 2])
def test_cgroup_events_are_read_as_each_version_writes_them(tmp_path, version):
    """The files of cgroup v1 and v2 as the kernel writes them (v2 cannot be set up here when
    the machine runs v1, so its readers are checked on the same text)."""
    memory, pids = (tmp_path, tmp_path) if version == 2 else (tmp_path / "m", tmp_path / "p")
    for folder in (memory, pids):
        folder.mkdir(exist_ok=True)
        (folder / "cgroup.procs").write_text(f"{os.getpid()}\n{os.getppid()}\n999999999\n")
    if version == 2:
        (memory / "memory.events").write_text("low 0\nhigh 0\nmax 17\noom 2\noom_kill 2\n"
                                              "oom_group_kill 0\n")
        (memory / "memory.peak").write_text(str(700 * 2**20))
    else:
        (memory / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\n"
                                                   "oom_kill 2\n")
        (memory / "memory.max_usage_in_bytes").write_text(str(700 * 2**20))
    (pids / "pids.events").write_text("max 5\n")
    group = cgroups.Cgroup(version, {"memory": memory, "pids": pids})
    assert group.oom_kills() == 2 and group.pids_refused() == 5
    assert group.memory_peak_mb() == 700
    assert group.members() == {os.getpid(), os.getppid()}  # live ones: 999999999 is gone
    assert len(group.procs_files()) == (1 if version == 2 else 2)


@pytest.mark.parametrize("mode", modes())
def test_the_grader_never_writes_through_a_link_the_clean_room_planted(tmp_path, mode):
    """The clean room's folder belongs to its uid; a link it plants where the grader writes the
    probe's inputs must not make the grader (root) write elsewhere."""
    victim = tmp_path / "victim.txt"
    victim.write_text("untouched")
    nb = nbformat.read(spec.load("numpy-backprop").reference, as_version=4)
    for cell in nb.cells:
        if "backward" in cell.metadata.get("tags", []):
            cell.source = cell.source.replace(
                "def back_propagation(X, Y_T, weights):\n",
                "def back_propagation(X, Y_T, weights):\n    _plant()\n")
    nb.cells.insert(0, nbformat.v4.new_code_cell(
        "import os\ndef _plant():\n    if not os.path.lexists('probe.part.npz'):\n"
        f"        os.symlink({str(victim)!r}, 'probe.part.npz')"))
    path = tmp_path / "nb" / "planted.ipynb"
    path.parent.mkdir()
    nbformat.write(nb, path)
    result = pipeline.grade(path, spec.load("numpy-backprop"), pipeline.Options(sandbox=mode))
    assert not result.grader_error, result.execution
    assert victim.read_text() == "untouched"
    assert result.score == result.max_score  # the probe ran on the grader's own file
