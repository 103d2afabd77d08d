"""Benchmark: what a measuring process forked from a warm parent would save, and whether it
trains to the very same numbers.

Run by hand:  python3 bench/warm_fork.py [--assignment fashion-mlp] [--children 3]

Today every grading starts its own measuring process, which imports Keras and TensorFlow before
it trains anything (grader/measure/worker.py). A batch could instead fork each student's
measuring process from a parent that imported them once and never saw a student's file. Before
building that, this measures it with the measuring process's own code and settings (its
environment, its skipped optional imports, the grader's training loop in
grader/training/timed_fit.py):
- cold: --children fresh interpreters, each importing Keras, then training every reference design
  of the assignment (reference/<id>/designs.json) with the assignment's [training] budget;
- warm: one parent imports Keras once and forks --children children, one after another, each
  training the same designs.
It prints each child's CPU seconds (a cold one's import included, a warm one's from the fork),
the parent's import, and whether every child's losses and predictions are the same bytes as the
first cold child's. The pixels are random (seeded), shaped like the assignment's subset: the
cost and the equality do not depend on them, and the bench needs no dataset.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def train_designs(assignment_id: str) -> dict[str, str | float]:
    """Every reference design of the assignment trained as the measuring process trains one;
    a digest of the losses and predictions, and this process's CPU seconds for it."""
    import numpy as np

    from grader import assignment as spec
    from grader.training.design_data import strip
    from grader.training.timed_fit import timed_fit

    started = time.process_time()
    assignment = spec.load(assignment_id)
    budget, data = assignment.training, assignment.data
    designs = json.loads((ROOT / "reference" / assignment_id / "designs.json").read_text())
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (data.train_per_class * 10, 784), dtype=np.uint8)
    labels = rng.integers(0, 10, len(train))
    images = rng.integers(0, 256, (data.holdout_per_class * 10, 784), dtype=np.uint8)
    digest = hashlib.sha256()
    import keras

    for name, entry in sorted(designs["objects"].items()):
        design, layout = entry["design"], tuple(entry["layout"])
        config, _ = strip(design["config"])
        keras.utils.set_random_seed(budget.seed)
        model = keras.models.model_from_json(json.dumps(config))
        result = timed_fit(model, x_train=train, y_train=labels, images=images, layout=layout,
                           loss=design["loss"], optimizer=design["optimizer"],
                           epochs=budget.epochs, batch_size=budget.batch_size,
                           max_cpu_seconds=budget.max_cpu_seconds, n_classes=10,
                           seed=budget.seed)
        digest.update(name.encode() + json.dumps(result["loss"]).encode())
        digest.update(result["predictions"].tobytes())
    return {"digest": digest.hexdigest(), "work_cpu": time.process_time() - started}


def import_keras() -> float:
    """The measuring process's import, as it does it; its CPU seconds."""
    from grader.measure import worker

    started = time.process_time()
    worker._skip_optional_imports()
    import keras  # noqa: F401

    return time.process_time() - started


def child_cpu(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


def run_cold(assignment_id: str) -> None:
    """One cold child: import, then train; its own figures on stdout."""
    imported = import_keras()
    print(json.dumps({"import_cpu": imported, **train_designs(assignment_id)}), flush=True)


def run_warm(assignment_id: str, children: int) -> None:
    """The warm parent: import once, then fork the children one after the other."""
    print(json.dumps({"parent_import_cpu": import_keras()}), flush=True)
    for _ in range(children):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            os.write(write, json.dumps(train_designs(assignment_id)).encode())
            os._exit(0)
        os.close(write)
        with os.fdopen(read) as pipe:
            figures = json.loads(pipe.read() or "{}")
        _, status, usage = os.wait4(pid, 0)
        print(json.dumps({**figures, "cpu": child_cpu(usage), "status": status}), flush=True)


def measuring_env(home: Path) -> dict[str, str]:
    from grader.measure import worker_env

    env = worker_env(home)
    env["PYTHONPATH"] = str(ROOT)
    return env


def launch(mode: str, assignment_id: str, children: int) -> tuple[list[dict], float]:
    """A child of this script in `mode`; the JSON lines it printed and the CPU it took."""
    before = child_cpu(resource.getrusage(resource.RUSAGE_CHILDREN))
    with tempfile.TemporaryDirectory(prefix="warm-fork-home-") as home:
        done = subprocess.run([sys.executable, __file__, "--role", mode, "--assignment",
                               assignment_id, "--children", str(children)],
                              env=measuring_env(Path(home)), capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"the {mode} child failed (exit {done.returncode}): "
                 + "\n".join(done.stderr.strip().splitlines()[-5:]))
    spent = child_cpu(resource.getrusage(resource.RUSAGE_CHILDREN)) - before
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")], spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignment", default="fashion-mlp")
    parser.add_argument("--children", type=int, default=3)
    parser.add_argument("--role", choices=("bench", "cold", "warm"), default="bench",
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "cold":
        return run_cold(args.assignment)
    if args.role == "warm":
        return run_warm(args.assignment, args.children)
    cold = [launch("cold", args.assignment, 1) for _ in range(args.children)]
    warm_lines, warm_total = launch("warm", args.assignment, args.children)
    parent, forked = warm_lines[0], warm_lines[1:]
    reference = cold[0][0][0]["digest"]
    print(f"{args.assignment}: {args.children} measuring processes' training of "
          f"reference/{args.assignment}/designs.json, cold and forked from a warm parent")
    for i, (lines, spent) in enumerate(cold):
        line = lines[0]
        print(f"  cold {i + 1}: {spent:6.2f} CPU s (import {line['import_cpu']:.2f}, "
              f"training {line['work_cpu']:.2f}); same numbers: {line['digest'] == reference}")
    for i, line in enumerate(forked):
        print(f"  warm {i + 1}: {line['cpu']:6.2f} CPU s (training {line['work_cpu']:.2f}); "
              f"same numbers: {line['digest'] == reference and line['status'] == 0}")
    cold_median = statistics.median(spent for _, spent in cold)
    warm_median = statistics.median(line["cpu"] for line in forked)
    print(f"  warm parent: {parent['parent_import_cpu']:.2f} CPU s importing Keras once; "
          f"{warm_total:.2f} CPU s for the parent and its {len(forked)} children")
    print(f"  median per child: cold {cold_median:.2f}, warm {warm_median:.2f} CPU s; "
          f"{cold_median - warm_median:.2f} saved per student")


if __name__ == "__main__":
    main()
