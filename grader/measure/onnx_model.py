"""A PyTorch answer, from the ONNX file the kernel exported (grader/kernel/harvest.py).

Trusted side: read with `onnx` (a protobuf parser: no pickle, no Python code from the file) and
run with `onnxruntime`, never with torch, so nothing the student wrote runs here. What is read
is bounded and checked before anything runs:

- operators from the standard domain only, on an allow-list (what a feed-forward classifier
  and `x.view(-1, 784)` export to); no model-local functions, no external data, no sparse
  initializers. A graph with anything else is still described, but not run: its predictions
  are refused with the operators named.
- shapes come from ONNX's shape inference, parameters from the initializers each layer uses.

The description has the keys the Keras path's (grader/measure/introspect.py) has, in Keras's
words, so the existing checks compare it with the reference unchanged: `Linear` (ONNX `Gemm`,
or `MatMul` + `Add`) is a `Dense` layer, `ReLU`/`Sigmoid`/`Tanh`/`Softmax` (module or `F.`
function alike: they export the same) are `Activation` layers the checks fold into the layer
before them, `nn.Flatten` and `x.view(...)` are shape-only. Each layer also keeps PyTorch's own
name (`torch_class`). A last `Linear` with nothing after it is the softmax output the homework
asks for only when the notebook's loss is cross-entropy (whose softmax is inside the loss):
`cross_entropy_loss` says so, read by the trusted side from the notebook's source.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ACTIVATIONS = {"Relu": ("relu", "ReLU"), "Sigmoid": ("sigmoid", "Sigmoid"),
               "Tanh": ("tanh", "Tanh"), "Softmax": ("softmax", "Softmax"),
               "LogSoftmax": ("log_softmax", "LogSoftmax"), "Elu": ("elu", "ELU"),
               "LeakyRelu": ("leaky_relu", "LeakyReLU")}
SHAPE_ONLY = {"Flatten": "Flatten", "Reshape": "Reshape"}
# Plumbing that `x.view(-1, 784)`, `x.flatten(1)` and constant folding leave behind.
PLUMBING = {"Constant", "Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Cast", "Identity",
            "Slice"}
ARITHMETIC = {"Add", "Sub", "Mul", "Div"}  # a bias (after MatMul) or scaling in forward()
WEIGHTED = {"Gemm", "MatMul"}
ALLOWED = set(ACTIVATIONS) | set(SHAPE_ONLY) | PLUMBING | ARITHMETIC | WEIGHTED | {"Dropout"}
STANDARD_DOMAINS = {"", "ai.onnx"}
MAX_NODES = 2000


class ExportError(ValueError):
    """The export cannot be read safely; the message is for the student's report."""


@dataclass
class OnnxView:
    layout: tuple[int, ...]
    description: dict[str, Any]
    params: int
    refused: list[str]
    path: Path
    _session: Any = None

    def serve(self, x: np.ndarray) -> np.ndarray:
        if self._session is None:
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = 2
            options.inter_op_num_threads = 1
            self._session = onnxruntime.InferenceSession(
                str(self.path), sess_options=options, providers=["CPUExecutionProvider"])
        name = self._session.get_inputs()[0].name
        return np.asarray(self._session.run(None, {name: np.asarray(x, dtype="float32")})[0])


