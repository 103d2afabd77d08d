"""Step 5: checks. Each check kind turns harvested artifacts into points and a message."""

from __future__ import annotations

from typing import Callable

from ..result import CheckResult
from ..assignment import CheckSpec
from .context import GradingContext
from . import autoencoder_checks, keras_checks, manual

CheckFn = Callable[[CheckSpec, GradingContext], CheckResult]


def _backprop(name: str) -> CheckFn:
    """numpy-backprop's checks, imported when one runs: they hold the grader's own forward and
    backward pass (the assignment's answer), which a bundle without that assignment leaves out
    (grader/instructor/publish.py)."""
    def check(spec: CheckSpec, ctx: GradingContext) -> CheckResult:
        from . import backprop_checks

        return getattr(backprop_checks, name)(spec, ctx)

    check.__name__ = name
    return check

REGISTRY: dict[str, CheckFn] = {
    "layers": keras_checks.layers,
    "activations": keras_checks.activations,
    "output_shapes": keras_checks.output_shapes,
    "param_count": keras_checks.param_count,
    "loss": keras_checks.loss,
    "optimizer": keras_checks.optimizer,
    "accuracy": keras_checks.accuracy,
    "timed_training": keras_checks.timed_training,
    "dropout_behaviour": keras_checks.dropout_behaviour,
    "contains_layers": keras_checks.contains_layers,
    "manual": manual.manual,
    "reconstruction": autoencoder_checks.reconstruction,
    "code_accuracy": autoencoder_checks.code_accuracy,
    "forward_pass": _backprop("forward_pass"),
    "backward_pass": _backprop("backward_pass"),
    "gradient_check": _backprop("gradient_check"),
    "numpy_only": _backprop("numpy_only"),
}


def run(spec: CheckSpec, ctx: GradingContext) -> CheckResult:
    fn = REGISTRY.get(spec.kind)
    if fn is None:
        return CheckResult.error(spec, f"this grader has no check of kind {spec.kind!r}")
    try:
        result = fn(spec, ctx)
        result.details.setdefault("kind", spec.kind)  # what reports draw it as, never its words
        if spec.object:  # reports group checks under the model they grade
            result.details.setdefault("object", spec.object)
        return result
    except Exception as exc:  # a grader bug must cost the student nothing silently
        return CheckResult.error(spec, f"the grader failed on this check ({type(exc).__name__}: "
                                       f"{exc}); ask your TA to review it")


__all__ = ["GradingContext", "REGISTRY", "run"]
