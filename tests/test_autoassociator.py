"""End to end on the autoassociator homework (seed 000, Homework 7): Q1a an autoassociator
`aanetwork` (784 → k → 784, k of the student's choosing), Q1b a `classifier` of its hidden-layer
codes, Q2 a convolutional `network`. Q1a and Q1b ask for something that works: their bars are
the mean image and chance, beaten by the margins the spec documents.

Each notebook is executed once, in a real kernel on the assignment's Fashion-MNIST subset, and its
result is cached for the module: six notebooks in all (reference, starter, another k, the slides'
own code, and two that each carry independent mistakes in Q1a/Q1b/Q2).
"""

from __future__ import annotations

import nbformat
import pytest

import notebook_factory as nf
from grader.instructor import variants

pytestmark = pytest.mark.slow

ASSIGNMENT = "autoassociator"
OBJECTS = ("aanetwork", "classifier", "network")
# KERAS-FACTS.md: the autoassociator 784 → k → 784 has 157,684 / 40,009 / 16,474 / 8,629
# parameters for k = 100 / 25 / 10 / 5.
AA_PARAMS = {100: 157_684, 25: 40_009, 10: 16_474, 5: 8_629}


def checks_by_id(result):
    return {c.id: c for c in result.checks}


def test_spec_points_and_the_bars_of_something_that_works(assignment):
    points = {c.id: c.points for c in assignment.checks}
    assert points["q1a-reconstruction"] == 5  # Q1a (5 points)
    assert points["q1b-code-accuracy"] == 3  # Q1b (3 points)
    assert sum(p for cid, p in points.items() if cid.startswith("q2-")) == 10  # Q2 (10 points)
    assert assignment.max_score == 18
    checks = {c.id: c for c in assignment.checks}
    assert 0 < checks["q1a-reconstruction"].options.margin_below_mean_image < 1
    assert 0 < checks["q1b-code-accuracy"].options.margin_above_chance < 0.9
    objects = assignment.thresholds()["objects"]
    recon = objects["aanetwork"]["reconstruction"]["correct_runs"]
    codes = objects["classifier"]["code_accuracy"]["correct_runs"]
    # Calibrated on the slides' hidden-layer sizes: fewer units reproduce the images less well,
    # and their codes classify worse; every one of them works.
    by_k = [recon[f"k = {k}"] for k in (100, 10, 5)]
    assert by_k == sorted(by_k)
    assert codes["k = 10"] > codes["k = 5"]


def test_reference_scores_full_marks(grade, assignment):
    result = grade("reference", nf.reference_notebook(ASSIGNMENT))
    failing = [(c.id, c.message) for c in result.checks if c.status != "passed"]
    assert failing == []
    assert result.score == result.max_score == assignment.max_score == 18
    assert result.execution.status == "completed" and result.cell_errors == []
    assert result.data.mode == "subset" and result.data.train == 20000
    assert result.data.holdout == 2000
    aanetwork = result.models["aanetwork"]
    assert aanetwork.total_params == AA_PARAMS[25]
    assert [l["output_shape"] for l in aanetwork.layers] == [[None, 25], [None, 784]]
    assert result.models["classifier"].input_shape == [None, 25]
    assert result.models["classifier"].input_layout == [25]  # the grader fed it 25-value codes
    assert {"Conv2D", "MaxPooling2D"} <= {l["class"] for l in result.models["network"].layers}
    checks = checks_by_id(result)
    q1a = checks["q1a-reconstruction"]
    assert q1a.details["k"] == 25 and "of the mean image's" in q1a.message
    assert q1a.details["mse"] < q1a.details["threshold"] < q1a.details["mean_image_mse"]
    q1b = checks["q1b-code-accuracy"]
    assert q1b.details["k"] == 25
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
    assert any(e.ename == "NotImplementedError" for e in result.cell_errors)


def test_another_k_gets_full_marks(grade, assignment):
    result = grade("autoassociator_k10")
    failing = [(c.id, c.message) for c in result.checks if c.status != "passed"]
    assert failing == []
    assert result.score == assignment.max_score
    assert result.models["aanetwork"].total_params == AA_PARAMS[10]
    reference = checks_by_id(grade("reference", nf.reference_notebook(ASSIGNMENT)))
    checks = checks_by_id(result)
    q1a = checks["q1a-reconstruction"]
    assert q1a.details["k"] == 10 and "k=10:" in q1a.message
    # With 10 hidden units the error is well above k = 25's, yet the autoassociator works: the
    # bar is the mean image's error, not the reference's for some k.
    assert q1a.details["mse"] > reference["q1a-reconstruction"].details["mse"] * 1.2
    assert q1a.details["threshold"] == reference["q1a-reconstruction"].details["threshold"]
    assert checks["q1b-code-accuracy"].details["k"] == 10


