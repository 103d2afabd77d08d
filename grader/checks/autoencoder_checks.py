"""Reconstruction error of an autoassociator on the grader's private images."""

from __future__ import annotations

import numpy as np

from ..scoring import CheckResult
from ..spec import CheckSpec
from .architecture import normalise
from .context import GradingContext
from .keras_checks import _found, _guarded


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


def threshold_for(thresholds: dict, k: int) -> tuple[int, dict] | None:
    """The calibrated threshold for this code size, else the nearest calibrated one."""
    by_k = {int(key.rsplit("_k", 1)[1]): value for key, value in thresholds.items()
            if key.startswith("reconstruction_k")}
    if not by_k:
        return None
    nearest = min(by_k, key=lambda known: (abs(known - k), -known))
    return nearest, by_k[nearest]


@_guarded
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
