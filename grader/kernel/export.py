"""UNTRUSTED SIDE. The grader's code inside the student's kernel, run once after the student's cells.

Called as `grader.kernel.export.export(get_ipython().user_ns, REQUEST_JSON)`; writes
`manifest.json` into request["out"]. Its only job for a Keras model is to export it, without
pickle or code, for the trusted side (grader/measure) to load, describe and measure: anything this
code reported about a model could be forged by the student's code running in the same process.

- Sequential and functional models: Keras's own archive, `<name>.keras` (config JSON, weights,
  optimizer state).
- Subclassed models, which only their own class can rebuild: a SavedModel, `<name>.savedmodel/`,
  with two endpoints, `serve` (training=False) and `serve_training` (training=True, for the
  dropout probe); the trusted side reads its variables and traced operations. Its compile
  settings, which a SavedModel does not carry, go beside it in the manifest as the kernel's claim.
- PyTorch modules (`torch.nn.Module`, any style: `nn.Sequential` or a class with its own
  `forward()`): ONNX, `<name>.onnx`, traced here in inference mode with a dynamic batch axis,
  and `<name>.training.onnx`, traced in training mode (where dropout shows).
  The trusted side reads it with `onnx` and runs it with `onnxruntime` (an operator allow-list,
  no external data, no custom domains): no pickle, no TorchScript, no student class.

Other kinds of object live in `kinds/<kind>.py`. Every failure becomes a status in the manifest:
this code must never raise into the notebook.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

# The 784-pixel layouts a homework model may take, in the order tried.
IMAGE_LAYOUTS = ((28, 28), (28, 28, 1), (784,))
# PyTorch's: flat, channels first (NCHW), or plain 28x28.
TORCH_LAYOUTS = ((784,), (1, 28, 28), (28, 28))
ONNX_OPSET = 17


def export(namespace: dict[str, Any], request_json: str) -> None:
    request = json.loads(request_json)
    out = Path(request["out"])
    out.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {"objects": {}}
    for obj in request["objects"]:
        try:
            entry = _export_one(namespace, obj, out)
        except BaseException as exc:  # noqa: BLE001 - includes SystemExit from student code
            entry = {"status": "error", "message": f"{type(exc).__name__}: {exc}"[:500],
                     "traceback": traceback.format_exc()[-2000:]}
        manifest["objects"][obj["name"]] = entry
        tmp = out / "manifest.json.part"
        tmp.write_text(json.dumps(manifest, default=str))
        os.replace(tmp, out / "manifest.json")


def _type_name(value: Any) -> str:
    cls = type(value)
    return f"{cls.__module__}.{cls.__qualname__}"


def _export_one(namespace: dict[str, Any], obj: dict[str, Any], out: Path) -> dict[str, Any]:
    name = obj["name"]
    if name not in namespace:
        return {"status": "missing"}
    value = namespace[name]
    if obj["kind"] == "keras":
        return _export_keras(value, obj, out)
    import importlib

    module = importlib.import_module(f"grader.kernel.kinds.{obj['kind']}")
    return module.export(value, obj, namespace, out)


def _export_keras(model: Any, obj: dict[str, Any], out: Path) -> dict[str, Any]:
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(model, torch.nn.Module):
        return _export_onnx(torch, model, obj, out / f"{obj['name']}.onnx")
    keras = sys.modules.get("keras")
    if keras is None or not isinstance(model, keras.Model):
        return {"status": "wrong_type", "type": _type_name(model)}
    if not is_subclassed(keras, model):
        return _save_archive(model, out / f"{obj['name']}.keras")
    return _export_savedmodel(keras, model, obj, out / f"{obj['name']}.savedmodel")


def is_subclassed(keras: Any, model: Any) -> bool:
    return not (isinstance(model, keras.Sequential) or getattr(model, "_is_graph_network", False)
                or type(model) is keras.Model or type(model).__name__ == "Functional")


def _save_archive(model: Any, path: Path) -> dict[str, Any]:
    entry: dict[str, Any] = {"status": "found", "type": _type_name(model), "export": path.name}
    try:
        model.save(path)
    except Exception as exc:
        return {"status": "error", "type": _type_name(model),
                "message": f"the model could not be saved for grading: {type(exc).__name__}: "
                           f"{exc}"[:500]}
    return entry


def _layout(model: Any, hint: Any) -> tuple[int, ...] | None:
    """The first 784-value layout the model accepts: the spec's hint, then the usual ones."""
    import numpy as np

    candidates = [tuple(hint)] if hint else []
    candidates += [c for c in IMAGE_LAYOUTS if c not in candidates]
    for layout in candidates:
        try:
            model(np.zeros((2, *layout), dtype="float32"), training=False)
            return tuple(int(d) for d in layout)
        except Exception:
            continue
    return None


def _export_savedmodel(keras: Any, model: Any, obj: dict[str, Any], path: Path) -> dict[str, Any]:
    layout = _layout(model, obj.get("input_shape"))
    entry: dict[str, Any] = {"status": "found", "type": _type_name(model),
                             "class_name": type(model).__name__[:200],
                             "compile": compile_claim(keras, model),
                             "layers": layers_claim(keras, model)}
    if layout is None:
        return {**entry, "status": "error", "message": "the model accepts none of the image "
                "layouts " + ", ".join(str((None, *s)) for s in IMAGE_LAYOUTS)}
    import tensorflow as tf

    spec = [tf.TensorSpec((None, *layout), tf.float32)]
    try:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint("serve", lambda x: model(x, training=False), input_signature=spec)
        archive.add_endpoint("serve_training", lambda x: model(x, training=True),
                             input_signature=spec)
        archive.write_out(str(path), verbose=False)
    except Exception as exc:
        return {**entry, "status": "error", "message": "the model could not be exported for "
                f"grading: {type(exc).__name__}: {exc}"[:500]}
    return {**entry, "export": path.name, "layout": list(layout)}


