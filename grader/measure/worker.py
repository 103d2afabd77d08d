"""The trusted measuring process: `python -m grader.measure.worker OUT_DIR MEMORY_MB < REQUEST`.

It never runs student code. It loads the models the student's kernel exported as Keras archives
(safe mode: no lambdas, no custom classes), describes them (layers, output shapes, parameters,
activations, compile settings), applies `max_params` to what it loaded, predicts the grader's
images and trains a fresh copy of each architecture the grader retrains. Every number a Keras
check scores comes from here. The caller sandboxes it, since it reads student-made files, and it
never sees a label of the grader's images.

Output, in request["out"]: `manifest.json` in the harvest manifest format (read by
grader/harvest/artifacts.py like the kernel's, so bounded, typed and pickle-free) and one .npz
per array. `progress.json` says how far it got, so the caller can tell a crash of the grader's
own set-up (before `ready`) from a student's model that took the process down.
"""

from __future__ import annotations

import json
import os
import resource
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..model_inputs import SCALINGS, find_layout, layouts_text


class _Output:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.manifest: dict[str, Any] = {"objects": {}}

    def _write(self, name: str, data: dict[str, Any]) -> None:
        tmp = self.folder / f"{name}.part"
        tmp.write_text(json.dumps(data, default=str))
        os.replace(tmp, self.folder / name)

    def progress(self, **state: Any) -> None:
        self._write("progress.json", state)

    def entry(self, name: str, entry: dict[str, Any]) -> None:
        self.manifest["objects"][name] = entry
        self._write("manifest.json", self.manifest)


def main(out_dir: str, memory_mb: str) -> int:
    out = _Output(Path(out_dir))
    out.progress(ready=False)
    limit = int(memory_mb) * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import keras  # noqa: F401 - the grader's own set-up: a failure here is not the student's

    out.progress(ready=True)  # imported while the notebook ran; now wait for the request
    request = json.loads(sys.stdin.read() or "{}")
    if not request.get("objects") and not request.get("baselines"):
        return 0
    images = np.load(request["images"], allow_pickle=False)
    loaded: dict[str, Any] = {}
    for obj in request["objects"]:
        out.progress(ready=True, object=obj["name"])
        try:
            entry = _measure(obj, request, images, loaded, out.folder)
        except Exception as exc:  # one model's failure is reported on it; the others go on
            entry = {"status": "error", "message": f"{type(exc).__name__}: {exc}"[:500]}
        out.entry(obj["name"], entry)
    for baseline in request.get("baselines") or []:
        # The reference design, trained exactly as the students' designs are, on this machine:
        # the timed-training bar follows the machine, not the one calibration ran on.
        out.progress(ready=True, baseline=baseline["name"])
        path = out.folder / f"baseline-{baseline['name']}.npz"
        out.entry(f"baseline:{baseline['name']}", _timed(
            baseline["design"], tuple(baseline["layout"]), images, request["training"], path))
    out.progress(ready=True, done=True)
    return 0


def load(path: Path) -> tuple[Any, str | None]:
    """The model in a Keras archive, without running any code it carries; compile settings too
    where Keras can restore them without code (a custom loss function cannot be)."""
    import keras

    try:
        return keras.saving.load_model(path, safe_mode=True, compile=True), None
    except Exception as exc:
        first = exc
    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception:
        raise ValueError(_load_failure(first)) from None
    return model, f"compile settings not restored: {first}"[:300]


def _load_failure(exc: Exception) -> str:
    text = str(exc)
    if "Lambda" in text:
        return ("the model holds a Lambda layer (Python code), which the grader does not run: "
                "use Keras layers such as Rescaling, Reshape or Flatten instead")
    if "Could not locate" in text or "custom" in text.lower():
        return ("the model uses a class the grader cannot rebuild without running your code "
                f"(a custom layer or function): {text[:200]}")
    return f"the grader could not load the model you built: {text[:300]}"


def _measure(obj: dict[str, Any], request: dict[str, Any], images: np.ndarray,
             loaded: dict[str, Any], folder: Path) -> dict[str, Any]:
    from . import introspect as keras_introspect

    model, compile_note = load(Path(obj["export"]))
    loaded[obj["name"]] = model
    if obj.get("encoder"):
        return _on_codes(model, obj, images, loaded, folder)
    layout = find_layout(model, obj.get("input_shape"))
    sample = None if layout is None else np.zeros((2, *layout), dtype="float32")
    entry: dict[str, Any] = {"status": "found", "type": _type_name(model),
                             "input_layout": list(layout) if layout else None,
                             "model": keras_introspect.describe_model(model, sample)}
    entry["design"] = _design(model, entry["model"])
    if compile_note:
        entry["model"]["compile"]["note"] = compile_note
    params = entry["model"]["total_params"]
    cap = int(request["max_params"])
    if params > cap:
        entry["predict_error"] = (f"the model has {params:,} parameters; the grader measures "
                                  f"models up to {cap:,}")
        return entry
    if layout is None:
        entry["predict_error"] = "the model accepts none of the image layouts " + layouts_text()
        return entry
    entry.update(_predict(model, images, layout, folder / f"{obj['name']}.predictions.npz"))
    if obj.get("probe_dropout"):
        entry["behaviour"] = _probe_dropout(model, images[:64], layout)
    if obj.get("timed") and request.get("training"):
        entry["timed"] = _timed(entry["design"], layout, images, request["training"],
                                folder / f"{obj['name']}.timed.npz")
    return entry


