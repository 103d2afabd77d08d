"""End to end on the mnist-cnn homework (seed 003, Problem Set 2, 75 points): a subclassed
`CustomizedCNN` whose summary says "multiple" for every shape, graded per part as the seed gives
the points, dropout tested by behaviour, and the written questions collected for a TA.

Each notebook is executed once, in a real kernel on the assignment's MNIST subset, and its result
is cached for the module.
"""

from __future__ import annotations

import nbformat
import pytest

import notebook_factory as nf
from grader.ta import manual_scores
from grader.instructor import variants

pytestmark = pytest.mark.slow

ASSIGNMENT = "mnist-cnn"
CODING = ("first-conv", "pooling", "second-conv", "fully-connected", "call-graph-shapes",
          "call-graph-params", "dropout", "loss", "accuracy", "timed-training")
WRITTEN = {"q2-1": 4, "q2-2": 2, "q2-3": 4, "q2-4": 4, "q2-5": 2, "q2-6": 2, "q2-7": 4, "q2-8": 3}
TABLE = "Dense 1024 (the summary table)"
TEXT = "Dense 128 (the problem text)"


def checks_by_id(result):
    return {c.id: c for c in result.checks}


def test_points_are_the_seeds(assignment):
    points = {c.id: c.points for c in assignment.checks}
    # Part 1 (50): first conv 5, pooling 5, second conv 5, fully connected 10, computation graph 15,
    # dropout 5, train and evaluate 5.
    assert points["first-conv"] == points["pooling"] == points["second-conv"] == 5
    assert points["fully-connected"] == 10
    assert points["call-graph-shapes"] + points["call-graph-params"] == 15
    assert points["dropout"] == 5
    assert points["loss"] + points["accuracy"] + points["timed-training"] == 5
    assert sum(points[c] for c in CODING) == 50
    # Part 2: 2.1 [4pts] 2.2 [2pts] 2.3 [4pts] 2.4 [4pts] 2.5 [2pts] 2.6 [2pts] 2.7 [4pts] 2.8 [3pts]
    assert {c: points[c] for c in WRITTEN} == WRITTEN
    assert assignment.max_score == 75  # "Problem Set 2: CNNs [75 pts]"


def test_reference_scores_full_marks_and_collects_the_answers(grade, assignment):
    result = grade("reference", nf.reference_notebook(ASSIGNMENT))
    checks = checks_by_id(result)
    failing = [(c, checks[c].message) for c in CODING if checks[c].status != "passed"]
    assert failing == []
    assert sum(checks[c].points for c in CODING) == 50
    assert result.execution.status == "completed" and result.cell_errors == []
    assert result.data.dataset == "mnist" and result.data.train == 2000
    model = result.models["model"]
    assert model.kind == "subclassed"
    assert model.source == "savedmodel"  # read from the exported graph, not the kernel
    assert model.unneeded_ops == [] and model.unused_layers == []
    # The seed's summary table: "Total params: 7,959,946"; 320, 18496, 7930880, 10250 per layer.
    assert model.total_params == 7_959_946
    assert [(l["class"], l["params"]) for l in model.layers] == [
        ("Conv2D", 320), ("MaxPooling2D", 0), ("Conv2D", 18_496), ("Flatten", 0),
        ("Dense", 7_930_880), ("Dense", 10_250)]
    # The summary says "multiple"; the grader traces a call for the real shapes ("11x11").
    assert [l["output_shape"] for l in model.layers] == [
        [None, 26, 26, 32], [None, 13, 13, 32], [None, 11, 11, 64], [None, 7744], [None, 1024],
        [None, 10]]
    assert TABLE in checks["fully-connected"].message
    assert model.timed_training.status == "trained"
    # A fresh CustomizedCNN, built from the notebook's class definition in the clean room.
    assert model.timed_training.where == "clean room"
    assert model.timed_training.head_start  # its room started as the notebook's fit() did
    assert model.timed_training.epochs_run == assignment.training.epochs
    assert f"after {assignment.training.epochs} epoch" in checks["timed-training"].message
    # Written answers wait for a TA, with their text collected for the report.
    for cid, points in WRITTEN.items():
        assert checks[cid].status == "manual" and checks[cid].points == 0
        assert checks[cid].max_points == points
    assert checks["q2-1"].details["answer"].startswith("False.")
    assert "PCA" in checks["q2-7"].details["answer"]
    assert result.score == 50 and result.max_score == assignment.max_score == 75


