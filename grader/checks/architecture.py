"""Normalise harvested layer lists and align them with the reference, layer by layer.

Equivalent forms compare equal: `Dense(128, activation='relu')` and `Dense(128)` +
`Activation('relu')`; an `InputLayer` or not; a `Flatten` (or `Reshape`) or pre-shaped inputs;
pixels scaled before the model or by a leading `Rescaling` layer inside it (Keras's guides).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Layers that only reshape: not part of the layer-by-layer comparison.
SHAPE_ONLY = {"InputLayer", "Flatten", "Reshape"}
# Scaling the pixels, which the homework does before the model: skipped before any real layer.
INPUT_SCALING = {"Rescaling"}
# Layers that carry an activation of their own.
WEIGHTED = {"Dense", "Conv1D", "Conv2D", "Conv3D", "SeparableConv2D", "DepthwiseConv2D",
            "Conv2DTranspose"}
ACTIVATION_LAYERS = {"Activation": None, "ReLU": "relu", "Softmax": "softmax"}
# Layers that may sit between a weighted layer and the activation that belongs to it.
PASS_THROUGH = {"BatchNormalization", "Dropout"}
_DETAIL_KEYS = ("kernel_size", "strides", "padding", "pool_size", "rate")
# PyTorch's names for Keras's layers, for messages about PyTorch answers.
_TORCH_NAMES = {"Dense": "Linear", "Conv1D": "Conv1d", "Conv2D": "Conv2d", "Conv3D": "Conv3d",
                "MaxPooling2D": "MaxPool2d", "AveragePooling2D": "AvgPool2d",
                "BatchNormalization": "BatchNorm", "Dropout": "Dropout"}
# PyTorch's names for the activations, for messages about PyTorch answers.
TORCH_ACTIVATIONS = {"relu": "ReLU", "sigmoid": "Sigmoid", "tanh": "Tanh", "softmax": "Softmax",
                     "elu": "ELU", "leaky_relu": "LeakyReLU", "log_softmax": "LogSoftmax"}


@dataclass(frozen=True)
class Layer:
    kind: str
    size: int | None = None
    activation: str | None = None
    output_shape: tuple[int, ...] | None = None
    details: tuple[tuple[str, Any], ...] = field(default=())
    params: int = 0
    # For messages in PyTorch's words only, never compared: a Dense layer's input width, and
    # where its activation is (a softmax inside CrossEntropyLoss).
    inputs: int | None = field(default=None, compare=False)
    note: str | None = field(default=None, compare=False)

    @property
    def structure(self) -> tuple:
        return (self.kind, self.size, self.details)

    def torch_label(self, with_activation: bool = True) -> str:
        """A layer as PyTorch writes it, `Linear(128 → 64) + ReLU`, `Conv2d(1 → 6, 5×5,
        padding=same) + ReLU`, `MaxPool2d(2×2)`, `Dropout(p=0.5)`; others as label()."""
        if self.kind not in _TORCH_NAMES:
            return self.label(with_activation)
        text = self._torch_text()
        if with_activation and self.activation:
            text += f" + {TORCH_ACTIVATIONS.get(self.activation, self.activation)}"
            if self.note:
                text += f" ({self.note})"
        return text

    def _torch_text(self) -> str:
        d = dict(self.details)
        name = _TORCH_NAMES[self.kind]
        if self.kind == "Dropout":
            return f"{name}(p={d.get('rate', 0.5):g})"
        if self.kind == "BatchNormalization":
            return name
        inputs = self.inputs if self.inputs is not None else "?"
        if self.kind == "Dense":
            return f"{name}({inputs} → {self.size})"
        if "pool_size" in d:
            return f"{name}({'×'.join(map(str, d['pool_size']))})"
        text = f"{name}({inputs} → {self.size}, {'×'.join(map(str, d.get('kernel_size', ())))}"
        if d.get("strides") and any(s != 1 for s in d["strides"]):
            text += f", stride={'×'.join(map(str, d['strides']))}"
        if d.get("padding") not in (None, "valid"):
            text += f", padding={d['padding']}"
        return text + ")"

    def label(self, with_activation: bool = True) -> str:
        parts: list[str] = []
        if self.size is not None:
            parts.append(str(self.size))
        d = dict(self.details)
        if "kernel_size" in d:
            parts.append("x".join(map(str, d["kernel_size"])))
        if "pool_size" in d:
            parts.append("x".join(map(str, d["pool_size"])))
        if d.get("strides") and any(s != 1 for s in d["strides"]) and "pool_size" not in d:
            parts.append("stride " + "x".join(map(str, d["strides"])))
        if "padding" in d and self.kind in WEIGHTED and d["padding"] != "valid":
            parts.append(f"padding {d['padding']}")
        if "rate" in d:
            parts.append(f"rate {d['rate']:g}")
        if with_activation and self.kind in WEIGHTED:
            parts.append(self.activation or "linear")
        return f"{self.kind}({', '.join(parts)})"


def _activation(name: Any) -> str | None:
    if not name or name == "linear":
        return None
    return str(name)


def _details(kind: str, config: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    out = []
    for key in _DETAIL_KEYS:
        if key not in config:
            continue
        value = config[key]
        if key == "padding" and kind not in WEIGHTED and "pool_size" not in config:
            continue
        if isinstance(value, list):
            value = tuple(value)
        if key == "rate":
            value = round(float(value), 4)
        out.append((key, value))
    return tuple(out)


def squeeze_shape(shape: Any) -> tuple[int, ...] | None:
    """(None, 1, 1, 84) and (None, 84) are the same features: drop the batch and unit axes."""
    if not isinstance(shape, list) or not shape:
        return None
    return tuple(d for d in shape[1:] if d != 1)


def normalise(raw_layers: list[dict[str, Any]]) -> list[Layer]:
    layers: list[dict[str, Any]] = []
    for raw in raw_layers:
        kind = str(raw.get("class"))
        if kind in SHAPE_ONLY or (kind in INPUT_SCALING and not layers):
            continue
        if kind in ACTIVATION_LAYERS:
            act = ACTIVATION_LAYERS[kind] or _activation(raw.get("activation"))
            owner = _owner_for_activation(layers)
            if owner is not None:
                owner["activation"] = act
                owner["output_shape"] = raw.get("output_shape") or owner["output_shape"]
                continue
            layers.append({"kind": "Activation", "activation": act, "size": None,
                           "output_shape": raw.get("output_shape"), "details": (), "params": 0})
            continue
        config = raw.get("config") or {}
        size = config.get("units", config.get("filters"))
        layers.append({
            "kind": kind,
            "size": int(size) if isinstance(size, (int, float)) else None,
            "activation": _activation(raw.get("activation")) if kind in WEIGHTED else None,
            "output_shape": raw.get("output_shape"),
            "details": _details(kind, config),
            "params": int(raw.get("params") or 0),
            "inputs": _input_width(raw),
            "note": "inside CrossEntropyLoss" if raw.get("activation_from") else None,
        })
    return [Layer(l["kind"], l["size"], l["activation"], squeeze_shape(l["output_shape"]),
                  l["details"], l["params"], l["inputs"], l["note"]) for l in layers]


def _input_width(raw: dict[str, Any]) -> int | None:
    """A Dense layer's input width, from its kernel's shape (inputs, units); a convolution's
    input channels, from its kernel's (..., inputs, filters)."""
    weights = raw.get("weights") or []
    shape = weights[0].get("shape") if weights and isinstance(weights[0], dict) else None
    if not isinstance(shape, list) or len(shape) < 2:
        return None
    if raw.get("class") == "Dense" and len(shape) == 2 or \
            str(raw.get("class")).startswith("Conv") and len(shape) >= 3:
        return int(shape[-2]) if isinstance(shape[-2], int) else None
    return None


