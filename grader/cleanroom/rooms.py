"""The Keras clean rooms of one grading (trusted side): which room trains which subclassed
design, and when.

A room trains once (grader/cleanroom/keras_run.py). One is started with the kernel when a class
of the notebook looks like a Keras model (a TensorFlow import is not spent on a notebook whose
only class is a callback); else one starts when a claim arrives. As a graded subclassed model's
fit() starts, the kernel writes what a room needs to rebuild it (its class,
how it was compiled, the layout fit() is fed: grader/kernel/head_start.py), and that room trains
the design while the notebook's cells still run, on the CPU they leave idle (SCHED_IDLE). At the
end, each subclassed model's training is planned again from what the trusted side measured; the
early room's result is used only when that plan is the very one it ran (same source, class,
arguments, loss, optimizer, layout, data, budget: the same training, from the same seed). Any
other design gets a fresh room.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..data.model_inputs import SCALINGS, fed_scaling
from ..scoring import TimedStatus
from . import keras_run
from .keras_run import Plan, Retrained, Room
from ..harvest.untrusted_file import read_json

POLL_SECONDS = 0.5


@dataclass(frozen=True)
class Inputs:
    """The trusted side's part of every plan: the training split and the budget."""

    train_npz: Path
    n_classes: int
    budget: dict[str, Any]  # pipeline.training_budget()'s, with wall_seconds


def design_plan(nb: Any, name: str, claimed_class: str | None, info: dict[str, Any],
                layout: tuple[int, ...], layers: list[dict[str, Any]], output: tuple,
                inputs: Inputs) -> Plan | dict[str, Any]:
    """The room's training of a fresh instance of `name`'s class, or the timed result that says
    why there is none."""
    from ..training.timed_fit import encode_labels

    class_name = keras_run.class_name_of(nb, name, claimed_class)
    if class_name is None:
        return {"status": TimedStatus.GRADER_FAILED, "message": f"no class of the notebook "
                f"builds `{name}` where the grader can see it, so it cannot create a fresh one "
                "to train"}
    arguments = keras_run.constructor_arguments(nb, name)
    if arguments is None:
        return {"status": TimedStatus.GRADER_FAILED, "message": f"`{name} = {class_name}(...)` "
                "passes `*args` or `**kwargs`, so the grader cannot create a fresh one the "
                "same way"}
    if not info.get("loss_config") or not info.get("optimizer_config"):
        return {"status": TimedStatus.ERROR, "message": "the model was never compiled with a "
                "loss and an optimizer the grader can rebuild, so it does not know how to "
                "train it"}
    with np.load(inputs.train_npz, allow_pickle=False) as data:
        x_train, y_train = data["x_train"], data["y_train"]
    arrays = {"x": SCALINGS[fed_scaling(layers)](x_train).reshape((len(x_train), *layout)),
              "y": encode_labels(y_train, info.get("loss"), tuple(output), inputs.n_classes)}
    planned = keras_run.plan(nb, class_name, arguments, info, layout, arrays, inputs.budget)
    if isinstance(planned, str):
        return {"status": TimedStatus.ERROR, "message": planned}
    return planned


def early_plan(nb: Any, name: str, claim: dict[str, Any], inputs: Inputs) -> Plan | None:
    """The plan the end will likely make, from the kernel's word at fit(): believed in nothing
    but the choice of what to train early."""
    compiled = claim.get("compile") if isinstance(claim.get("compile"), dict) else {}
    loss = compiled.get("loss")
    loss_name = loss if isinstance(loss, str) else \
        ((loss.get("config") or {}).get("name") if isinstance(loss, dict) else None)
    layout = claim.get("layout")
    if not isinstance(layout, list) or not all(isinstance(d, int) and d > 0 for d in layout) \
            or int(np.prod(layout)) != 784:
        return None
    layers = [layer for layer in claim.get("layers") or [] if isinstance(layer, dict)]
    class_name = claim.get("class_name")
    planned = design_plan(nb, name, class_name if isinstance(class_name, str) else None,
                          {"loss": loss_name, "loss_config": loss,
                           "optimizer_config": compiled.get("optimizer")},
                          tuple(layout), layers, (None, inputs.n_classes), inputs)
    return planned if isinstance(planned, Plan) else None


