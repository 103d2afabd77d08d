"""A PyTorch answer, from the ONNX file the kernel exported (grader/kernel/export.py).

Trusted side: read with `onnx` (a protobuf parser: no pickle, no Python code from the file) and
run with `onnxruntime`, never with torch, so nothing the student wrote runs here. What is read
is bounded and checked before anything runs:

- operators from the standard domain only, on an allow-list (what a feed-forward classifier,
  a LeNet-style CNN and `x.view(-1, 784)` export to); no model-local functions, no external
  data, no sparse initializers. A graph with anything else is still described, but not run: its predictions
  are refused with the operators named.
- shapes come from ONNX's shape inference, parameters from the initializers each layer uses.

The description has the keys the Keras path's (grader/measure/introspect.py) has, in Keras's
words, so the existing checks compare it with the reference unchanged: `Linear` (ONNX `Gemm`,
or `MatMul` + `Add`) is a `Dense` layer, `ReLU`/`Sigmoid`/`Tanh`/`Softmax` (module or `F.`
function alike: they export the same) are `Activation` layers the checks fold into the layer
before them, `nn.Flatten` and `x.view(...)` are shape-only. `Conv2d` is `Conv2D` (its ONNX
padding read as Keras's 'same' or 'valid'), `MaxPool2d`/`AvgPool2d` are `MaxPooling2D`/
`AveragePooling2D`, `BatchNorm1d/2d` is `BatchNormalization` (the kernel's export keeps it,
not folded into the convolution before it). Shapes are given as
Keras's, channels last. Each layer also keeps PyTorch's own name (`torch_class`).

Dropout leaves no trace in an inference-mode export, so the kernel writes a second graph traced
in training mode (`<name>.training.onnx`). Its Dropout layers are believed only where the rest of
it is the inference graph (the same layers with the same weights); it also serves the dropout
probe, whose passes must differ in training and agree at inference. A last `Linear` with nothing after it is the softmax output the homework
asks for only when the notebook's loss is cross-entropy (whose softmax is inside the loss):
`cross_entropy_loss` says so, read by the trusted side from the notebook's source.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ACTIVATIONS = {"Relu": ("relu", "ReLU"), "Sigmoid": ("sigmoid", "Sigmoid"),
               "Tanh": ("tanh", "Tanh"), "Softmax": ("softmax", "Softmax"),
               "LogSoftmax": ("log_softmax", "LogSoftmax"), "Elu": ("elu", "ELU"),
               "LeakyRelu": ("leaky_relu", "LeakyReLU")}
SHAPE_ONLY = {"Flatten": "Flatten", "Reshape": "Reshape"}
# Plumbing that `x.view(-1, 784)`, `x.flatten(1)`, `nn.Unflatten` and constant folding leave
# behind.
PLUMBING = {"Constant", "Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Cast", "Identity",
            "Slice", "Mod"}
ARITHMETIC = {"Add", "Sub", "Mul", "Div"}  # a bias (after MatMul) or scaling in forward()
WEIGHTED = {"Gemm", "MatMul"}
POOLING = {"MaxPool": ("MaxPooling", "MaxPool"), "AveragePool": ("AveragePooling", "AvgPool")}
ALLOWED = set(ACTIVATIONS) | set(SHAPE_ONLY) | PLUMBING | ARITHMETIC | WEIGHTED | set(POOLING) \
    | {"Dropout", "Conv", "BatchNormalization"}
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
    # The training-mode graph, where it is the inference graph plus dropout (else None).
    training_path: Path | None = None
    _sessions: dict[Path, Any] = field(default_factory=dict)

    def serve(self, x: np.ndarray) -> np.ndarray:
        return self._run(self.path, x)

    @property
    def serve_training(self) -> Any:
        if self.training_path is None or self.refused:
            return None
        return lambda x: self._run(self.training_path, x)

    def _run(self, path: Path, x: np.ndarray) -> np.ndarray:
        if path not in self._sessions:
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = 2
            options.inter_op_num_threads = 1
            if path == self.training_path:  # onnxruntime's optimiser removes Dropout nodes
                options.graph_optimization_level = \
                    onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
            self._sessions[path] = onnxruntime.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"])
        session = self._sessions[path]
        name = session.get_inputs()[0].name
        return np.asarray(session.run(None, {name: np.asarray(x, dtype="float32")})[0])


def training_sibling(path: Path, max_bytes: int) -> Path | None:
    """`<name>.training.onnx` beside `<name>.onnx`, a plain file within the size cap, or None."""
    sibling = path.with_name(path.name[:-len(".onnx")] + ".training.onnx")
    if sibling.is_symlink() or not sibling.is_file() or sibling.stat().st_size > max_bytes:
        return None
    return sibling


def open_export(path: Path, claim: dict[str, Any], cross_entropy_loss: bool,
                training_path: Path | None = None) -> OnnxView:
    model = _load(path)
    graph = model.graph
    initializers = named_initializers(graph)
    inputs = [i for i in graph.input if i.name not in initializers]
    if not inputs:  # what the trace recorded never read the image: a constant, or a lookup
        raise ExportError("the model's output does not depend on the image it is given (its "
                          "export reads no input), so there is nothing of it to measure")
    if len(inputs) != 1 or len(graph.output) != 1:
        raise ExportError("the model's ONNX export does not have one input and one output")
    shapes = _inferred_shapes(model)
    layout = tuple(d for d in (shapes.get(inputs[0].name) or [None])[1:])
    if not layout or any(d is None for d in layout) or int(np.prod(layout)) != 784:
        raise ExportError(f"the exported model takes inputs shaped {layout}, not one image")
    layers, other = _layers(graph, initializers, shapes)
    refused = sorted({n.op_type for n in graph.node if n.op_type not in ALLOWED})
    notes = []
    training_path, training_note = _with_dropout(layers, initializers, training_path)
    if training_note:
        notes.append(training_note)
    weighted = [l for l in layers if l["class"] == "Dense"]
    if weighted and layers[-1] is weighted[-1] and cross_entropy_loss:
        # Logits into CrossEntropyLoss: the softmax is the loss's first step.
        weighted[-1]["activation"] = "softmax"
        weighted[-1]["activation_from"] = "CrossEntropyLoss (softmax inside the loss)"
        notes.append("the last Linear layer's softmax is inside the notebook's CrossEntropyLoss")
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
    if notes:
        description["note"] = "; ".join(notes)
    return OnnxView(tuple(int(d) for d in layout), description, total, refused, path,
                    training_path)


def _load(path: Path) -> Any:
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # a truncated or forged file
        raise ExportError(f"the grader could not read the model's ONNX export: {exc}"[:300]) \
            from None
    _check_safe(model)
    return model


def named_initializers(graph: Any) -> dict[str, Any]:
    """The graph's initializers by name, and under the names of Identity nodes that only pass
    one on (the exporter writes those for parameters it meets twice, such as batch norm's)."""
    found = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Identity" and node.input and node.input[0] in found:
            found[node.output[0]] = found[node.input[0]]
    return found


def _with_dropout(layers: list[dict[str, Any]], initializers: dict[str, Any],
                  training_path: Path | None) -> tuple[Path | None, str | None]:
    """Dropout layers from the training-mode graph, inserted into `layers` where they sit, when
    that graph is the inference graph plus dropout: the same layers with the same weights, and
    only operators the grader runs. Anything else is not believed: it could describe some other
    model than the one measured."""
    if training_path is None:
        return None, None
    try:
        model = _load(training_path)
        other_inits = named_initializers(model.graph)
        train_layers, _ = _layers(model.graph, other_inits, _inferred_shapes(model))
    except ExportError:
        return None, "the training-mode export could not be read, so no dropout is counted"
    kept = [l for l in train_layers if l["class"] != "Dropout"]
    matches = [_skeleton(l) for l in kept] == [_skeleton(l) for l in layers] and all(
        _same_weights(a, b, initializers, other_inits) for a, b in zip(layers, kept))
    if not matches or any(n.op_type not in ALLOWED for n in model.graph.node):
        return None, ("the training-mode export is not the inference graph plus dropout, so "
                      "no dropout is counted")
    merged, inference = [], iter(layers)
    for layer in train_layers:
        merged.append(layer if layer["class"] == "Dropout" else next(inference))
    layers[:] = merged
    return training_path, None


def _skeleton(layer: dict[str, Any]) -> tuple[Any, ...]:
    return (layer["class"], json.dumps(layer["config"], sort_keys=True), layer["params"],
            layer["output_shape"])


def _same_weights(a: dict[str, Any], b: dict[str, Any], mine: dict[str, Any],
                  theirs: dict[str, Any]) -> bool:
    """A Linear's or a convolution's weights are equal in both graphs (batch norm's moving
    statistics may move while the training graph is traced, so they are left out)."""
    pairs = zip(a["weights"], b["weights"])
    if a["class"] == "BatchNormalization":
        pairs = zip(a["weights"][:2], b["weights"][:2])
    return all(np.array_equal(_array(mine[x["name"]]), _array(theirs[y["name"]]))
               for x, y in pairs)


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
    used: set[int] = set()
    absorbed: set[int] = set()  # Add nodes that are a MatMul's bias
    layers: list[dict[str, Any]] = []
    live = _live(graph)
    for node in graph.node:
        op = node.op_type
        if id(node) in absorbed or id(node) not in live:
            continue
        layer = None
        if op in WEIGHTED and len(node.input) > 1 and node.input[1] in initializers:
            layer = _dense(node, initializers, consumers, shapes, absorbed)
        elif op == "Conv" and len(node.input) > 1 and node.input[1] in initializers:
            layer = _conv(node, initializers, shapes)
        elif op == "BatchNormalization" and all(n in initializers for n in node.input[1:5]):
            layer = _batch_norm(node, initializers, shapes)
        elif op in POOLING:
            layer = _pool(node, shapes)
        elif op in ACTIVATIONS:
            name, torch_name = ACTIVATIONS[op]
            layer = _plain(node, "Activation", torch_name, shapes, activation=name)
        elif op in SHAPE_ONLY:
            layer = _plain(node, SHAPE_ONLY[op], "Flatten" if op == "Flatten" else "view",
                           shapes)
        elif op == "Dropout":
            rate = round(_dropout_rate(node, graph, initializers), 4)
            layer = _plain(node, "Dropout", "Dropout", shapes, config={"rate": rate})
            layer["torch_label"] = f"Dropout(p={rate:g})"
        if layer is not None:
            used.update(id(initializers[w["name"]]) for w in layer["weights"])
            layers.append(layer)
    other = sum(int(np.prod(t.dims)) for t in graph.initializer
                if id(t) not in used and t.data_type in _FLOAT_TYPES)
    return layers, other


def _live(graph: Any) -> set[int]:
    """The nodes the output depends on: a layer the output never uses is no layer of the model
    (as a Keras layer call() never uses), however well it matches the homework's."""
    producer = {name: node for node in graph.node for name in node.output}
    live: set[int] = set()
    pending = [o.name for o in graph.output]
    while pending:
        node = producer.get(pending.pop())
        if node is not None and id(node) not in live:
            live.add(id(node))
            pending.extend(node.input)
    return live


def _dropout_rate(node: Any, graph: Any, initializers: dict[str, Any]) -> float:
    """Dropout's ratio: an attribute before opset 12, since then its second input (a Constant
    node's output or an initializer); ONNX's default 0.5 where it is not given."""
    if len(node.input) < 2 or not node.input[1]:
        return float(_attr(node, "ratio", 0.5))
    if node.input[1] in initializers:
        return float(_array(initializers[node.input[1]]).reshape(-1)[0])
    for source in graph.node:
        if source.op_type == "Constant" and node.input[1] in source.output:
            value = _attr(source, "value", None)
            if value is not None:
                return float(_array(value).reshape(-1)[0])
    return float("nan")  # computed at run time: no rate a check could accept


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
    """A shape as Keras gives it: the batch axis None, channels last (NCHW becomes NHWC)."""
    if not shape:
        return None
    if len(shape) >= 3:
        return [None, *shape[2:], shape[1]]
    return [None, *shape[1:]]


def _padding(node: Any, kernel: list[int], strides: list[int]) -> str:
    """ONNX's padding in Keras's words: 'valid' (none), 'same' (the output keeps the input's
    size, as Conv2d(padding=2) does for a 5x5 kernel), or the pads themselves."""
    auto = _attr(node, "auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else str(auto)
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        return "same"
    pads = [int(p) for p in _attr(node, "pads", [0] * 2 * len(kernel))]
    if auto == "VALID" or not any(pads):
        return "valid"
    half = [(k - 1) // 2 for k in kernel]
    if all(s == 1 for s in strides) and all(k % 2 for k in kernel) and pads == half + half:
        return "same"
    return f"pads {tuple(pads)}"


def _pads(node: Any, kernel: list[int]) -> list[int] | None:
    """ONNX's explicit pads (the starts of each axis, then the ends), which the grader's
    retraining rebuilds the layer from; None where auto_pad computes them."""
    auto = _attr(node, "auto_pad", b"NOTSET")
    if (auto.decode() if isinstance(auto, bytes) else str(auto)) not in ("NOTSET", "VALID"):
        return None
    return [int(p) for p in _attr(node, "pads", [0] * 2 * len(kernel))]


def _conv(node: Any, initializers: dict[str, Any], shapes: dict[str, list[int | None]]
          ) -> dict[str, Any]:
    """`Conv2d(in, out, k)`: ONNX Conv, its weight (out, in, kh, kw) given in Keras's order
    (kh, kw, in, out)."""
    kernel = _array(initializers[node.input[1]])
    if kernel.ndim < 3:
        raise ExportError(f"a Conv whose weight has {kernel.ndim} axes")
    size = [int(d) for d in _attr(node, "kernel_shape", kernel.shape[2:])]
    strides = [int(d) for d in _attr(node, "strides", [1] * len(size))]
    padding = _padding(node, size, strides)
    groups = int(_attr(node, "group", 1))
    dilations = [int(d) for d in _attr(node, "dilations", [1] * len(size))]
    weights = [{"name": node.input[1],
                "shape": [*map(int, kernel.shape[2:]), int(kernel.shape[1]), int(kernel.shape[0])]}]
    if len(node.input) > 2 and node.input[2] in initializers:
        weights.append({"name": node.input[2],
                        "shape": [int(d) for d in _array(initializers[node.input[2]]).shape]})
    params = sum(int(np.prod(w["shape"])) for w in weights)
    shape = _batch_none(shapes.get(node.output[0]))
    filters, inputs = int(kernel.shape[0]), int(kernel.shape[1]) * groups
    dims = len(size)
    label = f"Conv{dims}d({inputs} → {filters}, {'×'.join(map(str, size))}"
    label += "".join(f", {k}={v}" for k, v in (("stride", strides), ("groups", groups),
                                                ("padding", padding))
                     if v not in ([1] * dims, 1, "valid"))
    return {"class": f"Conv{dims}D", "torch_class": f"Conv{dims}d", "torch_label": label + ")",
            "name": node.name or node.output[0], "output_shape": shape,
            "output_shapes": [shape] if shape else [], "params": params,
            "trainable_params": params, "non_trainable_params": 0, "activation": None,
            "config": {"filters": filters, "kernel_size": size, "strides": strides,
                       "padding": padding, "groups": groups, "use_bias": len(weights) > 1,
                       "dilations": dilations, "pads": _pads(node, size)},
            "weights": weights}


def _pool(node: Any, shapes: dict[str, list[int | None]]) -> dict[str, Any]:
    """`MaxPool2d(2)` / `AvgPool2d(2)`: Keras's MaxPooling2D / AveragePooling2D."""
    size = [int(d) for d in _attr(node, "kernel_shape", [])]
    strides = [int(d) for d in _attr(node, "strides", [1] * len(size))]
    keras_name, torch_name = POOLING[node.op_type]
    dims = len(size)
    layer = _plain(node, f"{keras_name}{dims}D", f"{torch_name}{dims}d", shapes,
                   config={"pool_size": size, "strides": strides,
                           "padding": _padding(node, size, strides), "pads": _pads(node, size),
                           "dilations": [int(d) for d in _attr(node, "dilations", [1] * dims)],
                           "ceil_mode": bool(_attr(node, "ceil_mode", 0)),
                           "count_include_pad": bool(_attr(node, "count_include_pad", 0))})
    layer["torch_label"] = f"{torch_name}{dims}d({'×'.join(map(str, size))})"
    return layer


def _batch_norm(node: Any, initializers: dict[str, Any], shapes: dict[str, list[int | None]]
                ) -> dict[str, Any]:
    """`BatchNorm1d/2d(C)`: scale and shift (trained) and the moving mean and variance, 4 C
    parameters as Keras counts them."""
    weights = [{"name": name, "shape": [int(d) for d in _array(initializers[name]).shape]}
               for name in node.input[1:5]]
    channels = int(np.prod(weights[0]["shape"]))
    shape = _batch_none(shapes.get(node.output[0]))
    torch_name = "BatchNorm2d" if shape and len(shape) == 4 else "BatchNorm1d"
    layer = _plain(node, "BatchNormalization", torch_name, shapes,
                   config={"epsilon": float(_attr(node, "epsilon", 1e-5)),
                           "momentum": float(_attr(node, "momentum", 0.9))})  # as Keras counts it
    layer.update(weights=weights, params=4 * channels, trainable_params=2 * channels,
                 non_trainable_params=2 * channels, torch_label=f"{torch_name}({channels})")
    return layer


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
