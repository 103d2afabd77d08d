"""`grader calibrate`: run the reference solution and record what the checks compare against.

Writes reference/<id>/expected.json (architectures and compile settings, measured exactly as a
student's are), reference/<id>/thresholds.json (accuracy thresholds: the reference's mean over
runs minus a tolerance) and reference/<id>/designs.json (the designs the grader retrains, whose
accuracy on each machine sets the timed-training bar there), and reference/<id>/constraints.txt
(the Python and package versions they were measured with, grader/constraints.py, which the
Gradescope bundle and the Action install). All are small, reviewed and committed.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

from .checks.autoencoder_checks import code_size, reconstruction_errors
from .checks.keras_checks import best_accuracy
from . import constraints
from .paths import PROJECT_ROOT
from .pipeline import Options, execute_and_harvest
from .scoring import write_atomic
from .spec import Assignment

DEFAULT_TOLERANCE = 0.03  # accuracy: the threshold is the reference's mean minus this
RECONSTRUCTION_TOLERANCE = 0.25  # reconstruction error: up to 25 % above the reference's


class CalibrationError(Exception):
    pass


def record_designs(assignment: Assignment, options: Options) -> dict[str, Any]:
    """The reference's designs only (one run): what the timed-training bar is measured with."""
    harvest = execute_and_harvest(assignment.reference, assignment, options)
    designs = _designs(assignment, harvest)
    write_atomic(assignment.designs_path, json.dumps(designs, indent=1) + "\n")
    constraints.write(assignment)
    return designs


def _designs(assignment: Assignment, harvest) -> dict[str, Any]:
    timed = {c.object for c in assignment.checks if c.kind == "timed_training"}
    out: dict[str, Any] = {"objects": {}}
    for name in sorted(timed):
        obj = harvest.objects.get(name)
        if obj is not None and obj.design and obj.input_layout:
            out["objects"][name] = {"design": obj.design, "layout": obj.input_layout}
    return out


def calibrate(assignment: Assignment, options: Options, runs: int = 1,
              tolerance: float = DEFAULT_TOLERANCE, command: str | None = None) -> dict[str, Any]:
    expected: dict[str, Any] = {"objects": {}}
    accuracies: dict[tuple[str, str], list[float]] = {}
    subset: dict[str, Any] = {}
    # Classifiers of an encoder's codes: their accuracy is also recorded per code size k.
    encoded = {o.name for o in assignment.objects if o.options.get("encoder")}
    designs: dict[str, Any] = {}
    for run in range(runs):
        harvest = execute_and_harvest(assignment.reference, assignment, options,
                                      kernel_seed=run, training_seed=run)
        if run == 0:
            designs = _designs(assignment, harvest)
        if harvest.record.cell_errors:
            first = harvest.record.cell_errors[0]
            raise CalibrationError(f"the reference notebook raised in cell {first.cell + 1}: "
                                   f"{first.ename}: {first.evalue}")
        subset = {**harvest.data.summary, "source": _portable(harvest.data.summary.get("source"))}
        for name, obj in harvest.objects.items():
            if obj.status != "found":
                raise CalibrationError(f"the reference does not define `{name}` ({obj.status})")
            if run == 0:
                expected["objects"][name] = {
                    "variants": [_variant(obj.model, assignment.reference_label)]}
            labels = harvest.data.holdout_labels
            if labels is None:
                continue
            best = best_accuracy(obj.predictions, labels) if obj.predictions else None
            if best:
                accuracies.setdefault((name, "accuracy"), []).append(round(best[1], 4))
                if name in encoded:
                    _record_code_accuracy(accuracies, name, obj, best)
            if obj.predictions and harvest.data.holdout_images is not None:
                _record_reconstruction(accuracies, name, obj, harvest.data.holdout_images)
            if obj.timed and obj.timed.get("status") == "trained":
                timed = best_accuracy({"unit": obj.timed["predictions"]}, labels)
                accuracies.setdefault((name, "timed_accuracy"), []).append(round(timed[1], 4))
            elif obj.timed:
                raise CalibrationError(f"timed training of the reference `{name}` failed: "
                                       f"{obj.timed.get('message')}")
    for label, notebook in assignment.reference_variants:
        # Accepted alternatives: their architecture, and reconstruction error for their own k.
        harvest = execute_and_harvest(notebook, assignment, options)
        for name, obj in harvest.objects.items():
            if obj.status == "found":
                expected["objects"][name]["variants"].append(_variant(obj.model, label))
                if obj.predictions and harvest.data.holdout_images is not None:
                    _record_reconstruction(accuracies, name, obj, harvest.data.holdout_images)
                labels = harvest.data.holdout_labels
                if name in encoded and labels is not None and obj.predictions:
                    _record_code_accuracy(accuracies, name, obj,
                                          best_accuracy(obj.predictions, labels))
    thresholds = {"command": command or " ".join(["grader", *sys.argv[1:]]),
                  "tolerance": tolerance, "subset": subset, "objects": {}}
    for (name, metric), values in accuracies.items():
        mean = statistics.fmean(values)
        spread = statistics.pstdev(values) if len(values) > 1 else 0.0
        if metric.startswith("reconstruction"):  # an error: lower is better, tolerance relative
            limit = round(mean * (1 + RECONSTRUCTION_TOLERANCE) + 2 * spread, 5)
        else:
            limit = round(mean - max(tolerance, 2 * spread), 4)
        thresholds["objects"].setdefault(name, {})[metric] = {
            "threshold": limit,
            "reference_mean": round(mean, 4), "reference_std": round(spread, 4),
            "runs": values, "seeds": list(range(runs)),
        }
    write_atomic(assignment.expected_path, json.dumps(expected, indent=1) + "\n")
    write_atomic(assignment.thresholds_path, json.dumps(thresholds, indent=1) + "\n")
    if designs["objects"]:
        write_atomic(assignment.designs_path, json.dumps(designs, indent=1) + "\n")
    constraints.write(assignment)
    return thresholds


def _portable(source: str | None) -> str | None:
    """A dataset path beside the project (../shared/data) as a relative path: the committed file
    must not name one machine's folders."""
    if not source:
        return source
    path, beside = Path(source).resolve(), PROJECT_ROOT.resolve().parent
    return os.path.relpath(path, PROJECT_ROOT) if path.is_relative_to(beside) else str(path)


def _record_reconstruction(store, name, obj, images) -> None:
    errors = reconstruction_errors(obj.predictions, images)
    k = code_size(obj.model)
    if errors and k:
        store.setdefault((name, f"reconstruction_k{k}"), []).append(round(min(errors.values()), 6))


def _record_code_accuracy(store, name, obj, best: tuple[str, float] | None) -> None:
    """The accuracy of a classifier of codes, also filed under its code size k."""
    k = (obj.input_layout or [None])[0]
    if best and k:
        store.setdefault((name, f"accuracy_k{k}"), []).append(round(best[1], 4))


def _variant(model: dict[str, Any], label: str) -> dict[str, Any]:
    """Only what the checks compare: a reviewable file, free of run-specific names."""
    keep = ("class", "output_shape", "params", "activation", "config")
    return {
        "label": label,
        "total_params": model["total_params"],
        "layers": [{k: layer[k] for k in keep if k in layer} | {"weights": [
            {"shape": w["shape"]} for w in layer.get("weights", [])]} for layer in model["layers"]],
        "compile": {k: model["compile"].get(k) for k in ("loss", "from_logits", "optimizer")},
    }
