"""The trusted side of a Keras model's grade: measure what the kernel exported, outside it.

The kernel's only job for a Sequential or functional model is to save it as a Keras archive.
`measure` starts grader/measure/worker.py — a fresh, sandboxed process that never ran student
code — on those archives, and returns what it found as HarvestedObjects for the checks: the
description, predictions on the grader's images, dropout behaviour and the grader's own
training all come from there, never from the student's process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import GraderError
from ..execution import sandbox as sandbox_mod
from ..execution.runner import PROJECT_ROOT
from ..harvest import artifacts
from ..harvest.artifacts import HarvestedObject

DEFAULT_MAX_PARAMS = 20_000_000


@dataclass
class Request:
    """What to measure and with which budget; paths are on the grader's side."""

    folder: Path  # the worker's own folder (request, results)
    images: Path  # the grader's images, without labels
    objects: list[dict[str, Any]]  # name, export, input_shape, probe_dropout, encoder, timed
    memory_mb: int
    max_params: int = DEFAULT_MAX_PARAMS
    training: dict[str, Any] | None = None  # train_npz, epochs, batch_size, seed, ...
    timeout: float = 600.0


def worker_env(home: Path) -> dict[str, str]:
    """The same numeric settings as the student's kernel: results repeat run after run."""
    env = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL") if k in os.environ}
    env.update(HOME=str(home), KERAS_HOME=str(home / ".keras"), PYTHONPATH=str(PROJECT_ROOT),
               PYTHONHASHSEED="0", TF_CPP_MIN_LOG_LEVEL="2", TF_ENABLE_ONEDNN_OPTS="0",
               OMP_NUM_THREADS="2", TF_NUM_INTRAOP_THREADS="2", TF_NUM_INTEROP_THREADS="1")
    return env


def measure(request: Request, mounts: sandbox_mod.Mounts | None, rows: int
            ) -> dict[str, HarvestedObject]:
    """Run the worker (inside bubblewrap when `mounts` is given) and read what it wrote."""
    out = request.folder / "out"
    (request.folder / "home").mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    payload = {"out": str(out), "images": str(request.images), "objects": request.objects,
               "memory_mb": request.memory_mb, "max_params": request.max_params,
               "training": request.training}
    (request.folder / "request.json").write_text(json.dumps(payload))
    command = [sys.executable, "-m", "grader.measure.worker", str(request.folder / "request.json")]
    if mounts is not None:
        inputs = [request.images, *(Path(o["export"]) for o in request.objects)]
        if request.training:
            inputs.append(Path(request.training["train_npz"]))
        command = sandbox_mod.wrap(command, sandbox_mod.Mounts(
            writable=[request.folder, *mounts.writable], readable=[*inputs, *mounts.readable],
            hidden=mounts.hidden), request.folder)
    started = time.monotonic()
    try:
        proc = subprocess.run(command, env=worker_env(request.folder / "home"),
                              cwd=request.folder, capture_output=True,
                              timeout=request.timeout, start_new_session=True)
        crashed = proc.returncode != 0
        tail = (proc.stderr.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
    except subprocess.TimeoutExpired:
        crashed, tail = True, f"it ran past {request.timeout:.0f} s"
    progress = _read_json(out / "progress.json")
    if not progress.get("ready"):
        raise GraderError(f"the grader's measuring process failed before it read any model: "
                          f"{tail[:300]}")
    names = [o["name"] for o in request.objects]
    found = artifacts.read(out, names, rows)
    if crashed:  # the model being measured took the process down (memory, time)
        culprit = progress.get("object")
        if culprit in found and found[culprit].status == "not_harvested":
            found[culprit] = HarvestedObject(culprit, "error", "measuring this model stopped the "
                                             f"grader's process ({tail[:200]}): too big or too "
                                             "slow to measure")
    for obj in found.values():
        if obj.timed is not None:
            obj.timed["seconds"] = obj.timed.get("seconds", round(time.monotonic() - started, 3))
    return found


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