def _owner_for_activation(layers: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The nearest earlier weighted layer with no activation, looking past BatchNorm/Dropout."""
    for candidate in reversed(layers):
        if candidate["kind"] in WEIGHTED:
            return candidate if candidate["activation"] is None else None
        if candidate["kind"] not in PASS_THROUGH:
            return None
    return None


Pair = tuple[int | None, int | None]


def align(expected: list[Layer], found: list[Layer]) -> list[Pair]:
    """Edit-distance alignment: same structure 0, same type 0.5, other type 1, gap 1."""
    n, m = len(expected), len(found)

    def sub(i: int, j: int) -> float:
        e, f = expected[i], found[j]
        if e.structure == f.structure:
            return 0.0
        return 0.5 if e.kind == f.kind else 1.0

    cost = [[0.0] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        cost[i][0] = float(i)
    for j in range(1, m + 1):
        cost[0][j] = float(j)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost[i][j] = min(cost[i - 1][j - 1] + sub(i - 1, j - 1),
                             cost[i - 1][j] + 1, cost[i][j - 1] + 1)
    pairs: list[Pair] = []
    i, j = n, m
    while i or j:
        if i and j and cost[i][j] == cost[i - 1][j - 1] + sub(i - 1, j - 1):
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif i and cost[i][j] == cost[i - 1][j] + 1:
            pairs.append((i - 1, None))
            i -= 1
        else:
            pairs.append((None, j - 1))
            j -= 1
    return pairs[::-1]


def distance(expected: list[Layer], found: list[Layer]) -> float:
    pairs = align(expected, found)
    total = 0.0
    for i, j in pairs:
        if i is None or j is None:
            total += 1
        elif expected[i].structure != found[j].structure:
            total += 0.5 if expected[i].kind == found[j].kind else 1
        elif expected[i].activation != found[j].activation:
            total += 0.25
    return total