def test_the_slides_own_autoassociator_gets_full_marks(grade_variant):
    """The issue's case: 784 → 25 sigmoid → 784 sigmoid, Adam, MSE, 10 epochs of batch 128 on
    half the training set got 8.76/18 in subset mode (it never left the mean image there), and
    Q1a/Q1b asked for the reference's own error and accuracy."""
    variant, result = grade_variant("as-the-slides")
    assert variants.verdict_problems(variant, result) == []
    assert result.score == result.max_score
    aanetwork = result.models["aanetwork"]
    assert [l["activation"] for l in aanetwork.layers] == ["sigmoid", "sigmoid"]
    q1a = checks_by_id(result)["q1a-reconstruction"]
    assert q1a.details["mse"] < q1a.details["threshold"]


def test_encoder_and_decoder_models_get_full_marks(grade_variant):
    """Keras's autoencoder guide: `aanetwork = Model(x, decoder(encoder(x)))`. Its layers[0] is
    an InputLayer, and the hidden layer sits inside `encoder`; the grader finds it there and
    encodes its images with it (Q1b got 0/3, 'the first layer has no weights')."""
    variant, result = grade_variant("nested-models")
    assert variants.verdict_problems(variant, result) == []
    assert result.score == result.max_score
    checks = checks_by_id(result)
    assert checks["q1a-reconstruction"].details["k"] == 25
    assert checks["q1b-code-accuracy"].details["k"] == 25
    dense = [l["config"]["units"] for l in result.models["aanetwork"].layers
             if l["class"] == "Dense"]
    assert dense == [25, 784]


def test_classifier_whose_input_size_is_not_k_fails_q1b(grade_variant):
    variant, result = grade_variant("wrong-input-dense-network")
    assert variants.verdict_problems(variant, result) == []
    checks = checks_by_id(result)
    q1b = checks["q1b-code-accuracy"]
    assert q1b.status == "failed" and q1b.points == 0
    assert "`classifier` takes inputs of size 100" in q1b.message
    assert "hidden layer gives k=25 values per image" in q1b.message
    # The notebook's own fit() raised; the grader names the sizes rather than the traceback.
    assert any(e.ename == "ValueError" for e in result.cell_errors)
    assert checks["q1a-reconstruction"].status == "passed"  # the autoassociator itself is fine


def test_network_without_convolutions_loses_the_q2_architecture_points(grade_variant):
    checks = checks_by_id(grade_variant("wrong-input-dense-network")[1])
    arch = checks["q2-architecture"]
    assert arch.status == "failed" and arch.points == 0
    assert "missing Conv2D, MaxPooling2D or AveragePooling2D" in arch.message
    assert "found Dense, Flatten" in arch.message
    assert checks["q2-loss"].status == "passed"  # compiled and trained with cross-entropy


def test_classifier_trained_on_raw_pixels_fails_q1b(grade_variant):
    variant, result = grade_variant("untrained-pixel-classifier")
    assert variants.verdict_problems(variant, result) == []
    assert result.models["classifier"].input_shape == [None, 784]
    q1b = checks_by_id(result)["q1b-code-accuracy"]
    assert q1b.status == "failed" and q1b.points == 0
    assert "`classifier` takes inputs of size 784" in q1b.message
    assert "k=25" in q1b.message


def test_untrained_autoassociator_fails_reconstruction_with_numbers(grade_variant, assignment):
    _, result = grade_variant("untrained-pixel-classifier")
    q1a = checks_by_id(result)["q1a-reconstruction"]
    assert q1a.status == "failed" and q1a.points == 0
    margin = next(c for c in assignment.checks if c.id == "q1a-reconstruction").options.margin_below_mean_image
    useless = q1a.details["mean_image_mse"]
    assert q1a.details["threshold"] == pytest.approx((1 - margin) * useless, abs=1e-6)
    assert q1a.details["k"] == 25
    assert q1a.details["mse"] > useless  # random weights do worse than the average image
    assert f"full marks at most {q1a.details['threshold']:.4f}" in q1a.message
    assert "k=25: reconstruction error 0." in q1a.message
    assert f"of the mean image's {useless:.4f}" in q1a.message
