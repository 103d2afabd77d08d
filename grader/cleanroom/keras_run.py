"""The Keras clean room (trusted side): a fresh instance of a subclassed model, trained by the
grader for the timed-training check.

A subclassed model can only be rebuilt by its own class, so the class's definition — taken from
the notebook's source with `ast` (grader/cleanroom/source.py), never from the live session — runs
in a fresh sandboxed interpreter beside grader/kernel/keras_harness.py. The room gets the
training subset (already shaped and encoded here), how the student compiled the model (as the
trusted side read it), the seed and the epoch budget; it hands back a SavedModel, which the
trusted measuring process loads and predicts with like any other export. The room never sees the
holdout, images or labels, and nothing it reports is scored.

The room is started while the notebook runs, so that TensorFlow is imported by the time it is
needed; it waits for "GO" and trains once. Which room trains what, and when (a design may start
while the notebook still runs): grader/cleanroom/rooms.py.
"""

from __future__ import annotations

import ast
import hashlib
import json
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..execution import confine, processes, sandbox as sandbox_mod
from ..execution.limits import Limits
from .. import paths
from . import source as source_mod
from ..harvest.untrusted_file import read_json
from .process import interpreter, LineReader, stop

HARNESS = Path(__file__).resolve().parents[1] / "kernel" / "keras_harness.py"
# The grader's training (starting weights, checks, loop), copied beside the harness: the room
# trains with the grader's loop, never the class's fit() or train_step().
TRAINING = Path(__file__).resolve().parents[1] / "training"
STARTUP_SECONDS = 120  # bwrap, the interpreter and TensorFlow, before any student code
# TensorFlow's threads, a training subset and one SavedModel; never reference/ or a dataset.
# The harness's stages (grader/kernel/keras_harness.py) that only repeat what the notebook's
# session already did, in the words a message uses; "train" is the design's own.
REBUILD_STAGES = {"define": "run the definitions of", "construct": "create",
                  "build": "build", "export": "export"}
# A room training on idle CPU only that gains less than this in STARVED_SECONDS is starved (a
# training uses about two CPU seconds a second): the same plan goes to a room at the usual
# priority instead. Checked every STARVED_STEP seconds.
STARVED_SECONDS, STARVED_CPU_SECONDS, STARVED_STEP = 20.0, 1.0, 2.0
LIMITS = Limits(memory_mb=6144, processes=256, disk_mb=1024, files=5000, file_mb=512)


@dataclass
class Retrained:
    """What the room produced: a SavedModel to measure, or why there is none."""

    export: Path | None
    report: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    # The room could not rebuild what the notebook's own session built (its definitions, the
    # constructor, the first call) or export it: the grader's shortfall, never the student's.
    rebuild_failed: bool = False
    # False: it ran out of time or died, which load may cause; True: what the plan gives.
    finished: bool = True


@dataclass
class Plan:
    """One training for a room: the request and its data, everything the result depends on."""

    request: dict[str, Any]
    arrays: dict[str, np.ndarray]

    def digest(self) -> str:
        """Equal for two plans that train the same model the same way."""
        h = hashlib.sha256(json.dumps(self.request, sort_keys=True).encode())
        for key in sorted(self.arrays):
            array = np.ascontiguousarray(self.arrays[key])
            h.update(f"{key}:{array.dtype.str}:{array.shape}".encode())
            h.update(array.data)
        return h.hexdigest()


def plan(nb: Any, class_name: str, args: Arguments, compile_info: dict[str, Any],
         layout: tuple[int, ...], data: dict[str, np.ndarray], budget: dict[str, Any]
         ) -> Plan | str:
    """The room's training of a fresh `class_name`, or why the notebook gives none."""
    extracted = source_mod.extract(nb, [class_name, *args.names])
    if class_name in extracted.missing:
        return f"the notebook defines no class {class_name}"
    return Plan({"source": [{"cell": c, "source": t} for c, t in extracted.chunks],
                 "class_name": class_name, "args": args.args, "kwargs": args.kwargs,
                 "loss": compile_info["loss_config"],
                 "optimizer": compile_info["optimizer_config"], "layout": list(layout),
                 "epochs": budget["epochs"], "batch_size": budget["batch_size"],
                 "seed": budget["seed"], "max_cpu_seconds": budget["max_cpu_seconds"],
                 "n_classes": budget.get("n_classes", 10)}, data)


