"""End to end on the fashion-mlp homework (seed 004, Parts 2–3), with real TensorFlow training.

Each case executes a real notebook in a kernel on the assignment's Fashion-MNIST subset.
"""

from __future__ import annotations

import json

import nbformat
import pytest

import notebook_factory as nf
from grader import pipeline
from grader.instructor import variants
from grader.cli import main as cli_main
from grader.scoring import DataMode

pytestmark = pytest.mark.slow

ASSIGNMENT = "fashion-mlp"


def checks_by_id(result):
    return {c.id: c for c in result.checks}


def test_reference_scores_full_marks(grade, assignment):
    result = grade("reference", nf.reference_notebook(ASSIGNMENT))
    failing = [(c.id, c.message) for c in result.checks if c.status != "passed"]
    assert failing == []
    assert result.score == result.max_score == assignment.max_score
    model = result.models["model"]
    assert model.total_params == 109_386  # seed 004, 3.2.2
    assert model.timed_training.head_start  # trained by the grader while the notebook ran
    assert model.timed_training.seconds == 0.0  # so the grading did not wait for it
    assert [l["class"] for l in model.layers] == ["Dense", "Dense", "Dense"]
    assert result.data.mode == "subset" and result.data.train == 6000
    assert result.execution.status == "completed" and result.cell_errors == []


def test_starter_scores_zero_and_says_why(grade, assignment):
    starter = nbformat.read(assignment.starter, as_version=4)
    result = grade("starter", starter)
    assert result.score == 0
    for check in result.checks:
        assert check.status == "failed"
        assert "no variable `model`" in check.message
        assert "NotImplementedError" in check.message
    assert any(e.ename == "NotImplementedError" for e in result.cell_errors)


def test_lecture_mlp_loses_architecture_points_naming_the_layers(grade_variant):
    variant, result = grade_variant("lecture-mlp-300-100")
    assert variants.verdict_problems(variant, result) == []
    checks = checks_by_id(result)
    layers = checks["model-layers"]
    assert layers.status == "partial" and layers.points == pytest.approx(1.0)
    assert "layer 1: expected Dense(128, relu), found Dense(300, relu)" in layers.message
    assert "layer 2: expected Dense(64, relu), found Dense(100, relu)" in layers.message
    params = checks["model-params"]
    assert params.points == 0 and "266,610" in params.message and "109,386" in params.message
    assert checks["model-activations"].status == "passed"  # relu, relu, softmax all the same
    assert result.models["model"].total_params == 266_610  # seed 001


def test_a_raising_cell_still_gets_what_it_built_graded(grade):
    result = grade("raising_cell_after_model")
    assert any(e.ename == "ZeroDivisionError" for e in result.cell_errors)
    error = next(e for e in result.cell_errors if e.ename == "ZeroDivisionError")
    assert error.line is not None
    checks = checks_by_id(result)
    for cid in ("model-layers", "model-activations", "model-shapes", "model-params"):
        assert checks[cid].status == "passed", checks[cid].message


def test_missing_model_variable_is_named(grade):
    result = grade("no_model_variable")
    assert result.score == 0
    assert result.models["model"].status == "missing"
    assert all("no variable `model`" in c.message for c in result.checks)


def test_activation_layers_are_equivalent_to_activation_arguments(grade):
    checks = checks_by_id(grade("activation_layers_form"))
    for cid in ("model-layers", "model-activations", "model-shapes", "model-params"):
        assert checks[cid].status == "passed", checks[cid].message


def test_sgd_with_sparse_labels(grade):
    checks = checks_by_id(grade("sgd_sparse_labels"))
    assert checks["model-loss"].status == "passed"
    assert "sparse_categorical_crossentropy" in checks["model-loss"].message
    optimizer = checks["model-optimizer"]
    assert optimizer.status == "failed" and "expected Adam, found SGD" in optimizer.message


def test_untrained_model_fails_accuracy_with_numbers(grade_variant):
    variant, result = grade_variant("untrained")
    assert variants.verdict_problems(variant, result) == []
    checks = checks_by_id(result)
    acc = checks["model-accuracy"]
    assert acc.status == "failed" and acc.points == 0
    assert "measured 0." in acc.message and "expected at least" in acc.message
    assert acc.details["accuracy"] < 0.3
    assert "fit() never ran" in checks["model-loss"].message
    # The design itself is right: the grader's own training shows it learns.
    assert checks["model-timed-training"].status == "passed"


def test_wrong_final_activation(grade_variant):
    variant, result = grade_variant("relu-output")
    assert variants.verdict_problems(variant, result) == []
    checks = checks_by_id(result)
    assert "layer 3 (Dense(10)): expected softmax, found relu" in checks["model-activations"].message
    # One mistake costs points once: the activations check's, not the loss check's or layers' too.
    assert checks["model-loss"].status == checks["model-layers"].status == "passed", \
        (checks["model-loss"].message, checks["model-layers"].message)
    # Its accuracy is what the grader measures of the model it built, whatever that gives.
    assert "measured" in checks["model-accuracy"].message