def open_export(path: Path, claim: dict[str, Any], cross_entropy_loss: bool) -> OnnxView:
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # a truncated or forged file
        raise ExportError(f"the grader could not read the model's ONNX export: {exc}"[:300]) \
            from None
    graph = model.graph
    _check_safe(model)
    initializers = {t.name: t for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise ExportError("the model's ONNX export does not have one input and one output")
    shapes = _inferred_shapes(model)
    layout = tuple(d for d in (shapes.get(inputs[0].name) or [None])[1:])
    if not layout or any(d is None for d in layout) or int(np.prod(layout)) != 784:
        raise ExportError(f"the exported model takes inputs shaped {layout}, not one image")
    layers, other = _layers(graph, initializers, shapes)
    refused = sorted({n.op_type for n in graph.node if n.op_type not in ALLOWED})
    note = None
    weighted = [l for l in layers if l["class"] == "Dense"]
    if weighted and layers[-1] is weighted[-1] and cross_entropy_loss:
        # Logits into CrossEntropyLoss: the softmax is the loss's first step.
        weighted[-1]["activation"] = "softmax"
        weighted[-1]["activation_from"] = "CrossEntropyLoss (softmax inside the loss)"
        note = "the last Linear layer's softmax is inside the notebook's CrossEntropyLoss"
    total = sum(l["params"] for l in layers)
    description = {
        "class": str(claim.get("class_name") or "Module")[:200],
        "kind": "pytorch",
        "framework": "pytorch",
        "built": True,
        "input_shape": [None, *layout],
        "layers": layers,
        "unused_layers": [],
        "total_params": total,
        "weights_params": total,
        "other_constants": other,
        "trace_error": None,
        "unsupported_ops": refused,
        "compile": {"compiled": False, "framework": "pytorch", "loss": None,
                    "optimizer": None, "learning_rate": None, "train_steps": 0,
                    "cross_entropy_in_source": bool(cross_entropy_loss)},
    }
    if note:
        description["note"] = note
    return OnnxView(tuple(int(d) for d in layout), description, total, refused, path)


def _check_safe(model: Any) -> None:
    import onnx

    graph = model.graph
    if len(model.functions):
        raise ExportError("the model's ONNX export defines functions of its own")
    if len(graph.sparse_initializer):
        raise ExportError("the model's ONNX export holds sparse initializers")
    if len(graph.node) > MAX_NODES:
        raise ExportError(f"the model's ONNX export has {len(graph.node):,} operations; the "
                          f"grader reads at most {MAX_NODES:,}")
    for opset in model.opset_import:
        if opset.domain not in STANDARD_DOMAINS:
            raise ExportError(f"the model's ONNX export uses the operator domain "
                              f"{opset.domain!r}, which the grader does not run")
    for node in graph.node:
        if node.domain not in STANDARD_DOMAINS:
            raise ExportError(f"the model's ONNX export uses {node.domain}.{node.op_type}")
        if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
               for a in node.attribute):
            raise ExportError(f"the model's ONNX export nests graphs ({node.op_type})")
    tensors = list(graph.initializer) + [a.t for n in graph.node for a in n.attribute
                                         if a.type == onnx.AttributeProto.TENSOR]
    for tensor in tensors:
        if tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data):
            raise ExportError("the model's ONNX export points at external data files")


def _inferred_shapes(model: Any) -> dict[str, list[int | None]]:
    """Every value's shape by ONNX's shape inference; the batch axis (symbolic) is None."""
    from onnx import shape_inference

    try:
        inferred = shape_inference.infer_shapes(model, strict_mode=False)
    except Exception:
        inferred = model
    graph = inferred.graph
    out: dict[str, list[int | None]] = {}
    for value in (*graph.input, *graph.value_info, *graph.output):
        tensor = value.type.tensor_type
        if not tensor.HasField("shape"):
            continue
        out[value.name] = [int(d.dim_value) if d.HasField("dim_value") else None
                           for d in tensor.shape.dim]
    return out


def _array(tensor: Any) -> np.ndarray:
    from onnx import numpy_helper

    return numpy_helper.to_array(tensor)


def _attr(node: Any, name: str, default: Any) -> Any:
    from onnx import helper

    for attribute in node.attribute:
        if attribute.name == name:
            return helper.get_attribute_value(attribute)
    return default


