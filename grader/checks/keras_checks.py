"""Checks on a harvested Keras model: architecture, compile settings, accuracy on private images."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..result import CheckResult
from ..scoring import TimedStatus
from ..assignment import CheckSpec
from . import pytorch_training
from .architecture import Layer, align, distance, normalise
from .context import GradingContext, Unavailable, guarded

CROSS_ENTROPY = {"categorical_crossentropy", "sparse_categorical_crossentropy"}
HOMEWORK_SCALING_MARGIN = 0.01  # accuracy another input scaling must gain to be reported
_SCALING_WORDS = {"unit": "pixels scaled to [0, 1]", "raw": "raw pixels 0–255",
                  "standardized": "standardised pixels"}


def _found(spec: CheckSpec, ctx: GradingContext):
    obj = ctx.objects.get(spec.object or "")
    if obj is None or obj.status != "found" or not obj.model:
        raise Unavailable(ctx.why_missing(spec.object or ""))
    return obj


def _comparison(spec: CheckSpec, ctx: GradingContext) -> dict[str, Any]:
    """The reference variant closest to the student's model, aligned layer by layer (cached)."""
    key = ("comparison", spec.object, tuple(spec.options.ignore))
    if key in ctx.notes:
        return ctx.notes[key]
    obj = _found(spec, ctx)
    variants = ctx.expected_object(spec.object).get("variants") or []
    if not variants:
        raise RuntimeError(f"no reference architecture for `{spec.object}` (run grader calibrate)")
    ignore = set(spec.options.ignore)  # e.g. Dropout, when dropout is graded by behaviour
    found = [l for l in normalise(obj.model["layers"]) if l.kind not in ignore]
    if obj.model.get("framework") == "pytorch":
        found = pytorch_training.as_compared(found, obj.model)
    best = None
    for variant in variants:
        expected = [l for l in normalise(variant["layers"]) if l.kind not in ignore]
        d = distance(expected, found)
        if best is None or d < best[0]:
            best = (d, variant, expected)
    _, variant, expected = best
    result = {"variant": variant, "expected": expected, "found": found,
              "pairs": align(expected, found), "model": obj.model,
              "label": variant.get("label", ""),
              # A PyTorch answer's messages name its layers in PyTorch's words.
              "pytorch": obj.model.get("framework") == "pytorch"}
    ctx.notes[key] = result
    return result


def _variant_note(cmp: dict[str, Any], ctx: GradingContext, name: str) -> str:
    if len(ctx.expected_object(name).get("variants") or []) > 1 and cmp["label"]:
        return f" [compared with the accepted variant: {cmp['label']}]"
    return ""


def _where(index: int) -> str:
    return f"layer {index + 1}"


def _lab(layer: Layer, cmp: dict[str, Any], with_activation: bool = True) -> str:
    """A layer in the words of the student's framework."""
    return layer.torch_label(with_activation) if cmp.get("pytorch") else \
        layer.label(with_activation)


def _missing(layer: Layer, cmp: dict[str, Any]) -> str:
    """'missing X', saying so when a layer of that type exists but call() never uses it."""
    unused = [u for u in cmp["model"].get("unused_layers") or [] if u.get("class") == layer.kind]
    note = f" (`{unused[0]['name']}` is defined but call() never uses it)" if unused else ""
    return f"missing {_lab(layer, cmp)}{note}"


@guarded
def layers(spec: CheckSpec, ctx: GradingContext) -> CheckResult:
    """Each expected layer present, in order, with the right type and size; extras cost points."""
    cmp = _comparison(spec, ctx)
    expected, found = cmp["expected"], cmp["found"]
    # `only`: grade just these expected layers (1-based), e.g. "the first convolution, 5 points".
    only = {n - 1 for n in spec.options.only}
    if only:
        return _some_layers(spec, cmp, only)
    matched, problems, extras = 0, [], 0
    for i, j in cmp["pairs"]:
        if i is not None and j is not None:
            if expected[i].structure == found[j].structure:
                matched += 1
            else:
                problems.append(f"{_where(j)}: expected {_lab(expected[i], cmp)}, found "
                                f"{_lab(found[j], cmp)}")
        elif i is not None:
            problems.append(f"{_missing(expected[i], cmp)} (expected as layer {i + 1})")
        else:
            extras += 1
            problems.append(f"{_where(j)}: unexpected extra {_lab(found[j], cmp)}")
    fraction = max(0, matched - extras) / max(1, len(expected))
    summary = (", " if cmp["pytorch"] else " → ").join(_lab(l, cmp) for l in found) or \
        "no layers"
    if not problems:
        message = f"all {len(expected)} layers match: {summary}"
    else:
        message = "; ".join(problems) + f". Found: {summary}"
    return CheckResult.scored(spec, fraction, message + _variant_note(cmp, ctx, spec.object),
                              variant=cmp["label"], comparison=_comparison_rows(cmp))


