"""A subclassed model's SavedModel, as the trusted side sees it: variables, traced operations,
output shapes, predictions. No Python code of the student's runs: a SavedModel is graphs and
variables, and a graph holding an operation that could read files, call back into Python or look
answers up (grader/measure/graph_layers.py lists them) is refused before anything runs.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import graph_layers

ENDPOINTS = ("serve", "serve_training")
# Keras keeps its random generators' state as variables: not parameters of the model.
_NOT_PARAMETERS = ("seed_generator",)
LARGE_CONSTANT = 10_000  # values: a constant this large is data baked into the graph


class ExportError(Exception):
    """The export is not a model the grader can measure; the message says why."""


@dataclass
class View:
    layout: tuple[int, ...]
    description: dict[str, Any]
    refused: list[str]  # operations that stop the grader from running the model
    serve: Callable[[np.ndarray], np.ndarray]
    serve_training: Callable[[np.ndarray], np.ndarray] | None
    params: int  # variables plus large constants: what max_params applies to
    trainable: list[tuple[str, np.ndarray]] = field(default_factory=list)  # (name, value)


def open_export(path: Path, claim: dict[str, Any]) -> View:
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as exc:
        raise ExportError(f"the grader could not read the exported model: "
                          f"{type(exc).__name__}: {str(exc)[:200]}") from None
    serve = getattr(loaded, "serve", None)
    if serve is None:
        raise ExportError("the exported model has no `serve` endpoint")
    layout = _layout(serve)
    concrete = serve.get_concrete_function(tf.TensorSpec((None, *layout), tf.float32))
    op_types, constant_values = _graph_contents(concrete)
    training = getattr(loaded, "serve_training", None)
    if training is not None:
        more, _ = _graph_contents(training.get_concrete_function(
            tf.TensorSpec((None, *layout), tf.float32)))
        op_types |= more
    refused = graph_layers.refused_ops(op_types)
    variables = [v for v in loaded.variables
                 if not any(word in v.name for word in _NOT_PARAMETERS)]
    total = sum(int(np.prod(v.shape)) for v in variables)
    description = _describe(concrete, variables, total, claim, op_types, constant_values)
    trainable = [(v.name, v.numpy()) for v in variables if v.trainable]
    return View(layout, description, refused, _caller(serve), _caller(training)
                if training is not None else None, total + constant_values, trainable)


def _layout(serve: Any) -> tuple[int, ...]:
    try:
        spec = serve.input_signature[0]
        layout = tuple(int(d) for d in spec.shape[1:])
    except Exception:
        raise ExportError("the exported model's input signature is missing or not an image "
                          "batch") from None
    if int(np.prod(layout)) != 784:
        raise ExportError(f"the exported model takes inputs of shape {(None, *layout)}, not "
                          "28x28 images")
    return layout


def _graph_contents(concrete: Any) -> tuple[set[str], int]:
    """Every operation type the function may run (its library functions included), and how many
    values its literal constants hold (variables are not constants in an unfrozen graph)."""
    graph_def = concrete.graph.as_graph_def()
    nodes = list(graph_def.node)
    for function in graph_def.library.function:
        nodes.extend(function.node_def)
    types, values = set(), 0
    for node in nodes:
        types.add(node.op)
        if node.op == "Const" and "value" in node.attr:
            dims = [d.size for d in node.attr["value"].tensor.tensor_shape.dim]
            size = int(np.prod(dims)) if dims else 1
            if size > LARGE_CONSTANT:
                values += size
    return types, values


def _describe(concrete: Any, variables: list[Any], total: int, claim: dict[str, Any],
              op_types: set[str], constant_values: int) -> dict[str, Any]:
    from tensorflow.python.framework.convert_to_constants import \
        convert_variables_to_constants_v2

    frozen = convert_variables_to_constants_v2(concrete)
    view = graph_layers.read(frozen.graph)
    used = sum(int(v.size) for v in view.used_constants)
    unused = _unused_variables(variables, view.used_constants)
    unused += _unused_claimed(claim.get("layers"), view.layers)
    return {
        "class": str(claim.get("class_name") or "unknown")[:200],
        "kind": "subclassed",
        "built": True,
        "source": "savedmodel",
        "input_shape": [None, *(int(d) for d in concrete.structured_input_signature[0][0].shape[1:])],
        "layers": view.layers,
        "unused_layers": unused,
        "total_params": total,
        "weights_params": used + sum(u["params"] for u in unused),
        "trace_error": None,
        "graph_ops": sorted(op_types),
        "unneeded_ops": sorted(set(view.unneeded_ops) | set(graph_layers.unusual_ops(op_types))),
        "constant_values": constant_values,
        "compile": compile_settings(claim.get("compile") or {}),
    }


def _unused_variables(variables: list[Any], used: list[np.ndarray]) -> list[dict[str, Any]]:
    """Variables the traced call never reads: the layers `call()` defines but does not use."""
    remaining = list(used)
    groups: dict[str, dict[str, Any]] = {}
    for variable in variables:
        value = variable.numpy()
        match = next((i for i, u in enumerate(remaining)
                      if u.shape == value.shape and np.array_equal(u, value)), None)
        if match is not None:
            remaining.pop(match)
            continue
        parts = variable.name.split(":")[0].split("/")
        name = parts[-2] if len(parts) > 1 else parts[0]
        group = groups.setdefault(name, {"class": None, "name": name, "params": 0})
        group["params"] += int(value.size)
        if parts[-1].startswith("kernel"):
            group["class"] = {2: "Dense", 4: "Conv2D"}.get(value.ndim, group["class"])
        elif parts[-1].startswith(("gamma", "moving_mean")):
            group["class"] = group["class"] or "BatchNormalization"
    return [{**g, "class": g["class"] or "unknown"} for g in groups.values()]


# Layers without weights that the graph shows as layers of their own, only where call() uses
# them (an activation layer merges into the layer before it, so it is not listed).
WEIGHTLESS = {"MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D",
              "GlobalMaxPooling2D", "ZeroPadding2D"}


def _unused_claimed(claimed: Any, layers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Weightless layers the kernel says the model defines, more of which than the graph uses:
    the kernel's claim, used in messages only (no parameters, no points hang on it)."""
    if not isinstance(claimed, list):
        return []
    in_graph: dict[str, int] = {}
    for layer in layers:
        in_graph[layer["class"]] = in_graph.get(layer["class"], 0) + 1
    out = []
    for item in claimed[:200]:
        cls = item.get("class") if isinstance(item, dict) else None
        if cls not in WEIGHTLESS:
            continue
        if in_graph.get(cls, 0) > 0:
            in_graph[cls] -= 1
            continue
        out.append({"class": cls, "name": str(item.get("name"))[:100], "params": 0,
                    "claimed": True})
    return out


