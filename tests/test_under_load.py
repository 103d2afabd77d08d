"""The same notebook gets the same points on a busy machine: the grader's own training is bounded
by epochs, and its safety cap counts CPU seconds of the training process, not wall-clock ones."""

from __future__ import annotations

import multiprocessing
import os

import numpy as np
import pytest

import notebook_factory as nf
from grader import pipeline, assignment as spec
from grader.checks import keras_checks
from grader.checks.context import GradingContext
from grader.execution.runner import ExecutionRecord
from grader.harvest.artifacts import HarvestedObject
from grader.assignment import CheckSpec

CHECK = CheckSpec(id="t", title="timed", kind="timed_training", points=2.0, object="model")


def test_a_design_past_the_cpu_cap_is_said_to_be_too_slow_with_both_figures():
    labels = np.arange(1000) % 10
    run = {"status": "trained", "epochs_run": 2, "epochs": 5, "seconds_per_epoch": [40, 41],
           "cpu_seconds": 130.0, "cpu_cap": 120.0, "stopped_by_time": True,
           "predictions": np.eye(10)[labels]}
    obj = HarvestedObject("model", "found", model={"layers": []}, timed=run)
    thresholds = {"objects": {"model": {"timed_accuracy": {"threshold": 0.8,
                                                            "reference_mean": 0.83}}}}
    ctx = GradingContext({"model": obj}, {}, thresholds, ExecutionRecord(), labels)
    ctx.notes["timed_costs"] = {"model": 3.2}
    message = keras_checks.timed_training(CHECK, ctx).message
    assert "too slow to train" in message
    assert "130 CPU seconds for 2 of 5 epochs" in message and "cap of 120" in message
    assert "the reference design needs 3 here" in message


def test_the_cap_counts_cpu_seconds_of_the_training_process():
    """A tiny cap stops after the first epoch, whatever the wall clock says."""
    import keras

    from grader.training.timed_fit import timed_fit

    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(10, activation="softmax")])
    rng = np.random.default_rng(0)
    run = timed_fit(model, x_train=rng.integers(0, 255, (256, 28, 28)).astype("uint8"),
                    y_train=rng.integers(0, 10, 256), images=np.zeros((4, 28, 28), "uint8"),
                    layout=(784,), loss="sparse_categorical_crossentropy", optimizer="adam",
                    epochs=5, batch_size=32, max_cpu_seconds=1e-6, n_classes=10, seed=0)
    assert run["epochs_run"] == 1 and run["stopped_by_time"] is True
    assert run["cpu_seconds"] > 0 and run["cpu_cap"] == 1e-6


def _spin(stop) -> None:  # noqa: ANN001 - a multiprocessing.Event
    while not stop.is_set():
        sum(i * i for i in range(10_000))


@pytest.mark.slow
def test_same_points_idle_and_under_a_cpu_hog(tmp_path, data_dir):
    assignment = spec.load("fashion-mlp")
    path = nf.write(nf.reference_notebook("fashion-mlp"), tmp_path / "reference.ipynb")
    options = pipeline.Options(data_dir=data_dir)
    idle = pipeline.grade(path, assignment, options)
    stop = multiprocessing.Event()
    hogs = [multiprocessing.Process(target=_spin, args=(stop,), daemon=True)
            for _ in range(os.cpu_count() or 2)]
    for hog in hogs:
        hog.start()
    try:
        busy = pipeline.grade(path, assignment, options)
    finally:
        stop.set()
        for hog in hogs:
            hog.join(timeout=10)
    assert busy.timings["total"] > 0 and idle.score == assignment.max_score
    assert {c.id: c.points for c in busy.checks} == {c.id: c.points for c in idle.checks}
    timed = busy.models["model"].timed_training
    assert timed.epochs_run == assignment.training.epochs and not timed.stopped_by_time