def _some_layers(spec: CheckSpec, cmp: dict[str, Any], only: set[int]) -> CheckResult:
    expected, found = cmp["expected"], cmp["found"]
    partner = {i: j for i, j in cmp["pairs"] if i is not None}
    right, problems = 0, []
    for i in sorted(only):
        if i >= len(expected):
            raise RuntimeError(f"the spec names expected layer {i + 1}, but there are {len(expected)}")
        j = partner.get(i)
        if j is None:
            problems.append(_missing(expected[i], cmp))
        elif expected[i].structure == found[j].structure:
            right += 1
        else:
            problems.append(f"{_where(j)}: expected {_lab(expected[i], cmp)}, found "
                            f"{_lab(found[j], cmp)}")
    message = "; ".join(problems) if problems else \
        ", ".join(_lab(found[partner[i]], cmp) for i in sorted(only)) + " as expected"
    return CheckResult.scored(spec, right / len(only), message + (
        f" [accepted variant: {cmp['label']}]" if cmp["label"] else ""), variant=cmp["label"])


def _comparison_rows(cmp: dict[str, Any]) -> list[dict[str, Any]]:
    """Expected vs found, layer by layer, for reports."""
    rows = []
    for i, j in cmp["pairs"]:
        e = cmp["expected"][i] if i is not None else None
        f = cmp["found"][j] if j is not None else None
        rows.append({
            "expected": _lab(e, cmp) if e else None,
            "found": _lab(f, cmp) if f else None,
            "expected_shape": _shape_text(e.output_shape) if e else None,
            "found_shape": _shape_text(f.output_shape) if f else None,
            "found_params": f.params if f else None,
            "match": bool(e and f and e.structure == f.structure and e.activation == f.activation),
        })
    return rows


@guarded
def activations(spec: CheckSpec, ctx: GradingContext) -> CheckResult:
    cmp = _comparison(spec, ctx)
    expected, found = cmp["expected"], cmp["found"]
    wanted = [(i, j) for i, j in cmp["pairs"] if i is not None and expected[i].kind in _weighted()]
    problems, right = [], 0
    for i, j in wanted:
        want = expected[i].activation or "linear"
        if j is None:
            problems.append(f"missing {_lab(expected[i], cmp)}, so its {want} activation is "
                            "missing")
            continue
        have = found[j].activation or "linear"
        if have == want:
            right += 1
        else:
            problems.append(f"{_where(j)} ({_lab(found[j], cmp, False)}): expected {want}, "
                            f"found {have}")
    message = "; ".join(problems) if problems else \
        "activations match: " + ", ".join((expected[i].activation or "linear") for i, _ in wanted)
    return CheckResult.scored(spec, right / max(1, len(wanted)), message)


def _weighted() -> set[str]:
    from .architecture import WEIGHTED
    return WEIGHTED


def _shape_text(shape) -> str:
    return "(None, " + ", ".join(map(str, shape)) + ")" if shape is not None else "unknown"


@guarded
def output_shapes(spec: CheckSpec, ctx: GradingContext) -> CheckResult:
    cmp = _comparison(spec, ctx)
    expected, found = cmp["expected"], cmp["found"]
    right, problems = 0, []
    for i, j in cmp["pairs"]:
        if i is None:
            continue
        if j is None:
            problems.append(f"no layer gives {_lab(expected[i], cmp, False)}'s output "
                            f"{_shape_text(expected[i].output_shape)}")
        elif expected[i].output_shape == found[j].output_shape:
            right += 1
        else:
            problems.append(f"{_where(j)} ({_lab(found[j], cmp, False)}): expected output "
                            f"{_shape_text(expected[i].output_shape)}, found "
                            f"{_shape_text(found[j].output_shape)}")
    message = "; ".join(problems) if problems else \
        "output shapes match: " + " → ".join(_shape_text(l.output_shape) for l in found)
    return CheckResult.scored(spec, right / max(1, len(expected)), message)


