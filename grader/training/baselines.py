"""The timed-training bar on this machine: the reference design, trained as the students' are.

The same design, seed and budget give different accuracies on different CPUs (LeNet-5 with batch
norm: 0.779 where it was calibrated, 0.754 here). So the grader trains the reference's design
(reference/<id>/designs.json, written by `grader calibrate`) once per machine, environment,
assignment version and data mode, remembers its accuracy, and asks each student's design to
come within the calibrated margin of it.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np

from .. import environment
from ..assignment import Assignment
from .timed_fit import LOOP_VERSION


@functools.cache  # per process: the CPU does not change under a grading
def machine_key() -> str:
    """The CPU (model and instruction sets) and the installed software."""
    cpu = ""
    try:
        text = Path("/proc/cpuinfo").read_text()
        cpu = "\n".join(line for line in text.splitlines()
                        if line.startswith(("model name", "flags")))[:20000]
    except OSError:
        pass
    return environment.environment_key([cpu])


def _cache(assignment: Assignment, name: str, data_key: str, seed: int) -> Path:
    """`data_key`: the data mode and which holdout (pipeline.PreparedData.holdout_id); both
    change what the reference design reaches."""
    key = (f"{assignment.id}-{assignment.version_key()}-{name}-{data_key}-{seed}-{LOOP_VERSION}"
           f"-{machine_key()}")
    return environment.cache_dir() / "baselines" / f"{key}.json"


def known(assignment: Assignment, names: list[str], data_key: str, seed: int
          ) -> dict[str, float]:
    """Accuracies of reference designs already measured on this machine."""
    return {name: record["accuracy"] for name, record in _records(assignment, names, data_key,
                                                                   seed).items()}


def costs(assignment: Assignment, names: list[str], data_key: str, seed: int
          ) -> dict[str, float]:
    """CPU seconds the reference designs took to train here, where known."""
    return {name: record["cpu_seconds"] for name, record in
            _records(assignment, names, data_key, seed).items() if "cpu_seconds" in record}


def _records(assignment: Assignment, names: list[str], data_key: str, seed: int
             ) -> dict[str, dict[str, float]]:
    found = {}
    for name in names:
        try:
            raw = json.loads(_cache(assignment, name, data_key, seed).read_text())
            found[name] = {k: float(raw[k]) for k in ("accuracy", "cpu_seconds") if k in raw}
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return {name: record for name, record in found.items() if "accuracy" in record}


def requests(assignment: Assignment, names: list[str], layouts: dict[str, Any]
             ) -> list[dict[str, Any]]:
    """What the measuring process must train for the designs not yet measured here."""
    designs = assignment.designs().get("objects") or {}
    return [{"name": name, "design": designs[name]["design"],
             "layout": designs[name].get("layout") or layouts.get(name)}
            for name in names if name in designs]


def remember(assignment: Assignment, name: str, data_key: str, seed: int,
             predictions: np.ndarray, labels: np.ndarray, cpu_seconds: float | None = None
             ) -> float:
    accuracy = float(np.mean(np.argmax(predictions, axis=1) == labels))
    path = _cache(assignment, name, data_key, seed)
    record = {"accuracy": accuracy}
    if cpu_seconds is not None:
        record["cpu_seconds"] = float(cpu_seconds)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        tmp.write_text(json.dumps(record))
        tmp.replace(path)
    except OSError:
        pass  # not remembered: measured again next time
    return accuracy