def test_cli_check_writes_result_json_and_uses_exit_codes(tmp_path, data_dir, assignment):
    ref = nf.write(nf.reference_notebook(ASSIGNMENT), tmp_path / "ref.ipynb")
    out = tmp_path / "report"
    # The assignment comes from the notebook's metadata; the score is below an impossible bar.
    code = cli_main(["check", str(ref), "--out", str(out), "--data-dir", str(data_dir),
                     "--fail-under", str(assignment.max_score + 1)])
    assert code == 1
    result = json.loads((out / "result.json").read_text())
    assert result["score"] == result["max_score"] == assignment.max_score
    assert set(result) >= {"assignment", "notebook", "score", "max_score", "checks", "models",
                           "timings", "grader_version"}
    assert set(result["timings"]) >= {"execute", "grade", "total"}
    for check in result["checks"]:
        assert set(check) >= {"id", "title", "points", "max_points", "status", "message"}


def test_cli_usage_errors_exit_2(tmp_path, capsys):
    assert cli_main(["check", str(tmp_path / "nope.ipynb"), "-a", ASSIGNMENT]) == 2
    ref = nf.write(nf.reference_notebook(ASSIGNMENT), tmp_path / "ref.ipynb")
    assert cli_main(["check", str(ref), "-a", "no-such-homework"]) == 2
    assert "unknown assignment" in capsys.readouterr().err


def test_shuffled_labels_fail_accuracy_with_numbers(grade_variant):
    variant, result = grade_variant("shuffled-labels")
    assert variants.verdict_problems(variant, result) == []
    checks = checks_by_id(result)
    acc = checks["model-accuracy"]
    assert acc.points == 0 and acc.details["accuracy"] < 0.3
    assert "measured 0." in acc.message and "expected at least" in acc.message


@pytest.mark.parametrize("name", ["five-epochs", "functional-sparse-labels"])
def test_correct_variants_get_full_marks_in_subset_mode(grade_variant, name):
    """Fewer epochs than asked (the full data still reaches the homework's 0.888), the
    functional API and sparse labels: what the homework allows earns what the reference earns."""
    variant, result = grade_variant(name)
    assert variant.correct
    assert variants.verdict_problems(variant, result) == []
    assert result.score == result.max_score
    assert result.data.mode == "subset"


def test_colab_callbacks_train_and_get_full_marks(grade_variant):
    """TensorBoard (with %load_ext tensorboard and %tensorboard), ModelCheckpoint, CSVLogger,
    BackupAndRestore and tqdm's callback: without tensorboard in the kernel the TensorBoard
    callback raised after the first epoch and the model was graded as untrained."""
    variant, result = grade_variant("colab-callbacks")
    assert result.cell_errors == [], [(e.ename, e.evalue) for e in result.cell_errors]
    assert variants.verdict_problems(variant, result) == []
    assert result.score == result.max_score


def test_grading_twice_gives_identical_scores(grade, assignment, data_dir, tmp_path):
    first = grade("reference", nf.reference_notebook(ASSIGNMENT))
    path = nf.write(nf.reference_notebook(ASSIGNMENT), tmp_path / "again.ipynb")
    second = pipeline.grade(path, assignment, pipeline.Options(data_dir=data_dir))
    assert [(c.id, c.points, c.details.get("accuracy")) for c in second.checks] == \
        [(c.id, c.points, c.details.get("accuracy")) for c in first.checks]
    assert second.models["model"].timed_training.loss == \
        first.models["model"].timed_training.loss


MLP_CELL = ("from tensorflow import keras\n"
            "model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(128, 'relu'),\n"
            "                          keras.layers.Dense(64, 'relu'),\n"
            "                          keras.layers.Dense(10, 'softmax')])\n"
            "model.compile(optimizer='adam', loss='categorical_crossentropy')")


def test_full_mode_serves_the_whole_training_split_minus_the_holdout(tmp_path, data_dir,
                                                                     assignment):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "from tensorflow.keras.datasets import fashion_mnist\n"
        "(xdev, ydev), (xtest, ytest) = fashion_mnist.load_data()\n"
        "assert xdev.shape == (58000, 28, 28) and xtest.shape == (10000, 28, 28), xdev.shape"),
        # Compiled, never fitted: the grader's own training of the design is what runs here.
        nbformat.v4.new_code_cell(MLP_CELL)])
    path = nf.write(nb, tmp_path / "full.ipynb")
    result = pipeline.grade(path, assignment, pipeline.Options(data_dir=data_dir, mode=DataMode.FULL))
    assert result.cell_errors == []
    assert result.data.mode == "full" and result.data.train == 58000
    assert result.data.holdout == 2000
    # The grader's own training is the subset's in either mode, where its bar was calibrated:
    # the same budget, the same images, so the very same result as in subset mode.
    timed = result.models["model"].timed_training
    assert timed.epochs_run == assignment.training.epochs and not timed.stopped_by_time
    assert timed.cpu_cap == assignment.training.max_cpu_seconds
    subset_nb = nf.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(MLP_CELL)]),
                         tmp_path / "subset.ipynb")
    subset = pipeline.grade(subset_nb, assignment, pipeline.Options(data_dir=data_dir))
    assert subset.data.mode == "subset"
    assert subset.models["model"].timed_training.loss == timed.loss
    full_check, subset_check = ({c.id: c for c in r.checks}["model-timed-training"]
                                for r in (result, subset))
    assert subset_check.details["accuracy"] == full_check.details["accuracy"]
    assert subset_check.points == full_check.points == full_check.max_points
