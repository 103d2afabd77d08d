"""Describe a loaded Keras model as plain data (trusted side: grader/measure/worker.py).

Works for Sequential, functional and subclassed models: output shapes come from tracing one
eager forward pass, since a subclassed model's summary only says "multiple".
"""

from __future__ import annotations

from typing import Any

import numpy as np

_CONFIG_KEYS = ("units", "filters", "kernel_size", "strides", "padding", "pool_size", "rate",
                "use_bias", "target_shape", "axis", "momentum")


def activation_name(fn: Any) -> str | None:
    if fn is None:
        return None
    name = getattr(fn, "__name__", None) or type(fn).__name__
    name = name.lower()
    return name[:-3] if name.endswith("_v2") else name


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def _shape(tensor: Any) -> list[int | None]:
    return [None if d is None else int(d) for d in tuple(tensor.shape)]


def flat_layers(model: Any) -> list[Any]:
    """Layers in order, with nested models (a Sequential inside a model) expanded."""
    import keras

    out = []
    for layer in model.layers:
        if isinstance(layer, keras.Model) and layer.layers:
            out.extend(flat_layers(layer))
        else:
            out.append(layer)
    return out


def bottleneck(model: Any) -> Any | None:
    """An autoassociator's hidden layer: the narrowest Dense layer before its output layer,
    wherever it sits (a Sequential, an `encoder` model used as a layer, ...). The checks' own
    code_size reads the same rule off the described layers."""
    import keras

    dense = [layer for layer in flat_layers(model) if isinstance(layer, keras.layers.Dense)]
    return min(dense[:-1], key=lambda layer: layer.units) if len(dense) > 1 else None


