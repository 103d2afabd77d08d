"""UNTRUSTED SIDE. Runs in the Keras clean room, in the same interpreter as the student's class.

Copied into the clean room's folder and run as a script by grader/cleanroom/keras_run.py, to
train a fresh instance of a subclassed model that only its own class can rebuild. It never
imports the grader (the grader is not mounted) and the grader never imports it; what it writes
is checked on the trusted side, which predicts the grader's images with the exported model
itself: nothing reported here is scored.

Protocol: "STARTED" on stdout before anything else; "READY" once TensorFlow is imported; then it
waits for "GO" on stdin ("GO idle": train on idle CPU only, beside a running notebook), reads
request.json (the notebook's definitions, the class, how it was compiled) and data.npz (the
training subset, already shaped and encoded by the grader), builds the model, trains it with the
grader's own loop (grader/training/, copied beside this file) from the grader's starting
weights, exports it to out/model.savedmodel with a `serve` endpoint, writes out/report.json and
says "DONE".
"""

import json
import os
import sys
import traceback


def _say(word):
    sys.__stdout__.write(word + "\n")
    sys.__stdout__.flush()


def _report(data):
    os.makedirs("out", exist_ok=True)
    with open("out/report.part", "w") as fh:
        json.dump(data, fh)
    os.replace("out/report.part", "out/report.json")


def _describe(exc):
    try:
        text = str(exc)
    except BaseException:
        text = ""
    return (f"{type(exc).__name__}: {text}" if text else type(exc).__name__)[:500]


def _training():
    """The grader's training (grader/training/, copied beside this file as grader_training/),
    loaded before any of the student's code runs: its starting weights, checks and loop."""
    import importlib
    import importlib.util

    folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "grader_training")
    spec = importlib.util.spec_from_file_location(
        "grader_training", os.path.join(folder, "__init__.py"),
        submodule_search_locations=[folder])
    package = importlib.util.module_from_spec(spec)
    sys.modules["grader_training"] = package
    spec.loader.exec_module(package)
    return importlib.import_module("grader_training.timed_fit")


# How far the room got: a failure before "train" is the room's (it could not rebuild what the
# notebook's own session did), one in "train" is the design's under the grader's loop.
STAGE = {"now": "define"}


def _train(request, keras, tf, np, training):
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    for chunk in request["source"]:
        exec(compile(chunk["source"], f"<cell {chunk['cell']}>", "exec"), namespace)
    cls = namespace.get(request["class_name"])
    if not isinstance(cls, type):
        return {"error": f"the notebook's definitions give no class {request['class_name']!r}",
                "stage": "define"}
    keras.utils.set_random_seed(request["seed"])  # before the weights are created
    STAGE["now"] = "construct"
    # The notebook's own argument expressions, read in the namespace of its definitions.
    args = [eval(a, namespace) for a in request.get("args", [])]  # noqa: S307 - room only
    kwargs = {k: eval(v, namespace) for k, v in request.get("kwargs", {}).items()}  # noqa: S307
    model = cls(*args, **kwargs)
    with np.load("data.npz", allow_pickle=False) as data:
        x, y = data["x"], data["y"]
    STAGE["now"] = "build"
    model(x[:2], training=False)  # builds the variables, which the grader then starts itself
    STAGE["now"] = "train"
    # The student's compile(), fit(), train_step() and callbacks are never called: the loss and
    # optimizer are the ones the trusted side read, and the loop is the grader's.
    try:
        report = training.train(
            model, x, y, loss=request["loss"], optimizer=request["optimizer"],
            epochs=int(request["epochs"]), batch_size=int(request["batch_size"]),
            max_cpu_seconds=float(request["max_cpu_seconds"]),
            n_classes=int(request["n_classes"]), seed=int(request["seed"]))
    except training.learnable.CannotLearn as exc:
        return {"cannot_learn": _describe(exc).split(": ", 1)[-1]}
    STAGE["now"] = "export"
    spec = [tf.TensorSpec((None, *request["layout"]), tf.float32)]
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", lambda t: model(t, training=False), input_signature=spec)
    archive.write_out("out/model.savedmodel", verbose=False)
    return report


def main():
    _say("STARTED")
    # Below the student's kernel, as the measuring process: a room may train while the notebook
    # runs. Its training is capped in CPU seconds, so no result moves.
    os.nice(10)
    import numpy as np
    import tensorflow as tf
    import keras

    _say("READY")
    word = sys.stdin.readline().split()
    if word[:1] != ["GO"]:
        return 0
    if "idle" in word[1:]:
        # Trained while the notebook runs: only on what the kernel leaves idle. A process
        # cannot take this back; a room that is then too slow is replaced by a fresh one.
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        except (AttributeError, OSError):
            pass
    with open("request.json") as fh:
        request = json.load(fh)
    try:
        report = _train(request, keras, tf, np, _training())
    except BaseException as exc:  # noqa: BLE001 - the student's class may raise anything
        report = {"error": _describe(exc), "stage": STAGE["now"],
                  "traceback": traceback.format_exc()[-2000:]}
    _report(report)
    _say("DONE")
    return 0


if __name__ == "__main__":
    sys.exit(main())
