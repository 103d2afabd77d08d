"""The trusted side of a Keras model's grade: measure what the kernel exported, outside it.

The kernel's only job for a Sequential or functional model is to save it as a Keras archive.
`Worker` runs grader/measure/worker.py — a fresh, sandboxed process that never ran student
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import GraderError
from ..execution import confine, sandbox as sandbox_mod
from ..execution.limits import Limits
from ..paths import PACKAGE_ROOT
from ..harvest import artifacts
from ..harvest.artifacts import HarvestedObject

DEFAULT_MAX_PARAMS = 20_000_000


@dataclass
class Request:
    """What to measure and with which budget; paths are on the grader's side."""

    images: Path  # the grader's images, without labels
    objects: list[dict[str, Any]]  # name, export, input_shape, probe_dropout, encoder, timed
    max_params: int = DEFAULT_MAX_PARAMS
    training: dict[str, Any] | None = None  # train_npz, epochs, batch_size, seed, ...
    timeout: float = 600.0
    # Reference designs to train as the students' are (name, design, layout): the timed bar
    # on this machine.
    baselines: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Measured:
    objects: dict[str, HarvestedObject]
    baselines: dict[str, dict[str, Any]]  # name → timed result with its predictions


def worker_env(home: Path) -> dict[str, str]:
    """The same numeric settings as the student's kernel: results repeat run after run."""
    env = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL") if k in os.environ}
    env.update(HOME=str(home), KERAS_HOME=str(home / ".keras"), PYTHONPATH=str(PACKAGE_ROOT),
               PYTHONHASHSEED="0", TF_CPP_MIN_LOG_LEVEL="2", TF_ENABLE_ONEDNN_OPTS="0",
               OMP_NUM_THREADS="2", TF_NUM_INTRAOP_THREADS="2", TF_NUM_INTEROP_THREADS="1")
    return env


