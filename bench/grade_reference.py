"""Benchmark: seconds to grade a reference notebook end to end, split by stage.

Run by hand:  python3 bench/grade_reference.py [--assignment fashion-mlp] [--repeat 3] [--full]
              [--data-dir DIR] [--sandbox auto|bwrap|none]
Prints one line per run and the median of each stage: kernel start, notebook execution,
harvesting, the trusted measuring process (loading, describing, predicting and the grader's own
training; its TensorFlow import overlaps the notebook), the grader's timed training alone,
grading, total, overhead (total minus the notebook's own cells), harness (overhead minus the
grader's own timed training), seconds per epoch of the timed training, and the peak RSS of the
grader process and its children.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from grader import pipeline, assignment as spec  # noqa: E402
from grader.scoring import DataMode  # noqa: E402

STAGES = ("kernel_start", "execute", "harvest", "measure", "timed_training", "grade", "total")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--assignment", default="fashion-mlp")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--sandbox", choices=("auto", "bwrap", "none"), default="auto")
    args = parser.parse_args()
    assignment = spec.load(args.assignment)
    options = pipeline.Options(data_dir=args.data_dir, sandbox=args.sandbox,
                               mode=DataMode.FULL if args.full else DataMode.SUBSET)
    runs = []
    for i in range(args.repeat):
        result = pipeline.grade(assignment.reference, assignment, options)
        t = result.timings
        t["overhead"] = t["total"] - t["execute"]
        # The harness alone: neither the notebook's cells nor the grader's own training.
        t["harness"] = t["overhead"] - t.get("timed_training", 0)
        runs.append(t)
        print(f"run {i + 1}: score {result.score:g}/{result.max_score:g} "
              + " ".join(f"{k}={t.get(k, 0):.2f}s" for k in (*STAGES, "overhead", "harness")),
              flush=True)
        for name, model in result.models.items():
            timed = model.get("timed_training") or {}
            if timed.get("seconds_per_epoch"):
                per_epoch = timed["seconds_per_epoch"]
                print(f"  timed training of {name}: {len(per_epoch)} epochs, "
                      f"{statistics.mean(per_epoch):.2f} s/epoch ({timed.get('where', 'worker')})")
    print(f"median over {len(runs)} runs ({'full' if args.full else 'subset'} mode, "
          f"sandbox {result.sandbox}):")
    for key in (*STAGES, "overhead", "harness"):
        print(f"  {key:<15} {statistics.median(r.get(key, 0) for r in runs):7.2f} s")
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"  peak RSS: grader {own:.0f} MB, largest child (kernel/trainer) {kids:.0f} MB")


if __name__ == "__main__":
    main()
