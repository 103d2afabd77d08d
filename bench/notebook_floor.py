"""Benchmark: the floor under any grader's time, against what `grader check` takes.

Run by hand:  python3 bench/notebook_floor.py [--assignment fashion-mlp] [--runs 2]
              [--peers-submission] [--full] [--data-dir DIR] [--cores N] [--class-size 100]

A notebook graded as written runs its own cells; no grader can take less than that. For each
assignment this prints, per run and as medians:
- a bare Jupyter kernel's start (jupyter_client, no sandbox, nothing imported);
- the reference solution's cells (with --peers-submission: the fashion-mlp submission that
  bench/peers.py grades with every tool) in such a kernel, served the grader's subset by the
  grader's own load_data() and with the grader's thread settings, nothing measured: wall seconds
  and CPU seconds of the kernel process (with --full: the whole dataset, as `grader check
  --full` serves it);
- `grader check` of the same notebook through the CLI: wall seconds and the CPU seconds the
  whole machine spent meanwhile (/proc/stat), so run it on an otherwise idle machine;
and from the medians, the shortest time a class of --class-size such notebooks can take on
--cores cores (default: the cores usable here) when every core is busy all the time, for the
cells alone and for `grader check` as it is.

With --side-by-side N it also runs, once per run, N kernels at a time each running the same
cells, as a batch at -j N does, and prints each kernel's wall and CPU seconds: the class figure
above assumes a kernel's CPU is the same beside another as alone, which this measures.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nbformat
from jupyter_client.manager import start_new_kernel
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from grader import pipeline, assignment as spec  # noqa: E402
from grader.scoring import DataMode  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
# The numeric settings of the grader's kernel (grader/execution/runner.py kernel_env).
KERNEL_SETTINGS = {"PYTHONHASHSEED": "0", "TF_CPP_MIN_LOG_LEVEL": "2",
                   "TF_ENABLE_ONEDNN_OPTS": "0", "OMP_NUM_THREADS": "2",
                   "TF_NUM_INTRAOP_THREADS": "2", "TF_NUM_INTEROP_THREADS": "1",
                   "MPLBACKEND": "module://matplotlib_inline.backend_inline"}


def process_cpu(pid: int) -> float:
    """CPU seconds of a process and of the children it has waited for."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / TICKS  # utime stime cutime cstime


def machine_busy() -> float:
    """CPU seconds every core of the machine has spent busy since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system = values[:3]
    irq, softirq = values[5:7]
    return (user + nice + system + irq + softirq) / TICKS


def bare_kernel_start() -> float:
    started = time.monotonic()
    km, kc = start_new_kernel(kernel_name="python3", stderr=subprocess.DEVNULL)
    seconds = time.monotonic() - started
    kc.stop_channels()
    km.shutdown_kernel(now=True)
    return seconds


def cells_alone(notebook: Path, assignment: spec.Assignment, data_dir: Path | None,
                full: bool = False) -> tuple[float, float, int]:
    """Wall and CPU seconds of the notebook's cells, and how many raised an error."""
    with tempfile.TemporaryDirectory(prefix="grader-floor-") as tmp:
        folder = Path(tmp)
        mode = DataMode.FULL if full else DataMode.SUBSET
        served = pipeline.prepare_data(assignment, pipeline.Options(data_dir=data_dir, mode=mode),
                                       folder).student_npz
        nb = nbformat.read(notebook, as_version=4)
        serve = nbformat.v4.new_code_cell(
            f"import sys; sys.path.insert(0, {str(REPO)!r})\nfrom pathlib import Path\n"
            "from grader.kernel import datasets\n"
            f"datasets.install({{k: Path(v) for k, v in {served!r}.items()}})")
        client = NotebookClient(nb, timeout=3600, kernel_name="python3",
                                resources={"metadata": {"path": tmp}})
        with client.setup_kernel(env={**os.environ, **KERNEL_SETTINGS}, cwd=tmp,
                                 stderr=subprocess.DEVNULL):
            pid = client.km.provisioner.process.pid
            # A cell of the notebook's own: nbclient writes a cell's outputs (and more) to
            # nb.cells[index], so index -1 made this cell replace the notebook's last one,
            # which then never ran (the autoassociator's CNN training, measured as 0 s).
            nb.cells.insert(0, serve)
            client.execute_cell(serve, 0)
            cpu, started = process_cpu(pid), time.monotonic()
            for index, cell in enumerate(nb.cells[1:], start=1):
                client.execute_cell(cell, index)
            wall, cpu = time.monotonic() - started, process_cpu(pid) - cpu
    errors = sum(1 for c in nb.cells if c.cell_type == "code"
                 for o in c.get("outputs", []) if o.get("output_type") == "error")
    return wall, cpu, errors


def _cells_of(name: str, notebook: Path, data_dir: Path | None, full: bool
              ) -> tuple[float, float, int]:
    return cells_alone(notebook, spec.load(name), data_dir, full)