class Worker:
    """The measuring process, started while the notebook runs: TensorFlow is imported by the
    time the kernel's exports are ready. Requests go to its standard input, one JSON line
    each; it answers each in out/r<n>/ and counts them in out/progress.json."""

    def __init__(self, folder: Path, inputs: list[Path], limits: Limits | int,
                 mounts: sandbox_mod.Mounts | None) -> None:
        """`mounts` None: no sandbox (the limits still hold); `limits` an int: memory_mb."""
        limits = Limits(memory_mb=limits) if isinstance(limits, int) else limits
        self.folder, self.out = folder, folder / "out"
        self._home = folder / "home"
        for path in (self._home, self.out):
            path.mkdir(parents=True, exist_ok=True)
        self._command = [*self.program(), str(self.out), str(limits.memory_mb)]
        self._limits, self._inputs, self._mounts = limits, inputs, mounts
        self._log = (folder / "worker.log").open("ab")
        self._launch()
        self.restarted = False

    def program(self) -> list[str]:
        return [sys.executable, "-m", "grader.measure.worker"]

    def _launch(self) -> None:
        extra = self._mounts or sandbox_mod.Mounts()
        # It reads files the student made: confined like the kernel, with the grader's
        # package but never reference/, and only the inputs it is given.
        self.confinement = confine.Confinement(
            sandbox_mod.Mounts(writable=[self.out, *extra.writable],
                               readable=[*self._inputs, *extra.readable],
                               hidden=list(extra.hidden), private=[self._home],
                               view=sandbox_mod.View.TRUSTED),
            self.folder, self._limits, sandboxed=self._mounts is not None, label="measure",
            logs=(self.folder / "worker.log",))
        # A file, not a pipe, for its output: a pipe held by a stray process never closes.
        try:
            self.proc = subprocess.Popen(self.confinement.command(self._command),
                                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                         stderr=self._log, env=worker_env(self._home),
                                         cwd=self.folder, start_new_session=True)
        except BaseException:
            self.close()
            raise
        self.sent = 0

    def watch(self, folder: Path, objects: dict[str, Any], training: dict[str, Any],
              images: Path) -> None:
        """Train the designs the kernel exports into `folder` as their fit() starts, while
        waiting for requests (grader/measure/head_start.py). Not a request: nothing answers."""
        self._send({"watch": {"dir": str(folder), "objects": objects, "training": training,
                              "images": str(images)}})

    def measure(self, request: Request, rows: int) -> Measured:
        payload = {"images": str(request.images), "objects": request.objects,
                   "max_params": request.max_params, "training": request.training,
                   "baselines": request.baselines}
        started = time.monotonic()
        self.sent += 1
        self._send(payload)
        crashed, tail = self._wait(self.sent, request.timeout)
        if crashed and self._early_crash():
            # It died training a design early, perhaps one the student has since replaced:
            # once, a fresh process without the head start measures what the request names.
            self._restart()
            self.sent += 1
            self._send(payload)
            crashed, tail = self._wait(self.sent, request.timeout)
        return self._read(request, rows, crashed, tail, started)

    def _early_crash(self) -> bool:
        return not self.restarted and self.proc.poll() is not None and \
            bool(_read_json(self.out / "progress.json").get("early"))

    def _restart(self) -> None:
        self.close(log=False)
        (self.out / "progress.json").unlink(missing_ok=True)
        self.restarted = True
        self._launch()

    def _send(self, line: dict[str, Any]) -> None:
        try:
            self.proc.stdin.write(json.dumps(line).encode() + b"\n")
            self.proc.stdin.flush()
        except OSError:
            pass  # it died while starting: progress.json says so to the next request

    def _wait(self, number: int, timeout: float) -> tuple[bool, str]:
        """Until request `number` is answered (False), or the process ends or runs past the
        timeout (True, with why)."""
        deadline = time.monotonic() + timeout
        while True:
            if _read_json(self.out / "progress.json").get("done") == number:
                return False, ""
            if self.proc.poll() is not None:
                if _read_json(self.out / "progress.json").get("done") == number:
                    return False, ""
                return True, self._tail()
            if time.monotonic() > deadline:
                self.close()
                return True, f"it ran past {timeout:.0f} s"
            time.sleep(0.05)

    def close(self, log: bool = True) -> None:
        proc = getattr(self, "proc", None)
        if proc is not None and proc.poll() is None:
            try:
                proc.stdin.close()
            except OSError:
                pass
        self.confinement.kill()
        if proc is not None and proc.poll() is None:
            proc.kill()
        if proc is not None:
            proc.wait()
        self.confinement.close()
        if log and not self._log.closed:
            self._log.close()

    def _tail(self) -> str:
        hits = self.confinement.poll()
        if hits:  # a cap it reached says more than its last line
            return hits[0].message("it")
        self._log.flush()
        text = (self.folder / "worker.log").read_bytes()[-4000:].decode(errors="replace")
        return (text.strip().splitlines() or ["no output"])[-1]

    def _read(self, request: Request, rows: int, crashed: bool, tail: str, started: float
              ) -> Measured:
        progress = _read_json(self.out / "progress.json")
        if not progress.get("ready"):
            raise GraderError(f"the grader's measuring process failed before it read any "
                              f"model: {tail[:300]}")
        answers = self.out / f"r{self.sent}"
        found = artifacts.read(answers, [o["name"] for o in request.objects], rows)
        culprit = progress.get("object")
        if crashed and culprit in found and found[culprit].status == "not_harvested":
            found[culprit] = HarvestedObject(culprit, "error", "measuring this model stopped "
                                             f"the grader's process ({tail[:200]}): too big or "
                                             "too slow to measure")
        for obj in found.values():
            if obj.timed is not None:
                obj.timed.setdefault("seconds", round(time.monotonic() - started, 3))
        entries, _ = artifacts.manifest_entries(answers)
        baselines = {}
        for wanted in request.baselines:
            entry = entries.get(f"baseline:{wanted['name']}")
            if isinstance(entry, dict):
                baselines[wanted["name"]] = artifacts.read_timed(entry, answers, rows)
        return Measured(found, baselines)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
