"""Designs trained while the notebook runs: the kernel exports a graded model as its fit()
starts (grader/kernel/head_start.py) and the measuring process trains it meanwhile
(grader/measure/head_start.py). A head start may only save time: the final model gets the
early result only for the very same design, and the student's own training is untouched."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from grader import measure
from grader.measure.head_start import MAX_PER_NAME, Designs, Watch, design_key
from grader.scoring import TimedStatus

DESIGN = {"config": {"layers": [16, 10]}, "total_params": 12730, "loss": "mse",
          "optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.001}}}


def test_a_design_s_key_is_everything_its_training_depends_on():
    key = design_key(DESIGN, (784,), "unit")
    assert key == design_key(dict(reversed(DESIGN.items())), (784,), "unit")
    faster = {**DESIGN, "optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.01}}}
    assert len({key, design_key(faster, (784,), "unit"), design_key(DESIGN, (28, 28), "unit"),
                design_key(DESIGN, (784,), "raw")}) == 4


def test_only_a_trained_design_is_remembered_and_recalled_with_its_predictions(tmp_path):
    designs = Designs()
    (tmp_path / "early.npz").write_bytes(b"predictions")
    designs.remember("a", {"status": TimedStatus.TRAINED, "predictions_file": "early.npz",
                           "cpu_seconds": 1.5}, tmp_path)
    designs.remember("b", {"status": TimedStatus.CANNOT_LEARN, "message": "frozen"}, tmp_path)
    target = tmp_path / "r1" / "model.timed.npz"
    target.parent.mkdir()
    assert designs.recall("b", target) is None and not designs.knows("b")
    recalled = designs.recall("a", target)
    assert recalled == {"status": TimedStatus.TRAINED, "predictions_file": "model.timed.npz",
                        "cpu_seconds": 1.5, "head_start": True, "seconds": 0.0}
    assert target.read_bytes() == b"predictions"


def test_the_watch_takes_each_export_of_a_watched_name_once_up_to_its_cap(tmp_path):
    early = tmp_path / "early"
    early.mkdir()
    watch = Watch({"dir": str(early), "objects": {"model": None}, "training": {},
                   "images": str(tmp_path / "images.npy")})
    assert watch.next_export() is None
    for name in [".model-0.keras", "other-0.keras", "model-x.keras", "model-0.keras.part"]:
        (early / name).write_bytes(b"")  # half-written, unwatched, or not the kernel's names
    (early / "model-0.keras").symlink_to(tmp_path / "images.npy")
    assert watch.next_export() is None  # a link is never followed
    taken = []
    for n in range(1, MAX_PER_NAME + 2):
        (early / f"model-{n}.keras").write_bytes(b"")
        found = watch.next_export()
        taken.append(found and found[1].name)
    assert taken == [f"model-{n}.keras" for n in range(1, MAX_PER_NAME + 1)] + [None]
    trained = []
    assert watch.step(lambda *found: trained.append(found)) is False and trained == []


@pytest.fixture(scope="module")
def keras():
    import keras

    return keras


def _mlp(keras, units: int = 16):  # noqa: ANN001, ANN202
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(units, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def _data(n: int = 128) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.random((n, 784), dtype="float32"), rng.integers(0, 10, n)


@pytest.mark.slow
def test_the_kernel_exports_a_graded_design_once_as_its_fit_starts(tmp_path, keras):
    from grader.kernel.head_start import Exporter

    namespace: dict = {}
    exporter = Exporter(tmp_path, ("model",), lambda: namespace)
    x, y = _data()
    model = namespace["model"] = _mlp(keras)
    exporter.before_fit(keras, _mlp(keras))  # compiled, but not the graded variable
    assert list(tmp_path.iterdir()) == []
    exporter.before_fit(keras, model)
    exporter.before_fit(keras, model)  # a second fit() of the same design
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model-0.keras"]
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    exporter.before_fit(keras, model)  # recompiled: another design
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model-0.keras", "model-1.keras"]
    loaded = keras.saving.load_model(tmp_path / "model-1.keras")
    assert type(loaded.optimizer).__name__ == "SGD"

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(10)

        def call(self, x):
            return self.dense(x)

    sub = namespace["model"] = Subclassed()
    sub.compile(optimizer="adam", loss="mse")
    exporter.before_fit(keras, sub, x.reshape((-1, 28, 28)))  # unbuilt: the room builds it
    exporter.before_fit(keras, sub, x.reshape((-1, 28, 28)))
    # Only its class rebuilds it: what the clean room needs, no model.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "model-0.keras", "model-1.keras", "model-2.claim.json"]
    claim = json.loads((tmp_path / "model-2.claim.json").read_text())
    assert claim["class_name"] == "Subclassed" and claim["layout"] == [28, 28]
    assert claim["compile"]["loss"] == "mse" and claim["compile"]["optimizer"]["class_name"] == \
        "Adam" and "train_steps" not in claim["compile"]


@pytest.mark.slow
def test_the_student_s_fit_trains_exactly_as_without_the_export(tmp_path, keras):
    from grader.kernel.head_start import Exporter, wrap_fit

    x, y = _data()
    original = keras.Model.fit

    def trained() -> list[np.ndarray]:
        keras.utils.set_random_seed(0)
        model = namespace["model"] = _mlp(keras)
        model.fit(x, y, epochs=2, batch_size=32, verbose=0)
        return [w.numpy() for w in model.weights]

    namespace: dict = {}
    alone = trained()
    broken = Exporter(tmp_path / "file", ("model",), lambda: namespace)
    (tmp_path / "file").write_text("not a folder")  # its export fails: fit() must not notice
    try:
        wrap_fit(Exporter(tmp_path / "early", ("model",), lambda: namespace), keras)
        wrap_fit(broken, keras)  # once wrapped, never twice
        exported = trained()
        keras.Model.fit = original
        wrap_fit(broken, keras)
        failed_export = trained()
    finally:
        keras.Model.fit = original
    assert [p.name for p in (tmp_path / "early").iterdir()] == ["model-0.keras"]
    for weights in (exported, failed_export):
        assert all(np.array_equal(a, b) for a, b in zip(alone, weights))


@pytest.mark.slow
def test_the_measuring_process_gives_the_early_result_to_the_same_design_only(tmp_path, keras):
    """`model`'s design trained early is its final design: the same result as training it at
    the end. `other` was exported early as one design and harvested as another: trained anew."""
    x, y = _data(256)
    early, final = tmp_path / "harvest" / "early", tmp_path / "final"
    early.mkdir(parents=True)
    final.mkdir()
    train_npz, images = tmp_path / "train.npz", tmp_path / "images.npy"
    np.savez(train_npz, x_train=(x * 255).astype("uint8").reshape((-1, 28, 28)), y_train=y)
    np.save(images, (x[:40] * 255).astype("uint8").reshape((-1, 28, 28)), allow_pickle=False)
    model = _mlp(keras)  # as the kernel saves it: at its fit(), then after the last cell
    model.save(early / "model-0.keras")
    model.fit(x, y, epochs=1, verbose=0)
    model.save(final / "model.keras")
    _mlp(keras, 16).save(early / "other-0.keras")
    _mlp(keras, 24).save(final / "other.keras")
    training = {"train_npz": str(train_npz), "epochs": 1, "batch_size": 32,
                "max_cpu_seconds": 120.0, "seed": 0, "max_params": 10**6, "n_classes": 10}
    request = measure.Request(images=images, training=training, objects=[
        {"name": n, "export": str(final / f"{n}.keras"), "input_shape": None, "timed": True}
        for n in ("model", "other")])

    worker = measure.Worker(tmp_path / "watching", [tmp_path], 4096, mounts=None)
    try:
        worker.watch(early, {"model": None, "other": None}, training, images)
        out = tmp_path / "watching" / "out" / "early"
        deadline = time.monotonic() + 120
        while len(list(out.glob("*.timed.npz"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        watched = worker.measure(request, rows=40).objects
    finally:
        worker.close()
    worker = measure.Worker(tmp_path / "alone", [tmp_path], 4096, mounts=None)
    try:
        alone = worker.measure(request, rows=40).objects
    finally:
        worker.close()

    for name in ("model", "other"):
        assert watched[name].timed["status"] == alone[name].timed["status"] == "trained"
        np.testing.assert_array_equal(watched[name].timed["predictions"],
                                      alone[name].timed["predictions"])
    assert watched["model"].timed.get("head_start") is True
    assert "head_start" not in watched["other"].timed and "head_start" not in alone["model"].timed


@pytest.mark.slow
def test_a_crash_while_training_early_costs_a_restart_not_the_final_model(tmp_path, keras):
    """The process dies training an early export (as a replaced design that exhausted its memory
    would): the grader starts a fresh one, without the head start, for the final request."""
    dies_early = tmp_path / "dies_early.py"
    dies_early.write_text("import os, sys\nfrom grader.measure import worker\n"
                          "worker._train_early = lambda *a: os._exit(9)\n"
                          "sys.exit(worker.main(*sys.argv[1:]))\n")

    class DiesEarly(measure.Worker):
        def program(self) -> list[str]:
            return [sys.executable, str(dies_early)]

    x, y = _data(256)
    early = tmp_path / "early"
    early.mkdir()
    train_npz, images = tmp_path / "train.npz", tmp_path / "images.npy"
    np.savez(train_npz, x_train=(x * 255).astype("uint8").reshape((-1, 28, 28)), y_train=y)
    np.save(images, (x[:40] * 255).astype("uint8").reshape((-1, 28, 28)), allow_pickle=False)
    _mlp(keras).save(tmp_path / "model.keras")
    training = {"train_npz": str(train_npz), "epochs": 1, "batch_size": 32,
                "max_cpu_seconds": 120.0, "seed": 0, "max_params": 10**6, "n_classes": 10}
    request = measure.Request(images=images, training=training, objects=[
        {"name": "model", "export": str(tmp_path / "model.keras"), "input_shape": None,
         "timed": True}])
    worker = DiesEarly(tmp_path / "watching", [tmp_path], 4096, mounts=None)
    try:
        worker.watch(early, {"model": None}, training, images)
        _mlp(keras, 24).save(early / "model-0.keras")  # a design the student then replaced
        deadline = time.monotonic() + 120
        while worker.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert worker.proc.returncode == 9
        measured = worker.measure(request, rows=40).objects["model"]
    finally:
        worker.close()
    assert worker.restarted
    assert measured.status == "found" and measured.timed["status"] == "trained"
    assert "head_start" not in measured.timed
