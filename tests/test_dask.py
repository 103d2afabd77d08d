"""`grader grade --scheduler`: a real `dask scheduler` and two `dask worker` processes on
127.0.0.1 (random free ports, torn down at the end) grade a small numpy-backprop class.

A worker SIGKILLed while it grades loses nothing: the task reruns elsewhere and grades.csv equals
a local run's. A notebook that kills its worker (graded without the sandbox, so it can reach it)
ends as Dask's KilledWorker: that student gets worker_failed and the others are graded.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest

import notebook_factory as nf
from grader import assignment as spec
from test_batch import cli_env, grade_cli, read_grades, results, short_tmp

pytest.importorskip("distributed")

ASSIGNMENT = "numpy-backprop"
SLOW_SECONDS = 8  # the slow student's sleep: a window no load can close
REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

# Kills the Dask worker process running this notebook's grading: the parent of the
# `grader.batch.worker` process among this kernel's ancestors (reachable without the sandbox).
KILL_MY_WORKER = """
import os, signal
def parent(pid):
    return int(open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()[1])
pid = os.getpid()
while pid > 1 and b'grader.batch.worker' not in open(f'/proc/{pid}/cmdline', 'rb').read():
    pid = parent(pid)
if pid > 1:
    os.kill(parent(pid), signal.SIGKILL)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Cluster:
    """A scheduler and two workers (with their nannies, which restart a killed worker), each in
    a session of its own; `close` ends exactly those process groups."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.address = f"tcp://127.0.0.1:{free_port()}"
        # A task whose worker dies twice is KilledWorker (the default allows three deaths).
        self.env = cli_env(tmp, DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="1")
        self.procs: list[subprocess.Popen] = []
        port = self.address.rsplit(":", 1)[1]
        self._start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", port,
                    "--no-dashboard")
        for name in ("w1", "w2"):
            self._start(name, "worker", self.address, "--name", name, "--nthreads", "1",
                        "--host", "127.0.0.1", "--no-dashboard", "--death-timeout", "60",
                        "--local-directory", str(tmp / name))

    def _start(self, name: str, *args: str) -> None:
        log = (self.tmp / f"{name}.log").open("wb")
        self.procs.append(subprocess.Popen([sys.executable, "-m", "dask", *args], env=self.env,
                                           cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                           stdin=subprocess.DEVNULL, start_new_session=True))

    def wait_for_workers(self, count: int = 2, seconds: float = 120) -> None:
        from distributed import Client

        with Client(self.address, timeout="60s") as client:
            client.wait_for_workers(count, timeout=seconds)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                         for p in sorted(self.tmp.glob("*.log")))

    def close(self) -> None:
        for proc in self.procs:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except OSError:
                pass
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture(scope="module")
def cluster():
    tmp = short_tmp()
    cluster = Cluster(tmp)
    try:
        cluster.wait_for_workers()
        yield cluster
    finally:
        cluster.close()
        shutil.rmtree(tmp, ignore_errors=True)


def reference():
    return nf.reference_notebook(ASSIGNMENT)


def with_first_cell(nb, source: str):
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    nb.cells.insert(1, nbformat.v4.new_code_cell(source))
    return nb


def build_class(root: Path) -> None:
    """Cheap notebooks, both layouts; one reads a file beside it in its folder, and one takes
    long enough for a worker to be killed while it grades it, however loaded the machine."""
    nf.write(reference(), root / "ref.ipynb")
    nf.write(with_first_cell(reference(), f"import time; time.sleep({SLOW_SECONDS})"),
             root / "slow.ipynb")
    nf.write(nbformat.read(spec.load(ASSIGNMENT).starter, as_version=4), root / "starter.ipynb")
    b2_bug = "np.dot(H, weights['W2'] + weights['b2'])"
    nb = reference()
    for cell in nb.cells:
        if "forward" in cell.metadata.get("tags", []):
            cell.source = cell.source.replace("np.dot(H, weights['W2']) + weights['b2']", b2_bug)
            assert b2_bug in cell.source
    nf.write(nb, root / "b2bug.ipynb")
    (root / "broken.ipynb").write_text('{"cells": [{"cell_type": "code", "sou')
    nf.write(with_first_cell(reference(), "raise RuntimeError('boom')"), root / "raiser.ipynb")
    reads = "assert open('notes/hello.txt').read() == 'hello', 'the file beside me'"
    nf.write(with_first_cell(reference(), reads), root / "dana" / "hw.ipynb")
    (root / "dana" / "notes").mkdir()
    (root / "dana" / "notes" / "hello.txt").write_text("hello")


def grading_processes(tmp: Path) -> list[tuple[int, int]]:
    """(pid, parent pid) of each `grader.batch.worker` grading a notebook under TMPDIR=tmp."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            environ = Path(f"/proc/{entry}/environ").read_bytes()
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if b"grader.batch.worker" in cmdline and b"--preflight" not in cmdline and \
                f"TMPDIR={tmp}".encode() in environ:
            found.append((int(entry), int(stat.rsplit(")", 1)[1].split()[1])))
    return found