class Rooms:
    """One grading's rooms: the one started with the kernel, given the first claimed design
    early, and fresh ones for any design it did not train."""

    def __init__(self, folder: Path, sandbox: str, hidden: tuple[Path, ...] = (),
                 spare: bool = True) -> None:
        """`spare`: start a room now, so that it has imported TensorFlow when it is needed."""
        self.folder, self._sandbox, self._hidden = folder, sandbox, hidden
        self.folder.mkdir(parents=True, exist_ok=True)
        self._made = 0
        self._spare: Room | None = self._new() if spare else None
        self._early: tuple[str, Room, str] | None = None  # name, room, its plan's digest
        self._stop = threading.Event()
        self._watching = True  # under _lock: the watch may still take a claim
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def _new(self) -> Room:
        self._made += 1
        return Room(self.folder / f"room-{self._made}", self._sandbox, self._hidden)

    def watch(self, folder: Path, names: list[str],
              planner: Callable[[str, dict[str, Any]], Plan | None]) -> None:
        """Give a room the first design the kernel claims under one of `names`."""
        self._thread = threading.Thread(target=self._watch, args=(folder, names, planner),
                                        name="keras-room-head-start", daemon=True)
        self._thread.start()

    def _watch(self, folder: Path, names: list[str],
               planner: Callable[[str, dict[str, Any]], Plan | None]) -> None:
        while not self._stop.wait(POLL_SECONDS):
            with self._lock:
                if self._watching and self._take_claim(folder, names, planner):
                    self._watching = False
        # Not before: a room started here is killed when this thread ends (the launcher's
        # PR_SET_PDEATHSIG follows the thread that forked it), so it lives as long as the rooms.

    def _take_claim(self, folder: Path, names: list[str],
                    planner: Callable[[str, dict[str, Any]], Plan | None]) -> bool:
        found = first_claim(folder, names)
        if found is None:
            return False
        try:
            planned = planner(*found)
        except Exception:  # noqa: BLE001 - no head start; the end plans from what it measured
            planned = None
        if planned is not None and not self._stop.is_set():
            self._start_early(found[0], planned)
        return True

    def _start_early(self, name: str, planned: Plan) -> None:
        room, self._spare = self._spare, None
        try:
            room = room or self._new()
            self._early = (name, room, planned.digest())
            room.start(planned, idle=True)
        except Exception:  # noqa: BLE001 - a head start lost; the end starts a fresh room
            self._early = None
            if room is not None:
                room.close()

    def started_early(self) -> str | None:
        """The name whose design a room is training early, if any."""
        return self._early[0] if self._early else None

    def _stop_watching(self) -> None:
        """No claim is taken from now on; one being taken is waited for."""
        with self._lock:
            self._watching = False

    def train(self, name: str, planned: Plan, limit: float) -> Retrained:
        """`planned`'s result: the early room's if it ran this very plan to its end, else a
        room's trained now, for at most `limit` seconds."""
        self._stop_watching()
        early, self._early = self._early, None
        if early is not None and early[0] != name:
            self._early = early
        elif early is not None:
            _, room, digest = early
            try:
                if digest == planned.digest():
                    result = room.finish(limit, starved_after=keras_run.STARVED_SECONDS)
                    # Starved of idle CPU by a busy machine, cut short by time, or a crash: the
                    # same plan again, in a room at the usual priority.
                    if result.finished:
                        result.report["head_start"] = True
                        return result
            finally:
                room.close()
        room, self._spare = self._spare or self._new(), None
        try:
            room.start(planned)
            result = room.finish(limit)
            result.report.pop("head_start", None)  # the room's own word, not ours
            return result
        finally:
            room.close()

    def close(self) -> None:
        self._stop.set()
        # Closed before the watch is joined, so that one waiting for its room to start ends
        # now, and after, for a room the watch made meanwhile.
        for _ in range(2):
            for room in (self._spare, self._early[1] if self._early else None):
                if room is not None:
                    room.close()
            if self._thread is not None:
                self._thread.join()


def first_claim(folder: Path, names: list[str]) -> tuple[str, dict[str, Any]] | None:
    """The kernel's first claim (`<name>-<n>.claim.json`) under one of `names`, read as the
    rooms' reports are (grader/harvest/untrusted_file.py): the kernel is still running."""
    pattern = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)-(?P<n>\d+)\.claim\.json$")
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return None
    found = sorted((int(m["n"]), m["name"], entry) for entry in entries
                   if (m := pattern.match(entry.name)) and m["name"] in names)
    for _, name, entry in found:
        claim = read_json(Path(entry.path))
        if claim is not None:
            return name, claim
    return None
