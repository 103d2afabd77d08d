"""End to end on the autoassociator homework (seed 000, Homework 7): Q1a an autoassociator
`aanetwork` (784 → k → 784, k of the student's choosing), Q1b a `classifier` of its hidden-layer
codes, Q2 a convolutional `network`.

Each notebook is executed once, in a real kernel on the assignment's Fashion-MNIST subset, and its
result is cached for the module: five notebooks in all (reference, starter, another k, and two
that each carry independent mistakes in Q1a/Q1b/Q2).
"""

from __future__ import annotations

import nbformat
import pytest

import notebook_factory as nf

pytestmark = pytest.mark.slow

ASSIGNMENT = "autoassociator"
OBJECTS = ("aanetwork", "classifier", "network")
# KERAS-FACTS.md: the autoassociator 784 → k → 784 has 157,684 / 40,009 / 16,474 / 8,629
# parameters for k = 100 / 25 / 10 / 5.
AA_PARAMS = {100: 157_684, 25: 40_009, 10: 16_474, 5: 8_629}


def checks_by_id(result):
    return {c.id: c for c in result.checks}


def test_spec_points_and_calibrated_thresholds_for_every_k(assignment):
    points = {c.id: c.points for c in assignment.checks}
    assert points["q1a-reconstruction"] == 5  # Q1a (5 points)
    assert points["q1b-code-accuracy"] == 3  # Q1b (3 points)
    assert sum(p for cid, p in points.items() if cid.startswith("q2-")) == 10  # Q2 (10 points)
    assert assignment.max_score == 18
    objects = assignment.thresholds()["objects"]
    for k in (100, 25, 10, 5):  # the slides' hidden-layer sizes
        assert objects["aanetwork"][f"reconstruction_k{k}"]["threshold"] > 0
        assert objects["classifier"][f"accuracy_k{k}"]["threshold"] > 0.5
    # Fewer hidden units reproduce the images less well, and their codes classify worse.
    errors = [objects["aanetwork"][f"reconstruction_k{k}"]["reference_mean"] for k in (100, 25, 10, 5)]
    assert errors == sorted(errors)
    accuracies = [objects["classifier"][f"accuracy_k{k}"]["reference_mean"] for k in (25, 10, 5)]
    assert accuracies == sorted(accuracies, reverse=True)


def test_reference_scores_full_marks(grade, assignment):
    result = grade("reference", nf.reference_notebook(ASSIGNMENT))
    failing = [(c.id, c.message) for c in result.checks if c.status != "passed"]
    assert failing == []
    assert result.score == result.max_score == assignment.max_score == 18
    assert result.execution["status"] == "completed" and result.cell_errors == []
    assert result.data["mode"] == "subset" and result.data["train"] == 6000
    assert result.data["holdout"] == 2000
    aanetwork = result.models["aanetwork"]
    assert aanetwork["total_params"] == AA_PARAMS[25]
    assert [l["output_shape"] for l in aanetwork["layers"]] == [[None, 25], [None, 784]]
    assert result.models["classifier"]["input_shape"] == [None, 25]
    assert result.models["classifier"]["input_layout"] == [25]  # the grader fed it 25-value codes
    assert {"Conv2D", "MaxPooling2D"} <= {l["class"] for l in result.models["network"]["layers"]}
    checks = checks_by_id(result)
    q1a = checks["q1a-reconstruction"]
    assert q1a.details["k"] == 25 and "the reference with the same k" in q1a.message
    q1b = checks["q1b-code-accuracy"]
    assert q1b.details["k"] == q1b.details["reference_k"] == 25
    assert "encoded by `aanetwork`'s hidden layer (k=25" in q1b.message


