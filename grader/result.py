"""The result model: one graded notebook, as result.json holds it (schema_version 1).

The pipeline builds a `GradeResult`, the batch and the TA tools make new ones from it
(`model_copy(update=...)`), and every renderer reads one (`GradeResult.from_json` for
a saved file). schemas/result.schema.json is generated from these classes
(schemas/generate.py). Statuses are the enums of grader/scoring.py.

Later versions of schema_version 1 may add fields, so every object keeps fields it does not list
(`extra="allow"`) and a result.json written by an older grader, lacking an optional field, still
loads. An optional field a result did not have is not written back either (`_Sparse`): a file
read and written again keeps its keys.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Any, Literal

from pydantic import (BaseModel, ConfigDict, Field, NonNegativeFloat, NonNegativeInt,
                      SerializerFunctionWrapHandler, field_validator,
                      model_serializer)
from pydantic.json_schema import SkipJsonSchema

from .scoring import SCHEMA_VERSION, CheckStatus, DataMode, ModelStatus, RunStatus, TimedStatus

LimitName = Literal["memory", "processes", "disk", "files", "file_size"]


class _Open(BaseModel):
    """Fields beyond the listed ones are kept (a later version of schema_version 1 adds some)."""

    # NaN and infinities (a diverged training's loss) are written as JSON's NaN/Infinity, as
    # Python's json module reads them back.
    model_config = ConfigDict(extra="allow", validate_by_name=True, validate_by_alias=True,
                              serialize_by_alias=True, ser_json_inf_nan="constants")


class _Sparse(_Open):
    """An object whose optional fields appear only when set: the ones a result lacked (or a
    producer left out) are not written as nulls."""

    @model_serializer(mode="wrap")
    def _only_set(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        fields = type(self).model_fields
        keep = {(fields[n].alias if n in fields else None) or n for n in self.model_fields_set}
        keep |= set(self.model_extra or {})
        return {k: v for k, v in data.items() if k in keep}


# ---- checks -----------------------------------------------------------------------------------

class TAPoints(BaseModel):
    """A TA's points on a check (grader/ta/manual_scores.py), kept in the check's `details` beside
    what the check found: `ta_points`, `ta_comment`, and for an automatic check the TA overrode,
    `ta_override` with the grader's own `auto_points`, `auto_status` and `auto_message`."""

    model_config = ConfigDict(extra="ignore")

    ta_points: float
    ta_comment: str = ""
    ta_override: bool = False
    auto_points: float | None = None
    auto_status: CheckStatus | None = None
    auto_message: str | None = None

    @field_validator("auto_status", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return value or None

    @classmethod
    def of(cls, details: dict[str, Any]) -> TAPoints | None:
        """The TA's grade recorded in a check's details, or None (none, or unreadable)."""
        if not isinstance(details, dict) or "ta_points" not in details:
            return None
        try:
            return cls.model_validate({k: v for k, v in details.items() if v is not None})
        except ValueError:
            return None

    def as_details(self) -> dict[str, Any]:
        keys = TA_KEYS if self.ta_override else ("ta_points", "ta_comment", "auto_message")
        return {k: v for k, v in self.model_dump(mode="json").items()
                if k in keys and v is not None}


# Every key of a check's details that belongs to the TA's grade.
TA_KEYS = tuple(TAPoints.model_fields)


class CheckResult(_Open):
    id: str
    title: str
    points: NonNegativeFloat
    max_points: NonNegativeFloat
    status: CheckStatus
    message: str = Field(description="what was expected and what was found")
    details: dict[str, Any] = Field(default_factory=dict)

    def __init__(self, *args: Any, **fields: Any) -> None:
        # The checks' positional form, (id, title, points, max_points, status, message, details).
        fields.update(zip(_CHECK_FIELDS, args))
        super().__init__(**fields)

    @classmethod
    def scored(cls, spec: Any, fraction: float, message: str, **details: Any) -> CheckResult:
        """Points from a fraction in [0, 1]; status follows from it."""
        fraction = min(1.0, max(0.0, fraction))
        points = round(spec.points * fraction, 2)
        status = CheckStatus.PASSED if fraction >= 1.0 else \
            CheckStatus.FAILED if points == 0 else CheckStatus.PARTIAL
        return cls(id=spec.id, title=spec.title, points=points, max_points=spec.points,
                   status=status, message=message, details=details)

    @classmethod
    def error(cls, spec: Any, message: str) -> CheckResult:
        return cls(id=spec.id, title=spec.title, points=0.0, max_points=spec.points,
                   status=CheckStatus.ERROR, message=message)

    @property
    def ta(self) -> TAPoints | None:
        """The TA's points on this check, if any."""
        return TAPoints.of(self.details)

    @property
    def overridden(self) -> bool:
        """An automatic check whose points a TA set (a manual check's TA points are its grade)."""
        return bool(self.details.get("ta_override"))


_CHECK_FIELDS = ("id", "title", "points", "max_points", "status", "message", "details")


# ---- models ----------------------------------------------------------------------------------

class TimedTraining(_Sparse):
    """The grader's own training of a model's design (the timed-training check)."""

    status: TimedStatus
    message: str | None = None
    epochs_run: NonNegativeInt | None = None
    epochs: NonNegativeInt | None = None
    seconds_per_epoch: list[float] | None = None
    cpu_seconds: NonNegativeFloat | None = None
    cpu_cap: NonNegativeFloat | None = None
    stopped_by_time: bool | None = None
    loss: list[float | None] | None = None
    train_accuracy: list[float | None] | None = None
    where: str | None = Field(None, description="\"grader\" or \"clean room\": which process "
                              "trained it")
    head_start: bool | None = Field(None, description="trained while the notebook still ran, "
                                    "from the design its fit() started with, which the final "
                                    "model has too")
    seconds: NonNegativeFloat | None = Field(None, description="what the grading waited for "
                                             "this training after the notebook's last cell")


class ModelResult(_Sparse):
    """What the trusted side measured of one object the spec names (grader/harvest)."""

    status: ModelStatus
    message: str | None = None
    type: str | None = Field(None, description="the object's Python type")
    class_name: str | None = Field(None, alias="class")
    kind: str | None = Field(None, description="Keras model: Sequential, Functional or "
                             "subclassed")
    built: bool | None = None
    source: str | None = Field(None, description="\"savedmodel\": measured from its exported "
                               "graph (a subclassed model)")
    input_shape: list[int | None] | None = None
    layers: list[dict[str, Any]] | None = None
    unused_layers: list[Any] | None = None
    total_params: NonNegativeInt | None = None
    weights_params: NonNegativeInt | None = None
    trace_error: str | None = None
    graph_ops: list[str] | None = None
    unneeded_ops: list[str] | None = Field(None, description="graph operations a classifier "
                                           "does not need (a lookup of the inputs)")
    constant_values: NonNegativeInt | None = None
    compile: dict[str, Any] | None = None
    input_layout: list[int] | None = Field(None, description="the input's shape the model "
                                           "was measured with")
    timed_training: TimedTraining | None = None


# ---- the run ---------------------------------------------------------------------------------

class TimeLimit(_Open):
    scope: Literal["cell", "notebook"]
    seconds: float
    origin: Literal["option", "spec"] = Field(description="--timeout, or the assignment's "
                                              "assignment.toml [execution]")
    source: str = Field(description="where to change it, e.g. \"--timeout 120\"")


class Execution(_Sparse):
    status: RunStatus
    message: str | None = None
    harvested: bool = False
    time_limit: TimeLimit | None = Field(None, description="the time limit a cell or the "
                                         "notebook ran past first, and where its value came from")


class CellError(_Sparse):
    cell: NonNegativeInt = Field(description="0-based index among all cells")
    execution_count: int | None = None
    ename: str
    evalue: str
    line: int | None = None
    traceback: str
    note: str | None = Field(None, description="that the error costs no points by itself: "
                             "points come only from the checks")
    hint: str | None = Field(None, description="a module the assignment's packages name and "
                             "this machine lacks, and what to do")


class Data(_Sparse):
    dataset: str | None = None
    mode: DataMode | None = None
    seed: int | None = None
    train: NonNegativeInt | None = None
    test: NonNegativeInt | None = None
    holdout: NonNegativeInt | None = None
    holdout_secret: bool | None = Field(None, description="the holdout was drawn by the "
                                        "instructor's secret, not the public seed")
    holdout_secret_source: str | None = None
    holdout_perturbation_sd: float | None = Field(None, description="the noise added to the "
                                                  "holdout images a model is measured on")
    source: str | None = Field(None, description="the dataset's folder")


class LimitHit(_Open):
    limit: LimitName
    stopped: bool = Field(description="the process tree was stopped")
    cell: NonNegativeInt | None = Field(None, description="0-based index of the cell that ran")
    execution_count: int | None = None
    detail: str = ""
    message: str


class MissingMechanism(_Open):
    mechanism: str
    why: str
    enable: str = Field("", description="how to put it in force")


class Limits(_Open):
    values: dict[str, NonNegativeInt] = Field(description="memory_mb, processes, disk_mb, "
                                              "files, file_mb")
    held_by: dict[str, list[str]] = Field(description="per cap, the mechanisms that held it")
    missing: list[MissingMechanism] = Field(description="mechanisms not in force here")
    hits: list[LimitHit] = Field(description="caps the kernel reached")


# ---- the batch -------------------------------------------------------------------------------

class BatchInfo(_Open):
    """What `grader grade` adds to each student's result.json (grader/batch/store.py)."""

    student: str
    layout: str = ""
    source: str = Field("", description="the notebook, relative to the submissions folder")
    status: RunStatus
    complete: bool = Field(description="graded to the end: the next run skips it while the "
                           "notebook, the assignment version and the data mode are the same")
    seconds: NonNegativeFloat = 0.0
    graded_at: str = ""
    full: bool = Field(False, description="graded on the whole dataset (--full)")


# ---- the result ------------------------------------------------------------------------------

class GradeResult(_Open):
    assignment: str
    assignment_title: str
    assignment_version: str = Field(description="changes when the spec, expected architecture "
                                    "or thresholds change")
    notebook: str
    notebook_sha256: str = Field(pattern=r"^([0-9a-f]{64})?$")
    score: NonNegativeFloat | None = Field(description="points; null when not graded (a "
                                           "grader error), never a zero")
    max_score: NonNegativeFloat
    checks: list[CheckResult]
    models: dict[str, ModelResult] = Field(default_factory=dict)
    execution: Execution
    cell_errors: list[CellError] = Field(default_factory=list)
    data: Data = Field(default_factory=Data)
    timings: dict[str, NonNegativeFloat] = Field(default_factory=dict)
    grader_version: str
    sandbox: Literal["bwrap", "none"] = "none"
    unchanged_starter: bool | None = Field(None, description="the notebook's code cells are "
                                           "the starter's (handed in untouched); null when "
                                           "that could not be told")
    limits: Limits | None = Field(None, description="the kernel's caps and what enforced them "
                                  "(null when the grader failed before the kernel ran)")
    schema_version: Literal[1] = SCHEMA_VERSION
    batch: BatchInfo | None = Field(None, description="`grader grade` only: the student and "
                                    "how this grading went")
    # What the trusted side measured for the class's similarity report (grader/similarity/):
    # weight fingerprints and holdout labels. Never in result.json: only the batch's worker
    # passes it on (to_json(evidence=True)), and the batch keeps it in OUT/<student>/
    # similarity.json, away from every student-facing report.
    evidence: SkipJsonSchema[dict[str, Any] | None] = Field(None, exclude=True)

    @model_serializer(mode="wrap")
    def _without_unset_batch(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        if self.batch is None:  # `grader check` results have no batch field at all
            data.pop("batch", None)
        return data

    @property
    def status(self) -> RunStatus:
        return self.execution.status

    @property
    def grader_error(self) -> bool:
        return self.execution.status == RunStatus.GRADER_ERROR

    @property
    def unscored(self) -> list[str]:
        """Checks the grader failed on, each a reason this notebook has no score yet."""
        return unscored(self.checks)

    def as_dict(self) -> dict[str, Any]:
        return json.loads(self.to_json())

    @classmethod
    def from_json(cls, text: str | bytes) -> "GradeResult":
        """A result from what to_json() wrote. Read with Python's json, not pydantic's parser:
        a notebook's file name that is not UTF-8 comes back as a lone surrogate, which
        json.dumps writes as an escape (`\\udce9`) and pydantic's parser refuses as invalid
        JSON. Raises ValueError (a JSONDecodeError or pydantic's ValidationError)."""
        return cls.model_validate(json.loads(text))

    def to_json(self, evidence: bool = False) -> str:
        data = self.model_dump(mode="json", fallback=_json_default)
        if evidence and self.evidence is not None:
            data["evidence"] = json.loads(json.dumps(self.evidence, default=_json_default))
        return json.dumps(data, indent=2)


def read_result(path: Path) -> GradeResult | None:
    """A student's result.json, or None when there is none or it is not a result (a file
    that is not one is graded again)."""
    try:
        return GradeResult.from_json(path.read_bytes())
    except (OSError, ValueError):  # pydantic's ValidationError is a ValueError
        return None


def total(checks: list[CheckResult]) -> float:
    return round(sum(c.points for c in checks), 2)


def unscored(checks: list[CheckResult]) -> list[str]:
    """The ids of the checks the grader itself failed on."""
    return [c.id for c in checks if c.status == CheckStatus.ERROR]


def score_of(checks: list[CheckResult]) -> float | None:
    """The notebook's score, or None while a check is the grader's error: a check the grader
    could not score is not a zero, and a total that counted it as one would be."""
    return None if unscored(checks) else total(checks)


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Enum):
        return value.value
    return str(value)


# What a renderer is given: the model, or result.json's form (read through the model).
ResultLike = GradeResult | dict[str, Any]


def as_result(result: ResultLike) -> GradeResult:
    """A result to read: the model itself, or result.json's form validated into one."""
    return result if isinstance(result, GradeResult) else GradeResult.model_validate(result)