def _design(model: Any, description: dict[str, Any]) -> dict[str, Any]:
    """What the grader's training rebuilds: the architecture (Keras JSON, no weights) and how
    it was compiled. Calibration files the reference's in reference/<id>/designs.json."""
    info = description.get("compile") or {}
    return {"config": json.loads(model.to_json()), "total_params": description["total_params"],
            "loss": info.get("loss_config") or info.get("loss"),
            "optimizer": info.get("optimizer_config") or info.get("optimizer")}


def _type_name(value: Any) -> str:
    cls = type(value)
    return f"{cls.__module__}.{cls.__qualname__}"


def _predict(model: Any, images: np.ndarray, layout: tuple[int, ...], path: Path
             ) -> dict[str, Any]:
    arrays, errors = {}, {}
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


def _probe_dropout(model: Any, images: np.ndarray, layout: tuple[int, ...]) -> dict[str, Any]:
    """Dropout shows in behaviour: training passes differ, inference passes agree."""
    x = SCALINGS["unit"](images).reshape((len(images), *layout))
    try:
        train = [np.asarray(model(x, training=True)) for _ in range(2)]
        infer = [np.asarray(model(x, training=False)) for _ in range(2)]
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"training_passes_differ": not np.allclose(train[0], train[1]),
            "inference_passes_agree": bool(np.allclose(infer[0], infer[1]))}


def _on_codes(model: Any, obj: dict[str, Any], images: np.ndarray, loaded: dict[str, Any],
              folder: Path) -> dict[str, Any]:
    """A classifier trained on an encoder's codes: the grader's images are encoded with the
    student's own encoder (its first layer, as the homework computes them), then classified."""
    from . import introspect as keras_introspect

    encoder = loaded.get(obj["encoder"])
    if encoder is None or not getattr(encoder, "layers", None):
        return {"status": "error", "message": f"`{obj['encoder']}` (whose first layer encodes "
                "the inputs) is missing or could not be loaded"}
    first = encoder.layers[0]
    width = int(first.weights[0].shape[-1]) if first.weights else None
    sample = np.zeros((2, width), dtype="float32") if width else None
    entry: dict[str, Any] = {"status": "found", "type": _type_name(model),
                             "input_layout": [width] if width else None, "code_size": width,
                             "model": keras_introspect.describe_model(model, sample)}
    arrays, errors = {}, {}
    for scaling, transform in SCALINGS.items():
        try:
            codes = np.asarray(first(transform(images).reshape((len(images), -1))))
            pred = np.asarray(model.predict(codes.astype("float32"), batch_size=256, verbose=0))
            arrays[scaling] = pred.reshape((len(images), -1)).astype("float32")
        except Exception as exc:
            errors[scaling] = f"{type(exc).__name__}: {exc}"[:300]
    path = folder / f"{obj['name']}.predictions.npz"
    if arrays:
        np.savez(path, **arrays)
    entry.update(predictions=path.name if arrays else None, predict_errors=errors)
    if errors and not arrays:
        entry["predict_error"] = f"the classifier does not accept codes of size {width}: " + \
            next(iter(errors.values()))
    return entry


def _timed(design: dict[str, Any], layout: tuple[int, ...], images: np.ndarray,
           budget: dict[str, Any], path: Path) -> dict[str, Any]:
    """The grader's own training of a design, from fresh weights, with a fixed seed."""
    import keras

    from ..training.timed_fit import timed_fit

    params = design["total_params"]
    if params > budget["max_params"]:
        return {"status": "declined", "message": f"the model has {params:,} parameters; the "
                f"grader does not retrain models over {budget['max_params']:,}"}
    loss, optimizer = design.get("loss"), design.get("optimizer")
    if not loss or not optimizer:
        return {"status": "error", "message": "the model was never compiled, so the grader does "
                "not know which loss and optimizer to train it with"}
    keras.utils.set_random_seed(budget["seed"])  # before the weights are created
    fresh = keras.models.model_from_json(json.dumps(design["config"]))
    with np.load(budget["train_npz"], allow_pickle=False) as data:
        x_train, y_train = data["x_train"], data["y_train"]
    result = timed_fit(
        fresh, x_train=x_train, y_train=y_train, images=images, layout=layout,
        loss=keras.losses.deserialize(loss) if isinstance(loss, dict) else loss,
        optimizer=keras.optimizers.deserialize(optimizer) if isinstance(optimizer, dict)
        else optimizer,
        epochs=budget["epochs"], batch_size=budget["batch_size"],
        max_seconds=budget["max_seconds"], n_classes=budget["n_classes"], seed=budget["seed"])
    np.savez(path, predictions=result.pop("predictions"))
    result.update(status="trained", where="grader", seed=budget["seed"],
                  predictions_file=path.name)
    return result


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
