"""reference/<id>/constraints.txt: the exact Python and package versions calibration ran with.

Thresholds are measured accuracies: another TensorFlow, Keras or numpy trains the same design
to other numbers. `grader calibrate` records the versions of every package the grader depends
on (its whole dependency tree, as installed) in pip's constraints format, with the Python
version in a comment line, so that a grading machine (Gradescope's setup.sh, the GitHub
Action) installs the same:

    # python 3.11.7
    keras==3.12.0
    numpy==2.1.3
    ...
    pip install -c reference/lenet5/constraints.txt .
"""

from __future__ import annotations

import importlib.metadata as metadata
import platform
import re
from datetime import datetime, timezone
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from ..scoring import write_atomic
from ..assignment import Assignment

DISTRIBUTION = "dl-grader"
_PYTHON = re.compile(r"^#\s*python\s+(\d+\.\d+(?:\.\d+)?)\s*$", re.M)


def pinned(root: str = DISTRIBUTION) -> dict[str, str]:
    """name → installed version for every distribution `root` needs (not its extras), `root`
    itself left out: it is installed from its own source."""
    seen: dict[str, str] = {}
    todo = [(root, frozenset())]
    while todo:
        name, extras = todo.pop()
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # an optional dependency that is not installed
        key = canonicalize_name(dist.metadata["Name"])
        if key != canonicalize_name(root):
            if key in seen and not extras:
                continue
            seen[key] = dist.version
        for text in dist.requires or []:
            try:
                req = Requirement(text)
            except InvalidRequirement:
                continue
            wanted = [{"extra": e} for e in extras] or [{"extra": ""}]
            if req.marker is None or any(req.marker.evaluate(env) for env in wanted):
                if canonicalize_name(req.name) not in seen or req.extras:
                    todo.append((req.name, frozenset(req.extras)))
    return dict(sorted(seen.items()))


def render(assignment_id: str, when: datetime | None = None) -> str:
    when = when or datetime.now(timezone.utc)
    lines = [f"# Written by `grader calibrate -a {assignment_id}` on "
             f"{when:%Y-%m-%d}: the versions its thresholds were measured with.",
             "# Install with them: pip install -c this-file <the grader>",
             f"# python {platform.python_version()}",
             f"# platform {platform.system().lower()} {platform.machine()}"]
    lines += [f"{name}=={version}" for name, version in pinned().items()]
    return "\n".join(lines) + "\n"


def path_of(assignment: Assignment) -> Path:
    return assignment.reference_dir / "constraints.txt"


def write(assignment: Assignment) -> Path:
    path = path_of(assignment)
    write_atomic(path, render(assignment.id))
    return path


def python_version(text: str) -> str | None:
    """The `# python X.Y.Z` line of a constraints file."""
    found = _PYTHON.search(text)
    return found.group(1) if found else None
