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
import select
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..data.model_inputs import SCALINGS, fed_scaling, find_layout, layouts_text
from ..harvest import untrusted_file
from ..harvest.artifacts import MAX_EXPORT_BYTES
from ..scoring import TimedStatus
from . import head_start

# Rows per batch as the measuring process predicts, whatever the model: the same batches, and so
# the same numbers, at every grading.
BATCH_ROWS = 256


class _Output:
    """progress.json in the worker's folder; each request's manifest and arrays in r<n>/."""

    def __init__(self, folder: Path) -> None:
        self.root = folder
        self.folder = folder
        self.manifest: dict[str, Any] = {"objects": {}}

    def _write(self, folder: Path, name: str, data: dict[str, Any]) -> None:
        tmp = folder / f"{name}.part"
        tmp.write_text(json.dumps(data, default=str))
        os.replace(tmp, folder / name)

    def progress(self, **state: Any) -> None:
        self._write(self.root, "progress.json", state)

    def start_request(self, number: int) -> None:
        self.folder = self.root / f"r{number}"
        self.folder.mkdir(exist_ok=True)
        self.manifest = {"objects": {}}

    def entry(self, name: str, entry: dict[str, Any]) -> None:
        self.manifest["objects"][name] = entry
        self._write(self.folder, "manifest.json", self.manifest)


def main(out_dir: str, memory_mb: str) -> int:
    """Requests arrive one JSON line at a time on stdin; each is answered in r<n>/ and marked
    done in progress.json. A line {"watch": …} is not a request: it says where the kernel
    exports designs as their training starts, to train them while idle (head_start.py). The
    process ends at the end of its input."""
    out = _Output(Path(out_dir))
    out.progress(ready=False)
    # Below the student's kernel: this process trains designs while the notebook runs, on the
    # cores the kernel leaves idle, and a batch's kernels keep their pace. Its training is
    # capped in CPU seconds, and it is alone once the notebook is done: no grade moves.
    os.nice(NICENESS)
    limit = int(memory_mb) * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    _skip_optional_imports()
    import keras  # noqa: F401 - the grader's own set-up: a failure here is not the student's

    out.progress(ready=True, done=0)  # imported while the notebook ran; now wait for requests
    loaded: dict[str, Any] = {}
    designs = head_start.Designs()
    watch: head_start.Watch | None = None
    number = 0

    def train_early(name: str, path: Path, w: head_start.Watch) -> None:
        # A crash here is the head start's: the grader restarts the process without it.
        out.progress(ready=True, done=number, object=name, early=True)
        _train_early(name, path, w, designs, out.root)

    for line in _lines(lambda: watch is not None and watch.step(train_early)):
        request = json.loads(line)
        if "watch" in request:
            watch = head_start.Watch(request["watch"])
            continue
        number += 1
        watch = None  # a request comes once the notebook is done: nothing more to start early
        out.start_request(number)
        _serve(request, out, loaded, number, designs)
        out.progress(ready=True, done=number)
    return 0


def _lines(idle: Any) -> Any:
    """Standard input's lines; while none is waiting, `idle()` works (True) or was idle."""
    pending = b""
    while True:
        while b"\n" not in pending:
            ready, _, _ = select.select([0], [], [], 0.0 if idle() else 0.2)
            if not ready:
                continue
            chunk = os.read(0, 1 << 16)
            if not chunk:
                return
            pending += chunk
        line, pending = pending.split(b"\n", 1)
        if line.strip():
            yield line


