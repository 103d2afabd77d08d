"""Reconstruction error of an autoassociator on the grader's private images."""

from __future__ import annotations

import numpy as np

from ..scoring import CheckResult
from ..spec import CheckSpec
from .architecture import normalise
from .context import GradingContext, guarded
from .keras_checks import _SCALING_WORDS, _against_threshold, _found, best_accuracy


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


def threshold_for(thresholds: dict, k: int,
                  prefix: str = "reconstruction_k") -> tuple[int, dict] | None:
    """The calibrated threshold for this code size, else the nearest calibrated one."""
    by_k = {int(key.rsplit("_k", 1)[1]): value for key, value in thresholds.items()
            if key.startswith(prefix)}
    if not by_k:
        return None
    nearest = min(by_k, key=lambda known: (abs(known - k), -known))
    return nearest, by_k[nearest]


@guarded
def reconstruction(spec: CheckSpec, ctx: GradingContext) -> CheckResult:
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
    found = threshold_for((ctx.thresholds.get("objects") or {}).get(spec.object) or {}, k)
    if found is None:
        raise RuntimeError("no calibrated reconstruction thresholds (run grader calibrate)")
    ref_k, entry = found
    limit = float(entry["threshold"])
    flat = images.reshape((len(images), -1)).astype("float64") / 255.0
    # A network that outputs the average image has learned nothing: zero credit from there.
    useless = float(np.mean((flat - flat.mean(axis=0)) ** 2))
    fraction = 1.0 if mse <= limit else max(0.0, (useless - mse) / (useless - limit))
    same = "the reference with the same k" if ref_k == k else f"the reference's nearest k={ref_k}"
    message = (f"k={k}: reconstruction error {mse:.4f} per pixel on {len(images):,} private images;"
               f" at most {limit:.4f} expected ({same}; outputting the mean image gives "
               f"{useless:.4f})")
    return CheckResult.scored(spec, fraction, message, mse=round(mse, 6), k=k, threshold=limit)


@guarded
def code_accuracy(spec: CheckSpec, ctx: GradingContext) -> CheckResult:
    """A classifier trained on an autoassociator's hidden-layer codes (an object harvested with
    the `encoder` option): the grader encodes its private images with the student's own encoder
    layer, classifies the codes with the student's classifier, and compares the accuracy with the
    reference classifier for the same code size k (thresholds `accuracy_k<k>`, else the nearest k,
    else the plain `accuracy` threshold). Option `encoder`: the encoder's name, for messages."""
    obj = _found(spec, ctx)
    labels = ctx.holdout_labels
    if labels is None:
        return CheckResult.error(spec, "the grader has no private images for this assignment")
    encoder = f"`{spec.options.get('encoder', 'the autoassociator')}`"
    k = (obj.input_layout or [None])[0]
    if not k:
        return CheckResult.scored(spec, 0.0, f"{encoder}'s first layer has no weights, so there "
                                  "are no hidden-layer codes to classify")
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
    found = threshold_for((ctx.thresholds.get("objects") or {}).get(spec.object) or {}, k,
                          prefix="accuracy_k")
    if found is not None:
        ref_k, entry = found
        same = "the reference with the same k" if ref_k == k else f"the reference's nearest k={ref_k}"
    else:
        ref_k, entry, same = None, ctx.threshold(spec.object, "accuracy"), "the reference"
    threshold = entry.get("threshold") or spec.options.get("threshold")
    if threshold is None:
        raise RuntimeError("no calibrated accuracy threshold (run grader calibrate)")
    what = (f"on {len(labels):,} private images encoded by {encoder}'s hidden layer (k={k}, "
            f"{_SCALING_WORDS.get(scaling, scaling)}), against {same}")
    return _against_threshold(spec, acc, float(threshold), n_classes, what, scaling=scaling, k=k,
                              reference_k=ref_k)