def compile_settings(claim: dict[str, Any]) -> dict[str, Any]:
    """The kernel's claim of how the model was compiled, read through Keras's own code-free
    deserialisers: a loss or optimizer Keras cannot rebuild without custom code is not taken."""
    import keras

    info: dict[str, Any] = {"compiled": bool(claim.get("compiled")), "loss": None,
                            "from_logits": None, "optimizer": None, "learning_rate": None,
                            "train_steps": 0, "loss_config": None, "optimizer_config": None}
    loss = claim.get("loss")
    if isinstance(loss, str):
        info["loss"] = loss[:100]
        info["loss_config"] = loss[:100]
    elif isinstance(loss, dict):
        try:
            rebuilt = keras.losses.deserialize(copy.deepcopy(loss))
            info["loss"] = getattr(rebuilt, "name", None) or type(rebuilt).__name__
            info["from_logits"] = bool(rebuilt.get_config().get("from_logits"))
            info["loss_config"] = loss
        except Exception:
            info["loss"] = None
    optimizer = claim.get("optimizer")
    if isinstance(optimizer, (dict, str)):
        try:
            # A copy: Keras lower-cases a config's class_name in place as it reads it.
            rebuilt = keras.optimizers.get(copy.deepcopy(optimizer))
            info["optimizer"] = type(rebuilt).__name__
            info["learning_rate"] = float(np.asarray(rebuilt.learning_rate))
            info["optimizer_config"] = optimizer
        except Exception:
            pass
    steps = claim.get("train_steps")
    info["train_steps"] = int(steps) if isinstance(steps, int) and steps >= 0 else 0
    return info


def _caller(function: Any) -> Callable[[np.ndarray], np.ndarray]:
    import tensorflow as tf

    def call(x: np.ndarray) -> np.ndarray:
        return np.asarray(function(tf.constant(x, dtype=tf.float32)))

    return call
