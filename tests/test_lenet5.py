"""End to end on the lenet5 homework (seed 004, Part 4): LeNet-5, with dropout and with batch
normalization, three models in one notebook, each graded on its own.

Each notebook is executed once, in a real kernel on the assignment's Fashion-MNIST subset, and its
result is cached for the module: four notebooks in all (reference, starter, two with mistakes).
"""

from __future__ import annotations

import nbformat
import pytest

import notebook_factory as nf
from grader.instructor import variants

pytestmark = pytest.mark.slow

ASSIGNMENT = "lenet5"
MODELS = ("cnn", "cnn_dropout", "cnn_batch_norm")
PREFIX = {"cnn": "cnn", "cnn_dropout": "dropout", "cnn_batch_norm": "batch-norm"}
ARCHITECTURE = ("layers", "activations", "shapes", "params")


def checks_by_id(result):
    return {c.id: c for c in result.checks}


def model_checks(result, model: str):
    prefix = PREFIX[model] + "-"
    return {c.id[len(prefix):]: c for c in result.checks if c.id.startswith(prefix)}


def test_reference_scores_full_marks(grade, assignment):
    result = grade("reference", nf.reference_notebook(ASSIGNMENT))
    failing = [(c.id, c.message) for c in result.checks if c.status != "passed"]
    assert failing == []
    assert result.score == result.max_score == assignment.max_score
    assert result.execution.status == "completed" and result.cell_errors == []
    assert result.data.mode == "subset" and result.data.train == 6400
    # Each design was trained by the grader while the notebook's later cells ran.
    assert all(m.timed_training.head_start for m in result.models.values())
    cnn = result.models["cnn"]
    # Seed 004, 4.2.2 (cnn.summary()): "Total params: 61,706"
    assert cnn.total_params == 61_706
    assert [l["class"] for l in cnn.layers] == [
        "Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Conv2D", "Dense", "Dense"]
    # "dense_4 (Dense)  (None, 1, 1, 10)  850": no Flatten, and the grader still measures it.
    assert cnn.layers[-1]["output_shape"] == [None, 1, 1, 10]
    assert checks_by_id(result)["cnn-accuracy"].details["accuracy"] > 0.75
    dropout = result.models["cnn_dropout"]
    assert dropout.total_params == 61_706  # dropout adds no weights
    assert [l["config"]["rate"] for l in dropout.layers if l["class"] == "Dropout"] == [0.5] * 4
    batch_norm = result.models["cnn_batch_norm"]
    assert [l["class"] for l in batch_norm.layers].count("BatchNormalization") == 4
    assert batch_norm.total_params == 61_706 + 4 * (6 + 16 + 120 + 84)  # 62,610
    for name in MODELS:
        assert result.models[name].timed_training.status == "trained"


def test_starter_scores_zero_and_says_why(grade, assignment):
    starter = nbformat.read(assignment.starter, as_version=4)
    assert starter.metadata["grader"]["assignment"] == ASSIGNMENT
    result = grade("starter", starter)
    assert result.score == 0
    assert len(result.checks) == 24
    for check in result.checks:
        name = next(m for m in MODELS if check.id.startswith(PREFIX[m] + "-"))
        assert check.status == "failed", check.id
        assert f"no variable `{name}`" in check.message
        assert "NotImplementedError" in check.message
    assert any(e.ename == "NotImplementedError" for e in result.cell_errors)


def test_flatten_before_dense_passes_architecture_and_accuracy(grade_variant):
    variant, result = grade_variant("untrained-batch-norm")
    assert variants.verdict_problems(variant, result) == []
    assert result.cell_errors == []
    for name in ("cnn", "cnn_dropout"):
        model = result.models[name]
        assert "Flatten" in [l["class"] for l in model.layers]
        assert model.layers[-1]["output_shape"] == [None, 10]
        assert model.total_params == 61_706
        checks = model_checks(result, name)
        for cid in (*ARCHITECTURE, "accuracy"):
            assert checks[cid].status == "passed", (name, cid, checks[cid].message)
    assert "61,706 parameters, as expected" in model_checks(result, "cnn")["params"].message


