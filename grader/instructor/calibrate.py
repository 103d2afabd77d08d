"""`grader calibrate`: run the reference and the correct variants, and record what the checks
compare against.

Writes reference/<id>/expected.json (architectures and compile settings of the reference and
its accepted alternatives, measured exactly as a student's are), reference/<id>/thresholds.json
(the bars, with every run they came from), reference/<id>/designs.json (the designs the grader
retrains, whose accuracy on each machine sets the timed-training bar there) and
reference/<id>/constraints.txt (the Python and package versions they were measured with,
grader/instructor/constraints.py, which the Gradescope bundle and the Action install). All are
small, reviewed and committed.

Correct runs: the reference, `runs` times (kernel and training seeds 0, 1, ...), each correct
variant of reference/<id>/variants/ (grader/instructor/variants.py), and each accepted alternative
of `[[reference_variants]]` for the models it trains. The bars:

- accuracy (the student's own trained model) and timed accuracy (the grader's training of the
  design): the lowest correct run less a margin, max(tolerance, 2 × the spread of the reference's
  seeds), so that every seed clears it by the margin wherever it runs; an accuracy bar is never
  above the homework's figure (`homework_figure` of the check) less the tolerance, so a solution
  that reaches the homework's figure passes;
- reconstruction and code accuracy (Homework 7 asks for something that works): fixed in the
  spec as the trivial answer beaten by a margin (grader/checks/autoencoder_checks.py);
  calibration records every correct run against that bar and fails if one does not clear it.

Last, every correct run is scored against the new files and must get full marks, and every
wrong variant is graded with them and must get the verdict its metadata gives: lose each check
it names in `loses`, keep each it names in `keeps`. Calibration fails naming each variant that
misses, after writing its files (so the instructor can look at what the bars were).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import variants as variants_mod
from ..checks.autoencoder_checks import (code_accuracy_bar, code_size, mean_image_error,
                                         reconstruction_bar, reconstruction_errors)
from ..checks.keras_checks import best_accuracy
from . import constraints
from ..errors import GraderError
from .. import paths
from ..pipeline import Harvest, Options, execute_and_harvest, score_harvest
from ..scoring import CheckStatus, RunStatus, TimedStatus, write_atomic
from ..assignment import Assignment, CheckSpec

DEFAULT_TOLERANCE = 0.03  # accuracy: the least margin below the lowest correct run
# Metrics calibration derives a bar for, by check kind; the others' bars are fixed in the spec.
CALIBRATED = {"accuracy": "accuracy", "timed_training": "timed_accuracy"}
FIXED = {"reconstruction": "reconstruction", "code_accuracy": "code_accuracy"}


class CalibrationError(GraderError):
    """The reference or a correct variant failed, or a correct run does not clear its bar."""


@dataclass
class Calibrated:
    """What a calibration did: its bars, the files it wrote, and the notebooks it ran."""

    thresholds: dict[str, Any]
    written: list[Path] = field(default_factory=list)
    correct_runs: list[str] = field(default_factory=list)  # what set the bars, in words
    wrong_variants: list[str] = field(default_factory=list)  # graded to check their verdicts
    left_out: list[str] = field(default_factory=list)  # variants with checks not scored yet


@dataclass
class Runs:
    """The values one metric of one object took, run by run."""

    reference: list[float] = field(default_factory=list)  # seed by seed
    others: dict[str, float] = field(default_factory=dict)  # by label

    def all(self) -> dict[str, float]:
        return {**{f"reference, seed {i}": v for i, v in enumerate(self.reference)},
                **self.others}


def record_designs(assignment: Assignment, options: Options) -> dict[str, Any]:
    """The reference's designs only (one run): what the timed-training bar is measured with."""
    harvest = execute_and_harvest(assignment.reference, assignment, options)
    designs = _designs(assignment, harvest)
    write_atomic(assignment.designs_path, json.dumps(designs, indent=1) + "\n")
    constraints.write(assignment)
    return designs


def _designs(assignment: Assignment, harvest: Harvest) -> dict[str, Any]:
    timed = {c.object for c in assignment.checks if c.kind == "timed_training"}
    out: dict[str, Any] = {"objects": {}}
    for name in sorted(timed):
        obj = harvest.objects.get(name)
        if obj is not None and obj.design and obj.input_layout:
            out["objects"][name] = {"design": obj.design, "layout": obj.input_layout}
    return out


