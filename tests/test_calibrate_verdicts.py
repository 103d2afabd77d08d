"""grader calibrate grades every variant and names the one whose verdict is wrong; it says what
it wrote and which runs it used. The kernel is replaced by recorded outcomes: these tests are
about calibrate's bookkeeping, the slow tests run it for real."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from grader.instructor import calibrate as calibrate_mod, variants
from grader import cli, paths, assignment as spec
from grader.result import GradeResult
from result_factory import result_json

REPO = Path(__file__).resolve().parent.parent
ASSIGNMENT = "fashion-mlp"


@pytest.fixture
def course(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "course"
    shutil.copytree(REPO / "assignments" / ASSIGNMENT, root / "assignments" / ASSIGNMENT)
    shutil.copytree(REPO / "reference" / ASSIGNMENT, root / "reference" / ASSIGNMENT)
    monkeypatch.setenv(paths.COURSE_VARIABLE, str(root))
    return root


def fake_kernel(monkeypatch, lost: dict[str, set[str]]):
    """Each notebook 'loses' the checks `lost` gives for its file's stem (none by default)."""
    assignment = spec.load(ASSIGNMENT)
    ran: list[str] = []

    def execute(path, assignment, options, kernel_seed=0, training_seed=None):
        ran.append(Path(path).stem)
        return SimpleNamespace(path=Path(path), objects={},
                               data=SimpleNamespace(summary={}, holdout_labels=None,
                                                    holdout_images=None))

    def score(harvest, assignment):
        losing = lost.get(harvest.path.stem, set())
        return GradeResult.model_validate(result_json([
            {"id": c.id, "status": "failed" if c.id in losing else "passed",
             "points": 0.0 if c.id in losing else c.points, "max_points": c.points,
             "message": "lost" if c.id in losing else "ok"} for c in assignment.checks],
            score=1.0))

    monkeypatch.setattr(calibrate_mod, "execute_and_harvest", execute)
    monkeypatch.setattr(calibrate_mod, "score_harvest", score)
    monkeypatch.setattr(calibrate_mod, "_require_clean", lambda *a, **k: None)
    monkeypatch.setattr(calibrate_mod, "_values", lambda assignment, harvest, only=None: {
        ("model", "accuracy"): 0.85, ("model", "timed_accuracy"): 0.80})
    return assignment, ran


def wrong_losses(assignment) -> dict[str, set[str]]:
    """What each wrong variant's metadata says it loses: the verdicts a sound grader gives."""
    return {v.name: set(v.meta.loses) for v in variants.load_all(assignment) if not v.correct}


def test_calibrate_grades_every_variant_and_says_what_it_used(course, monkeypatch, capsys):
    assignment = spec.load(ASSIGNMENT)
    _, ran = fake_kernel(monkeypatch, wrong_losses(assignment))
    assert cli.main(["calibrate", "-a", ASSIGNMENT, "--runs", "2"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    every = {v.name for v in variants.load_all(assignment) if not v.meta.pending}
    assert every <= set(ran)  # correct and wrong ones alike
    pending = {v.name for v in variants.load_all(assignment) if v.meta.pending}
    assert not pending & set(ran)  # checks the grader cannot score yet: no calibration run
    for name in pending:
        assert f"'{name}' (" in out and "cannot score" in out
    assert "the reference (seed 0)" in out and "the reference (seed 1)" in out
    assert "the correct variant 'five-epochs'" in out
    assert "'untrained' (" in out and "loses model-accuracy" in out
    reference = course / "reference" / ASSIGNMENT
    assert f"wrote: {reference / 'expected.json'}, {reference / 'thresholds.json'}" in out
    assert str(reference / "constraints.txt") in out
    assert "bar: model accuracy 0.8200" in out


def test_a_wrong_variant_that_keeps_a_check_it_must_lose_fails_calibration(course, monkeypatch,
                                                                           capsys):
    assignment = spec.load(ASSIGNMENT)
    lost = wrong_losses(assignment)
    lost["shuffled-labels"] = set()  # the grader let it pass everything
    fake_kernel(monkeypatch, lost)
    assert cli.main(["calibrate", "-a", ASSIGNMENT, "--runs", "1"]) == 3
    err = " ".join(capsys.readouterr().err.split())
    assert "the wrong variant 'shuffled-labels'" in err
    assert "model-accuracy passed, but this variant must lose it" in err
    assert "'untrained'" not in err  # the others got their verdicts


def test_a_correct_variant_that_loses_points_fails_calibration_naming_it(course, monkeypatch,
                                                                         capsys):
    assignment = spec.load(ASSIGNMENT)
    lost = wrong_losses(assignment)
    lost["standardized"] = {"model-accuracy"}
    fake_kernel(monkeypatch, lost)
    assert cli.main(["calibrate", "-a", ASSIGNMENT, "--runs", "1"]) == 3
    err = " ".join(capsys.readouterr().err.split())
    assert "the correct variant 'standardized' loses points: model-accuracy failed" in err


def test_a_variant_without_metadata_is_a_usage_error(course, monkeypatch, capsys):
    fake_kernel(monkeypatch, {})
    shutil.copy(course / "assignments" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb",
                course / "reference" / ASSIGNMENT / "variants" / "mine.ipynb")
    assert cli.main(["calibrate", "-a", ASSIGNMENT]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "mine.ipynb: no metadata.grader.variant" in err and "docs/authoring.md" in err
