"""The grader's code inside the student's kernel: harvest the requested objects into files.

Called once, after the student's cells, as
`grader.kernel.harvest.harvest(get_ipython().user_ns, REQUEST_JSON)`.
Writes `manifest.json` into request["out"]. A Sequential or functional Keras model is only
exported (`<name>.keras`, Keras's own archive): the trusted side (grader/measure) loads,
describes and measures it, since anything this code reports could be forged by the student's
code running in the same process. Subclassed models, which only their own class can rebuild,
are still described and measured here (see the README's sandbox section).
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

from ..model_inputs import SCALINGS, find_layout, layouts_text


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
    # Other kinds live in grader/kernel/kinds/<kind>.py, each with
    # harvest(value, obj, namespace, out) -> entry; arrays go to "<name>.arrays.npz".
    import importlib

    module = importlib.import_module(f"grader.kernel.kinds.{obj['kind']}")
    return module.harvest(value, obj, namespace, out)


def _is_keras_model(value: Any) -> bool:
    keras = sys.modules.get("keras")
    return keras is not None and isinstance(value, keras.Model)


def _harvest_keras(model, obj, images, out: Path, namespace=None) -> dict[str, Any]:
    if not _is_keras_model(model):
        return {"status": "wrong_type", "type": _type_name(model)}
    from ..measure import introspect as keras_introspect

    if not _is_subclassed(model):
        return _export(model, out / f"{obj['name']}.keras")
    if obj.get("encoder"):  # the trusted side encodes the images; it cannot run this class
        return {"status": "error", "type": _type_name(model),
                "message": "a classifier of codes must be a Sequential or functional model"}
    layout = find_layout(model, obj.get("input_shape"))
    sample = None if layout is None else np.zeros((2, *layout), dtype="float32")
    entry: dict[str, Any] = {"status": "found", "type": _type_name(model),
                             "input_layout": list(layout) if layout else None}
    entry["model"] = keras_introspect.describe_model(model, sample)
    if layout is None:
        entry["predict_error"] = "the model accepts none of the image layouts " + layouts_text()
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


def _is_subclassed(model) -> bool:
    import keras

    return not (isinstance(model, keras.Sequential) or getattr(model, "_is_graph_network", False)
                or type(model) is keras.Model or type(model).__name__ == "Functional")


def _export(model, path: Path) -> dict[str, Any]:
    """Keras's own archive (config JSON + weights + optimizer state): no pickle, no code."""
    entry: dict[str, Any] = {"status": "found", "type": _type_name(model), "export": path.name}
    try:
        model.save(path)
    except Exception as exc:
        return {"status": "error", "type": _type_name(model),
                "message": f"the model could not be saved for grading: {type(exc).__name__}: "
                           f"{exc}"[:500]}
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
