"""Assignment specs: `assignments/<id>/assignment.toml`, read into plain dataclasses."""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .paths import ASSIGNMENTS_DIR, REFERENCE_DIR


class SpecError(Exception):
    """An assignment is unknown or its spec is malformed (a usage error, exit 2)."""


@dataclass(frozen=True)
class ExecutionLimits:
    cell_timeout: float = 300.0
    notebook_timeout: float = 900.0
    memory_mb: int = 6144


@dataclass(frozen=True)
class DataSpec:
    dataset: str
    seed: int
    train_per_class: int
    test_per_class: int
    holdout_per_class: int


@dataclass(frozen=True)
class TrainingSpec:
    """The grader's own training of each architecture: same budget and seed for everyone."""

    epochs: int = 5
    batch_size: int = 128
    max_seconds: float = 120.0
    seed: int = 0
    max_params: int = 20_000_000  # above this the grader declines to retrain


@dataclass(frozen=True)
class ObjectSpec:
    """A variable the grader harvests from the student's kernel."""

    name: str
    kind: str  # "keras", or a module in grader/harvest/kinds/
    input_shape: tuple[int, ...] | None = None
    options: dict[str, Any] = field(default_factory=dict)  # e.g. probe_dropout = true


@dataclass(frozen=True)
class CheckSpec:
    id: str
    title: str
    kind: str
    points: float
    object: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Assignment:
    id: str
    title: str
    version: str
    folder: Path
    starter: Path
    reference: Path
    limits: ExecutionLimits
    data: DataSpec | None
    training: TrainingSpec | None
    objects: tuple[ObjectSpec, ...]
    checks: tuple[CheckSpec, ...]
    spec_sha256: str
    # Other accepted solutions (label, notebook): their architectures are accepted too.
    reference_label: str = "reference"
    reference_variants: tuple[tuple[str, Path], ...] = ()
    # Import names the assignment's notebooks may use ([environment] packages): checked to
    # import in the kernel's interpreter before grading.
    packages: tuple[str, ...] = ()

    @property
    def max_score(self) -> float:
        return sum(c.points for c in self.checks)

    @property
    def reference_dir(self) -> Path:
        return REFERENCE_DIR / self.id

    @property
    def expected_path(self) -> Path:
        """Architectures and compile settings harvested from the reference solution."""
        return self.reference_dir / "expected.json"

    @property
    def thresholds_path(self) -> Path:
        return self.reference_dir / "thresholds.json"

    def expected(self) -> dict[str, Any]:
        return _read_json(self.expected_path)

    def thresholds(self) -> dict[str, Any]:
        return _read_json(self.thresholds_path)

    def version_key(self) -> str:
        """Changes whenever the spec, expected architecture or thresholds change."""
        digest = hashlib.sha256(self.spec_sha256.encode())
        for path in (self.expected_path, self.thresholds_path):
            if path.exists():
                digest.update(path.read_bytes())
        return f"{self.version}+{digest.hexdigest()[:12]}"


def _read_json(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    return json.loads(path.read_text())


_CHECK_KEYS = {"id", "title", "kind", "points", "object"}


def load(assignment_id: str, root: Path = ASSIGNMENTS_DIR) -> Assignment:
    path = root / assignment_id / "assignment.toml"
    if not path.is_file():
        known = ", ".join(available(root)) or "none"
        raise SpecError(f"unknown assignment {assignment_id!r} (known: {known})")
    raw_bytes = path.read_bytes()
    try:
        raw = tomllib.loads(raw_bytes.decode())
        return _parse(raw, path.parent, hashlib.sha256(raw_bytes).hexdigest())
    except (KeyError, TypeError, ValueError) as exc:
        raise SpecError(f"{path}: malformed spec: {exc}") from exc


def _parse(raw: dict[str, Any], folder: Path, sha: str) -> Assignment:
    aid = raw["id"]
    data = raw.get("data")
    checks = tuple(
        CheckSpec(
            id=c["id"], title=c["title"], kind=c["kind"], points=float(c["points"]),
            object=c.get("object"),
            options={k: v for k, v in c.items() if k not in _CHECK_KEYS},
        )
        for c in raw.get("checks", [])
    )
    ids = [c.id for c in checks]
    if len(ids) != len(set(ids)):
        raise ValueError("check ids must be unique")
    return Assignment(
        id=aid,
        title=raw["title"],
        version=str(raw.get("version", "1")),
        folder=folder,
        starter=folder / raw["starter"],
        reference=REFERENCE_DIR / aid / raw["reference"],
        limits=ExecutionLimits(**raw.get("execution", {})),
        data=DataSpec(**data) if data else None,
        training=TrainingSpec(**raw["training"]) if "training" in raw else None,
        objects=tuple(
            ObjectSpec(o["name"], o["kind"],
                       tuple(o["input_shape"]) if "input_shape" in o else None,
                       {k: v for k, v in o.items() if k not in ("name", "kind", "input_shape")})
            for o in raw.get("objects", [])
        ),
        reference_label=raw.get("reference_label", "reference"),
        reference_variants=tuple(
            (v["label"], REFERENCE_DIR / aid / v["notebook"])
            for v in raw.get("reference_variants", [])
        ),
        checks=checks,
        spec_sha256=sha,
        packages=tuple(raw.get("environment", {}).get("packages", ())),
    )


def available(root: Path = ASSIGNMENTS_DIR) -> list[str]:
    return sorted(p.parent.name for p in root.glob("*/assignment.toml"))