def layers_claim(keras: Any, model: Any) -> list[dict[str, str]]:
    """The layers the model tracks (attributes included), for messages only: a layer without
    weights that call() never uses leaves no trace in the exported graph."""
    out: list[dict[str, str]] = []

    def walk(layer: Any) -> None:
        for sub in getattr(layer, "layers", None) or []:
            if isinstance(sub, keras.Model) and getattr(sub, "layers", None):
                walk(sub)
            elif len(out) < 200:
                out.append({"class": type(sub).__name__[:100], "name": str(sub.name)[:100]})

    try:
        walk(model)
    except Exception:
        pass
    return out


def compile_claim(keras: Any, model: Any) -> dict[str, Any]:
    """How the model was compiled, as Keras serialises it: plain JSON the trusted side
    deserialises with Keras's own (code-free) deserialisers, or refuses."""
    loss, optimizer = getattr(model, "loss", None), getattr(model, "optimizer", None)
    claim: dict[str, Any] = {"compiled": bool(getattr(model, "compiled", False))}
    for key, module, value in (("loss", "losses", loss), ("optimizer", "optimizers", optimizer)):
        try:
            serialized = value if isinstance(value, str) or value is None else \
                getattr(keras, module).serialize(value)
            json.dumps(serialized)
            claim[key] = serialized
        except Exception:
            claim[key] = None
    try:
        claim["train_steps"] = int(optimizer.iterations.numpy()) if optimizer is not None else 0
    except Exception:
        claim["train_steps"] = 0
    return claim


def _torch_layout(torch: Any, model: Any, hint: Any) -> tuple[int, ...] | None:
    """The first 784-value layout the module accepts in inference mode."""
    candidates = [tuple(hint)] if hint else []
    candidates += [c for c in TORCH_LAYOUTS if c not in candidates]
    for layout in candidates:
        try:
            with torch.no_grad():
                model(torch.zeros((2, *layout), dtype=torch.float32))
            return tuple(int(d) for d in layout)
        except Exception:
            continue
    return None


def _torch_modules(model: Any) -> list[dict[str, str]]:
    """The module tree's leaves (class and name), for messages only: never scored."""
    out: list[dict[str, str]] = []
    try:
        for name, module in model.named_modules():
            if len(out) >= 200:
                break
            if name and not list(module.children()):
                out.append({"class": type(module).__name__[:100], "name": str(name)[:100]})
    except Exception:
        pass
    return out


def _export_onnx(torch: Any, model: Any, obj: dict[str, Any], path: Path) -> dict[str, Any]:
    """The module as ONNX, traced in inference mode (model.eval()); and again in training mode,
    `<name>.training.onnx`, where dropout shows (for the layers check and the dropout probe).
    The module's mode and state (batch norm's moving statistics, which a training-mode trace
    moves) are restored afterwards."""
    entry: dict[str, Any] = {"status": "found", "type": _type_name(model),
                             "framework": "pytorch", "class_name": type(model).__name__[:200],
                             "modules": _torch_modules(model)}
    was_training = bool(getattr(model, "training", False))
    try:
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    except Exception:
        state = None
    # torch's own train(), not the module's: a notebook may have patched its eval() or train().
    set_mode = torch.nn.Module.train
    try:
        set_mode(model, False)
        layout = _torch_layout(torch, model, obj.get("input_shape"))
        if layout is None:
            return {**entry, "status": "error", "message": "the model accepts none of the image "
                    "layouts " + ", ".join(str((None, *s)) for s in TORCH_LAYOUTS)}
        try:
            _trace_onnx(torch, model, layout, path, torch.onnx.TrainingMode.PRESERVE)
        except Exception as exc:
            return {**entry, "status": "error", "message": "the model could not be exported for "
                    f"grading (ONNX): {type(exc).__name__}: {exc}"[:500]}
        try:
            set_mode(model, True)
            _trace_onnx(torch, model, layout, path.with_name(f"{obj['name']}.training.onnx"),
                        torch.onnx.TrainingMode.TRAINING)
        except Exception:  # without it, no dropout is counted: the trusted side says so
            pass
    finally:
        try:
            if state is not None:
                model.load_state_dict(state)
            set_mode(model, was_training)
        except Exception:
            pass
    return {**entry, "export": path.name, "layout": list(layout)}


def _trace_onnx(torch: Any, model: Any, layout: tuple[int, ...], path: Path, mode: Any) -> None:
    """dynamo=False: the TorchScript-tracing exporter, which needs no onnxscript (torch 2.13
    warns that it will go). PRESERVE, not EVAL, for the module in eval mode: EVAL folds batch
    norm into the convolution before it, and the batch-norm check must see it. Constant folding
    (of shape arithmetic) only in inference mode, as the exporter advises."""
    import warnings

    sample = torch.zeros((2, *layout), dtype=torch.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (sample,), str(path), input_names=["input"],
                          output_names=["output"], opset_version=ONNX_OPSET,
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                          training=mode, dynamo=False,
                          do_constant_folding=mode == torch.onnx.TrainingMode.PRESERVE)
