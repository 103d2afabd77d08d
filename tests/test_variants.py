"""The committed variants (reference/<id>/variants/) and the calibrated files, without running a
notebook: what the variants are, and what the thresholds say about the runs they came from."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest

import notebook_factory as nf
from grader import assignment as spec, paths
from grader.instructor import variants
from grader.checks.autoencoder_checks import code_accuracy_bar, reconstruction_bar

ASSIGNMENTS = ("fashion-mlp", "lenet5", "autoassociator", "mnist-cnn")


def _code(nb: nbformat.NotebookNode) -> list[tuple[str, tuple[str, ...]]]:
    return [(c.source, tuple(c.metadata.get("tags", ()))) for c in nb.cells
            if c.cell_type == "code"]


@pytest.mark.parametrize("assignment_id", ASSIGNMENTS)
def test_committed_variants_are_what_the_factory_builds(assignment_id):
    assignment = spec.load(assignment_id)
    committed = {v.name: v for v in variants.load_all(assignment)}
    assert set(committed) == set(nf.VARIANTS[assignment_id]), \
        "run python3 tests/notebook_factory.py to rewrite the variants"
    for name, variant in committed.items():
        built = nf.build_variant(assignment_id, name)
        on_disk = nbformat.read(variant.path, as_version=4)
        assert _code(on_disk) == _code(built), f"{name}: run python3 tests/notebook_factory.py"
        assert on_disk.metadata["grader"] == built.metadata["grader"]
        assert on_disk.metadata["grader"]["assignment"] == assignment_id


@pytest.mark.parametrize("assignment_id", ASSIGNMENTS)
def test_every_assignment_has_correct_and_wrong_variants(assignment_id):
    found = variants.load_all(spec.load(assignment_id))
    assert any(v.correct for v in found) and any(not v.correct for v in found)
    for v in found:
        if not v.correct:
            assert v.meta.loses and not set(v.meta.loses) & set(v.meta.keeps)


def test_a_variant_without_metadata_or_naming_unknown_checks_is_refused(tmp_path):
    nb = nbformat.v4.new_notebook()
    path = nf.write(nb, tmp_path / "x.ipynb")
    with pytest.raises(variants.VariantError, match="no metadata.grader.variant"):
        variants.read_meta(path)
    nb.metadata["grader"] = {"variant": {"label": "x", "verdict": "maybe"}}
    nf.write(nb, path)
    with pytest.raises(variants.VariantError, match="verdict"):
        variants.read_meta(path)


def test_a_wrong_variant_silent_on_the_graders_training_is_refused(tmp_path, monkeypatch):
    """How far a wrong design gets in the grader's training depends on its budget: without a
    verdict there, a cut budget could move the grade with calibration none the wiser."""
    root = tmp_path / "course"
    for part in ("assignments", "reference"):
        shutil.copytree(Path(nf.__file__).parents[1] / part / "fashion-mlp",
                        root / part / "fashion-mlp")
    monkeypatch.setenv(paths.COURSE_VARIABLE, str(root))
    assignment = spec.load("fashion-mlp")
    assert [v.name for v in variants.load_all(assignment)]  # the committed ones all say it
    path = root / "reference" / "fashion-mlp" / "variants" / "untrained.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.metadata["grader"]["variant"]["keeps"].remove("model-timed-training")
    nf.write(nb, path)
    with pytest.raises(variants.VariantError, match=r"untrained\.ipynb: a wrong variant must say "
                       r"whether it loses or keeps .* \(model-timed-training\)"):
        variants.load_all(assignment)
    nb.metadata["grader"]["variant"]["pending"] = ["model-timed-training"]
    nf.write(nb, path)
    assert "untrained" in [v.name for v in variants.load_all(assignment)]


@pytest.mark.parametrize("assignment_id", ASSIGNMENTS)
def test_accuracy_bars_are_cleared_by_every_correct_run_with_margin(assignment_id):
    """Grades must not depend on the machine: every calibration seed and every correct variant
    clears the bar by at least the tolerance, and no bar exceeds the homework's figure less it."""
    assignment = spec.load(assignment_id)
    thresholds = assignment.thresholds()
    tolerance = thresholds["tolerance"]
    # A variant whose checks the grader cannot all score yet (`pending`) is no calibration run.
    correct = {v.label for v in variants.load_all(assignment) if v.correct and not v.meta.pending}
    for check in assignment.checks:
        if check.kind not in ("accuracy", "timed_training"):
            continue
        metric = "accuracy" if check.kind == "accuracy" else "timed_accuracy"
        entry = thresholds["objects"][check.object][metric]
        runs = entry["correct_runs"]
        assert len(entry["runs"]) >= 3, "calibrate over several seeds"
        assert correct <= set(runs), f"{check.id}: a correct variant is missing from calibration"
        for run, value in runs.items():
            assert value - entry["threshold"] >= tolerance - 1e-9, (check.id, run, value)
        figure = getattr(check.options, "homework_figure", None)  # accuracy checks only
        if figure is not None:
            assert entry["threshold"] <= figure - tolerance


def test_homework_figures_are_declared_where_the_homework_states_one():
    figures = {(a, c.id): c.options.homework_figure
               for a in ASSIGNMENTS for c in spec.load(a).checks if c.kind == "accuracy"}
    assert figures[("fashion-mlp", "model-accuracy")] == 0.888  # seed 004, 3.2.7
    assert figures[("lenet5", "cnn-accuracy")] == 0.892  # seed 004, 4.2.4
    assert figures[("lenet5", "dropout-accuracy")] == 0.880  # seed 004, 4.3.1
    assert figures[("mnist-cnn", "accuracy")] == 0.987  # seed 003: ~98.7 % after 10 epochs


def test_homework_7_bars_are_the_trivial_answers_beaten_by_a_margin():
    """Q1a and Q1b ask for something that works: the bars follow from the mean image and chance
    with the margins the spec documents, and every correct run calibrated clears them."""
    assignment = spec.load("autoassociator")
    checks = {c.id: c for c in assignment.checks}
    q1a, q1b = checks["q1a-reconstruction"], checks["q1b-code-accuracy"]
    assert reconstruction_bar(q1a, 0.0885) == pytest.approx(
        (1 - q1a.options.margin_below_mean_image) * 0.0885)
    assert code_accuracy_bar(q1b, 10) == pytest.approx(0.1 + q1b.options.margin_above_chance)
    objects = assignment.thresholds()["objects"]
    recon, codes = objects["aanetwork"]["reconstruction"], objects["classifier"]["code_accuracy"]
    labels = {v.label for v in variants.load_all(assignment) if v.correct}
    labels |= {label for label, _ in assignment.reference_variants}
    assert labels <= set(recon["correct_runs"]) and labels <= set(codes["correct_runs"])
    assert max(recon["correct_runs"].values()) <= recon["threshold"]
    assert min(codes["correct_runs"].values()) >= codes["threshold"]