def _train_early(name: str, path: Path, watch: head_start.Watch, designs: head_start.Designs,
                 root: Path) -> None:
    """A design the kernel exported as its fit() started, trained now, remembered by its key.
    Nothing here reaches a grade unless the final export has the same key."""
    from . import introspect

    folder, own = root / "early", root / "early" / path.name
    try:
        folder.mkdir(exist_ok=True)
        # The kernel still runs and may swap the file for a link or a pipe: Keras opens a copy
        # made through a descriptor checked as a regular file.
        if not untrusted_file.copy(path, own, MAX_EXPORT_BYTES):
            return
        model, _ = load(own)
        layout = find_layout(model, watch.objects.get(name))
        if layout is None:
            return
        described = introspect.describe_model(model, np.zeros((2, *layout), dtype="float32"))
        design, scaling = _design(model, described), fed_scaling(described["layers"])
        key = head_start.design_key(design, layout, scaling)
        if designs.knows(key):
            return
        images = np.load(watch.images, allow_pickle=False)
        designs.remember(key, _timed(design, layout, images, watch.training,
                                     folder / f"{path.stem}.timed.npz", scaling), folder)
    except Exception:  # noqa: BLE001 - a head start lost; the final measurement trains it
        return
    finally:
        own.unlink(missing_ok=True)


NICENESS = 10

# Packages Keras and TensorFlow import at start-up only if installed, for features this process
# never uses (the scikit-learn wrappers, DataFrame inputs, plotting, notebook helpers; SciPy
# comes with scikit-learn and serves sparse inputs). The notebooks' environment has them all;
# here they cost 1.5 of the 4.4 CPU seconds of `import keras` (timed with and without). This
# process runs no student code, so none of it can miss them.
OPTIONAL_IMPORTS = ("sklearn", "scipy", "pandas", "matplotlib", "IPython")


def _skip_optional_imports() -> None:
    """A None in sys.modules makes `import name` raise ImportError, which is how Keras and
    TensorFlow learn that an optional package is absent."""
    for name in OPTIONAL_IMPORTS:
        sys.modules.setdefault(name, None)


def _serve(request: dict[str, Any], out: _Output, loaded: dict[str, Any], number: int,
           designs: head_start.Designs) -> None:
    if not request.get("objects") and not request.get("baselines"):
        return
    images = np.load(request["images"], allow_pickle=False)
    for obj in request["objects"]:
        out.progress(ready=True, done=number - 1, object=obj["name"])
        try:
            entry = _retrained(obj, images, out.folder) if obj.get("retrained") else \
                _measure(obj, request, images, loaded, out.folder, designs)
        except Exception as exc:  # one model's failure is reported on it; the others go on
            entry = {"status": "error", "message": f"{type(exc).__name__}: {exc}"[:500]}
        out.entry(obj["name"], entry)
    for baseline in request.get("baselines") or []:
        # The reference design, trained exactly as the students' designs are, on this machine:
        # the timed-training bar follows the machine, not the one calibration ran on.
        out.progress(ready=True, done=number - 1, baseline=baseline["name"])
        path = out.folder / f"baseline-{baseline['name']}.npz"
        out.entry(f"baseline:{baseline['name']}", _timed(
            baseline["design"], tuple(baseline["layout"]), images, request["training"], path))


def load(path: Path) -> tuple[Any, str | None]:
    """The model in a Keras archive, without running any code it carries; compile settings too
    where Keras can restore them without code (a custom loss function cannot be). An archive
    that would inflate beyond the grader's caps is refused unread (grader/measure/archive.py)."""
    import keras

    from . import archive

    archive.check(path)
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
             loaded: dict[str, Any], folder: Path, designs: head_start.Designs
             ) -> dict[str, Any]:
    from . import introspect

    if obj["export"].endswith(".savedmodel"):
        return _measure_savedmodel(obj, request, images, folder)
    if obj["export"].endswith(".onnx"):
        return _measure_onnx(obj, request, images, folder)
    model, compile_note = load(Path(obj["export"]))
    loaded[obj["name"]] = model
    if obj.get("encoder"):
        return _on_codes(model, obj, images, loaded, folder)
    layout = find_layout(model, obj.get("input_shape"))
    sample = None if layout is None else np.zeros((2, *layout), dtype="float32")
    entry: dict[str, Any] = {"status": "found", "type": _type_name(model),
                             "input_layout": list(layout) if layout else None,
                             "model": introspect.describe_model(model, sample)}
    entry["design"] = _design(model, entry["model"])
    entry["fingerprint"] = _fingerprint(lambda: [w.numpy() for w in model.weights])
    if compile_note:
        entry["model"]["compile"]["note"] = compile_note
    if layout is None:
        entry["predict_error"] = "the model accepts none of the image layouts " + layouts_text()
        return entry
    if obj.get("timed") and request.get("training"):  # declines models over its own cap
        scaling = fed_scaling(entry["model"]["layers"])
        path = folder / f"{obj['name']}.timed.npz"
        entry["timed"] = designs.recall(head_start.design_key(entry["design"], layout, scaling),
                                        path) or \
            _timed(entry["design"], layout, images, request["training"], path, scaling)
    refusal = _over_cap(entry["model"]["total_params"], request)
    if refusal:
        entry["predict_error"] = refusal
        return entry

    entry.update(_predict_keras(model, images, layout,
                                folder / f"{obj['name']}.predictions.npz"))
    if obj.get("probe_dropout"):
        entry["behaviour"] = _probe_dropout(lambda x: model(x, training=True),
                                            lambda x: model(x, training=False), images[:64],
                                            layout)
    return entry