def class_name_of(nb: Any, object_name: str, claim: str | None) -> str | None:
    """The class whose instance the notebook binds to `object_name`: read from the statement
    `object_name = SomeClass(...)`, else the kernel's claim, if the notebook defines that class."""
    defined = _defined_classes(nb)
    call = _constructor_call(nb, object_name)
    if call is not None and isinstance(call.func, ast.Name) and call.func.id in defined:
        return call.func.id
    return claim if claim in defined else None


@dataclass(frozen=True)
class Arguments:
    """What the notebook passes to the class (`CustomizedCNN(num_classes, dropout=0.2)`), as
    source the room evaluates after the notebook's definitions, and the names that source reads
    (which the room's definitions must then include)."""

    args: list[str] = field(default_factory=list)
    kwargs: dict[str, str] = field(default_factory=dict)
    names: tuple[str, ...] = ()


def constructor_arguments(nb: Any, object_name: str) -> Arguments | None:
    """The arguments of `object_name = SomeClass(...)`; None for `*args` or `**kwargs`, whose
    shape the room could not repeat."""
    call = _constructor_call(nb, object_name)
    if call is None:
        return Arguments()
    if any(isinstance(a, ast.Starred) for a in call.args) or \
            any(k.arg is None for k in call.keywords):
        return None
    names = sorted({n.id for part in [*call.args, *(k.value for k in call.keywords)]
                    for n in ast.walk(part) if isinstance(n, ast.Name)})
    return Arguments([ast.unparse(a) for a in call.args],
                     {k.arg: ast.unparse(k.value) for k in call.keywords if k.arg}, tuple(names))


def _defined_classes(nb: Any) -> set[str]:
    return {node.name for tree in source_mod.parsed_cells(nb) for node in tree.body
            if isinstance(node, ast.ClassDef)}


def _constructor_call(nb: Any, object_name: str) -> ast.Call | None:
    found = None
    for tree in source_mod.parsed_cells(nb):
        for node in tree.body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and any(
                    isinstance(t, ast.Name) and t.id == object_name for t in node.targets):
                found = node.value  # the last binding wins, as in the session
    return found


def wanted(nb: Any) -> bool:
    """Worth having rooms at all: the notebook defines a class."""
    return bool(_defined_classes(nb))


# The last name of a base that makes a class a Keras model (`keras.Model`,
# `tf.keras.models.Model`, `Sequential`).
_MODEL_BASES = frozenset({"Model", "Sequential", "Functional"})


def likely_model(nb: Any) -> bool:
    """Worth a room started with the kernel: a class of the notebook derives, through its other
    classes, from a Keras model. A callback, a layer, a dataset or a torch module alone is not;
    a model whose base this misses still gets a room, started when its fit() begins."""
    bases = {node.name: [_last_name(base) for base in node.bases]
             for tree in source_mod.parsed_cells(nb) for node in tree.body
             if isinstance(node, ast.ClassDef)}
    models: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, names in bases.items():
            # A base the notebook defines itself (its own `Model`) counts only as that class.
            if name not in models and any(b in models or (b in _MODEL_BASES and b not in bases)
                                          for b in names):
                models.add(name)
                changed = True
    return bool(models)


def _last_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    return node.attr if isinstance(node, ast.Attribute) else None