@guarded
def param_count(spec: CheckSpec, ctx: GradingContext) -> CheckResult:
    cmp = _comparison(spec, ctx)
    want = int(cmp["variant"]["total_params"])
    model = cmp["model"]
    have = int(model.get("total_params") or 0)
    # The kernel reports the count; the weights' own shapes must agree with it.
    from_weights = sum(int(np.prod(w["shape"])) for layer in model["layers"]
                       for w in layer.get("weights", []))
    from_weights += sum(int(u.get("params") or 0) for u in model.get("unused_layers") or [])
    if from_weights != have:
        return CheckResult.scored(spec, 0.0, f"the model reports {have:,} parameters but its "
                                  f"weights hold {from_weights:,}; expected {want:,}")
    if have == want:
        return CheckResult.scored(spec, 1.0, f"{have:,} parameters, as expected"
                                  + _variant_note(cmp, ctx, spec.object))
    return CheckResult.scored(spec, 0.0, f"expected {want:,} parameters, found {have:,}")


def _loss_key(name: str | None) -> str | None:
    if not name:
        return None
    snake = "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")
    return snake.replace("cross_entropy", "crossentropy")


def _pytorch(obj: Any) -> bool:
    return (obj.model or {}).get("framework") == "pytorch"


@guarded
def loss(spec: CheckSpec, ctx: GradingContext) -> CheckResult:
    """Cross-entropy that suits the output; a successful fit() shows it suits the labels too."""
    obj = _found(spec, ctx)
    if _pytorch(obj):  # no compile(): read from the notebook's source
        return pytorch_training.loss(spec, obj.model)
    info = obj.model.get("compile") or {}
    if not info.get("compiled") or not info.get("loss"):
        return CheckResult.scored(spec, 0.0, "the model was never compiled with a loss")
    name = _loss_key(info["loss"])
    found = normalise(obj.model["layers"])
    last_act = next((l.activation for l in reversed(found) if l.kind in _weighted()), None)
    if name not in CROSS_ENTROPY:
        return CheckResult.scored(spec, 0.0, f"loss {info['loss']!r} does not suit a 10-class "
                                  "classifier: use categorical_crossentropy (one-hot labels) or "
                                  "sparse_categorical_crossentropy (integer labels)")
    logits = bool(info.get("from_logits"))
    # Only a mismatch the loss itself makes: an output that is some other activation (relu,
    # tanh) is the activations check's deduction, not this one's too.
    outputs = {None: "logits", "linear": "logits", "softmax": "softmax probabilities",
               "sigmoid": "sigmoid probabilities"}.get(last_act)
    if outputs is not None and (outputs == "logits") != logits:
        return CheckResult.scored(spec, 0.5, f"{name} with from_logits={logits} but the model "
                                  f"outputs {outputs}")
    if info.get("train_steps", 0) <= 0:
        return CheckResult.scored(spec, 0.5, f"{name} suits the output, but fit() never ran with "
                                  "it, so it is not shown to match the label encoding")
    return CheckResult.scored(spec, 1.0, f"{name}; fit() ran {info['train_steps']} steps with it, "
                              "so it matches the label encoding")


@guarded
def optimizer(spec: CheckSpec, ctx: GradingContext) -> CheckResult:
    obj = _found(spec, ctx)
    info = obj.model.get("compile") or {}
    variants = ctx.expected_object(spec.object).get("variants") or [{}]
    want = spec.options.expected or (variants[0].get("compile") or {}).get("optimizer")
    if not want:
        raise RuntimeError(f"no reference optimizer for `{spec.object}` (run grader calibrate)")
    accepted = list(want) if isinstance(want, list) else [want]  # `expected` may list several
    if _pytorch(obj):  # torch.optim.Adam is Keras's "Adam": the same names
        return pytorch_training.optimizer(spec, obj.model, accepted)
    want = " or ".join(map(str, accepted))
    have = info.get("optimizer")
    if not info.get("compiled") or not have:
        return CheckResult.scored(spec, 0.0, f"the model was never compiled (expected {want})")
    lr = info.get("learning_rate")
    lr_text = f", learning rate {lr:g}" if isinstance(lr, (int, float)) else ""
    if have in accepted:
        return CheckResult.scored(spec, 1.0, f"{have}{lr_text}")
    return CheckResult.scored(spec, 0.0, f"expected {want}, found {have}{lr_text}")