def _fingerprint(weights: Any) -> dict[str, Any] | None:
    """The trained weights' fingerprint for the class's similarity report (grader/similarity/):
    measured here, never taken from the kernel. Its failure costs nothing but the fingerprint."""
    from . import fingerprint

    try:
        return fingerprint.of_weights(weights())
    except Exception:  # noqa: BLE001 - evidence for a TA, never part of a grade
        return None


def _over_cap(params: int, request: dict[str, Any]) -> str | None:
    cap = int(request["max_params"])
    if params > cap:
        return f"the model has {params:,} parameters; the grader measures models up to {cap:,}"
    return None


def _measure_savedmodel(obj: dict[str, Any], request: dict[str, Any], images: np.ndarray,
                        folder: Path) -> dict[str, Any]:
    """A subclassed model, from its SavedModel: its graph is described and run, never its code."""
    from . import savedmodel

    claim = obj.get("claim") or {}
    try:
        view = savedmodel.open_export(Path(obj["export"]), claim)
    except savedmodel.ExportError as exc:
        return {"status": "error", "message": str(exc)}
    entry: dict[str, Any] = {"status": "found", "type": str(claim.get("class_name"))[:200],
                             "input_layout": list(view.layout), "model": view.description}
    entry["fingerprint"] = _fingerprint(lambda: [value for _, value in view.trainable])
    if not _predicted(entry, view, request, images, folder / f"{obj['name']}.predictions.npz",
                      "operations a classifier does not need and the grader does not run"):
        return entry
    if obj.get("probe_dropout") and view.serve_training is not None:
        entry["behaviour"] = _probe_dropout(view.serve_training, view.serve, images[:64],
                                            view.layout)
    return entry


def _measure_onnx(obj: dict[str, Any], request: dict[str, Any], images: np.ndarray,
                  folder: Path) -> dict[str, Any]:
    """A PyTorch module, from its ONNX export: described from the graph, run by onnxruntime
    (grader/measure/onnx_model.py), never by torch; torch is imported only to retrain the
    design from torch.nn classes (grader/measure/torch_design.py), nothing of the student's."""
    from ..harvest.artifacts import MAX_EXPORT_BYTES
    from . import onnx_model

    claim = obj.get("claim") or {}
    export = Path(obj["export"])
    try:
        view = onnx_model.open_export(export, claim, bool(obj.get("cross_entropy_loss")),
                                      onnx_model.training_sibling(export, MAX_EXPORT_BYTES))
    except onnx_model.ExportError as exc:
        return {"status": "error", "message": str(exc)}
    entry: dict[str, Any] = {"status": "found", "type": str(claim.get("class_name"))[:200],
                             "input_layout": list(view.layout), "model": view.description}
    # read from the notebook (grader/cleanroom/torch_source.py)
    source = obj.get("torch_training") or {}
    _describe_training(entry["model"]["compile"], source)
    if obj.get("timed") and request.get("training"):
        entry["timed"] = _guarded_training(lambda: _train_torch_design(
            view, source, images, request["training"], folder / f"{obj['name']}.timed.npz"))
    if _predicted(entry, view, request, images, folder / f"{obj['name']}.predictions.npz",
                  "operations the grader does not run for PyTorch answers yet") \
            and obj.get("probe_dropout") and view.serve_training is not None:
        entry["behaviour"] = _probe_dropout(view.serve_training, view.serve, images[:64],
                                            view.layout)
    return entry