def test_ta_points_merge_into_the_reference_for_full_marks(grade, assignment):
    graded = grade("reference", nf.reference_notebook(ASSIGNMENT))
    scores = [manual_scores.ManualScore("ref", cid, float(points), "full marks")
              for cid, points in WRITTEN.items()]
    result = manual_scores.apply(graded, scores)
    assert result.score == result.max_score == 75 and graded.score == 50
    q = next(c for c in result.checks if c.id == "q2-4")
    assert q.status == "manual" and q.points == 4 and "graded by TA: 4/4" in q.message


def test_the_texts_128_units_are_accepted_and_named(grade, assignment):
    """The seed's text asks for 128 units (its student built that: 1,011,466 parameters)."""
    variant = dict(assignment.reference_variants)[TEXT]
    result = grade("dense128", nbformat.read(variant, as_version=4))
    checks = checks_by_id(result)
    failing = [(c, checks[c].message) for c in CODING if checks[c].status != "passed"]
    assert failing == []
    assert result.models["model"].total_params == 1_011_466
    assert "1,011,466 parameters, as expected" in checks["call-graph-params"].message
    assert TEXT in checks["call-graph-params"].message
    assert TEXT in checks["fully-connected"].message


def test_starter_scores_zero_and_says_why(grade, assignment):
    starter = nbformat.read(assignment.starter, as_version=4)
    assert starter.metadata["grader"]["assignment"] == ASSIGNMENT
    result = grade("starter", starter)
    assert result.score == 0
    checks = checks_by_id(result)
    for cid in CODING:
        assert checks[cid].status == "failed", cid
        assert "no variable `model`" in checks[cid].message
        assert "NotImplementedError" in checks[cid].message
    for cid in WRITTEN:
        assert checks[cid].status == "manual"
        assert checks[cid].message == f"no answer to question {cid[1:].replace('-', '.')}"


def test_mistakes_cost_the_parts_they_touch(grade_variant):
    """First convolution 16@5x5; dropout also at inference; compiled, never trained."""
    variant, result = grade_variant("mistakes")
    assert variants.verdict_problems(variant, result) == []
    checks = checks_by_id(result)
    assert checks["first-conv"].points == 0
    assert ("layer 1: expected Conv2D(32, 3x3, relu), found Conv2D(16, 5x5, relu)"
            in checks["first-conv"].message)
    for cid in ("pooling", "second-conv", "fully-connected"):
        assert checks[cid].status == "passed", (cid, checks[cid].message)
    # 24x24x16 → pool 12x12 → conv 10x10x64: every shape after the first layer differs.
    shapes = checks["call-graph-shapes"]
    assert shapes.status == "partial"
    assert "expected output (None, 26, 26, 32), found (None, 24, 24, 16)" in shapes.message
    assert checks["call-graph-params"].points == 0
    dropout = checks["dropout"]  # there, but never switched off: half the points
    assert dropout.status == "partial" and dropout.points == 2.5
    assert "two forward passes with training=False differ" in dropout.message
    assert checks["accuracy"].points == 0 and "measured 0." in checks["accuracy"].message
    assert "fit() never ran" in checks["loss"].message
    assert checks["timed-training"].status == "passed"  # the design still learns


def test_missing_pooling_and_dropout_are_named(grade_variant):
    variant, result = grade_variant("no-pooling-no-dropout")
    assert variants.verdict_problems(variant, result) == []
    checks = checks_by_id(result)
    # The layer is defined in __init__, but call() skips it: the traced call decides.
    pooling = checks["pooling"]
    assert pooling.points == 0 and "missing MaxPooling2D(2x2)" in pooling.message
    assert "is defined but call() never uses it" in pooling.message
    assert [u["class"] for u in result.models["model"].unused_layers] == ["MaxPooling2D"]
    assert checks["first-conv"].status == checks["second-conv"].status == "passed"
    assert checks["fully-connected"].status == "passed"
    assert TEXT in checks["fully-connected"].message
    assert "expected output (None, 11, 11, 64), found (None, 24, 24, 64)" in \
        checks["call-graph-shapes"].message
    dropout = checks["dropout"]
    assert dropout.points == 0
    assert "no dropout is active during training" in dropout.message