def best_accuracy(predictions: dict[str, np.ndarray], labels: np.ndarray) -> tuple[str, float] | None:
    """Accuracy under the input scaling that suits the model best, or None if no output fits."""
    n_classes = int(labels.max()) + 1
    scored = {scaling: float(np.mean(np.argmax(pred, axis=1) == labels))
              for scaling, pred in predictions.items() if pred.shape[1] == n_classes}
    if not scored:
        return None
    scaling = max(scored, key=scored.get)
    # The homework's [0, 1] scaling unless another is clearly better: a model trained on [0, 1]
    # that happens to score a hair higher on raw pixels must not be told it used raw pixels.
    if "unit" in scored and scored[scaling] - scored["unit"] <= HOMEWORK_SCALING_MARGIN:
        scaling = "unit"
    return scaling, scored[scaling]


@guarded
def accuracy(spec: CheckSpec, ctx: GradingContext) -> CheckResult:
    """Measured by the grader on private images whose labels never enter the kernel."""
    obj = _found(spec, ctx)
    labels = ctx.holdout_labels
    if labels is None:
        return CheckResult.error(spec, "the grader has no private images for this assignment")
    threshold = ctx.threshold(spec.object, "accuracy").get("threshold") or spec.options.threshold
    if threshold is None:
        raise RuntimeError("no calibrated accuracy threshold (run grader calibrate)")
    unsupported = (obj.model or {}).get("unsupported_ops") if _pytorch(obj) else None
    if not obj.predictions and unsupported:  # the grader's limitation, not the student's zero
        return CheckResult.error(spec, "not scored: the grader does not run these operations of "
                                 f"a PyTorch answer yet: {', '.join(unsupported[:8])}")
    if not obj.predictions:
        return CheckResult.scored(spec, 0.0, "the grader could not get predictions from the model: "
                                  + (obj.predict_error or "unknown reason"))
    n_classes = int(labels.max()) + 1
    best = best_accuracy(obj.predictions, labels)
    if best is None:
        width = next(iter(obj.predictions.values())).shape[1]
        return CheckResult.scored(spec, 0.0, f"the model outputs {width} values per image; "
                                  f"expected one per class ({n_classes})")
    scaling, acc = best
    what = f"on {len(labels):,} private images ({_SCALING_WORDS.get(scaling, scaling)})"
    return _against_threshold(spec, acc, threshold, n_classes, what, scaling=scaling)


def _against_threshold(spec: CheckSpec, acc: float, threshold: float, n_classes: int, what: str,
                       floor: float | None = None, **details: Any) -> CheckResult:
    """Full marks from `threshold`, partial credit from `floor` up to it. The default floor is
    halfway between chance and the threshold: a model that has not learned (untrained, shuffled
    labels) scores zero, not a few points for luck."""
    if floor is None:
        floor = (1.0 / n_classes + threshold) / 2
    fraction = (acc - floor) / (threshold - floor) if threshold > floor else float(acc >= threshold)
    message = f"measured {acc:.3f} {what}; expected at least {threshold:.3f}"
    if acc < threshold:
        message += f" (partial credit between {floor:.3f} and {threshold:.3f})"
    return CheckResult.scored(spec, fraction, message, accuracy=round(acc, 4),
                              threshold=threshold, **details)