def calibrate(assignment: Assignment, options: Options, runs: int = 3,
              tolerance: float = DEFAULT_TOLERANCE, command: str | None = None) -> Calibrated:
    """Run every correct run, write the files, then grade every variant against them; raises
    CalibrationError naming each run whose verdict is not the one it must get."""
    all_variants = variants_mod.load_all(assignment)  # invalid metadata stops us before any run
    # A variant with checks the grader cannot score yet (grader/instructor/variants.py, `pending`)
    # is no calibration run: its bars and its verdict wait until the grader scores all of it.
    left_out = [f"{v.name!r} ({v.label}): the grader cannot score {', '.join(v.meta.pending)} "
                "for it yet" for v in all_variants if v.meta.pending]
    all_variants = [v for v in all_variants if not v.meta.pending]
    expected: dict[str, Any] = {"objects": {}}
    metrics: dict[tuple[str, str], Runs] = {}
    scored: list[tuple[str, Harvest]] = []  # correct runs that must get full marks
    designs: dict[str, Any] = {"objects": {}}
    subset: dict[str, Any] = {}
    for run in range(runs):
        harvest = execute_and_harvest(assignment.reference, assignment, options,
                                      kernel_seed=run, training_seed=run)
        _require_clean(harvest, "the reference", every_object=True)
        if run == 0:
            designs = _designs(assignment, harvest)
            subset = {**harvest.data.summary,
                      "source": _portable(harvest.data.summary.get("source"))}
            expected["objects"] = {name: {"variants": [_variant(obj.model,
                                                                assignment.reference_label)]}
                                   for name, obj in harvest.objects.items()}
        for key, value in _values(assignment, harvest).items():
            metrics.setdefault(key, Runs()).reference.append(value)
        scored.append((f"the reference (seed {run})", harvest))
    for label, notebook in assignment.reference_variants:
        # An accepted alternative's architecture; a correct run for the models it trains.
        harvest = execute_and_harvest(notebook, assignment, options)
        for name, obj in harvest.objects.items():
            if obj.status == "found":
                expected["objects"][name]["variants"].append(_variant(obj.model, label))
        trained = {n for n, o in harvest.objects.items() if o.status == "found" and
                   ((o.model or {}).get("compile") or {}).get("train_steps", 0) > 0}
        for (name, metric), value in _values(assignment, harvest, trained).items():
            metrics.setdefault((name, metric), Runs()).others[label] = value
    for variant in all_variants:
        if not variant.correct:
            continue
        harvest = execute_and_harvest(variant.path, assignment, options)
        _require_clean(harvest, f"the correct variant {variant.name!r}", every_object=True)
        for key, value in _values(assignment, harvest).items():
            metrics.setdefault(key, Runs()).others[variant.label] = value
        scored.append((f"the correct variant {variant.name!r}", harvest))
    thresholds = {"command": command or " ".join(["grader", *sys.argv[1:]]),
                  "tolerance": tolerance, "subset": subset, "objects": {}}
    labels = scored[0][1].data.holdout_labels
    n_classes = int(labels.max()) + 1 if labels is not None else 10
    problems = []
    for check in assignment.checks:
        metric = CALIBRATED.get(check.kind) or FIXED.get(check.kind)
        runs_of = metrics.get((check.object, metric)) if metric else None
        if runs_of is None:
            continue
        entry, trouble = _bar(check, metric, runs_of, tolerance, n_classes)
        thresholds["objects"].setdefault(check.object, {})[metric] = entry
        problems += trouble
    write_atomic(assignment.expected_path, json.dumps(expected, indent=1) + "\n")
    write_atomic(assignment.thresholds_path, json.dumps(thresholds, indent=1) + "\n")
    written = [assignment.expected_path, assignment.thresholds_path]
    if designs["objects"]:
        write_atomic(assignment.designs_path, json.dumps(designs, indent=1) + "\n")
        written.append(assignment.designs_path)
    written.append(constraints.write(assignment))
    problems += _full_marks_problems(assignment, scored)
    wrong = [v for v in all_variants if not v.correct]
    for variant in wrong:  # graded as a student's notebook is, against the files just written
        result = score_harvest(execute_and_harvest(variant.path, assignment, options),
                               assignment)
        problems += [f"the wrong variant {variant.name!r} ({variant.label}): {p}"
                     for p in variants_mod.verdict_problems(variant, result)]
    done = Calibrated(thresholds, written,
                      correct_runs=[what for what, _ in scored] + [
                          f"the accepted alternative {label!r} ({notebook.name})"
                          for label, notebook in assignment.reference_variants],
                      wrong_variants=[f"{v.name!r} ({v.label}): loses "
                                      f"{', '.join(v.meta.loses)}" for v in wrong],
                      left_out=left_out)
    if problems:
        raise CalibrationError(
            "calibration wrote " + ", ".join(str(p) for p in written) + ", but these runs do not "
            "get the verdict they must with them (a correct one full marks; a wrong one the loss "
            "of the checks its metadata.grader.variant names in `loses`, and no other of those "
            "in `keeps`):\n  " + "\n  ".join(problems))
    return done


