"""How much two independent trainings of the reference's design agree on the holdout:
`python3 bench/similarity_calibrate.py [-a fashion-mlp] [--seeds 0 1 2] [--epochs N]
[--data-dir DIR]`.

Trains the reference design (reference/<id>/designs.json) with the grader's own training loop
and budget (`[training]` of assignment.toml; `--epochs` trains longer, closer to the homework's
own training, since that budget is sized for the timed check), once per seed, from the grader's
subset, and prints each run's holdout accuracy and every pair's agreement (the share of holdout
images both label the same). The similarity report's --similar-prediction-agreement must sit
well above the highest of these: two students' models that agree more are very likely one
model.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
for name, value in (("OMP_NUM_THREADS", "2"), ("TF_NUM_INTRAOP_THREADS", "2"),
                    ("TF_NUM_INTEROP_THREADS", "1"), ("TF_CPP_MIN_LOG_LEVEL", "2"),
                    ("TF_ENABLE_ONEDNN_OPTS", "0")):
    os.environ.setdefault(name, value)

from grader import pipeline, assignment as spec  # noqa: E402
from grader.measure.worker import _train_design  # noqa: E402  (the trusted side's training)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-a", "--assignment", default="fashion-mlp")
    parser.add_argument("--object", default="model")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, help="default: the assignment's [training] epochs")
    parser.add_argument("--data-dir", type=Path, default=os.environ.get("GRADER_DATA_DIR"))
    args = parser.parse_args()
    assignment = spec.load(args.assignment)
    design = assignment.designs()["objects"][args.object]
    budget = assignment.training
    epochs = args.epochs or budget.epochs
    labels = {}
    with tempfile.TemporaryDirectory() as tmp:
        prepared = pipeline.prepare_data(assignment, pipeline.Options(
            data_dir=Path(args.data_dir) if args.data_dir else None), Path(tmp))
        for seed in args.seeds:
            training = {**pipeline.training_budget(assignment, prepared, seed),
                        "epochs": epochs}
            path = Path(tmp) / f"seed{seed}.npz"
            run = _train_design(design["design"], tuple(design["layout"]),
                                prepared.holdout_images, training, path, "unit")
            if run.get("status") != "trained":
                raise SystemExit(f"seed {seed}: {run}")
            labels[seed] = np.argmax(np.load(path)["predictions"], axis=1)
            accuracy = float(np.mean(labels[seed] == prepared.holdout_labels))
            print(f"seed {seed}: holdout accuracy {accuracy:.4f} ({epochs} epochs, "
                  f"batch {budget.batch_size})", flush=True)
    agreements = []
    for a, b in itertools.combinations(args.seeds, 2):
        value = float(np.mean(labels[a] == labels[b]))
        agreements.append(value)
        print(f"seeds {a} and {b}: agreement {value:.4f} on {len(labels[a])} holdout images")
    print(f"{args.assignment}: highest agreement of independent trainings {max(agreements):.4f}")


if __name__ == "__main__":
    main()
