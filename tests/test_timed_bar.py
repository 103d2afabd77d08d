"""The timed-training bar follows the machine: the reference design, trained the same way here,
less the calibrated margin (grader/training/baselines.py)."""

from __future__ import annotations

import numpy as np

from grader.training import baselines
from grader import assignment as spec
from grader.checks import keras_checks
from grader.checks.context import GradingContext
from grader.execution.runner import ExecutionRecord
from grader.harvest.artifacts import HarvestedObject
from grader.assignment import CheckSpec

CHECK = CheckSpec(id="t", title="timed", kind="timed_training", points=2.0, object="model")
THRESHOLDS = {"objects": {"model": {"timed_accuracy": {"threshold": 0.82,
                                                        "reference_mean": 0.85}}}}


def context(accuracy: float, baseline: float | None) -> GradingContext:
    labels = np.arange(1000) % 10
    right = int(accuracy * len(labels))
    guesses = np.where(np.arange(len(labels)) < right, labels, (labels + 1) % 10)
    obj = HarvestedObject("model", "found", model={"layers": []},
                          timed={"status": "trained", "epochs_run": 5,
                                 "seconds_per_epoch": [0.1],
                                 "predictions": np.eye(10)[guesses]})
    ctx = GradingContext({"model": obj}, {}, THRESHOLDS, ExecutionRecord(), labels)
    if baseline is not None:
        ctx.notes["timed_baselines"] = {"model": baseline}
    return ctx


def test_calibrated_bar_without_a_baseline():
    result = keras_checks.timed_training(CHECK, context(0.80, None))
    assert "expected at least 0.820" in result.message and result.points < 2


def test_bar_moves_with_the_reference_design_on_this_machine():
    # This machine trains the reference design to 0.80, not 0.85: the bar is 0.80 - 0.03.
    result = keras_checks.timed_training(CHECK, context(0.78, 0.80))
    assert "expected at least 0.770" in result.message
    assert result.points == 2
    assert keras_checks.timed_training(CHECK, context(0.74, 0.80)).points < 2


def test_baselines_are_remembered_per_machine(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADER_CACHE_DIR", str(tmp_path))
    assignment = spec.load("lenet5")
    assert baselines.known(assignment, ["cnn"], "subset", 0) == {}
    labels = np.arange(20) % 10
    accuracy = baselines.remember(assignment, "cnn", "subset", 0, np.eye(10)[labels], labels)
    assert accuracy == 1.0
    assert baselines.known(assignment, ["cnn", "cnn_dropout"], "subset", 0) == {"cnn": 1.0}
    assert baselines.known(assignment, ["cnn"], "subset", 1) == {}  # another seed, another bar
    requests = baselines.requests(assignment, ["cnn", "cnn_dropout", "cnn_batch_norm"], {})
    assert [r["name"] for r in requests] == ["cnn", "cnn_dropout", "cnn_batch_norm"]
    assert all(r["design"]["config"] and r["layout"] for r in requests)
