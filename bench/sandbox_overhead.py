"""Benchmark: what the sandbox and the limits cost per notebook.

Run by hand:  python3 bench/sandbox_overhead.py [--repeat 3] [--data-dir DIR] [--keras-reference]

Grades each notebook alternately in four set-ups and prints the median total seconds of each:
- bwrap + limits: the default (allow-list bubblewrap, cgroup, an unprivileged uid when root,
  size-capped tmpfs, the disk watchdog);
- bwrap, no cgroup or uid: the same sandbox with the cgroup and the uid switched off;
- none + limits: no bubblewrap, the cgroup and the watchdog still on;
- none, no cgroup: process limits only.
Notebooks: a one-cell fashion-mlp notebook (kernel start, data served, the measuring process
started and closed), numpy-backprop's reference (kernel and clean room) and, with
--keras-reference, fashion-mlp's reference (TensorFlow in the kernel and in the measuring process).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from grader import pipeline, assignment as spec  # noqa: E402
from grader.execution import cgroups, sandbox, uids  # noqa: E402

SETUPS = ("bwrap + limits", "bwrap, no cgroup or uid", "none + limits", "none, no cgroup")


@contextlib.contextmanager
def without_cgroup_or_uid(off: bool) -> Iterator[None]:
    if not off:
        yield
        return
    parents, available = cgroups.parents, uids.available
    cgroups.parents = lambda: ({}, {"memory": "off (bench)", "pids": "off (bench)"})
    uids.available = lambda: "off (bench)"
    try:
        yield
    finally:
        cgroups.parents, uids.available = parents, available


def grade(path: Path, assignment: spec.Assignment, setup: str, data_dir: Path | None) -> float:
    mode = "bwrap" if setup.startswith("bwrap") else "none"
    with without_cgroup_or_uid("no " in setup):
        result = pipeline.grade(path, assignment, pipeline.Options(data_dir=data_dir, sandbox=mode))
    assert result.sandbox == mode and not result.grader_error, result.execution
    return result.timings["total"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--keras-reference", action="store_true")
    args = parser.parse_args()
    if not sandbox.bwrap_path():
        sys.exit("bubblewrap is not usable here; nothing to compare")
    tiny = Path(tempfile.mkdtemp()) / "one-cell.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]), tiny)
    cases = [("one-cell notebook", tiny, spec.load("fashion-mlp")),
             ("numpy-backprop reference", spec.load("numpy-backprop").reference,
              spec.load("numpy-backprop"))]
    if args.keras_reference:
        cases.append(("fashion-mlp reference", spec.load("fashion-mlp").reference,
                      spec.load("fashion-mlp")))
    for label, path, assignment in cases:
        totals: dict[str, list[float]] = {s: [] for s in SETUPS}
        for _ in range(args.repeat):
            for setup in SETUPS:  # alternate, so drift in machine load hits all alike
                totals[setup].append(grade(path, assignment, setup, args.data_dir))
        med = {s: statistics.median(v) for s, v in totals.items()}
        base = med["bwrap, no cgroup or uid"]
        print(f"{label} (median of {args.repeat}):", flush=True)
        for setup in SETUPS:
            print(f"  {setup:24s} {med[setup]:6.2f} s  ({med[setup] - base:+.2f} s against "
                  f"bwrap without cgroup or uid; runs {[round(t, 2) for t in totals[setup]]})",
                  flush=True)


if __name__ == "__main__":
    main()