def _require_clean(harvest: Harvest, what: str, every_object: bool) -> None:
    if harvest.record.cell_errors:
        first = harvest.record.cell_errors[0]
        raise CalibrationError(f"{what} raised in cell {first.cell + 1}: "
                               f"{first.ename}: {first.evalue}")
    if harvest.record.status != RunStatus.COMPLETED:
        raise CalibrationError(f"{what} did not run to its end: {harvest.record.status} "
                               f"({harvest.record.message})")
    for name, obj in harvest.objects.items():
        if every_object and obj.status != "found":
            raise CalibrationError(f"{what} does not define `{name}` ({obj.status})")
        if obj.timed and obj.timed.get("status") != TimedStatus.TRAINED:
            raise CalibrationError(f"timed training of `{name}` in {what} failed: "
                                   f"{obj.timed.get('message')}")


def _values(assignment: Assignment, harvest: Harvest, only: set[str] | None = None
            ) -> dict[tuple[str, str], float]:
    """What each check of the run measured, keyed by (object, metric)."""
    labels, images = harvest.data.holdout_labels, harvest.data.holdout_images
    out: dict[tuple[str, str], float] = {}
    if labels is None:
        return out
    for check in assignment.checks:
        obj = harvest.objects.get(check.object or "")
        metric = CALIBRATED.get(check.kind) or FIXED.get(check.kind)
        if metric is None or obj is None or obj.status != "found" or \
                (only is not None and check.object not in only):
            continue
        value = None
        if check.kind in ("accuracy", "code_accuracy") and obj.predictions:
            best = best_accuracy(obj.predictions, labels)
            value = round(best[1], 4) if best else None
        elif check.kind == "timed_training" and obj.timed:
            best = best_accuracy({"unit": obj.timed["predictions"]}, labels)
            value = round(best[1], 4) if best else None
        elif check.kind == "reconstruction" and obj.predictions and code_size(obj.model):
            errors = reconstruction_errors(obj.predictions, images)
            if errors:  # recorded as a fraction of the mean image's error, as the bar is
                value = round(min(errors.values()) / mean_image_error(images), 4)
        if value is not None:
            out[(check.object, metric)] = value
    return out


def _bar(check: CheckSpec, metric: str, runs: Runs, tolerance: float, n_classes: int
         ) -> tuple[dict[str, Any], list[str]]:
    """The entry of thresholds.json for one metric, and the correct runs that miss a fixed bar."""
    values = runs.all()
    mean = statistics.fmean(runs.reference) if runs.reference else None
    spread = statistics.pstdev(runs.reference) if len(runs.reference) > 1 else 0.0
    lowest = min(values, key=values.get) if metric != "reconstruction" else \
        max(values, key=values.get)  # an error: the worst correct run is the highest
    entry: dict[str, Any] = {"threshold": None, "rule": "",
                             "reference_mean": round(mean, 4) if mean is not None else None,
                             "reference_std": round(spread, 4), "runs": runs.reference,
                             "seeds": list(range(len(runs.reference))),
                             "correct_runs": values,
                             "worst_correct": {"run": lowest, "value": values[lowest]}}
    if metric in CALIBRATED.values():
        margin = round(max(tolerance, 2 * spread), 4)
        limit = round(values[lowest] - margin, 4)
        entry["rule"] = f"lowest correct run ({values[lowest]:.4f}) less {margin:.4f}"
        figure = getattr(check.options, "homework_figure", None)  # set on accuracy checks only
        if figure is not None and limit > figure - tolerance:
            limit = round(figure - tolerance, 4)
            entry["rule"] = f"the homework's figure ({figure}) less {tolerance}"
        entry.update(threshold=limit, margin=margin)
        if figure is not None:
            entry["homework_figure"] = figure
        return entry, []
    if metric == "reconstruction":
        bar = round(reconstruction_bar(check, 1.0), 4)  # a fraction of the mean image's error
        entry.update(threshold=bar, rule=f"fixed: at most {bar:g} × the mean image's error "
                     "(margin_below_mean_image); the runs are fractions of that error too")
        misses = {run: v for run, v in values.items() if v > bar}
    else:
        bar = round(code_accuracy_bar(check, n_classes), 4)
        entry.update(threshold=bar, rule=f"fixed: chance ({1 / n_classes:g}) plus "
                     "margin_above_chance")
        misses = {run: v for run, v in values.items() if v < bar}
    return entry, [f"{check.id}: {run} measured {v:.4f}, short of the bar {bar:.4f}"
                   for run, v in misses.items()]


def _full_marks_problems(assignment: Assignment, scored: list[tuple[str, Harvest]]) -> list[str]:
    """Every correct run, scored against the files just written, must pass every check."""
    problems = []
    for what, harvest in scored:
        result = score_harvest(harvest, assignment)
        problems += [f"{what} loses points: {c.id} {c.status}: {c.message}" for c in result.checks
                     if c.status not in (CheckStatus.PASSED, CheckStatus.MANUAL)]
    return problems


def _portable(source: str | None) -> str | None:
    """A dataset path beside the project (../shared/data) as a relative path: the committed file
    must not name one machine's folders."""
    if not source:
        return source
    root = paths.course_root()
    path, beside = Path(source).resolve(), root.parent
    return os.path.relpath(path, root) if path.is_relative_to(beside) else str(path)


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