class Room:
    """One clean room process: started early, given one model to train, then stopped."""

    plan: Plan | None = None
    closed = False

    def __init__(self, folder: Path, sandbox: str, hidden: tuple[Path, ...] = ()) -> None:
        self.folder = folder
        self.out = folder / "out"
        self.out.mkdir(parents=True, exist_ok=True)
        shutil.copy(HARNESS, folder / HARNESS.name)
        shutil.copytree(TRAINING, folder / "grader_training",
                        ignore=shutil.ignore_patterns("__pycache__"))
        self.confinement = _confinement(folder, sandbox, hidden)
        try:
            self.proc = subprocess.Popen(
                self.confinement.command(_command(folder)), cwd=folder,
                env=_environment(folder), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, start_new_session=True)
        except BaseException:
            self.confinement.close()
            raise
        self.reader = LineReader(self.proc)

    def start(self, plan: Plan, idle: bool = False) -> None:
        """Hand the room its one training and let it go; `finish` collects it. `idle`: on
        what the machine leaves idle only (SCHED_IDLE), as beside a running notebook."""
        np.savez(self.folder / "data.npz", **plan.arrays)
        (self.folder / "request.json").write_text(json.dumps(plan.request))
        if not self.reader.wait_for("STARTED", STARTUP_SECONDS):
            raise _grader_error(self, "did not start")
        if not self.reader.wait_for("READY", STARTUP_SECONDS):
            raise _grader_error(self, "could not import TensorFlow")
        try:
            self.proc.stdin.write(b"GO idle\n" if idle else b"GO\n")
            self.proc.stdin.flush()
        except OSError:
            raise _grader_error(self, "stopped before training") from None
        self.plan = plan

    def finish(self, limit: float, starved_after: float | None = None) -> Retrained:
        """What the training `start` began produced, waiting at most `limit` seconds more;
        with `starved_after`, given up on sooner if the room gets almost no CPU for that long
        (a room on idle CPU only, on a machine busy with other work)."""
        class_name = self.plan.request["class_name"]
        waiting = time.monotonic()
        why = self._wait_done(limit, starved_after)
        # What the grading waited for, as for the measuring process's early training: a room
        # that started while the notebook ran was waited for from its end only.
        seconds = round(time.monotonic() - waiting, 3)
        report = read_json(self.out / "report.json") or {}
        if why:
            return Retrained(None, report, f"training a fresh {class_name} in the grader's clean "
                             f"room {why}" + _tail(self.reader.stderr()), finished=False)
        if report.get("cannot_learn"):
            return Retrained(None, report, str(report["cannot_learn"])[:300])
        if report.get("error"):
            stage = report.get("stage")
            if stage in REBUILD_STAGES:
                return Retrained(None, report, f"the grader's clean room could not "
                                 f"{REBUILD_STAGES[stage]} {class_name} as the notebook did: "
                                 f"{str(report['error'])[:300]}", rebuild_failed=True)
            return Retrained(None, report, f"training a fresh {class_name} in the grader's clean "
                             f"room failed: {str(report['error'])[:300]}")
        export = self.out / "model.savedmodel"
        report["seconds"] = seconds
        return Retrained(export if export.is_dir() else None, report,
                         None if export.is_dir() else "the clean room exported no model",
                         rebuild_failed=not export.is_dir())

    def _wait_done(self, limit: float, starved_after: float | None) -> str | None:
        """None once the room says DONE; else why it will not."""
        deadline = time.monotonic() + limit
        samples: list[tuple[float, float]] = []  # (when, the room's CPU seconds)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return f"ran past {limit:.0f} s"
            step = remaining if starved_after is None else min(remaining, STARVED_STEP)
            if self.reader.wait_for("DONE", step):
                return None
            if self.proc.poll() is not None or not self.reader.selector.get_map():
                return "stopped"
            if starved_after is not None:
                now = time.monotonic()
                samples.append((now, self.cpu_seconds()))
                old = [cpu for when, cpu in samples if now - when >= starved_after]
                if old and samples[-1][1] - old[-1] < STARVED_CPU_SECONDS:
                    return f"got almost no CPU for {starved_after:.0f} s beside other work"

    def cpu_seconds(self) -> float:
        """The CPU time of the room's processes, as the kernel counts it."""
        return processes.cpu_seconds([self.proc.pid, *processes.descendants(self.proc.pid)])

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            stop(self.proc, self.confinement)


def _tail(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return f" ({lines[-1][:200]})" if lines else ""


def _grader_error(room: Room, what: str) -> Exception:
    from ..errors import GraderError

    return GraderError(f"the grader's Keras clean room {what}{_tail(room.reader.stderr())}")


def _command(room: Path) -> list[str]:
    return [interpreter(), "-I", str(room / HARNESS.name)]


def _confinement(room: Path, sandbox: str, hidden: tuple[Path, ...]) -> confine.Confinement:
    """The KERNEL view: site-packages (TensorFlow) and of the grader only what a student's kernel
    runs; the room's folder is all it may write."""
    hide = [*paths.reference_dirs(), Path("/usr/share/datasets"), Path.home() / ".keras", *hidden]
    mounts = sandbox_mod.Mounts(writable=[room],
                                hidden=[p.resolve() for p in hide if p.exists()],
                                view=sandbox_mod.View.KERNEL)
    return confine.Confinement(mounts, room, LIMITS, sandboxed=sandbox == "bwrap",
                               label="keras-room")


def _environment(room: Path) -> dict[str, str]:
    """The numeric settings of the measuring process: the same seed trains the same way."""
    from ..measure import worker_env

    return {**worker_env(room), "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONPATH": ""}