def _describe_training(info: dict[str, Any], source: dict[str, Any]) -> None:
    """A PyTorch answer's loss and optimizer, as its source names them, in compile's keys."""
    loss, optimizer = source.get("loss") or {}, source.get("optimizer") or {}
    info.update(source=source, loss=loss.get("name"), optimizer=optimizer.get("name"),
                learning_rate=(optimizer.get("settings") or {}).get("lr"))


def _train_torch_design(view: Any, source: dict[str, Any], images: np.ndarray,
                        budget: dict[str, Any], path: Path) -> dict[str, Any]:
    """torch is imported here only, for a PyTorch answer (grader/measure/torch_design.py)."""
    from . import torch_design

    declined = _declined(view.params, budget)
    return declined or torch_design.train(view, source, images, budget, _training_data(budget),
                                          path)


def _predicted(entry: dict[str, Any], view: Any, request: dict[str, Any], images: np.ndarray,
               path: Path, refused_words: str) -> bool:
    """The grader's images through an exported graph (a SavedModel's or an ONNX file's view),
    into `entry`; False, with the reason in entry["predict_error"], when it is not run: over the
    parameter cap, or holding operations the grader refuses."""
    refusal = _over_cap(view.params, request)
    if view.refused:
        refusal = f"the model's graph holds {refused_words}: {', '.join(view.refused[:8])}"
    if refusal:
        entry["predict_error"] = refusal
        return False
    entry.update(_predict(view.serve, images, view.layout, path))
    return True


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


def _retrained(obj: dict[str, Any], images: np.ndarray, folder: Path) -> dict[str, Any]:
    """The grader's own training of a subclassed design, done in the Keras clean room
    (grader/cleanroom/keras_run.py): predicted here from its SavedModel, once its graph is shown
    to be the student's architecture."""
    from . import savedmodel

    report = obj.get("report") or {}
    timed: dict[str, Any] = {k: report[k] for k in ("epochs_run", "epochs", "seconds_per_epoch",
                                                   "cpu_seconds", "cpu_cap", "stopped_by_time",
                                                   "loss", "train_accuracy", "seconds", "head_start")
                             if k in report}
    try:
        view = savedmodel.open_export(Path(obj["retrained"]), {})
    except savedmodel.ExportError as exc:
        return {"status": "found", "timed": {"status": TimedStatus.GRADER_FAILED,
                                             "message": str(exc)}}
    if view.refused or _layer_kinds(view.description["layers"]) != \
            _layer_kinds(obj.get("expected_layers") or []):
        return {"status": "found", "timed": {"status": TimedStatus.ERROR, "message": "the model the "
                "clean room trained is not the architecture the notebook exported"}}
    if _untrained(view.trainable, obj.get("seed")):
        return {"status": "found", "timed": {**timed, "status": TimedStatus.CANNOT_LEARN, "message": "the "
                "clean room's training left every weight where the grader started it"}}
    scaling = fed_scaling(obj.get("expected_layers") or [])  # as the room's training was fed
    x = SCALINGS[scaling](images).reshape((len(images), *view.layout))
    pred = in_batches(view.serve, x)
    path = folder / f"{obj['name']}.timed.npz"
    np.savez(path, predictions=pred.reshape((len(images), -1)).astype("float32"))
    return {"status": "found", "timed": {**timed, "status": TimedStatus.TRAINED, "where": "clean room",
                                          "seed": obj.get("seed"), "predictions_file": path.name,
                                          "scaling": scaling}}


def _untrained(trainable: list[tuple[str, np.ndarray]], seed: Any) -> bool:
    """Every trainable variable still holds the grader's starting value for its shape, which
    this process regenerates itself (grader/training/initial.py): the room trained nothing."""
    from ..training import initial

    return isinstance(seed, int) and bool(trainable) and all(
        initial.is_start(value, seed, name) for name, value in trainable)