def test_each_model_is_measured_on_its_own_not_by_what_the_notebook_prints(grade_variant):
    """The seed's own mistake (In [45]: `cnn_dropout.evaluate` under the batch-norm heading), made
    worse: `cnn_batch_norm` is never trained, yet the notebook prints a good test accuracy for it.
    The grader predicts with each harvested model itself, so only the batch-norm accuracy fails."""
    _, result = grade_variant("untrained-batch-norm")
    assert model_checks(result, "cnn_dropout")["accuracy"].status == "passed"
    checks = model_checks(result, "cnn_batch_norm")
    acc = checks["accuracy"]
    assert acc.status == "failed" and acc.points == 0
    assert acc.details["accuracy"] < 0.4
    assert "measured 0." in acc.message and "expected at least" in acc.message
    assert "fit() never ran" in checks["loss"].message
    for cid in ARCHITECTURE:  # the architecture itself is right
        assert checks[cid].status == "passed", (cid, checks[cid].message)
    assert checks["timed-training"].status == "passed"  # and the design learns


def test_wrong_convolution_is_named(grade_variant):
    variant, result = grade_variant("wrong-layers")
    assert variants.verdict_problems(variant, result) == []
    checks = model_checks(result, "cnn")
    layers = checks["layers"]
    assert layers.status == "partial"
    assert ("layer 3: expected Conv2D(16, 5x5, relu), found Conv2D(16, 5x5, padding same, relu)"
            in layers.message)
    shapes = checks["shapes"]
    assert ("layer 3 (Conv2D(16, 5x5, padding same)): expected output (None, 10, 10, 16), "
            "found (None, 14, 14, 16)"
            in shapes.message)
    # 7x7x16 → Conv2D(120) gives 3x3x120; the Flatten makes Dense(84) take 1,080 inputs.
    params = checks["params"]
    assert params.points == 0 and "expected 61,706 parameters, found 142,346" in params.message
    assert checks["activations"].status == "passed"


def test_dropout_and_batch_norm_layers_are_compared(grade_variant):
    _, result = grade_variant("wrong-layers")
    dropout = model_checks(result, "cnn_dropout")["layers"]
    assert dropout.status == "partial"
    assert "layer 2: expected Dropout(rate 0.5), found Dropout(rate 0.25)" in dropout.message
    batch_norm = model_checks(result, "cnn_batch_norm")
    assert batch_norm["layers"].status == "partial"
    assert "missing BatchNormalization()" in batch_norm["layers"].message
    # Conv2D(relu) → BatchNormalization is the same as Conv2D → BatchNormalization → ReLU.
    assert "layer 1: " not in batch_norm["layers"].message
    assert batch_norm["activations"].status == "passed"
    assert batch_norm["params"].points == 0 and "62,274" in batch_norm["params"].message
    # Built but never compiled or trained: nothing to grade by training.
    for name in ("cnn_dropout", "cnn_batch_norm"):
        checks = model_checks(result, name)
        assert checks["loss"].points == 0 and "never compiled" in checks["loss"].message
        assert checks["accuracy"].points == 0


def test_fewer_epochs_than_asked_get_full_marks_in_subset_mode(grade_variant):
    """The issue's case: LeNet-5 trained 3 epochs (not 10) scored 0.713 against a bar of 0.781.
    On the full data 3 epochs reach about the homework's 0.892; the subset must not take the
    points the full data gives. (Its batch-norm model keeps 15 epochs: README, Subset sizes.)"""
    variant, result = grade_variant("three-epochs")
    assert variant.correct
    assert variants.verdict_problems(variant, result) == []
    assert result.score == result.max_score
    steps = {n: result.models[n].compile["train_steps"] for n in MODELS}
    assert 5 * steps["cnn"] == 5 * steps["cnn_dropout"] == steps["cnn_batch_norm"]  # 3 vs 15
