"""A traced TensorFlow graph read back as Keras-like layers: the trusted side's view of a model
that only its own class can rebuild (a subclassed model, exported as a SavedModel).

The graph is the model's `serve` function with its variables frozen into constants, so every
operation, every weight's shape and every static output shape is visible. Operations are
grouped the way Keras layers emit them: a convolution or matrix product with the bias added to
its output and the activation applied to that; batch normalisation's multiply-add with a
reciprocal square root among its constants; pooling; reshapes. The result has the shape of
grader/measure/introspect.py's layer descriptions, so the same checks compare both against the
reference. Nothing here runs the model.

What is not part of an image classifier is reported, not hidden: data-path operations with no
layer meaning, and operations that could look answers up instead of computing them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

WEIGHTED_OPS = {"Conv2D": "Conv2D", "MatMul": "Dense", "DepthwiseConv2dNative": "DepthwiseConv2D",
                "Conv2DBackpropInput": "Conv2DTranspose", "Conv3D": "Conv3D"}
ACTIVATION_OPS = {"Relu": "relu", "Relu6": "relu6", "Elu": "elu", "Selu": "selu",
                  "Sigmoid": "sigmoid", "Tanh": "tanh", "Softmax": "softmax",
                  "LogSoftmax": "log_softmax", "Softplus": "softplus", "Softsign": "softsign",
                  "LeakyRelu": "leaky_relu"}
POOLING_OPS = {"MaxPool": "MaxPooling2D", "AvgPool": "AveragePooling2D"}
GLOBAL_POOLING_OPS = {"Mean": "GlobalAveragePooling2D", "Max": "GlobalMaxPooling2D"}
# On the data path but no layer of their own: shapes, types, copies.
TRANSPARENT_OPS = {"Identity", "IdentityN", "Cast", "ExpandDims", "Squeeze", "StopGradient",
                   "PreventGradient", "Snapshot"}
MERGE_OPS = {"AddV2": "Add", "Add": "Add", "Sub": "Subtract", "Mul": "Multiply",
             "ConcatV2": "Concatenate", "Maximum": "Maximum", "Minimum": "Minimum"}
PAD_OPS = {"Pad", "PadV2", "MirrorPad"}
BIAS_OPS = {"BiasAdd", "AddV2", "Add"}

# Operations a classifier of images has a use for; anything else is reported. Variables,
# random numbers (dropout) and control flow are listed so that training=True graphs read too.
CLASSIFIER_OPS = frozenset({
    *WEIGHTED_OPS, *ACTIVATION_OPS, *POOLING_OPS, *GLOBAL_POOLING_OPS, *TRANSPARENT_OPS,
    *MERGE_OPS, *PAD_OPS, "BiasAdd", "Placeholder", "Const", "NoOp", "StatefulPartitionedCall",
    "PartitionedCall", "ReadVariableOp", "Reshape", "Shape", "StridedSlice", "Pack", "Unpack",
    "Transpose", "Fill", "Range", "Slice", "Split", "SplitV", "Tile", "RealDiv", "Div", "Neg",
    "Abs", "Square", "Sqrt", "Rsqrt", "Exp", "Log", "Erf", "Pow", "SquaredDifference",
    "Greater", "GreaterEqual", "Less", "LessEqual", "Equal", "NotEqual", "Select", "SelectV2",
    "ZerosLike", "OnesLike", "ClipByValue", "Sum", "Prod", "Min", "ArgMax",
    "FusedBatchNorm", "FusedBatchNormV3", "BatchMatMulV2", "Einsum", "Floor", "FloorMod",
    "RandomUniform", "RandomStandardNormal", "StatelessRandomUniformV2",
    "StatelessRandomGetKeyCounter", "StatelessRandomGetAlg", "StatelessRandomNormalV2",
    "RngReadAndSkip", "RngBitGenerator", "AssignVariableOp", "AssignAddVariableOp",
    "AssignSubVariableOp", "VarHandleOp", "If", "StatelessIf", "Merge", "Switch", "Cumsum",
    "Size", "Rank", "BroadcastTo", "BroadcastArgs", "LogicalAnd", "LogicalOr", "LogicalNot",
    "Sign", "Round", "Ceil", "Reciprocal", "Softmax", "Max", "Mean", "TensorListFromTensor",
})
# Operations that read or write files, call back into Python, print, or look values up in
# tables or strings: a model that holds them is not run at all.
REFUSED_WORDS = ("File", "PyFunc", "Print", "Lookup", "HashTable", "String", "Dataset",
                 "Iterator", "Save", "Restore", "Decode", "Encode", "Regex", "Fingerprint",
                 "Bucket", "Send", "Recv", "Summary", "Audio", "Image", "Queue", "Stage",
                 "Barrier", "TensorArray", "Mutable", "Shard", "Parse", "Serialize")


@dataclass
class GraphView:
    layers: list[dict[str, Any]]
    used_constants: list[np.ndarray]  # the frozen weights the layers read
    unneeded_ops: list[str] = field(default_factory=list)  # data-path ops with no layer meaning


def refused_ops(op_types: set[str]) -> list[str]:
    return sorted(t for t in op_types if any(word in t for word in REFUSED_WORDS))


def unusual_ops(op_types: set[str]) -> list[str]:
    return sorted(t for t in op_types - CLASSIFIER_OPS if not any(w in t for w in REFUSED_WORDS))


def _shape(tensor: Any) -> list[int | None] | None:
    try:
        dims = tensor.shape.as_list()
    except ValueError:  # unknown rank
        return None
    return [None, *dims[1:]] if dims else dims


class _Reader:
    """One pass over the frozen graph's operations, in their (topological) order."""

    def __init__(self, graph: Any) -> None:
        self.ops = list(graph.get_operations())
        inputs = [op.outputs[0] for op in self.ops if op.type == "Placeholder"]
        self.data: set[str] = {t.name for t in inputs}  # tensors computed from the input
        self.layers: list[dict[str, Any]] = []
        self.current: dict[str, Any] | None = None  # the layer the next bias/activation joins
        self.used: dict[str, np.ndarray] = {}  # Const op name → value
        self._out: Any = None
        self.unneeded: list[str] = []

    # -- helpers -------------------------------------------------------------------------------
    def on_data(self, tensor: Any) -> bool:
        return tensor.name in self.data

    def constant_leaves(self, tensor: Any, depth: int = 0) -> list[tuple[str, np.ndarray]]:
        """The Const operations (name, value) a non-data tensor is computed from."""
        op = tensor.op
        if op.type == "Const":
            value = _const_value(op)
            return [] if value is None else [(op.name, value)]
        if depth > 12 or self.on_data(tensor):
            return []
        out: list[tuple[str, np.ndarray]] = []
        for t in op.inputs:
            out.extend(self.constant_leaves(t, depth + 1))
        return out

    def derives_through(self, tensor: Any, op_type: str, depth: int = 0) -> bool:
        if tensor.op.type == op_type:
            return True
        if depth > 12 or tensor.op.type == "Const":
            return False
        return any(self.derives_through(t, op_type, depth + 1) for t in tensor.op.inputs)

    def use(self, leaves: list[tuple[str, np.ndarray]]) -> list[dict[str, Any]]:
        """The weights among these constants: floating-point arrays, each counted once (scalars
        are settings such as epsilons; integer arrays are shapes and axes)."""
        weights = []
        for name, value in leaves:
            if value.dtype.kind != "f" or value.ndim == 0 or name in self.used:
                continue
            self.used[name] = value
            weights.append({"shape": [int(d) for d in value.shape]})
        return weights

    def emit(self, cls: str, op: Any, **extra: Any) -> dict[str, Any]:
        layer = {"class": cls, "name": op.name.split("/")[-2] if "/" in op.name else op.name,
                 "output_shape": _shape(op.outputs[0]), "activation": None, "config": {},
                 "weights": [], "params": 0, "ops": [op.type], **extra}
        self.layers.append(layer)
        self.current = layer
        self._out = op.outputs[0]
        return layer

    def extend(self, op: Any) -> None:
        """The current layer's output is now this op's."""
        self.current["output_shape"] = _shape(op.outputs[0])
        self.current["ops"].append(op.type)
        self._out = op.outputs[0]

    def follows_current(self, op: Any) -> bool:
        return self.current is not None and self._out is not None and \
            any(t.name == self._out.name for t in op.inputs)

    # -- the walk ------------------------------------------------------------------------------
    def read(self) -> None:
        for op in self.ops:
            data_inputs = [t for t in op.inputs if self.on_data(t)]
            if not data_inputs or op.type == "Shape" or not op.outputs:
                continue
            for t in op.outputs:
                if t.dtype.is_floating:
                    self.data.add(t.name)
            self.classify(op, data_inputs)
        for layer in self.layers:
            layer["params"] = sum(int(np.prod(w["shape"])) for w in layer["weights"])
            layer.pop("ops", None)

    def classify(self, op: Any, data_inputs: list[Any]) -> None:
        kind = op.type
        others = [t for t in op.inputs if not self.on_data(t)]
        if kind in WEIGHTED_OPS and others:
            self.weighted(op, others)
        elif kind in BIAS_OPS and len(data_inputs) == 1 and self.follows_current(op) \
                and self.current.get("bias") is False and others:
            self.current["weights"] += self.use(self.constant_leaves(others[0]))
            self.current["bias"] = True
            self.current["config"]["use_bias"] = True
            self.extend(op)
        elif kind in ACTIVATION_OPS:
            self.activation(op)
        elif kind in POOLING_OPS:
            self.pooling(op)
        elif kind in GLOBAL_POOLING_OPS and others and self.spatial_reduction(others[0]):
            self.emit(GLOBAL_POOLING_OPS[kind], op)
        elif kind == "Reshape":
            shape_in = _shape(op.inputs[0]) or []
            shape_out = _shape(op.outputs[0]) or []
            self.emit("Flatten" if len(shape_out) == 2 and len(shape_in) > 2 else "Reshape", op,
                      config={"target_shape": shape_out[1:]})
        elif kind in TRANSPARENT_OPS:
            if self.follows_current(op):
                self._out = op.outputs[0]
        elif kind in ("FusedBatchNorm", "FusedBatchNormV3"):
            self.emit("BatchNormalization", op)["weights"] = self.use(
                [v for t in others for v in self.constant_leaves(t)])
        elif kind == "Mul" and len(data_inputs) == 1 and others:
            self.scale(op, others[0])
        elif kind in ("AddV2", "Add", "Sub") and len(data_inputs) == 1 and others and \
                self.follows_current(op) and self.current.get("affine") == "open":
            self.current["weights"] = self.use(self.current.pop("leaves") +
                                               self.constant_leaves(others[0]))
            self.current["affine"] = "closed"
            self.extend(op)
        elif kind in MERGE_OPS and len(data_inputs) >= 2:
            self.emit(MERGE_OPS[kind], op)
        elif kind in PAD_OPS:
            self.emit("ZeroPadding2D", op)
        else:
            self.unneeded.append(kind)
            self.emit(f"op:{kind}", op)

    def weighted(self, op: Any, others: list[Any]) -> None:
        leaves = self.constant_leaves(others[0])
        kernel = max(leaves, key=lambda leaf: leaf[1].size) if leaves else None
        cls = WEIGHTED_OPS[op.type]
        layer = self.emit(cls, op, bias=False)
        if kernel is None:
            return
        layer["weights"] = self.use([kernel])
        shape = [int(d) for d in kernel[1].shape]
        config: dict[str, Any] = {"use_bias": False}
        if cls == "Dense":
            config["units"] = int(shape[-1])
        elif cls == "DepthwiseConv2D":
            config.update(kernel_size=shape[:2], strides=_spatial(op, "strides"),
                          padding=_padding(op))
        else:
            config.update(filters=int(shape[-1] if cls != "Conv2DTranspose" else shape[-2]),
                          kernel_size=shape[:-2], strides=_spatial(op, "strides"),
                          padding=_padding(op))
        layer["config"] = config

    def activation(self, op: Any) -> None:
        name = ACTIVATION_OPS[op.type]
        if self.follows_current(op) and self.current["class"] in WEIGHTED_OPS.values() \
                and self.current["activation"] is None:
            self.current["activation"] = name
            self.extend(op)
        else:
            self.emit("Activation", op, activation=name)

    def pooling(self, op: Any) -> None:
        self.emit(POOLING_OPS[op.type], op, config={
            "pool_size": _spatial(op, "ksize"), "strides": _spatial(op, "strides"),
            "padding": _padding(op)})

    def spatial_reduction(self, axes: Any) -> bool:
        values = self.constant_leaves(axes)
        return bool(values) and sorted(int(a) for a in values[0][1].ravel()) == [1, 2]

    def scale(self, op: Any, other: Any) -> None:
        """x * c: the first half of batch normalisation (c holds a reciprocal square root), of a
        rescaling (c a scalar), or a multiplication the model's code does."""
        leaves = self.constant_leaves(other)
        if self.derives_through(other, "Rsqrt"):
            self.emit("BatchNormalization", op, affine="open", leaves=leaves)
        elif all(value.size == 1 for _, value in leaves):
            self.emit("Rescaling", op, affine="open", leaves=[])
        else:
            self.emit("Multiply", op, weights=self.use(leaves))


def _const_value(op: Any) -> np.ndarray | None:
    try:
        from tensorflow.python.framework import tensor_util

        return tensor_util.MakeNdarray(op.get_attr("value"))
    except Exception:
        return None


def _spatial(op: Any, attr: str) -> list[int]:
    try:
        values = list(op.get_attr(attr))
    except ValueError:
        return []
    return [int(v) for v in values[1:-1]] if len(values) == 4 else [int(v) for v in values]


def _padding(op: Any) -> str:
    try:
        value = op.get_attr("padding")
    except ValueError:
        return "valid"
    return (value.decode() if isinstance(value, bytes) else str(value)).lower()


def read(graph: Any) -> GraphView:
    """The layers of a frozen graph, the weights they use, and what a classifier would not need."""
    reader = _Reader(graph)
    reader.read()
    for layer in reader.layers:
        for key in ("bias", "affine", "leaves"):
            layer.pop(key, None)
    return GraphView(reader.layers, list(reader.used.values()), sorted(set(reader.unneeded)))
