"""Assignment specs: `assignments/<id>/assignment.toml`, validated and read into an Assignment.

The file's format (typed tables that reject unknown keys, with every default) is in
tables.py; here a file becomes the Assignment the rest of the grader uses (its tables are
the validated, frozen models themselves), and every problem in it becomes a
SpecError naming the file, the line and the field:

    assignments/x/assignment.toml, line 42, checks[3].points: field required
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from .. import paths
from . import tables as spec_format


class SpecError(Exception):
    """An assignment is unknown or its spec is malformed (a usage error, exit 2).

    `problems` holds one located message per problem; str() joins them, one per line."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


# The tables of the file are the grader's settings themselves (frozen pydantic models, defaults
# in tables.py); these names are what the rest of the grader imports.
ExecutionLimits = spec_format.ExecutionTable
DataSpec = spec_format.DataTable
TrainingSpec = spec_format.TrainingTable
CheckOptions = spec_format.CheckOptions
ObjectOptions = spec_format.ObjectOptions


@dataclass(frozen=True)
class ObjectSpec:
    """A variable the grader harvests from the student's kernel."""

    name: str
    kind: str  # "keras", or a module in grader/kernel/kinds/
    input_shape: tuple[int, ...] | None = None
    # The kind's own keys, typed, with their defaults (spec_format.options_model).
    options: ObjectOptions = field(default_factory=ObjectOptions)


@dataclass(frozen=True)
class CheckSpec:
    id: str
    title: str
    kind: str
    points: float
    object: str | None = None
    # The kind's own keys, typed, with their defaults (spec_format.options_model).
    options: CheckOptions = field(default_factory=CheckOptions)


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
    # [environment] packages: import names the notebooks may import (besides the stdlib).
    packages: tuple[str, ...] = ()
    # [environment] optional: packages they may import that an installation may lack (torch).
    optional_packages: tuple[str, ...] = ()

    @property
    def max_score(self) -> float:
        return sum(c.points for c in self.checks)

    @property
    def reference_dir(self) -> Path:
        return paths.reference_dir() / self.id

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

    @property
    def designs_path(self) -> Path:
        """The reference's designs (Keras config and compile settings) the grader retrains to
        set the timed-training bar on each machine (grader/training/baselines.py)."""
        return self.reference_dir / "designs.json"

    def designs(self) -> dict[str, Any]:
        return _read_json(self.designs_path)

    def calibration_missing(self) -> list[Path]:
        """What `grader calibrate` writes that grading this assignment needs and is not there:
        expected.json for any Keras object (architectures, compile settings), thresholds.json
        for any check with a measured bar. Empty once calibrated (numpy-backprop needs neither)."""
        needed = []
        if any(o.kind == "keras" for o in self.objects):
            needed.append(self.expected_path)
        if any(c.kind in CALIBRATED_KINDS for c in self.checks):
            needed.append(self.thresholds_path)
        return [p for p in dict.fromkeys(needed) if not p.is_file()]

    def version_key(self) -> str:
        """Changes whenever the spec, expected architecture, thresholds or designs change."""
        digest = hashlib.sha256(self.spec_sha256.encode())
        for path in (self.expected_path, self.thresholds_path, self.designs_path):
            if path.exists():
                digest.update(path.read_bytes())
        return f"{self.version}+{digest.hexdigest()[:12]}"