@guarded
def timed_training(spec: CheckSpec, ctx: GradingContext) -> CheckResult:
    """The grader trains the student's architecture from scratch: does the design learn?"""
    obj = _found(spec, ctx)
    labels = ctx.holdout_labels
    run = obj.timed
    if labels is None or run is None:
        return CheckResult.error(spec, "the grader did not run its own training for this model")
    if run.get("status") == TimedStatus.GRADER_FAILED:  # the grader's shortfall: not scored
        return CheckResult.error(spec, f"not scored: {run.get('message', 'unknown reason')}")
    if run.get("status") == TimedStatus.CANNOT_LEARN:
        return CheckResult.scored(spec, 0.0, f"the design cannot learn under the grader's "
                                  f"training: {run.get('message', 'unknown reason')}")
    if run.get("status") != TimedStatus.TRAINED:
        return CheckResult.scored(spec, 0.0, f"the grader could not train this design: "
                                  f"{run.get('message', 'unknown reason')}")
    calibrated = ctx.threshold(spec.object, "timed_accuracy")
    threshold = calibrated.get("threshold")
    if threshold is None:
        raise RuntimeError("no calibrated timed-training threshold (run grader calibrate)")
    here = (ctx.notes.get("timed_baselines") or {}).get(spec.object)
    if here is not None and calibrated.get("reference_mean") is not None:
        # The reference design trained the same way on this machine, less the calibrated margin.
        threshold = round(here - (calibrated["reference_mean"] - threshold), 4)
    pred = run["predictions"]
    n_classes = int(labels.max()) + 1
    if pred.shape != (len(labels), n_classes):
        return CheckResult.scored(spec, 0.0, f"the model outputs {pred.shape[1]} values per "
                                  f"image; expected one per class ({n_classes})")
    acc = float(np.mean(np.argmax(pred, axis=1) == labels))
    per_epoch = run.get("seconds_per_epoch") or [0]
    epochs = run.get("epochs_run")
    what = (f"after {epochs} epoch{'' if epochs == 1 else 's'} of the grader's training "
            f"({sum(per_epoch) / len(per_epoch):.1f} s/epoch"
            + (f"; the reference design trained the same way here: {here:.3f})"
               if here is not None else ")"))
    result = _against_threshold(spec, acc, threshold, n_classes, what)
    if run.get("stopped_by_time"):
        cost = (ctx.notes.get("timed_costs") or {}).get(spec.object)
        result.message += (
            f". The design is too slow to train: it used {run.get('cpu_seconds', 0):.0f} CPU "
            f"seconds for {run.get('epochs_run')} of {run.get('epochs', '?')} epochs, past the "
            f"grader's cap of {run.get('cpu_cap', 0):.0f} "
            f"({run.get('cap_name', '[training] max_cpu_seconds')}, checked after every batch)"
            + (f" (the reference design needs {cost:.0f} here)" if cost is not None else ""))
    if run.get("scaling") == "raw":
        result.message += (". The grader fed it the pixels as loaded (0–255), since the model "
                           "rescales them itself")
    for note in run.get("notes") or []:
        result.message += f". {note}"
    return result


@guarded
def dropout_behaviour(spec: CheckSpec, ctx: GradingContext) -> CheckResult:
    """Dropout tested by behaviour: two training passes differ, two inference passes agree."""
    obj = _found(spec, ctx)
    probe = obj.data.get("behaviour")
    if not isinstance(probe, dict):
        return CheckResult.error(spec, "the grader could not probe the model's behaviour")
    if probe.get("error"):
        return CheckResult.scored(spec, 0.0, f"calling the model with training=True/False failed: "
                                  f"{probe['error']}")
    differ = probe.get("training_passes_differ") is True
    agree = probe.get("inference_passes_agree") is True
    if differ and agree:
        return CheckResult.scored(spec, 1.0, "dropout is active in training (two passes differ) "
                                  "and off in inference (two passes agree)")
    problems = []
    if not differ:
        problems.append("two forward passes with training=True gave identical outputs: no dropout "
                        "is active during training")
    if not agree:
        problems.append("two forward passes with training=False differ: dropout (or other "
                        "randomness) is still active at inference")
    # Half for dropout that is there but never switched off; none without any dropout (any
    # deterministic model agrees with itself at inference).
    return CheckResult.scored(spec, 0.5 if differ else 0.0, "; ".join(problems))


@guarded
def contains_layers(spec: CheckSpec, ctx: GradingContext) -> CheckResult:
    """A free architecture that must include some layer types, e.g. Conv2D and a pooling layer.

    Option `required`: a list whose items are a class name or a list of alternatives.
    """
    obj = _found(spec, ctx)
    present = {str(layer.get("class")) for layer in obj.model["layers"]}
    missing = []
    for item in spec.options.required:
        choices = [item] if isinstance(item, str) else list(item)
        if not present & set(choices):
            missing.append(" or ".join(choices))
    required = len(spec.options.required) or 1
    if missing:
        return CheckResult.scored(spec, 1 - len(missing) / required,
                                  f"missing {', '.join(missing)}; found "
                                  + ", ".join(sorted(present)))
    return CheckResult.scored(spec, 1.0, "has " + ", ".join(
        i if isinstance(i, str) else "/".join(i) for i in spec.options.required))
