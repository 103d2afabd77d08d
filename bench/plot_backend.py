"""Benchmark: what rendering plots costs a notebook, Agg (no plots kept) against Jupyter's inline
backend (plots become outputs: what the grader's kernel uses, so feedback shows them).

Run by hand:  python3 bench/plot_backend.py [--assignment fashion-mlp] [--runs 2]

Runs the reference solution's cells that call matplotlib (with random images of the dataset's
shape instead of the dataset) in a plain Jupyter kernel, once per backend and run, and prints
each backend's seconds for those cells. Measured on the machine it runs on: the cost grows with
what else runs there.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from grader import assignment as spec  # noqa: E402

BACKENDS = ("Agg", "module://matplotlib_inline.backend_inline")
FAKE_DATA = ("import numpy as np\nrng = np.random.default_rng(0)\n"
             "xdev = xtest = rng.integers(0, 256, (100, 28, 28))\n"
             "ydev = ytest = rng.integers(0, 10, 100)\n")


def plot_cells(assignment: str) -> list[str]:
    nb = nbformat.read(spec.load(assignment).reference, as_version=4)
    return [c.source for c in nb.cells
            if c.cell_type == "code" and "plt." in c.source and "history" not in c.source]


def seconds(cells: list[str], backend: str) -> float:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(FAKE_DATA),
                                         *map(nbformat.v4.new_code_cell, cells)])
    with tempfile.TemporaryDirectory() as config:
        os.environ.update(MPLBACKEND=backend, MPLCONFIGDIR=config)
        client = NotebookClient(nb, timeout=600, kernel_name="python3", record_timing=True,
                                allow_errors=True)
        client.execute()
    total = 0.0
    for cell in nb.cells[1:]:
        timing = cell.metadata.get("execution", {})
        start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
        if start and end:
            total += (_parse(end) - _parse(start))
    return total


def _parse(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignment", default="fashion-mlp")
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    cells = plot_cells(args.assignment)
    print(f"{len(cells)} plotting cell(s) of {args.assignment}'s reference; load average "
          f"{os.getloadavg()[0]:.1f}")
    for backend in BACKENDS:
        runs = [seconds(cells, backend) for _ in range(args.runs)]
        print(f"{backend:<45} " + "  ".join(f"{s:6.2f} s" for s in runs))
    print(f"load average {os.getloadavg()[0]:.1f}; {time.strftime('%H:%M:%S')}")


if __name__ == "__main__":
    main()