def _layers(graph: Any, initializers: dict[str, Any], shapes: dict[str, list[int | None]]
            ) -> tuple[list[dict[str, Any]], int]:
    """Layers in the graph's (topological) order; and the count of float constants no layer
    uses as weights (a `/ 255` in forward(), say), which are not parameters."""
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    used: set[str] = set()
    absorbed: set[int] = set()  # Add nodes that are a MatMul's bias
    layers: list[dict[str, Any]] = []
    for node in graph.node:
        op = node.op_type
        if id(node) in absorbed:
            continue
        if op in WEIGHTED and len(node.input) > 1 and node.input[1] in initializers:
            layer = _dense(node, initializers, consumers, shapes, absorbed)
            used.update(w["name"] for w in layer["weights"])
            layers.append(layer)
        elif op in ACTIVATIONS:
            name, torch_name = ACTIVATIONS[op]
            layers.append(_plain(node, "Activation", torch_name, shapes, activation=name))
        elif op in SHAPE_ONLY:
            layers.append(_plain(node, SHAPE_ONLY[op], "Flatten" if op == "Flatten" else "view",
                                 shapes))
        elif op == "Dropout":
            layers.append(_plain(node, "Dropout", "Dropout", shapes,
                                 config={"rate": round(float(_attr(node, "ratio", 0.5)), 4)}))
    other = sum(int(np.prod(t.dims)) for name, t in initializers.items()
                if name not in used and t.data_type in _FLOAT_TYPES)
    return layers, other


_FLOAT_TYPES = {1, 10, 11, 16}  # FLOAT, FLOAT16, DOUBLE, BFLOAT16


def _plain(node: Any, kind: str, torch_name: str, shapes: dict[str, list[int | None]],
           activation: str | None = None, config: dict[str, Any] | None = None
           ) -> dict[str, Any]:
    shape = _batch_none(shapes.get(node.output[0]))
    return {"class": kind, "torch_class": torch_name, "name": node.name or node.output[0],
            "output_shape": shape, "output_shapes": [shape] if shape else [], "params": 0,
            "trainable_params": 0, "non_trainable_params": 0, "activation": activation,
            "config": config or {}, "weights": []}


def _batch_none(shape: list[int | None] | None) -> list[int | None] | None:
    return [None, *shape[1:]] if shape else None


def _dense(node: Any, initializers: dict[str, Any], consumers: dict[str, list[Any]],
           shapes: dict[str, list[int | None]], absorbed: set[int]) -> dict[str, Any]:
    """`Linear(in, out)`: Gemm(x, W, b) with W as torch holds it (out, in) and transB=1, or
    MatMul(x, W) (in, out) followed by Add(·, b). Weights are given in Keras's (in, out)."""
    kernel = _array(initializers[node.input[1]])
    if kernel.ndim != 2:
        raise ExportError(f"a {node.op_type} whose weight has {kernel.ndim} axes")
    if node.op_type == "Gemm" and _attr(node, "transB", 0):
        kernel = kernel.T
    if node.op_type == "Gemm" and _attr(node, "transA", 0):
        raise ExportError("a Gemm with transposed inputs")
    weights = [{"name": node.input[1], "shape": [int(d) for d in kernel.shape]}]
    output = node.output[0]
    bias_name = node.input[2] if node.op_type == "Gemm" and len(node.input) > 2 else None
    if node.op_type == "MatMul":
        after = consumers.get(output) or []
        if len(after) == 1 and after[0].op_type == "Add":
            other = [n for n in after[0].input if n != output]
            if other and other[0] in initializers:
                bias_name, output = other[0], after[0].output[0]
                absorbed.add(id(after[0]))
    if bias_name and bias_name in initializers:
        bias = _array(initializers[bias_name])
        weights.append({"name": bias_name, "shape": [int(d) for d in bias.shape]})
    params = sum(int(np.prod(w["shape"])) for w in weights)
    shape = _batch_none(shapes.get(output))
    units = int(kernel.shape[1])
    return {"class": "Dense", "torch_class": "Linear",
            "torch_label": f"Linear({int(kernel.shape[0])} → {units})",
            "name": node.name or output, "output_shape": shape,
            "output_shapes": [shape] if shape else [], "params": params,
            "trainable_params": params, "non_trainable_params": 0, "activation": None,
            "config": {"units": units, "use_bias": len(weights) > 1}, "weights": weights}
