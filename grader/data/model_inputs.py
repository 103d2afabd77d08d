"""How the grader presents its images to a model: scalings and 28x28 layouts.

Pure numpy plus one call of the model; used wherever a model is measured.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

# The homework asks for [0, 1], but a student who forgot to scale trained on 0..255 and
# deserves to be measured on what they built.
SCALINGS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "unit": lambda x: x.astype("float32") / 255.0,
    "raw": lambda x: x.astype("float32"),
    "standardized": lambda x: (x.astype("float32") - x.mean()) / (x.std() + 1e-7),
}
IMAGE_LAYOUTS = ((28, 28), (28, 28, 1), (784,))
# Layers that only reshape or cast their input, passed over to find a model's first real step.
_PASS_THROUGH = frozenset({"InputLayer", "Reshape", "Flatten", "Cast", "Permute"})


def fed_scaling(layers: list[dict[str, Any]]) -> str:
    """The pixels the grader's own training feeds a design (its layer descriptions): [0, 1],
    as the homework asks, unless the design rescales its input itself (a leading Rescaling
    layer, as Keras's guides teach): then as loaded, 0..255, which is what the student fed it,
    so its first real layer sees what it saw in the student's training."""
    for layer in layers:
        kind = layer.get("class")
        if kind not in _PASS_THROUGH:
            return "raw" if kind == "Rescaling" else "unit"
    return "unit"


def find_layout(model: Any, hint: Any = None) -> tuple[int, ...] | None:
    """The first 784-value layout the model accepts: its declared input, the spec's hint, then
    the usual ones."""
    candidates = [tuple(hint)] if hint else []
    try:
        declared = tuple(int(d) for d in model.inputs[0].shape[1:])
        candidates.insert(0, declared)
    except Exception:
        pass
    candidates += [c for c in IMAGE_LAYOUTS if c not in candidates]
    for layout in candidates:
        if int(np.prod(layout)) != 784:
            continue
        try:
            model(np.zeros((2, *layout), dtype="float32"), training=False)
            return layout
        except Exception:
            continue
    return None


def layouts_text() -> str:
    return ", ".join(str((None, *s)) for s in IMAGE_LAYOUTS)