def kill_a_worker_while_it_grades(tmp: Path, killed: list[int], stop: threading.Event) -> None:
    while not stop.is_set():
        for pair in grading_processes(tmp):
            time.sleep(1)  # well into the notebook; the slow student's lasts SLOW_SECONDS
            if pair not in grading_processes(tmp):
                continue  # finished meanwhile: not mid-task any more
            os.kill(pair[1], signal.SIGKILL)
            killed.append(pair[1])
            return
        time.sleep(0.1)


def test_a_class_on_dask_grades_as_the_local_pool_even_when_a_worker_dies(cluster, tmp_path,
                                                                        data_dir):
    subs = tmp_path / "subs"
    build_class(subs)
    local = grade_cli([subs, "-a", ASSIGNMENT, "--out", tmp_path / "local", "--data-dir",
                       data_dir, "-j", "2"], cluster.tmp)
    assert local.returncode == 0, local.stdout + local.stderr

    killed: list[int] = []
    stop = threading.Event()
    killer = threading.Thread(target=kill_a_worker_while_it_grades,
                              args=(cluster.tmp, killed, stop), daemon=True)
    killer.start()
    out = tmp_path / "dask"
    try:
        proc = grade_cli([subs, "-a", ASSIGNMENT, "--out", out, "--data-dir", data_dir,
                          "--scheduler", cluster.address], cluster.tmp, timeout=600)
    finally:
        stop.set()
        killer.join()
    assert proc.returncode == 0, proc.stdout + proc.stderr + cluster.logs()
    assert killed, "no worker was seen grading, so none was killed"
    assert "on the Dask cluster at" in proc.stdout
    for student in ("ref", "slow", "starter", "b2bug", "broken", "raiser", "dana"):
        assert any(line.startswith(student + " ") for line in proc.stdout.splitlines()), student
    assert read_grades(out) == read_grades(tmp_path / "local")
    r = results(out)
    assert r["ref"]["score"] == 10 and r["b2bug"]["score"] < 10
    assert r["dana"]["cell_errors"] == []  # the file beside the notebook came along
    assert r["dana"]["batch"]["source"] == "dana/hw.ipynb"
    assert r["ref"]["notebook"] == str(subs / "ref.ipynb")
    assert not list(out.glob("*/worker.log"))
    # The executed notebook came back with the task: the feedback is the local pool's.
    for where in (out, tmp_path / "local"):
        nb = nbformat.read(where / "raiser" / "feedback" / "raiser.ipynb", as_version=4)
        notes = [c.source for c in nb.cells if "grader-note" in c.metadata.get("tags", [])]
        assert any("RuntimeError: boom" in note for note in notes), where

    again = grade_cli([subs, "-a", ASSIGNMENT, "--out", out, "--data-dir", data_dir,
                       "--scheduler", cluster.address], cluster.tmp, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "0 graded, 7 skipped" in again.stdout, again.stdout
    cluster.wait_for_workers()  # the killed worker's nanny brought it back


def test_a_notebook_that_kills_its_worker_gets_worker_failed_and_the_batch_goes_on(
        cluster, tmp_path, data_dir):
    subs = tmp_path / "subs"
    nf.write(reference(), subs / "ref.ipynb")
    nf.write(with_first_cell(reference(), KILL_MY_WORKER), subs / "killer.ipynb")
    nf.write(with_first_cell(reference(), "raise RuntimeError('boom')"), subs / "raiser.ipynb")
    out = tmp_path / "out"
    proc = grade_cli([subs, "-a", ASSIGNMENT, "--out", out, "--data-dir", data_dir,
                      "--scheduler", cluster.address, "--sandbox", "none"], cluster.tmp,
                     timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr + cluster.logs()
    r = results(out)
    assert r["killer"]["execution"]["status"] == "worker_failed"
    assert "died 2 times" in r["killer"]["execution"]["message"]
    assert r["killer"]["score"] == 0 and r["killer"]["batch"]["complete"] is False
    assert r["ref"]["score"] == 10
    assert r["raiser"]["execution"]["status"] == "completed"
    rows = {row["student"]: row for row in read_grades(out)}
    assert rows["killer"]["status"] == "worker_failed" and rows["killer"]["total"] == "0"
    cluster.wait_for_workers()


def test_an_unreachable_scheduler_is_a_usage_error(tmp_path):
    subs = tmp_path / "subs"
    nf.write(reference(), subs / "ref.ipynb")
    tmp = short_tmp()
    try:
        proc = grade_cli([subs, "-a", ASSIGNMENT, "--out", tmp_path / "out", "--scheduler",
                          f"tcp://127.0.0.1:{free_port()}"], tmp, timeout=180,
                         DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT="2s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "cannot reach the Dask scheduler" in proc.stderr


def test_without_scheduler_nothing_imports_dask(tmp_path):
    code = ("import sys, grader.cli, grader.batch, grader.batch.run, grader.batch.local; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert proc.stdout.strip() == "[]", proc.stdout + proc.stderr


def kernels(tmp: Path) -> list[int]:
    """Live kernels (found by the engine's token in their environment) whose HOME is under tmp."""
    from grader.execution.runner import KERNEL_TOKEN_VAR

    found = []
    for entry in os.listdir("/proc"):
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(i.startswith(KERNEL_TOKEN_VAR.encode() + b"=") for i in environ) and \
                any(i.startswith(f"HOME={tmp}".encode()) for i in environ):
            found.append(int(entry))
    return found


def test_a_killed_coordinator_stops_its_tasks_on_the_workers(cluster, tmp_path, data_dir):
    subs = tmp_path / "subs"
    nf.write(with_first_cell(reference(), "import time\ntime.sleep(600)"), subs / "slow.ipynb")
    cmd = [sys.executable, "-m", "grader.cli", "grade", str(subs), "-a", ASSIGNMENT, "--out",
           str(tmp_path / "out"), "--data-dir", str(data_dir), "--timeout", "900",
           "--scheduler", cluster.address]
    proc = subprocess.Popen(cmd, env=cli_env(cluster.tmp), cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not (grading_processes(cluster.tmp) and kernels(cluster.tmp)):
            assert proc.poll() is None and time.monotonic() < deadline, "never started grading"
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    deadline = time.monotonic() + 60
    while (grading_processes(cluster.tmp) or kernels(cluster.tmp)) and \
            time.monotonic() < deadline:
        time.sleep(0.5)
    assert grading_processes(cluster.tmp) == [] and kernels(cluster.tmp) == []
    assert not (tmp_path / "out" / "slow" / "result.json").exists()


def test_workers_with_another_assignment_version_grade_nobody(cluster, tmp_path, data_dir):
    """The coordinator's spec differs from the workers' (a GRADER_HOME of its own): each
    worker's preflight refuses, the students are left not graded, the batch stops (exit 3)."""
    from grader import paths
    ASSIGNMENTS_DIR, REFERENCE_DIR = paths.assignments_dir(), paths.reference_dir()

    home = tmp_path / "home"
    shutil.copytree(ASSIGNMENTS_DIR / ASSIGNMENT, home / "assignments" / ASSIGNMENT)
    shutil.copytree(REFERENCE_DIR / ASSIGNMENT, home / "reference" / ASSIGNMENT)
    toml = home / "assignments" / ASSIGNMENT / "assignment.toml"
    toml.write_text(toml.read_text() + "\n# edited on the coordinator only\n")
    subs = tmp_path / "subs"
    for name in ("a", "b", "c", "d"):
        nf.write(reference(), subs / f"{name}.ipynb")
    out = tmp_path / "out"
    proc = grade_cli([subs, "-a", ASSIGNMENT, "--out", out, "--data-dir", data_dir,
                      "--scheduler", cluster.address], cluster.tmp, timeout=300,
                     GRADER_HOME=str(home))
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "another version of numpy-backprop" in proc.stderr
    written = results(out)
    assert len(written) == 3  # stopped after the first three
    assert all(r["score"] is None and r["execution"]["status"] == "grader_error"
               and r["batch"]["complete"] is False for r in written.values())
