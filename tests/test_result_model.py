"""The one result model (grader/result.py): result.json files load into it, old ones too, and
write back as they were. Fast: no notebook is executed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from grader.ta import manual_scores
from grader.batch.store import read_result
from grader.result import GradeResult
from grader.scoring import CheckStatus, DataMode, ModelStatus, RunStatus, TimedStatus
from result_factory import result_json

FIXTURES = Path(__file__).parent / "fixtures"
# result.json as `grader check` wrote it before unchanged_starter and limits existed.
OLD = FIXTURES / "fashion-mlp-reference.result.json"


def test_an_old_result_json_loads_typed_and_writes_back_what_it_held():
    text = OLD.read_text()
    result = GradeResult.model_validate_json(text)
    assert result.execution.status is RunStatus.COMPLETED and result.data.mode is DataMode.SUBSET
    assert all(isinstance(c.status, CheckStatus) for c in result.checks)
    model = result.models["model"]
    assert model.status is ModelStatus.FOUND and model.class_name == "Sequential"
    assert model.timed_training.status is TimedStatus.TRAINED
    assert model.total_params == 109386 and model.input_layout == [784]
    written = json.loads(result.to_json())
    # the fields it lacked are written as "not known", and nothing else changes
    assert written == {**json.loads(text), "unchanged_starter": None, "limits": None}
    assert set(written["models"]["model"]) == set(json.loads(text)["models"]["model"])
    # written again, the same file
    assert GradeResult.model_validate_json(result.to_json()).to_json() == result.to_json()


def test_a_batch_result_with_ta_points_round_trips():
    graded = GradeResult.model_validate(result_json(
        [{"id": "layers", "points": 1.0, "max_points": 3.0, "status": "partial",
          "message": "layer 2 differs", "details": {"comparison": []}},
         {"id": "essay", "points": 0.0, "max_points": 4.0, "status": "manual",
          "message": "awaiting TA grading"}],
        score=1.0, max_score=7.0,
        batch={"student": "alice", "layout": "file", "source": "alice/hw.ipynb",
               "status": "completed", "complete": True, "seconds": 61.2,
               "graded_at": "2026-01-01T00:00:00+00:00", "full": False}))
    result = manual_scores.apply(graded, [
        manual_scores.ManualScore("alice", "layers", 3, "fine"),
        manual_scores.ManualScore("alice", "essay", 2.5, "")])
    text = result.to_json()
    again = GradeResult.model_validate_json(text)
    assert again == result and again.to_json() == text
    layers, essay = again.checks
    assert layers.ta.ta_override and layers.ta.auto_status is CheckStatus.PARTIAL
    assert layers.ta.auto_points == 1.0 and layers.details["comparison"] == []
    assert essay.ta.ta_points == 2.5 and not essay.ta.ta_override
    assert again.score == 5.5 and again.batch.student == "alice"
    # what the previous version wrote for the same points reads the same way
    old = json.loads(text)
    old["checks"][0]["details"] = {"comparison": [], "ta_override": True, "auto_points": 1.0,
                                   "auto_status": "partial", "auto_message": "layer 2 differs",
                                   "ta_points": 3.0, "ta_comment": "fine"}
    assert GradeResult.model_validate(old).checks[0].ta == layers.ta


def test_fields_a_later_version_adds_are_kept():
    data = result_json(novel={"x": 1}, execution={"status": "completed", "novel": 2})
    written = json.loads(GradeResult.model_validate(data).to_json())
    assert written["novel"] == {"x": 1} and written["execution"]["novel"] == 2


def test_a_file_that_is_not_a_result_is_refused(tmp_path):
    with pytest.raises(ValidationError):
        GradeResult.model_validate(result_json(execution={"status": "finished"}))
    path = tmp_path / "result.json"
    path.write_text(json.dumps(result_json(score=-1.0)))
    assert read_result(path) is None  # the batch grades that student again
    path.write_text(json.dumps(result_json()))
    assert read_result(path) is not None


def test_a_file_name_that_is_not_utf8_reads_back(tmp_path):
    """A notebook whose file name is not UTF-8 (a Latin-1 `café`) is a lone surrogate in
    Python; json.dumps escapes it and pydantic's own JSON parser refuses the escape. The result
    must still read back, or the batch calls a graded student's grading failed."""
    result = GradeResult.model_validate(result_json(notebook="bob/caf\udce9.ipynb"))
    (tmp_path / "result.json").write_text(result.to_json())
    again = read_result(tmp_path / "result.json")
    assert again is not None and again.notebook == "bob/caf\udce9.ipynb"
    assert GradeResult.from_json(result.to_json()) == result