def _layer_kinds(layers: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(l.get("class"), l.get("output_shape"), l.get("params")) for l in layers]


def _predict(predict: Any, images: np.ndarray, layout: tuple[int, ...], path: Path,
             rows: int = BATCH_ROWS) -> dict[str, Any]:
    """The images under each scaling, `rows` at a time, through `predict`."""
    arrays, errors = {}, {}
    for scaling, transform in SCALINGS.items():
        x = transform(images).reshape((len(images), *layout))
        try:
            pred = np.concatenate([np.asarray(predict(x[i:i + rows]))
                                   for i in range(0, len(x), max(rows, 1))])
            arrays[scaling] = pred.reshape((len(images), -1)).astype("float32")
        except Exception as exc:
            errors[scaling] = f"{type(exc).__name__}: {exc}"[:300]
    if arrays:
        np.savez(path, **arrays)
    return {"predictions": path.name if arrays else None, "predict_errors": errors}


def in_batches(predict: Callable[[np.ndarray], Any], x: np.ndarray) -> np.ndarray:
    """`predict` on BATCH_ROWS rows at a time, concatenated. With a Keras model's
    `predict_on_batch` this is `model.predict(x, batch_size=BATCH_ROWS)` to the bit: the same
    compiled step on the same batches, without the tf.data pipeline predict() builds first
    (~0.1 s a call, about half of predicting a small model's 6,000 rows)."""
    return np.concatenate([np.asarray(predict(x[i:i + BATCH_ROWS]))
                           for i in range(0, len(x), BATCH_ROWS)])


def _predict_keras(model: Any, images: np.ndarray, layout: tuple[int, ...], path: Path
                   ) -> dict[str, Any]:
    """`_predict` in one pass over all the scalings' images, batch by batch. Only the batches
    where one scaling's images end and the next one's begin are cut differently from one pass
    per scaling, which moves a prediction by float rounding at most. A failure is looked for
    scaling by scaling, as `_predict` reports it."""
    def predict(x: np.ndarray) -> np.ndarray:
        return in_batches(model.predict_on_batch, x)

    rows = len(images)
    try:
        x = np.concatenate([transform(images).reshape((rows, *layout))
                            for transform in SCALINGS.values()])
        pred = predict(x).reshape((len(x), -1)).astype("float32")
    except Exception:  # noqa: BLE001 - which scaling failed, and why, comes from _predict
        return _predict(predict, images, layout, path, rows=rows)
    np.savez(path, **{scaling: pred[i * rows:(i + 1) * rows]
                      for i, scaling in enumerate(SCALINGS)})
    return {"predictions": path.name, "predict_errors": {}}


def _probe_dropout(training: Any, inference: Any, images: np.ndarray, layout: tuple[int, ...]
                   ) -> dict[str, Any]:
    """Dropout shows in behaviour: training passes differ, inference passes agree. Run after
    predicting: training passes may update batch-normalisation statistics."""
    x = SCALINGS["unit"](images).reshape((len(images), *layout))
    try:
        train = [np.asarray(training(x)) for _ in range(2)]
        infer = [np.asarray(inference(x)) for _ in range(2)]
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"training_passes_differ": not np.allclose(train[0], train[1]),
            "inference_passes_agree": bool(np.allclose(infer[0], infer[1]))}