def test_starter_scores_zero_and_says_why(grade, assignment):
    starter = nbformat.read(assignment.starter, as_version=4)
    assert starter.metadata["grader"]["assignment"] == ASSIGNMENT
    sources = "\n".join(c.source for c in starter.cells if c.cell_type == "code")
    assert "from tensorflow.keras.datasets import fashion_mnist" in sources
    assert "sklearn" not in sources
    result = grade("starter", starter)
    assert result.score == 0
    assert len(result.checks) == 5
    for check in result.checks:
        assert check.status == "failed", check.id
        name = check.details["object"]
        assert f"no variable `{name}`" in check.message
        assert "NotImplementedError" in check.message
    assert {c.details["object"] for c in result.checks} == set(OBJECTS)
    assert any(e["ename"] == "NotImplementedError" for e in result.cell_errors)


def test_another_k_is_judged_against_the_reference_for_that_k(grade, assignment):
    result = grade("autoassociator_k10")
    failing = [(c.id, c.message) for c in result.checks if c.status != "passed"]
    assert failing == []
    assert result.score == assignment.max_score
    assert result.models["aanetwork"]["total_params"] == AA_PARAMS[10]
    thresholds = assignment.thresholds()["objects"]
    checks = checks_by_id(result)
    q1a = checks["q1a-reconstruction"]
    assert q1a.details["k"] == 10 and "k=10:" in q1a.message
    assert "the reference with the same k" in q1a.message
    assert q1a.details["threshold"] == thresholds["aanetwork"]["reconstruction_k10"]["threshold"]
    # With 10 hidden units the error is well above the reference's for k = 25: judged against
    # k = 25, this notebook would look worse than it is.
    assert q1a.details["mse"] > thresholds["aanetwork"]["reconstruction_k25"]["reference_mean"] * 1.2
    q1b = checks["q1b-code-accuracy"]
    assert q1b.details["k"] == q1b.details["reference_k"] == 10
    assert q1b.details["threshold"] == thresholds["classifier"]["accuracy_k10"]["threshold"]


def test_classifier_whose_input_size_is_not_k_fails_q1b(grade):
    result = grade("autoassociator_wrong_classifier_input_and_dense_network")
    checks = checks_by_id(result)
    q1b = checks["q1b-code-accuracy"]
    assert q1b.status == "failed" and q1b.points == 0
    assert "`classifier` takes inputs of size 100" in q1b.message
    assert "hidden layer gives k=25 values per image" in q1b.message
    # The notebook's own fit() raised; the grader names the sizes rather than the traceback.
    assert any(e["ename"] == "ValueError" for e in result.cell_errors)
    assert checks["q1a-reconstruction"].status == "passed"  # the autoassociator itself is fine


def test_network_without_convolutions_loses_the_q2_architecture_points(grade):
    checks = checks_by_id(grade("autoassociator_wrong_classifier_input_and_dense_network"))
    arch = checks["q2-architecture"]
    assert arch.status == "failed" and arch.points == 0
    assert "missing Conv2D, MaxPooling2D or AveragePooling2D" in arch.message
    assert "found Dense, Flatten" in arch.message
    assert checks["q2-loss"].status == "passed"  # compiled and trained with cross-entropy


def test_classifier_trained_on_raw_pixels_fails_q1b(grade):
    result = grade("autoassociator_untrained_and_pixel_classifier")
    assert result.models["classifier"]["input_shape"] == [None, 784]
    q1b = checks_by_id(result)["q1b-code-accuracy"]
    assert q1b.status == "failed" and q1b.points == 0
    assert "`classifier` takes inputs of size 784" in q1b.message
    assert "k=25" in q1b.message


def test_untrained_autoassociator_fails_reconstruction_with_numbers(grade, assignment):
    result = grade("autoassociator_untrained_and_pixel_classifier")
    q1a = checks_by_id(result)["q1a-reconstruction"]
    assert q1a.status == "failed" and q1a.points == 0
    limit = assignment.thresholds()["objects"]["aanetwork"]["reconstruction_k25"]["threshold"]
    assert q1a.details["k"] == 25 and q1a.details["threshold"] == limit
    assert q1a.details["mse"] > 2 * limit
    assert f"at most {limit:.4f} expected" in q1a.message
    assert "k=25: reconstruction error 0." in q1a.message
    assert "outputting the mean image gives 0.0" in q1a.message
