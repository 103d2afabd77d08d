"""Solutions the grader is calibrated and tested on: reference/<id>/variants/*.ipynb.

Each variant is a notebook a student could hand in, differing from the reference in what its
label says, with `metadata.grader.variant` saying what it is and which verdict it must get:

    {"label": "5 epochs instead of 20", "about": "...", "verdict": "correct"}
    {"label": "labels shuffled", "verdict": "wrong", "loses": ["model-accuracy"],
     "keeps": ["model-layers"]}

A correct variant is one the homework allows (its epochs and batch sizes, fewer epochs where the
full data still reaches the homework's figure, raw pixels, the functional API, sparse labels,
...): `grader calibrate` files thresholds every correct run clears, and it must get full marks
in subset mode and with `--full`. A wrong variant must lose the checks it names (`loses`) in both
modes, and keep the ones it names (`keeps`): one mistake costs points once.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
from pydantic import BaseModel, ConfigDict, Field

from .scoring import CheckStatus, GradeResult
from .spec import Assignment

FOLDER = "variants"


class Verdict(enum.StrEnum):
    CORRECT = "correct"
    WRONG = "wrong"


class VariantMeta(BaseModel):
    """`metadata.grader.variant` of a variant notebook."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str = Field(min_length=1)
    about: str = ""
    verdict: Verdict
    loses: tuple[str, ...] = ()
    keeps: tuple[str, ...] = ()


@dataclass(frozen=True)
class Variant:
    name: str  # the file's stem
    path: Path
    meta: VariantMeta

    @property
    def label(self) -> str:
        return self.meta.label

    @property
    def correct(self) -> bool:
        return self.meta.verdict is Verdict.CORRECT


class VariantError(ValueError):
    """A variant notebook without valid metadata, or naming checks the assignment lacks."""


def folder(assignment: Assignment) -> Path:
    return assignment.reference_dir / FOLDER


def load_all(assignment: Assignment) -> list[Variant]:
    """The assignment's variants, sorted by name; an invalid one raises VariantError."""
    found = []
    ids = {c.id for c in assignment.checks}
    for path in sorted(folder(assignment).glob("*.ipynb")):
        meta = read_meta(path)
        unknown = sorted((set(meta.loses) | set(meta.keeps)) - ids)
        if unknown:
            raise VariantError(f"{path}: names checks {assignment.id} does not have: "
                               f"{', '.join(unknown)}")
        if meta.verdict is Verdict.WRONG and not meta.loses:
            raise VariantError(f"{path}: a wrong variant must name the checks it loses")
        found.append(Variant(path.stem, path, meta))
    return found


def read_meta(path: Path) -> VariantMeta:
    nb = nbformat.read(path, as_version=4)
    raw = (nb.metadata.get("grader") or {}).get("variant")
    if raw is None:
        raise VariantError(f"{path}: no metadata.grader.variant")
    try:
        return VariantMeta.model_validate(dict(raw))
    except ValueError as exc:
        raise VariantError(f"{path}: {exc}") from None


def passed(result: GradeResult | dict[str, Any]) -> dict[str, bool]:
    """Each automatically graded check: passed or not (manual checks wait for a TA). `result`:
    a GradeResult or its result.json form."""
    data = result.as_dict() if isinstance(result, GradeResult) else result
    return {c["id"]: c["status"] == CheckStatus.PASSED for c in data["checks"]
            if c["status"] != CheckStatus.MANUAL}


def verdict_problems(variant: Variant, result: GradeResult | dict[str, Any]) -> list[str]:
    """How a grading misses the variant's verdict; empty when it gets it."""
    data = result.as_dict() if isinstance(result, GradeResult) else result
    if data["score"] is None:
        return [f"not graded: {data['execution'].get('message')}"]
    verdicts = passed(data)
    messages = {c["id"]: c["message"] for c in data["checks"]}
    if variant.correct:
        return [f"{cid} not passed: {messages[cid]}" for cid, ok in verdicts.items() if not ok]
    problems = [f"{cid} passed, but this variant must lose it" for cid in variant.meta.loses
                if verdicts.get(cid, False)]
    problems += [f"{cid} lost, but this variant must keep it: {messages.get(cid)}"
                 for cid in variant.meta.keeps if not verdicts.get(cid, False)]
    return problems
