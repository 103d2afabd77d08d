"""The grader's code inside the student's kernel: harvest the requested objects into files.

Called once, after the student's cells, as
`grader.harvest.in_kernel.harvest(get_ipython().user_ns, REQUEST_JSON)`.
Writes `manifest.json` plus one `<name>.predictions.npz` per Keras model into request["out"].
Every failure becomes a status in the manifest: this code must never raise into the notebook.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import numpy as np

# How the grader may present its images to a model: the homework asks for [0, 1], but a
# student who forgot to scale trained on 0..255 and deserves to be measured on what they built.
SCALINGS = {
    "unit": lambda x: x.astype("float32") / 255.0,
    "raw": lambda x: x.astype("float32"),
    "standardized": lambda x: (x.astype("float32") - x.mean()) / (x.std() + 1e-7),
}
IMAGE_LAYOUTS = ((28, 28), (28, 28, 1), (784,))


def harvest(namespace: dict[str, Any], request_json: str) -> None:
    request = json.loads(request_json)
    out = Path(request["out"])
    out.mkdir(parents=True, exist_ok=True)
    images = None
    if request.get("images"):
        images = np.load(request["images"], allow_pickle=False)
    manifest: dict[str, Any] = {"objects": {}}

    def checkpoint(name: str, entry: dict[str, Any]) -> None:
        # Written before the heavy steps: a kernel that dies predicting still leaves its architecture.
        manifest["objects"][name] = entry
        tmp = out / "manifest.json.part"
        tmp.write_text(json.dumps(manifest, default=str))
        os.replace(tmp, out / "manifest.json")

    for obj in request["objects"]:
        obj = {**obj, "training": request.get("training"), "checkpoint": checkpoint}
        try:
            entry = _harvest_one(namespace, obj, images, out)
        except BaseException as exc:  # noqa: BLE001 - includes SystemExit from student code
            entry = {"status": "error",
                     "message": f"{type(exc).__name__}: {exc}"[:500],
                     "traceback": traceback.format_exc()[-2000:]}
        checkpoint(obj["name"], entry)


def _type_name(value: Any) -> str:
    cls = type(value)
    return f"{cls.__module__}.{cls.__qualname__}"


def _harvest_one(namespace, obj, images, out: Path) -> dict[str, Any]:
    name = obj["name"]
    if name not in namespace:
        return {"status": "missing"}
    value = namespace[name]
    if obj["kind"] == "keras":
        return _harvest_keras(value, obj, images, out, namespace)
    # Other kinds live in grader/harvest/kinds/<kind>.py, each with
    # harvest(value, obj, namespace, out) -> entry; arrays go to "<name>.arrays.npz".
    import importlib

    module = importlib.import_module(f"grader.harvest.kinds.{obj['kind']}")
    return module.harvest(value, obj, namespace, out)


def _is_keras_model(value: Any) -> bool:
    keras = sys.modules.get("keras")
    return keras is not None and isinstance(value, keras.Model)


def _harvest_keras(model, obj, images, out: Path, namespace=None) -> dict[str, Any]:
    if not _is_keras_model(model):
        return {"status": "wrong_type", "type": _type_name(model)}
    from . import keras_introspect

    if obj.get("encoder"):
        return _harvest_on_codes(model, obj, images, out, namespace or {})
    layout = _find_layout(model, obj.get("input_shape"))
    sample = None if layout is None else np.zeros((2, *layout), dtype="float32")
    entry: dict[str, Any] = {"status": "found", "type": _type_name(model),
                             "input_layout": list(layout) if layout else None}
    entry["model"] = keras_introspect.describe_model(model, sample)
    if entry["model"]["kind"] != "subclassed":
        try:  # lets the grader rebuild the architecture outside this kernel for timed training
            (out / f"{obj['name']}.config.json").write_text(model.to_json())
            entry["config_file"] = f"{obj['name']}.config.json"
        except Exception as exc:
            entry["config_error"] = f"{type(exc).__name__}: {exc}"[:300]
    if layout is None:
        entry["predict_error"] = "the model accepts none of the image layouts " + \
            ", ".join(str((None, *s)) for s in IMAGE_LAYOUTS)
    elif images is not None:
        obj["checkpoint"](obj["name"], {**entry, "predict_error": "the kernel died while the "
                                        "model predicted the grader's images (out of memory?)"})
        entry.update(_predict(model, images, layout, out / f"{obj['name']}.predictions.npz"))
        # After predicting: training=True passes may update BatchNormalization statistics.
        if obj.get("probe_dropout"):
            entry["behaviour"] = _probe_dropout(model, images[:64], layout)
        if entry["model"]["kind"] == "subclassed" and obj.get("training") and obj.get("timed"):
            entry["timed"] = _train_in_kernel(model, entry["model"], images, layout, obj, out)
    return entry


def _probe_dropout(model, images, layout) -> dict[str, Any]:
    """Dropout shows in behaviour: training passes differ, inference passes agree."""
    x = SCALINGS["unit"](images).reshape((len(images), *layout))
    try:
        train = [np.asarray(model(x, training=True)) for _ in range(2)]
        infer = [np.asarray(model(x, training=False)) for _ in range(2)]
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"training_passes_differ": not np.allclose(train[0], train[1]),
            "inference_passes_agree": bool(np.allclose(infer[0], infer[1]))}


def _train_in_kernel(model, description, images, layout, obj, out: Path) -> dict[str, Any]:
    """Timed training of a fresh copy of a subclassed model, which only the kernel can rebuild."""
    budget = obj["training"]
    if description["total_params"] > budget["max_params"]:
        return {"status": "declined", "message": f"the model has {description['total_params']:,} "
                f"parameters; the grader does not retrain models over {budget['max_params']:,}"}
    compile_info = description["compile"]
    if not compile_info.get("loss") or not compile_info.get("optimizer_config"):
        return {"status": "error", "message": "the model was never compiled, so the grader does "
                "not know which loss and optimizer to train it with"}
    import keras

    from ..training.timed_fit import timed_fit

    keras.utils.set_random_seed(budget["seed"])
    try:
        fresh = type(model).from_config(model.get_config())
    except Exception:
        try:
            fresh = type(model)()
        except Exception as exc:
            return {"status": "error", "message": f"could not create a fresh {type(model).__name__} "
                    f"(from_config and a no-argument constructor failed: {exc})"[:400]}
    loss = compile_info.get("loss_config") or compile_info["loss"]
    with np.load(budget["train_npz"], allow_pickle=False) as data:
        x_train, y_train = data["x_train"], data["y_train"]
    result = timed_fit(fresh, x_train=x_train, y_train=y_train, images=images, layout=layout,
                       loss=keras.losses.deserialize(loss) if isinstance(loss, dict) else loss,
                       optimizer=keras.optimizers.deserialize(compile_info["optimizer_config"]),
                       epochs=budget["epochs"], batch_size=budget["batch_size"],
                       max_seconds=budget["max_seconds"], n_classes=10, seed=budget["seed"])
    np.savez(out / f"{obj['name']}.timed.npz", predictions=result.pop("predictions"))
    result.update(status="trained", where="kernel", predictions_file=f"{obj['name']}.timed.npz")
    return result


def _harvest_on_codes(model, obj, images, out: Path, namespace) -> dict[str, Any]:
    """A classifier trained on an encoder's codes: the grader's images are encoded with the
    student's own encoder (its first layer, as the homework computes them), then classified."""
    from . import keras_introspect

    encoder = namespace.get(obj["encoder"])
    if not _is_keras_model(encoder):
        return {"status": "error", "message": f"`{obj['encoder']}` (whose first layer encodes the "
                "inputs) is missing or not a Keras model"}
    first = encoder.layers[0]
    codes = {scaling: np.asarray(first(transform(images).reshape((len(images), -1))))
             for scaling, transform in SCALINGS.items()} if images is not None else {}
    width = int(first.weights[0].shape[-1]) if first.weights else None
    sample = np.zeros((2, width), dtype="float32") if width else None
    entry: dict[str, Any] = {"status": "found", "type": _type_name(model),
                             "input_layout": [width] if width else None, "code_size": width,
                             "model": keras_introspect.describe_model(model, sample)}
    arrays, errors = {}, {}
    for scaling, x in codes.items():
        try:
            pred = np.asarray(model.predict(x.astype("float32"), batch_size=256, verbose=0))
            arrays[scaling] = pred.reshape((len(x), -1)).astype("float32")
        except Exception as exc:
            errors[scaling] = f"{type(exc).__name__}: {exc}"[:300]
    path = out / f"{obj['name']}.predictions.npz"
    if arrays:
        np.savez(path, **arrays)
    entry.update(predictions=path.name if arrays else None, predict_errors=errors)
    if errors and not arrays:
        entry["predict_error"] = f"the classifier does not accept codes of size {width}: " + \
            next(iter(errors.values()))
    return entry


def _find_layout(model, hint) -> tuple[int, ...] | None:
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


def _predict(model, images, layout, path: Path) -> dict[str, Any]:
    arrays = {}
    errors = {}
    for scaling, transform in SCALINGS.items():
        x = transform(images).reshape((len(images), *layout))
        try:
            pred = np.asarray(model.predict(x, batch_size=256, verbose=0))
            arrays[scaling] = pred.reshape((len(images), -1)).astype("float32")
        except Exception as exc:
            errors[scaling] = f"{type(exc).__name__}: {exc}"[:300]
    if arrays:
        np.savez(path, **arrays)
    return {"predictions": path.name if arrays else None, "predict_errors": errors}
