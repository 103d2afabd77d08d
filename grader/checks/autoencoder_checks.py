"""An autoassociator's reconstruction error, and the accuracy of a classifier of its codes, on the
grader's private images."""

from __future__ import annotations

import numpy as np

from ..result import CheckResult
from ..assignment import CheckSpec
from .architecture import normalise
from .context import GradingContext, guarded
from .keras_checks import _SCALING_WORDS, _against_threshold, _found, best_accuracy

# Homework 7 asks for an autoassociator and a classifier of its codes that work, with no figure
# to reach: the bars are the trivial answers (the mean image, chance) beaten by margins
# (spec_format.py's ReconstructionCheck and CodeAccuracyCheck), which a spec may set.


def code_size(model: dict) -> int | None:
    """The bottleneck: the narrowest Dense layer before the output layer."""
    dense = [l.size for l in normalise(model["layers"]) if l.kind == "Dense" and l.size]
    return min(dense[:-1]) if len(dense) > 1 else None


def reconstruction_errors(predictions: dict[str, np.ndarray], images: np.ndarray) -> dict[str, float]:
    """Mean squared error per pixel on the [0, 1] scale, for each way the images were presented."""
    target = images.reshape((len(images), -1)).astype("float64") / 255.0
    errors = {}
    for scaling, pred in predictions.items():
        if pred.shape != target.shape or scaling == "standardized":
            continue
        recon = pred / 255.0 if scaling == "raw" else pred
        errors[scaling] = float(np.mean((recon - target) ** 2))
    return errors


def mean_image_error(images: np.ndarray) -> float:
    """The error of the trivial answer: outputting the average image, whatever the input (the
    best constant on these very images, so no network that learned nothing does better)."""
    flat = images.reshape((len(images), -1)).astype("float64") / 255.0
    return float(np.mean((flat - flat.mean(axis=0)) ** 2))


def reconstruction_bar(spec: CheckSpec, useless: float) -> float:
    """Full marks at this error: the documented margin below the mean image's."""
    margin = spec.options.margin_below_mean_image
    return (1.0 - margin) * useless


def code_accuracy_bar(spec: CheckSpec, n_classes: int) -> float:
    """Full marks at this accuracy: the documented margin above chance."""
    return 1.0 / n_classes + spec.options.margin_above_chance


@guarded
def reconstruction(spec: CheckSpec, ctx: GradingContext) -> CheckResult:
    """Homework 7's Q1a asks for an autoassociator that works, not for a given error: full marks
    for an error clearly below the mean image's (option `margin_below_mean_image`), partial
    credit from the mean image's error (a network that learned nothing) down to that bar."""
    obj = _found(spec, ctx)
    images = ctx.holdout_images
    if images is None:
        return CheckResult.error(spec, "the grader has no private images for this assignment")
    k = code_size(obj.model)
    if k is None:
        return CheckResult.scored(spec, 0.0, "no hidden layer found: expected 784 → k → 784")
    errors = reconstruction_errors(obj.predictions, images)
    if not errors:
        return CheckResult.scored(spec, 0.0, "the network does not output 784 values per image "
                                  "(it must reproduce its flattened input)")
    scaling = min(errors, key=errors.get)
    mse = errors[scaling]
    useless = mean_image_error(images)
    limit = reconstruction_bar(spec, useless)
    fraction = 1.0 if mse <= limit else max(0.0, (useless - mse) / (useless - limit))
    message = (f"k={k}: reconstruction error {mse:.4f} per pixel on {len(images):,} private "
               f"images, {mse / useless:.0%} of the mean image's {useless:.4f} (outputting the "
               f"average image, which learns nothing); full marks at most {limit:.4f}")
    if mse > limit:
        message += f" (partial credit between {useless:.4f} and {limit:.4f})"
    return CheckResult.scored(spec, fraction, message, mse=round(mse, 6), k=k,
                              threshold=round(limit, 6), mean_image_mse=round(useless, 6))


@guarded
def code_accuracy(spec: CheckSpec, ctx: GradingContext) -> CheckResult:
    """A classifier trained on an autoassociator's hidden-layer codes (an object harvested with
    the `encoder` option): the grader encodes its private images with the student's own encoder
    layer and classifies the codes with the student's classifier. Homework 7's Q1b asks for a
    classifier of the codes that works: full marks for an accuracy clearly above chance (option
    `margin_above_chance`), partial credit from chance up to that bar, whatever k the student
    chose. Option `encoder`: the encoder's name, for messages."""
    obj = _found(spec, ctx)
    labels = ctx.holdout_labels
    if labels is None:
        return CheckResult.error(spec, "the grader has no private images for this assignment")
    encoder = f"`{spec.options.encoder or 'the autoassociator'}`"
    k = (obj.input_layout or [None])[0]
    if not k:
        return CheckResult.scored(spec, 0.0, f"{encoder} has no hidden layer (a Dense layer "
                                  "narrower than its output), so there are no codes to classify")
    declared = (obj.model.get("input_shape") or [None])[1:]
    if declared and declared != [k]:
        size = declared[0] if len(declared) == 1 else tuple(declared)
        return CheckResult.scored(spec, 0.0, f"`{spec.object}` takes inputs of size {size}, but "
                                  f"{encoder}'s hidden layer gives k={k} values per image: train "
                                  f"it on the {k} hidden-layer activations, not on other inputs",
                                  k=k, input_size=size)
    if not obj.predictions:
        return CheckResult.scored(spec, 0.0, "the grader could not get predictions on the codes: "
                                  + (obj.predict_error or "unknown reason"), k=k)
    n_classes = int(labels.max()) + 1
    best = best_accuracy(obj.predictions, labels)
    if best is None:
        width = next(iter(obj.predictions.values())).shape[1]
        return CheckResult.scored(spec, 0.0, f"the classifier outputs {width} values per image; "
                                  f"expected one per class ({n_classes})", k=k)
    scaling, acc = best
    chance = 1.0 / n_classes
    bar = code_accuracy_bar(spec, n_classes)
    what = (f"on {len(labels):,} private images encoded by {encoder}'s hidden layer (k={k}, "
            f"{_SCALING_WORDS.get(scaling, scaling)}); chance is {chance:.3f}")
    return _against_threshold(spec, acc, round(bar, 4), n_classes, what, floor=chance,
                              scaling=scaling, k=k)