def _on_codes(model: Any, obj: dict[str, Any], images: np.ndarray, loaded: dict[str, Any],
              folder: Path) -> dict[str, Any]:
    """A classifier trained on an encoder's codes: the grader's images are encoded by the
    student's own autoassociator up to its hidden layer (as the homework computes them, wherever
    that layer is nested), then classified."""
    from . import introspect

    encoder = loaded.get(obj["encoder"])
    if encoder is None or not getattr(encoder, "layers", None):
        return {"status": "error", "message": f"`{obj['encoder']}` (whose hidden layer encodes "
                "the inputs) is missing or could not be loaded"}
    hidden = introspect.bottleneck(encoder)
    width = int(hidden.units) if hidden is not None else None
    sample = np.zeros((2, width), dtype="float32") if width else None
    entry: dict[str, Any] = {"status": "found", "type": _type_name(model),
                             "input_layout": [width] if width else None, "code_size": width,
                             "model": introspect.describe_model(model, sample)}
    arrays, errors = {}, {}
    layout = tuple((introspect.input_shape(encoder) or [None, -1])[1:])
    for scaling, transform in SCALINGS.items():
        if hidden is None:
            break
        try:
            x = transform(images).reshape((len(images), *layout)).astype("float32")
            codes = introspect.layer_outputs(encoder, hidden, x).reshape((len(images), -1))
            pred = in_batches(model.predict_on_batch, codes.astype("float32"))
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
           budget: dict[str, Any], path: Path, scaling: str = "unit") -> dict[str, Any]:
    """The grader's own training of a design, from the grader's starting weights, with a fixed
    seed. Whatever goes wrong here costs the timed-training check only: the model's other
    measurements stand."""
    return _guarded_training(lambda: _train_design(design, layout, images, budget, path,
                                                   scaling))


def _guarded_training(train: Any) -> dict[str, Any]:
    """`train()`'s timed entry; what goes wrong in it, as the status it is."""
    from ..training.design_data import CarriesData
    from ..training.initial import UnknownVariable
    from ..training.learnable import CannotLearn
    from ..training.timed_fit import TooSlow

    try:
        return train()
    except CannotLearn as exc:
        return {"status": TimedStatus.CANNOT_LEARN, "message": str(exc)}
    except (CarriesData, UnknownVariable, TooSlow) as exc:
        return {"status": TimedStatus.DECLINED, "message": str(exc)}
    except Exception as exc:  # noqa: BLE001 - reported on this check, never the whole model
        return {"status": TimedStatus.ERROR, "message": f"the grader's training of this design "
                f"failed: {type(exc).__name__}: {exc}"[:500]}


def _train_design(design: dict[str, Any], layout: tuple[int, ...], images: np.ndarray,
                  budget: dict[str, Any], path: Path, scaling: str) -> dict[str, Any]:
    import keras

    from ..training.design_data import strip
    from ..training.timed_fit import keras_seed, timed_fit

    declined = _declined(design["total_params"], budget)
    if declined:
        return declined
    loss, optimizer = design.get("loss"), design.get("optimizer")
    if not loss or not optimizer:
        return {"status": TimedStatus.ERROR, "message": "the model was never compiled, so the "
                "grader does not know which loss and optimizer to train it with"}
    config, notes = strip(design["config"])
    keras_seed(budget["seed"])  # before the weights are created
    fresh = keras.models.model_from_json(json.dumps(config))
    x_train, y_train = _training_data(budget)
    result = timed_fit(
        fresh, x_train=x_train, y_train=y_train, images=images, layout=layout, loss=loss,
        optimizer=optimizer, epochs=budget["epochs"], batch_size=budget["batch_size"],
        max_cpu_seconds=budget["max_cpu_seconds"], n_classes=budget["n_classes"],
        seed=budget["seed"], pixel_divisor=1.0 if scaling == "raw" else 255.0)
    if not result["weights_changed"]:
        return {"status": TimedStatus.CANNOT_LEARN, "message": "the grader's training left every weight "
                "where it started", "loss": result["loss"]}
    np.savez(path, predictions=result.pop("predictions"))
    result.update(status=TimedStatus.TRAINED, where="grader", seed=budget["seed"],
                  predictions_file=path.name, notes=notes, scaling=scaling)
    return result


def _declined(params: int, budget: dict[str, Any]) -> dict[str, Any] | None:
    if params > budget["max_params"]:
        return {"status": TimedStatus.DECLINED, "message": f"the model has {params:,} parameters; the "
                f"grader does not retrain models over {budget['max_params']:,}"}
    return None


def _training_data(budget: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The grader's training subset, as every design the grader retrains gets it."""
    with np.load(budget["train_npz"], allow_pickle=False) as data:
        return data["x_train"], data["y_train"]


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
