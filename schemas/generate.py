"""Write the JSON Schemas of schemas/: `python3 schemas/generate.py` (from the repository root).

- assignment.schema.json: assignments/<id>/assignment.toml read as TOML, generated from the
  typed models that grader/spec.py validates specs with (grader/spec_format.py).
- result.schema.json: result.json as grader/scoring.py writes it (schema_version 1), from the
  models below. Later versions of schema_version 1 may add fields, so objects accept fields
  beyond the ones listed; the listed ones are required and typed.

`--check` writes nothing and exits 1 when a committed schema differs from what this script
generates (the tests run it the same way).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, NonNegativeInt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grader import scoring, spec_format  # noqa: E402  (the checkout beside this script)

SCHEMAS = ROOT / "schemas"
RESULT_ID = "https://dl-grader.invalid/schemas/result.schema.json"

# grader_error: the grader's own failure (no points, retried), added beside the run statuses.
GRADER_ERROR = "grader_error"
CHECK_STATUS = Literal[tuple(dict.fromkeys((*scoring.STATUSES, GRADER_ERROR)))]  # type: ignore
EXECUTION_STATUS = Literal[
    "completed", "timeout", "kernel_died", "start_failed", "invalid_notebook",  # one notebook
    "no_notebook", "ambiguous", "worker_failed", "worker_timeout",  # a batch's student
    GRADER_ERROR]
MODEL_STATUS = Literal["found", "missing", "wrong_type", "error", "not_harvested"]


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Check(Open):
    id: str
    title: str
    points: NonNegativeFloat
    max_points: NonNegativeFloat
    status: CHECK_STATUS
    message: str = Field(description="what was expected and what was found")
    details: dict[str, Any] = Field(default_factory=dict)


class HarvestedObject(Open):
    status: MODEL_STATUS
    message: str | None = None
    kind: str | None = Field(None, description="Keras model: Sequential, Functional or "
                             "subclassed")
    layers: list[dict[str, Any]] | None = None
    total_params: NonNegativeInt | None = None


class TimeLimit(Open):
    scope: Literal["cell", "notebook"]
    seconds: float
    origin: Literal["option", "spec"] = Field(description="--timeout, or the assignment's "
                                              "assignment.toml [execution]")
    source: str = Field(description="where to change it, e.g. \"--timeout 120\"")


class Execution(Open):
    status: EXECUTION_STATUS
    message: str | None
    harvested: bool
    time_limit: TimeLimit | None = Field(None, description="the time limit a cell or the "
                                         "notebook ran past first, and where its value came from")


class CellError(Open):
    cell: NonNegativeInt = Field(description="0-based index among all cells")
    execution_count: int | None
    ename: str
    evalue: str
    line: int | None
    traceback: str
    note: str | None = Field(None, description="that the error costs no points by itself: "
                             "points come only from the checks")


class Data(Open):
    dataset: str | None = None
    mode: Literal["subset", "full"] | None = None
    train: NonNegativeInt | None = None
    test: NonNegativeInt | None = None
    holdout: NonNegativeInt | None = None


class LimitHit(Open):
    limit: Literal["memory", "processes", "disk", "files", "file_size"]
    stopped: bool = Field(description="the process tree was stopped")
    cell: NonNegativeInt | None = Field(description="0-based index of the cell that ran")
    execution_count: int | None
    message: str


class MissingMechanism(Open):
    mechanism: str
    why: str
    enable: str = Field(description="how to put it in force")


class Limits(Open):
    values: dict[str, NonNegativeInt] = Field(description="memory_mb, processes, disk_mb, "
                                              "files, file_mb")
    held_by: dict[str, list[str]] = Field(description="per cap, the mechanisms that held it")
    missing: list[MissingMechanism] = Field(description="mechanisms not in force here")
    hits: list[LimitHit] = Field(description="caps the kernel reached")


class Result(Open):
    assignment: str
    assignment_title: str
    assignment_version: str = Field(description="changes when the spec, expected architecture "
                                    "or thresholds change")
    notebook: str
    notebook_sha256: str = Field(pattern=r"^([0-9a-f]{64})?$")
    score: NonNegativeFloat | None = Field(description="points; null when not graded (a grader error)")
    max_score: NonNegativeFloat
    checks: list[Check]
    models: dict[str, HarvestedObject]
    execution: Execution
    cell_errors: list[CellError]
    data: Data
    timings: dict[str, NonNegativeFloat]
    grader_version: str
    sandbox: Literal["bwrap", "none"]
    unchanged_starter: bool | None = Field(None, description="the notebook's code cells are "
                                           "the starter's (handed in untouched); null when "
                                           "that could not be told")
    limits: Limits | None = Field(None, description="the kernel's caps and what enforced them "
                                  "(absent when the grader failed before the kernel ran)")
    schema_version: Literal[1]


def result_schema() -> dict[str, Any]:
    schema = Result.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": RESULT_ID,
            **schema, "title": "result.json",
            "description": "One graded notebook, as `grader check` and `grader grade` write it "
                           "(schema_version 1). Generated by schemas/generate.py; do not edit "
                           "by hand."}


def schemas() -> dict[str, dict[str, Any]]:
    return {"assignment.schema.json": spec_format.json_schema(),
            "result.schema.json": result_schema()}


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if a committed schema is stale; write nothing")
    args = parser.parse_args(argv)
    stale = []
    for name, schema in schemas().items():
        path, text = SCHEMAS / name, render(schema)
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print(f"stale: {', '.join(stale)} (run python3 schemas/generate.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