def test_unscaled_pixels_and_one_hot_labels_get_full_marks(grade_variant):
    """Problem Set 2 never says to scale the pixels: 0..255 as loaded, one-hot labels with the
    categorical loss. The grader measures it on the scaling that suits it."""
    variant, result = grade_variant("raw-pixels-one-hot")
    assert variant.correct
    assert variants.verdict_problems(variant, result) == []
    checks = checks_by_id(result)
    assert checks["accuracy"].details["scaling"] == "raw"
    loss = str(result.models["model"].compile["loss"]).lower()
    assert "categorical" in loss and "sparse" not in loss


def test_a_class_that_reshapes_in_call_is_retrained_and_gets_full_marks(grade_variant):
    """A Reshape layer and tf.cast in call(), built for (None, 28, 28), and a notebook cell
    that tries the model on an image it names `x`: the clean room trains the class without
    that cell (it once failed with "NameError: name 'train_images' is not defined")."""
    variant, result = grade_variant("reshape-in-call")
    assert variants.verdict_problems(variant, result) == []
    checks = checks_by_id(result)
    assert checks["timed-training"].status == "passed", checks["timed-training"].message
    automatic = [c for c in result.checks if c.id not in WRITTEN]
    assert all(c.points == c.max_points for c in automatic), \
        [(c.id, c.message) for c in automatic if c.points != c.max_points]


def _solution_with_constructor(assignment, call: str, before: str):
    """The reference with `model = CustomizedCNN()` replaced by `call`, after a cell `before`."""
    nb = nbformat.read(assignment.reference_dir / "mnist-cnn-solution.ipynb", as_version=4)
    cells = []
    for cell in nb.cells:
        if cell.cell_type == "code" and "model = CustomizedCNN()" in cell.source:
            cells.append(nbformat.v4.new_code_cell(before))
            cell.source = cell.source.replace("model = CustomizedCNN()", call)
        cells.append(cell)
    assert len(cells) == len(nb.cells) + 1
    nb.cells = cells
    return nb


def test_a_constructor_given_the_notebooks_own_names_is_repeated_in_the_clean_room(grade,
                                                                                   assignment):
    """`CustomizedCNN(name=MODEL_NAME)`: the room evaluates the notebook's own argument after
    the definitions the argument reads (it once refused every argument that was not a constant)."""
    nb = _solution_with_constructor(assignment, "model = CustomizedCNN(name=MODEL_NAME)",
                                    'MODEL_NAME = "customized_cnn"')
    result = grade("named-constructor", nb)
    timed = checks_by_id(result)["timed-training"]
    assert timed.status == "passed", timed.message
    assert result.score is not None


def test_a_name_the_clean_room_cannot_rebuild_is_not_scored_and_never_a_zero(grade, assignment):
    """A name bound through globals() runs in the notebook but no clean room can see it: the
    timed-training check is the grader's error naming the name, the notebook has no score yet
    (no zero counted), and every other check is graded as usual."""
    nb = _solution_with_constructor(assignment, "model = CustomizedCNN(name=MODEL_NAME)",
                                    'globals()["MODEL_NAME"] = "customized_cnn"')
    result = grade("globals-constructor", nb)
    timed = checks_by_id(result)["timed-training"]
    assert timed.status == "error" and timed.points == 0.0
    assert "not scored" in timed.message and "MODEL_NAME" in timed.message, timed.message
    assert result.unscored == ["timed-training"] and result.score is None
    others = [c for c in result.checks if c.id in CODING and c.id != "timed-training"]
    assert all(c.points == c.max_points for c in others), \
        [(c.id, c.message) for c in others if c.points != c.max_points]