def layer_outputs(model: Any, layer: Any, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """What `layer` outputs while `model` computes x: eager passes with the layer's call
    recorded, so a layer nested in sub-models is reached the way the model itself reaches it."""
    recorded: list[np.ndarray] = []
    original = layer.call

    def recording(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        recorded.append(np.asarray(result))
        return result

    layer.call = recording
    try:
        for start in range(0, len(x), batch_size):
            model(x[start:start + batch_size], training=False)
    finally:
        _restore_call(layer, original)
    return np.concatenate(recorded) if recorded else np.zeros((0,))


def trace_output_shapes(model: Any, sample: np.ndarray) -> dict[int, list[list[int | None]]]:
    """Run one eager forward pass, recording every layer call's output shape (by layer id).

    The dict's order is the order of the layers' first calls: a subclassed model's computation
    graph, which its attribute order (model.layers) need not follow.
    """
    seen: dict[int, list[list[int | None]]] = {}
    layers = flat_layers(model)
    originals = {}
    for layer in layers:
        original = layer.call
        originals[id(layer)] = (layer, original)

        def recording(*args, __layer=layer, __original=original, **kwargs):
            result = __original(*args, **kwargs)
            first = result[0] if isinstance(result, (list, tuple)) else result
            if hasattr(first, "shape"):
                shape = _shape(first)
                seen.setdefault(id(__layer), []).append([None, *shape[1:]] if shape else shape)
            return result

        layer.call = recording
    try:
        model(sample, training=False)
    finally:
        for layer, original in originals.values():
            _restore_call(layer, original)
    return seen


def _restore_call(layer: Any, original: Any) -> None:
    """Undo a recording patch: drop the instance attribute, exposing the class's call again."""
    try:
        del layer.call
    except AttributeError:
        layer.call = original


def describe_layer(layer: Any, traced: list[list[int | None]] | None) -> dict[str, Any]:
    config = {}
    try:
        raw = layer.get_config()
        config = {k: _plain(raw[k]) for k in _CONFIG_KEYS if k in raw}
    except Exception:
        pass
    shapes = traced or []
    if not shapes:
        try:
            shapes = [_shape(layer.output)]
        except Exception:
            shapes = []
    if len(shapes) > 1 and all(s[1:] == shapes[-1][1:] for s in shapes):
        shapes = shapes[-1:]  # Keras 3's symbolic build pass repeats the first call
    weights = [(w.path if hasattr(w, "path") else w.name, _shape(w)) for w in layer.weights]
    trainable = sum(int(np.prod(w.shape)) for w in layer.trainable_weights)
    total = sum(int(np.prod(w.shape)) for w in layer.weights)
    return {
        "class": type(layer).__name__,
        "name": layer.name,
        "output_shape": shapes[-1] if shapes else None,
        "output_shapes": shapes,
        "params": total,
        "trainable_params": trainable,
        "non_trainable_params": total - trainable,
        "activation": activation_name(getattr(layer, "activation", None)),
        "config": config,
        "weights": [{"name": str(n), "shape": s} for n, s in weights],
    }


def describe_compile(model: Any) -> dict[str, Any]:
    loss = getattr(model, "loss", None)
    optimizer = getattr(model, "optimizer", None)
    info: dict[str, Any] = {"compiled": bool(getattr(model, "compiled", False)),
                            "loss": None, "from_logits": None, "optimizer": None,
                            "learning_rate": None, "train_steps": 0}
    if loss is not None:
        if isinstance(loss, str):
            info["loss"] = loss
        else:
            name = getattr(loss, "name", None) or getattr(loss, "__name__", None)
            fn = getattr(loss, "fn", None)
            info["loss"] = getattr(fn, "__name__", None) or name or type(loss).__name__
            try:
                info["from_logits"] = bool(loss.get_config().get("from_logits"))
            except Exception:
                pass
    info["loss_config"] = _serialized("losses", loss)
    info["optimizer_config"] = _serialized("optimizers", optimizer)
    if optimizer is not None:
        info["optimizer"] = type(optimizer).__name__
        try:
            info["learning_rate"] = float(np.asarray(optimizer.learning_rate))
        except Exception:
            pass
        try:
            info["train_steps"] = int(np.asarray(optimizer.iterations))
        except Exception:
            pass
    return info


def _serialized(module: str, obj: Any) -> Any:
    """Keras's own serialisation, if it is plain JSON; the grader's trainer rebuilds from it."""
    import json

    import keras

    if obj is None or isinstance(obj, str):
        return obj
    try:
        value = getattr(keras, module).serialize(obj)
        json.dumps(value)
        return value
    except Exception:
        return None


def describe_model(model: Any, sample: np.ndarray | None) -> dict[str, Any]:
    import keras

    kind = ("Sequential" if isinstance(model, keras.Sequential)
            else "functional" if getattr(model, "_is_graph_network", False)
            or type(model) is keras.Model or type(model).__name__ == "Functional"
            else "subclassed")
    traced: dict[int, list] = {}
    trace_error = None
    if sample is not None:
        try:
            traced = trace_output_shapes(model, sample)
        except Exception as exc:
            trace_error = f"{type(exc).__name__}: {exc}"[:500]
    ordered, unused = flat_layers(model), []
    if kind == "subclassed" and traced:
        # call() decides the order, and a layer it never calls is not part of the model.
        by_id = {id(layer): layer for layer in ordered}
        unused = [layer for layer in ordered if id(layer) not in traced]
        ordered = [by_id[i] for i in traced if i in by_id]
    layers = [describe_layer(layer, traced.get(id(layer))) for layer in ordered]
    try:
        total = int(model.count_params())
    except Exception:
        total = sum(layer["params"] for layer in layers)
    weights_total = sum(int(np.prod(w.shape)) for w in model.weights)
    return {
        "class": type(model).__name__,
        "kind": kind,
        "built": bool(getattr(model, "built", False)),
        "input_shape": input_shape(model),
        "layers": layers,
        "unused_layers": [{"class": type(layer).__name__, "name": layer.name,
                           "params": sum(int(np.prod(w.shape)) for w in layer.weights)}
                          for layer in unused],
        "total_params": total,
        "weights_params": weights_total,
        "trace_error": trace_error,
        "compile": describe_compile(model),
    }


def input_shape(model: Any) -> list[int | None] | None:
    try:
        return _shape(model.inputs[0])
    except Exception:
        return None