def cells_side_by_side(name: str, notebook: Path, data_dir: Path | None, count: int, full: bool
                       ) -> list[tuple[float, float, int]]:
    """`count` kernels at once, each running the notebook's cells: wall, CPU and errors of each."""
    with ProcessPoolExecutor(count, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(_cells_of, *zip(*[(name, notebook, data_dir, full)] * count)))


# The cells alone run without a time limit; so does `grader check` here, or a fit longer than
# the spec's per-cell limit (mnist-cnn's with --full on 2 cores) would be cut short and look fast.
NO_LIMIT = ["--timeout", "86400", "--cell-timeout", "86400"]


def grader_check(notebook: Path, assignment: spec.Assignment, data_dir: Path | None,
                 full: bool = False) -> tuple[float, float]:
    """Wall seconds of `grader check` and the machine's busy CPU seconds meanwhile; exits if
    the notebook did not run to its end, since such a time is no grader's cost."""
    command = [sys.executable, "-m", "grader.cli", "check", str(notebook),
               "--assignment", assignment.id, *NO_LIMIT, *(["--full"] if full else [])]
    if data_dir:
        command += ["--data-dir", str(data_dir)]
    with tempfile.TemporaryDirectory(prefix="grader-floor-") as out:
        busy, started = machine_busy(), time.monotonic()
        subprocess.run([*command, "--out", out], cwd=REPO, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        seconds, cpu = time.monotonic() - started, machine_busy() - busy
        execution = json.loads((Path(out) / "result.json").read_text())["execution"]
    if execution.get("status") != "completed":
        sys.exit(f"grader check did not run {notebook.name} to its end: {execution}")
    return seconds, cpu


def peers_submission(folder: Path) -> Path:
    """The good submission bench/peers.py writes for the grader (128-64-10, 8 epochs)."""
    sys.path.insert(0, str(REPO / "bench"))
    import peers

    grader = peers.Grader(folder, full=False, data_dir=None, sandbox="auto", timeout=0)
    grader.work.mkdir(parents=True, exist_ok=True)
    return grader.submission("good", 0)


def report(name: str, notebook: Path, args: argparse.Namespace) -> None:
    assignment = spec.load(name)
    starts, cells, checks, side = [], [], [], []
    for run in range(1, args.runs + 1):
        starts.append(bare_kernel_start())
        cells.append(cells_alone(notebook, assignment, args.data_dir, args.full))
        checks.append(grader_check(notebook, assignment, args.data_dir, args.full))
        (wall, cpu, errors), (check_wall, check_cpu) = cells[-1], checks[-1]
        print(f"{name} run {run}: bare kernel start {starts[-1]:.2f} s; cells alone "
              f"{wall:.2f} s, {cpu:.2f} CPU s ({errors} errors); grader check "
              f"{check_wall:.2f} s, {check_cpu:.2f} CPU s of the machine", flush=True)
        if args.side_by_side > 1:
            together = cells_side_by_side(name, notebook, args.data_dir, args.side_by_side,
                                          args.full)
            side.extend(cpu for _, cpu, _ in together)
            print(f"{name} run {run}: {args.side_by_side} kernels side by side: " + "; ".join(
                f"cells {w:.2f} s, {c:.2f} CPU s ({e} errors)" for w, c, e in together),
                flush=True)
    start = statistics.median(starts)
    wall, cpu = (statistics.median(c[i] for c in cells) for i in (0, 1))
    check_wall, check_cpu = (statistics.median(c[i] for c in checks) for i in (0, 1))
    n, cores = args.class_size, args.cores
    print(f"{name} ({notebook.name}), medians of {args.runs}: one notebook can take no less "
          f"than {start + wall:.1f} s (kernel start {start:.2f} + cells {wall:.2f}); "
          f"grader check takes {check_wall:.1f} s.\n"
          f"  {n} notebooks on {cores} cores, every core busy: the cells alone "
          f"{n * cpu / cores / 60:.1f} min, grader check as it is "
          f"{n * check_cpu / cores / 60:.1f} min", flush=True)
    if side:
        print(f"  side by side, {args.side_by_side} at a time: a kernel's cells took "
              f"{statistics.median(side):.2f} CPU s (median of {len(side)}), against {cpu:.2f} "
              f"alone; the class's cells at that cost {n * statistics.median(side) / cores / 60:.1f}"
              " min", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--assignment", action="append")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--peers-submission", action="store_true",
                        help="bench/peers.py's fashion-mlp submission instead of the reference")
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--full", action="store_true",
                        help="serve the whole dataset and run `grader check --full`")
    parser.add_argument("--cores", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--class-size", type=int, default=100)
    parser.add_argument("--side-by-side", type=int, default=0, metavar="N",
                        help="also run N kernels at a time on the cells, as a batch at -j N")
    args = parser.parse_args()
    names = args.assignment or ["fashion-mlp"]
    if args.peers_submission and names != ["fashion-mlp"]:
        parser.error("--peers-submission is a fashion-mlp notebook")
    with tempfile.TemporaryDirectory(prefix="grader-floor-") as tmp:
        for name in names:
            notebook = peers_submission(Path(tmp)) if args.peers_submission else \
                spec.load(name).reference
            report(name, notebook, args)


if __name__ == "__main__":
    main()
