"""Benchmark: what the bubblewrap sandbox costs per notebook, against process limits only.

Run by hand:  python3 bench/sandbox_overhead.py [--repeat 5] [--data-dir DIR]
Grades two notebooks alternately under `--sandbox bwrap` and `--sandbox none`: a one-cell
notebook (pure harness cost: kernel start, data served, harvest) and the fashion-mlp reference.
Prints the median total seconds of each and the difference.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from grader import pipeline, spec  # noqa: E402
from grader.execution import sandbox  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--data-dir", type=Path)
    args = parser.parse_args()
    if not sandbox.bwrap_path():
        sys.exit("bubblewrap is not usable here; nothing to compare")
    assignment = spec.load("fashion-mlp")
    tiny = Path(tempfile.mkdtemp()) / "one-cell.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]), tiny)
    for label, path in (("one-cell notebook", tiny), ("fashion-mlp reference", assignment.reference)):
        totals: dict[str, list[float]] = {"bwrap": [], "none": []}
        for _ in range(args.repeat):
            for mode in totals:  # alternate, so drift in machine load hits both alike
                result = pipeline.grade(path, assignment,
                                        pipeline.Options(data_dir=args.data_dir, sandbox=mode))
                assert result.sandbox == mode
                totals[mode].append(result.timings["total"])
        med = {mode: statistics.median(v) for mode, v in totals.items()}
        print(f"{label}: bwrap {med['bwrap']:.2f} s, none {med['none']:.2f} s, "
              f"overhead {med['bwrap'] - med['none']:+.2f} s (median of {args.repeat}; "
              f"runs bwrap {[round(t, 2) for t in totals['bwrap']]}, "
              f"none {[round(t, 2) for t in totals['none']]})", flush=True)


if __name__ == "__main__":
    main()