def _read_json(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    return json.loads(path.read_text())


# Check kinds whose bar `grader calibrate` records in thresholds.json
# (grader/instructor/calibrate.py).
CALIBRATED_KINDS = ("accuracy", "timed_training", "reconstruction", "code_accuracy")

MAX_LISTED_PROBLEMS = 12  # a file broken everywhere: the first few say enough


def load(assignment_id: str, root: Path | None = None) -> Assignment:
    """The assignment `assignment_id` of the course (grader/paths.py), or of the folder `root`
    holding assignments."""
    root = paths.assignments_dir() if root is None else root
    known = available(root)
    if assignment_id not in known:
        raise SpecError(unknown_message(assignment_id, root, known))
    return load_file(root / assignment_id / "assignment.toml")


def unknown_message(assignment_id: str, root: Path, known: list[str]) -> str:
    """Where the grader looked for an assignment it does not have, and how to add one."""
    where = (f"{root} (from {paths.course_origin()})" if root == paths.assignments_dir()
             else str(root))
    course = (f" --course {paths.course_root()}" if root == paths.assignments_dir()
              and paths.course_origin() == "--course" else "")
    return (f"unknown assignment {assignment_id!r}: no {assignment_id}/assignment.toml in "
            f"{where}; known there: {', '.join(known) or 'none'}. To add it, run `grader new "
            f"{assignment_id} --from REFERENCE.ipynb{course}`, or write "
            f"{root / assignment_id}/ with its assignment.toml and starter notebook, and "
            f"{root.parent / paths.REFERENCE / assignment_id}/ with the reference solution, then "
            f"run `grader calibrate -a {assignment_id}{course}` (docs/authoring.md); or point the "
            "grader at the course that has it with --course DIR or $GRADER_COURSE")


def load_all(root: Path | None = None) -> tuple[list[Assignment], list[SpecError]]:
    """Every assignment under `root` (default: the course's): the valid ones, and an error for
    each broken one."""
    root = paths.assignments_dir() if root is None else root
    good, broken = [], []
    for aid in available(root):
        try:
            good.append(load(aid, root))
        except SpecError as exc:
            broken.append(exc)
    return good, broken


def load_file(path: Path) -> Assignment:
    """Validate one assignment.toml; SpecError lists every problem with its line."""
    from pydantic import ValidationError

    shown = _shown(path)
    try:
        raw_bytes = path.read_bytes()
        text = raw_bytes.decode("utf-8")
        raw = tomllib.loads(text)
    except OSError as exc:
        raise SpecError(f"{shown}: cannot read it ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"{shown}: not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{shown}{_toml_line(str(exc))}: not valid TOML: "
                        f"{re.sub(r' [(]at line .*[)]$', '', str(exc))}") from None
    try:
        table = spec_format.file_model().model_validate(raw)
    except ValidationError as exc:
        _raise(shown, text, _pydantic_problems(exc, raw))
    problems = spec_format.cross_check(table, path.parent)
    if problems:
        _raise(shown, text, problems)
    return _assignment(table, path.parent, hashlib.sha256(raw_bytes).hexdigest())


def _assignment(table: Any, folder: Path, sha: str) -> Assignment:
    aid = table.id
    return Assignment(
        id=aid,
        title=table.title,
        version=str(table.version),
        folder=folder,
        starter=folder / table.starter,
        reference=paths.reference_dir() / aid / table.reference,
        limits=table.execution,
        data=table.data,
        training=table.training,
        objects=tuple(
            ObjectSpec(o.name, o.kind, tuple(o.input_shape) if o.input_shape else None,
                       spec_format.options_of(o))
            for o in table.objects),
        checks=tuple(
            CheckSpec(id=c.id, title=c.title, kind=c.kind, points=float(c.points),
                      object=c.object, options=spec_format.options_of(c))
            for c in table.checks),
        spec_sha256=sha,
        reference_label=table.reference_label,
        reference_variants=tuple((v.label, paths.reference_dir() / aid / v.notebook)
                                 for v in table.reference_variants),
        packages=tuple(table.environment.packages),
        optional_packages=tuple(table.environment.optional),
    )


# --- located messages ------------------------------------------------------------------------------

def _shown(path: Path) -> str:
    """The file as a user would open it: relative to the working folder when inside it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return str(path)
    return str(path) if relative.startswith("..") else relative


def _toml_line(message: str) -> str:
    found = re.search(r"at line (\d+)", message)
    return f", line {found.group(1)}" if found else ""


def _raise(shown: str, text: str, problems: list[tuple[tuple[Any, ...], str]]) -> NoReturn:
    lines = _key_lines(text)
    ordered = []
    for where, message in problems:
        line = _line_of(where, lines)
        prefix = f"{shown}, line {line}" if line else shown
        field = _dotted(where)
        ordered.append((line or 0, f"{prefix}, {field}: {message}" if field
                        else f"{prefix}: {message}"))
    ordered.sort(key=lambda item: item[0])  # in the order a reader meets them in the file
    located = list(dict.fromkeys(text for _, text in ordered))  # a union can repeat a problem
    shown_lines = located[:MAX_LISTED_PROBLEMS]
    if len(located) > MAX_LISTED_PROBLEMS:
        shown_lines.append(f"… and {len(located) - MAX_LISTED_PROBLEMS} more problems")
    raise SpecError("\n".join(shown_lines), located)


def _pydantic_problems(exc: Any, raw: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    problems = []
    for error in exc.errors(include_url=False):
        where = _plain_loc(error["loc"], raw)
        kind, message = error["type"], spec_format.words(error["msg"])
        if kind == "union_tag_invalid":
            table = where[0] if where else ""
            known = (spec_format.check_kinds() if table == "checks"
                     else spec_format.object_kinds())
            tag = error["ctx"]["tag"]
            where, message = (*where, "kind"), (f"unknown {table.rstrip('s')} kind {tag!r} "
                                                 f"(known: {', '.join(known)})"
                                                 + spec_format.did_you_mean(tag, known))
        elif kind == "union_tag_not_found":
            where, message = (*where, "kind"), "field required"
        elif kind == "extra_forbidden":
            message = "unknown key" + _key_hint(where, raw)
        elif kind == "literal_error" and where and where[-1] == "dataset":
            message = (f"unknown dataset {error['input']!r} (known: "
                       f"{', '.join(spec_format.dataset_names())})")
        problems.append((where, message))
    return problems


def _plain_loc(loc: tuple[Any, ...], raw: dict[str, Any]) -> tuple[Any, ...]:
    """pydantic's location without its own markers: the kind tag of a [[checks]] entry, the
    member names of a union (`str`, `list[str]`) and validator names."""
    parts = list(loc)
    if len(parts) > 2 and parts[0] in ("checks", "objects") and isinstance(parts[1], int):
        entries = raw.get(parts[0])
        entry = entries[parts[1]] if isinstance(entries, list) and parts[1] < len(entries) else {}
        if isinstance(entry, dict) and parts[2] == entry.get("kind"):
            del parts[2]
    return tuple(p for p in parts if isinstance(p, int) or re.fullmatch(r"[\w-]+", p)
                 and p not in ("str", "int", "float", "bool", "list"))


def _key_hint(where: tuple[Any, ...], raw: dict[str, Any]) -> str:
    """'; did you mean points?' for a misspelt key, from the keys that table accepts."""
    if not where:
        return ""
    model: Any = spec_format.file_model()
    parent = where[:-1]
    if len(parent) >= 2 and parent[0] in ("checks", "objects") and isinstance(parent[1], int):
        entries = raw.get(parent[0]) or []
        entry = entries[parent[1]] if parent[1] < len(entries) else {}
        model = spec_format.kind_model(parent[0], entry.get("kind") if isinstance(entry, dict)
                                       else None)
    elif len(parent) == 1:
        nested = {"execution": spec_format.ExecutionTable, "data": spec_format.DataTable,
                  "training": spec_format.TrainingTable,
                  "environment": spec_format.EnvironmentTable}
        model = nested.get(parent[0])
    elif parent:
        model = spec_format.VariantTable if parent[0] == "reference_variants" else None
    if model is None:
        return ""
    return spec_format.did_you_mean(where[-1], model.model_fields)


def _dotted(where: tuple[Any, ...]) -> str:
    out = ""
    for part in where:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# A table header ([execution], [[checks]]) or a key (points = 3) at the start of a line.
_HEADER = re.compile(r"^\s*(\[\[?)\s*([\w.-]+)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([\w-]+)\s*=(.*)$")
_STRINGS = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'[^']*'")


def _key_lines(text: str) -> dict[tuple[Any, ...], int]:
    """The line of each table and key, by path: ("checks", 3) is the 4th [[checks]] header,
    ("checks", 3, "points") the `points` key under it. tomllib keeps no line numbers."""
    lines: dict[tuple[Any, ...], int] = {}
    table: tuple[Any, ...] = ()
    counts: dict[str, int] = {}
    depth = 0  # open brackets of a multi-line array value
    for number, line in enumerate(text.splitlines(), 1):
        code = _STRINGS.sub('""', line).split("#", 1)[0]
        if depth > 0:
            depth += code.count("[") - code.count("]")
            continue
        header = _HEADER.match(line)
        if header:
            path = tuple(header.group(2).split("."))
            if header.group(1) == "[[":
                index = counts.get(header.group(2), 0)
                counts[header.group(2)] = index + 1
                path = (*path, index)
            table = path
            lines.setdefault(table, number)
            continue
        key = _KEY.match(code)
        if key:
            lines.setdefault((*table, key.group(1)), number)
            depth = key.group(2).count("[") - key.group(2).count("]")
    return lines


def _line_of(where: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> int | None:
    """The line of the most specific key or table of `where` that the file has."""
    for end in range(len(where), 0, -1):
        if where[:end] in lines:
            return lines[where[:end]]
    return None


def available(root: Path | None = None) -> list[str]:
    root = paths.assignments_dir() if root is None else root
    return sorted(p.parent.name for p in root.glob("*/assignment.toml"))
