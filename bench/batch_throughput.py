"""Benchmark: submissions graded per minute by `grader grade`, with -j 1 and -j 2 (or --jobs).

Run by hand:  python3 bench/batch_throughput.py [--assignment fashion-mlp] [--count 8]
              [--epochs 20] [--mix reference|mixed] [--jobs 1,2] [--data-dir DIR]
              [--sandbox auto|bwrap|none] [--keep DIR]

Generates one folder of submissions (the reference solution, each copy differing only in a
comment; `--epochs` rewrites its training length; `--mix mixed` makes every other one a notebook
that fails in its first cell, as a class's stragglers do) and grades that same folder once per
jobs setting, each into a fresh output folder, through the real CLI in a subprocess. Prints, for
each setting, the wall time, submissions per minute and the speed-up over the first setting.
Measured on the machine it runs on: numbers depend on its cores and on what else runs there.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from grader import assignment as spec  # noqa: E402


def generate(folder: Path, assignment_id: str, count: int, epochs: int | None, mix: str) -> None:
    assignment = spec.load(assignment_id)
    reference = nbformat.read(assignment.reference, as_version=4)
    for i in range(count):
        if mix == "mixed" and i % 2:
            nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
                f"# student {i}\nraise NotImplementedError()")])
            nb.metadata["grader"] = {"assignment": assignment_id}
        else:
            nb = nbformat.reads(nbformat.writes(reference), as_version=4)
            nb.cells.insert(0, nbformat.v4.new_code_cell(f"# student {i}"))
            if epochs is not None:
                for cell in nb.cells:
                    if cell.cell_type == "code":
                        cell.source = cell.source.replace("epochs=20", f"epochs={epochs}")
        path = folder / (f"student{i:03d}.ipynb" if i % 3 else f"student{i:03d}/homework.ipynb")
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)


def grade(folder: Path, out: Path, assignment_id: str, jobs: int, args) -> float:
    cmd = [sys.executable, "-m", "grader.cli", "grade", str(folder), "-a", assignment_id,
           "--out", str(out), "-j", str(jobs), "--sandbox", args.sandbox]
    if args.data_dir:
        cmd += ["--data-dir", str(args.data_dir)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]))
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"grader grade -j {jobs} failed ({proc.returncode}):\n{proc.stderr}")
    last = [line for line in proc.stdout.splitlines() if "students:" in line]
    print(f"  -j {jobs}: {last[-1] if last else proc.stdout.strip()[-200:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignment", default="fashion-mlp")
    parser.add_argument("--count", type=int, default=8, help="submissions (default 8)")
    parser.add_argument("--epochs", type=int, help="rewrite the reference's epochs=20")
    parser.add_argument("--mix", choices=("reference", "mixed"), default="reference")
    parser.add_argument("--jobs", default="1,2", help="comma-separated -j settings")
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--sandbox", choices=("auto", "bwrap", "none"), default="auto")
    parser.add_argument("--keep", type=Path, help="keep the submissions and outputs here")
    args = parser.parse_args()
    jobs = [int(j) for j in args.jobs.split(",")]

    work = args.keep or Path(tempfile.mkdtemp(prefix="grader-bench-"))
    try:
        folder = work / "submissions"
        generate(folder, args.assignment, args.count, args.epochs, args.mix)
        print(f"{args.count} submissions of {args.assignment} ({args.mix}"
              f"{f', {args.epochs} epochs' if args.epochs else ''}) on {os.cpu_count()} cores")
        timings = {}
        for j in jobs:
            timings[j] = grade(folder, work / f"out-j{j}", args.assignment, j, args)
        base = timings[jobs[0]]
        for j, seconds in timings.items():
            print(f"-j {j}: {seconds:7.1f} s  {args.count / seconds * 60:6.2f} submissions/min"
                  f"  speed-up {base / seconds:4.2f}x")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
