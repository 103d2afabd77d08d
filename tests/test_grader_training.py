"""The grader's own training owns its weights and its loop (issue 23): whatever a design's config
or its class's __init__ put in the weights, whatever its fit() or train_step() do, the grader
starts from its own values, trains with its own steps, stops at its CPU cap within an epoch, and
says when a design as compiled cannot learn. Run with `pytest -m hostile`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from grader import paths
from grader.training import design_data, initial, learnable
from grader.training.timed_fit import CAP_NAME, train

REFERENCE_DIR = paths.reference_dir()

pytestmark = pytest.mark.hostile

RNG = np.random.default_rng(0)
X = RNG.random((256, 784), dtype="float32")
Y = RNG.integers(0, 10, 256)


def mlp(keras, **dense):  # noqa: ANN001, ANN003, ANN201
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(32, activation="relu",
                                                                       **dense),
                              keras.layers.Dense(10, activation="softmax")])
    model(X[:2])
    return model


def fit(model, optimizer="adam", **budget):  # noqa: ANN001, ANN003, ANN201
    import keras

    options = {"epochs": 2, "batch_size": 32, "max_cpu_seconds": 60.0, "n_classes": 10,
               "seed": 0, **budget}
    return train(model, X, Y, loss="sparse_categorical_crossentropy",
                 optimizer=keras.optimizers.get(optimizer), **options)


# 1. Starting weights and data in the config.

def test_every_weight_starts_from_the_graders_values_not_the_configs():
    import keras

    planted = np.full((784, 32), 0.5, "float32")
    model = mlp(keras, kernel_initializer=keras.initializers.Constant(planted),
                bias_initializer=keras.initializers.Constant(np.ones(32, "float32")))
    start = initial.reinitialise(model, seed=7)
    kernel, bias = model.layers[0].kernel.numpy(), model.layers[0].bias.numpy()
    assert not np.allclose(kernel, planted) and np.array_equal(bias, np.zeros(32))
    assert np.array_equal(kernel, start[model.layers[0].kernel.path])
    assert initial.is_start(kernel, 7) and not initial.is_start(kernel, 8)
    limit = np.sqrt(6 / (784 + 32))  # glorot_uniform's, as Keras draws it
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.9 * limit


def test_array_valued_initializers_are_replaced_and_said_so():
    import keras

    planted = keras.initializers.Constant(np.full((784, 32), 0.5, "float32"))
    config = json.loads(mlp(keras, kernel_initializer=planted).to_json())
    clean, notes = design_data.strip(config)
    assert len(notes) == 1 and "kernel_initializer held 25,088 values" in notes[0]
    rebuilt = keras.models.model_from_json(json.dumps(clean))
    rebuilt(X[:2])
    assert not np.allclose(rebuilt.layers[0].kernel.numpy(), 0.5)


@pytest.mark.parametrize("layer", ["normalization", "lookup"])
def test_data_in_a_layers_config_is_refused(layer):
    import keras

    first = keras.layers.Normalization(mean=np.full(784, 0.3), variance=np.full(784, 0.1)) \
        if layer == "normalization" else keras.layers.IntegerLookup(vocabulary=[3, 5, 7])
    model = keras.Sequential([keras.Input((784,), dtype="float32" if layer == "normalization"
                                          else "int64"), first, keras.layers.Dense(10)])
    with pytest.raises(design_data.CarriesData, match="holds no data"):
        design_data.strip(json.loads(model.to_json()))


@pytest.mark.parametrize("assignment", ["fashion-mlp", "lenet5"])
def test_the_reference_designs_carry_no_data(assignment):
    """Rule 1: a design written as the guides teach is rebuilt as it is."""
    designs = json.loads((REFERENCE_DIR / assignment / "designs.json").read_text())["objects"]
    for entry in designs.values():
        assert design_data.strip(entry["design"]["config"]) == (entry["design"]["config"], [])


@pytest.mark.parametrize("case", ["learning rate 0", "schedule stuck at 0", "frozen layer"])
def test_a_design_that_cannot_learn_is_said_so_before_training(case):
    import keras

    model = mlp(keras)
    optimizer = keras.optimizers.Adam(0.0)
    if case == "schedule stuck at 0":  # steps past the grader's 16 before it would move
        optimizer = keras.optimizers.Adam(keras.optimizers.schedules.PiecewiseConstantDecay(
            [10_000], [0.0, 0.01]))
    elif case == "frozen layer":
        optimizer, model.layers[0].trainable = keras.optimizers.Adam(), False
    with pytest.raises(learnable.CannotLearn, match="frozen" if "frozen" in case else "0 at"):
        fit(model, optimizer)


def test_a_schedule_that_moves_within_the_grader_s_steps_trains():
    import keras

    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([4], [0.0, 0.01])
    run = fit(mlp(keras), keras.optimizers.Adam(schedule))
    assert run["weights_changed"] and run["loss"][-1] < run["loss"][0]


# 2. The grader's loop, never the student's.

def test_the_loop_is_the_graders_not_the_classs_fit_or_train_step():
    import keras

    class Idle(keras.Model):  # a student's model that trains nothing when fitted
        def __init__(self):
            super().__init__()
            self.hidden = keras.layers.Dense(32, activation="relu")
            self.out = keras.layers.Dense(10, activation="softmax")

        def call(self, x, training=False):
            return self.out(self.hidden(x))

        def train_step(self, data):
            return {"loss": 0.0}

        def fit(self, *args, **kwargs):
            raise AssertionError("the grader called the student's fit")

        def compile(self, *args, **kwargs):
            raise AssertionError("the grader called the student's compile")

    model = Idle()
    model(X[:2])
    run = fit(model, epochs=3)
    assert run["weights_changed"] and run["epochs_run"] == 3 and run["steps"] == 24
    assert run["loss"][-1] < run["loss"][0]


def test_weights_left_where_they_started_are_reported():
    """A learning rate above 0 whose steps underflow float32: every step runs, no weight moves."""
    import keras

    run = fit(mlp(keras), keras.optimizers.SGD(1e-45))
    assert run["epochs_run"] == 2 and run["weights_changed"] is False


def test_the_trusted_side_tells_untrained_weights_from_trained_ones():
    from grader.measure.worker import _untrained

    kernel = initial.value("glorot_uniform", (784, 32), seed=3, occurrence=1)
    start = [("dense/kernel:0", kernel), ("dense/bias:0", np.zeros(32, "float32"))]
    assert _untrained(start, 3)
    assert not _untrained([start[0], ("dense/bias:0", np.full(32, 1e-3, "float32"))], 3)
    assert not _untrained(start, 4) and not _untrained([], 3)


# 4. The cap, within an epoch.

def test_the_cap_stops_training_within_the_first_epoch_and_is_named():
    import keras

    run = fit(mlp(keras), max_cpu_seconds=1e-6, epochs=5)
    assert run["stopped_by_time"] and run["epochs_run"] == 1 and run["steps"] == 1
    assert run["cap_name"] == CAP_NAME == "[training] max_cpu_seconds"


# 3. A failure of the grader's training is the timed check's alone.

def test_a_failure_in_the_graders_training_is_reported_on_that_training(tmp_path):
    from grader.measure.worker import _timed

    design = {"config": {"class_name": "NoSuchModel", "config": {}}, "total_params": 10,
              "loss": "categorical_crossentropy", "optimizer": "adam"}
    budget = {"max_params": 1000, "seed": 0, "train_npz": str(tmp_path / "none.npz")}
    run = _timed(design, (784,), np.zeros((2, 28, 28), "uint8"), budget, Path(tmp_path))
    assert run["status"] == "error" and "the grader's training of this design failed" in \
        run["message"]


def test_predicting_the_holdout_stops_past_the_cap_and_its_grace(monkeypatch):
    """A design that spent its cap training is not given unbounded time to predict either."""
    import keras

    from grader.training import timed_fit

    monkeypatch.setattr(timed_fit, "PREDICT_GRACE", 0.0)
    with pytest.raises(timed_fit.TooSlow, match=r"\[training\] max_cpu_seconds"):
        timed_fit.timed_fit(mlp(keras), x_train=(X * 255).astype("uint8"), y_train=Y,
                            images=np.zeros((4, 28, 28), "uint8"), layout=(784,),
                            loss="sparse_categorical_crossentropy", optimizer="adam", epochs=1,
                            batch_size=32, max_cpu_seconds=1e-6, n_classes=10, seed=0)


def test_the_models_other_measurements_stand_when_the_graders_training_fails(tmp_path):
    """The training subset is unreadable mid-way through the grader's training: the entry still
    describes and predicts the model; only its timed training says it failed."""
    import keras

    from grader.measure.head_start import Designs
    from grader.measure.worker import _measure

    model = mlp(keras)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.save(tmp_path / "model.keras")
    budget = {"max_params": 10**6, "seed": 0, "train_npz": str(tmp_path / "missing.npz"),
              "epochs": 1, "batch_size": 32, "max_cpu_seconds": 60.0, "n_classes": 10}
    entry = _measure({"name": "model", "export": str(tmp_path / "model.keras"),
                      "input_shape": None, "timed": True},
                     {"training": budget, "max_params": 10**6},
                     np.zeros((8, 28, 28), "uint8"), {}, tmp_path, Designs())
    assert entry["status"] == "found" and entry["model"]["total_params"] == 25_450
    assert entry["predictions"] and not entry["predict_errors"]
    assert entry["timed"]["status"] == "error" and "missing.npz" in entry["timed"]["message"]
