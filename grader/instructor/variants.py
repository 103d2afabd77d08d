"""Solutions the grader is calibrated and tested on: reference/<id>/variants/*.ipynb.

Each variant is a notebook a student could hand in, differing from the reference in what its
label says, with `metadata.grader.variant` saying what it is and which verdict it must get:

    {"label": "5 epochs instead of 20", "about": "...", "verdict": "correct"}
    {"label": "labels shuffled", "verdict": "wrong", "loses": ["model-accuracy"],
     "keeps": ["model-layers", "model-timed-training"]}

A correct variant is one the homework allows (its epochs and batch sizes, fewer epochs where the
full data still reaches the homework's figure, raw pixels, the functional API, sparse labels,
...): `grader calibrate` files thresholds every correct run clears, and it must get full marks
in subset mode and with `--full`. A wrong variant must lose the checks it names (`loses`) in both
modes, and keep the ones it names (`keeps`): one mistake costs points once. A wrong variant
names each check of the grader's own training (`timed_training`) in one or the other: how far a
wrong design gets there depends on how long the grader trains it, so without a verdict a cut in
that budget could move its grade unseen.

`pending` names checks the grader cannot score for a variant yet (its own limitation, such as a
PyTorch answer's loss before the grader reads it): they must come out as `error`, never passed
or failed, and the rest of the verdict holds. A variant with pending checks is not a
calibration run (`grader calibrate` says so and leaves it out) until none remain.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

import nbformat
from pydantic import BaseModel, ConfigDict, Field

from ..result import GradeResult
from ..scoring import CheckStatus
from ..assignment import Assignment

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
    pending: tuple[str, ...] = ()


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
    timed = [c.id for c in assignment.checks if c.kind == "timed_training"]
    for path in sorted(folder(assignment).glob("*.ipynb")):
        meta = read_meta(path)
        unknown = sorted((set(meta.loses) | set(meta.keeps) | set(meta.pending)) - ids)
        if unknown:
            raise VariantError(f"{path}: names checks {assignment.id} does not have: "
                               f"{', '.join(unknown)}")
        if meta.verdict is Verdict.WRONG and not meta.loses:
            raise VariantError(f"{path}: a wrong variant must name the checks it loses")
        stated = {*meta.loses, *meta.keeps, *meta.pending}
        silent = [cid for cid in timed if cid not in stated] \
            if meta.verdict is Verdict.WRONG else []
        if silent:
            raise VariantError(
                f"{path}: a wrong variant must say whether it loses or keeps each check of the "
                f"grader's own training ({', '.join(silent)}): a wrong design's result there "
                "depends on the training budget, and calibration holds a budget to the verdicts "
                "it is given")
        if set(meta.pending) & (set(meta.loses) | set(meta.keeps)):
            raise VariantError(f"{path}: a pending check can be neither lost nor kept")
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


def passed(result: GradeResult) -> dict[str, bool]:
    """Each automatically graded check: passed or not (manual checks wait for a TA)."""
    return {c.id: c.status == CheckStatus.PASSED for c in result.checks
            if c.status != CheckStatus.MANUAL}


def verdict_problems(variant: Variant, result: GradeResult) -> list[str]:
    """How a grading misses the variant's verdict; empty when it gets it."""
    pending = set(variant.meta.pending)
    statuses = {c.id: c.status for c in result.checks}
    errors = {cid for cid, status in statuses.items() if status == CheckStatus.ERROR}
    if result.score is None and (not result.checks or errors - pending):
        why = "; ".join(f"{c.id}: {c.message}" for c in result.checks if c.id in errors - pending)
        return [f"not graded: {why or result.execution.message}"]
    # The grader's own limitation: the check must say it was not scored, not pass or fail.
    unexpected = [f"{cid} was {statuses.get(cid, 'not run')}, but it is pending for this "
                  "variant (the grader cannot score it yet): remove it from `pending`"
                  for cid in sorted(pending) if statuses.get(cid) != CheckStatus.ERROR]
    verdicts = {cid: ok for cid, ok in passed(result).items() if cid not in pending}
    messages = {c.id: c.message for c in result.checks}
    if variant.correct:
        return unexpected + [f"{cid} not passed: {messages[cid]}"
                             for cid, ok in verdicts.items() if not ok]
    problems = unexpected + [f"{cid} passed, but this variant must lose it"
                             for cid in variant.meta.loses if verdicts.get(cid, False)]
    problems += [f"{cid} lost, but this variant must keep it: {messages.get(cid)}"
                 for cid in variant.meta.keeps if not verdicts.get(cid, False)]
    return problems
