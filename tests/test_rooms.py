"""The Keras clean rooms of one grading (grader/cleanroom/rooms.py): a subclassed design trained
while the notebook runs is used only for the very plan the end makes, and every subclassed
model gets a room of its own."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest

from grader.cleanroom.keras_run import Plan, likely_model
from grader.cleanroom.rooms import Inputs, Rooms, design_plan, early_plan, first_claim

TINY = '''import keras

class Tiny(keras.Model):
    def __init__(self, units=8):
        super().__init__()
        self.flat = keras.layers.Flatten()
        self.hidden = keras.layers.Dense(units, activation="relu")
        self.out = keras.layers.Dense(10, activation="softmax")

    def call(self, x):
        return self.out(self.hidden(self.flat(x)))
'''
NOTEBOOK = nbformat.v4.new_notebook(cells=[
    nbformat.v4.new_code_cell(TINY), nbformat.v4.new_code_cell("model = Tiny(8)\nother = Tiny(4)")])
ADAM = {"module": "keras.optimizers", "class_name": "Adam",
        "config": {"name": "adam", "learning_rate": 0.001}, "registered_name": None}
LOSS = "sparse_categorical_crossentropy"
# As the trusted side describes the exported graph, and as the kernel claims it at fit().
MEASURED = [{"class": "Flatten", "output_shape": [None, 784]},
            {"class": "Dense", "output_shape": [None, 8]},
            {"class": "Dense", "output_shape": [None, 10]}]
CLAIM = {"class_name": "Tiny", "compile": {"compiled": True, "loss": LOSS, "optimizer": ADAM},
         "layers": [{"class": "Flatten", "name": "flatten"}, {"class": "Dense", "name": "dense"},
                    {"class": "Dense", "name": "dense_1"}], "layout": [28, 28]}


@pytest.fixture
def inputs(tmp_path: Path) -> Inputs:
    rng = np.random.default_rng(0)
    path = tmp_path / "train.npz"
    np.savez(path, x_train=rng.integers(0, 256, (256, 28, 28), dtype="uint8"),
             y_train=rng.integers(0, 10, 256))
    return Inputs(path, 10, {"epochs": 1, "batch_size": 32, "seed": 0, "max_cpu_seconds": 60.0,
                             "n_classes": 10})


def _final(inputs: Inputs, name: str = "model", optimizer: dict = ADAM) -> Plan:
    planned = design_plan(NOTEBOOK, name, "Tiny", {"loss": LOSS, "loss_config": LOSS,
                                                   "optimizer_config": optimizer},
                          (28, 28), MEASURED, (None, 10), inputs)
    assert isinstance(planned, Plan), planned
    return planned


def test_the_plan_made_from_the_claim_at_fit_is_the_one_the_end_makes(inputs):
    early = early_plan(NOTEBOOK, "model", CLAIM, inputs)
    assert early is not None and early.digest() == _final(inputs).digest()
    faster = {**ADAM, "config": {**ADAM["config"], "learning_rate": 0.01}}
    assert early.digest() != _final(inputs, optimizer=faster).digest()
    assert early.digest() != _final(inputs, name="other").digest()  # Tiny(4): its arguments
    assert early_plan(NOTEBOOK, "model", {**CLAIM, "layout": [28, 27]}, inputs) is None
    assert early_plan(NOTEBOOK, "model", {**CLAIM, "compile": "adam"}, inputs) is None
    uncompiled = design_plan(NOTEBOOK, "model", "Tiny", {"loss_config": None}, (28, 28),
                             MEASURED, (None, 10), inputs)
    assert uncompiled["status"] == "error"


def test_only_a_small_regular_claim_of_a_watched_name_is_read(tmp_path):
    assert first_claim(tmp_path / "absent", ["model"]) is None
    (tmp_path / "elsewhere.json").write_text("{}")
    os.symlink(tmp_path / "elsewhere.json", tmp_path / "model-0.claim.json")
    os.mkfifo(tmp_path / "model-1.claim.json")  # read naively, it would block forever
    (tmp_path / "model-2.claim.json").write_text("x" * (2**20 + 1))
    (tmp_path / "model-3.claim.json").write_text("[1, 2]")
    (tmp_path / "other-0.claim.json").write_text(json.dumps({"class_name": "Other"}))
    (tmp_path / "model-9.claim.json").write_text(json.dumps({"class_name": "Nine"}))
    (tmp_path / "model-5.claim.json").write_text(json.dumps({"class_name": "Five"}))
    assert first_claim(tmp_path, ["model"]) == ("model", {"class_name": "Five"})


def _until_early(rooms: Rooms, claims: Path, inputs: Inputs, names=("model",),
                 claim_now: bool = False) -> None:
    """Watch `claims` for `names` (writing the claim only now, with `claim_now`) and wait until
    a room trains the claimed design early."""
    rooms.watch(claims, list(names), lambda n, c: early_plan(NOTEBOOK, n, c, inputs))
    if claim_now:
        (claims / "model-0.claim.json").write_text(json.dumps(CLAIM))
    deadline = time.monotonic() + 120
    while not rooms.started_early() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert rooms.started_early() == "model"


def _cells(*sources: str):
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])


@pytest.mark.parametrize("sources, model", [
    ((TINY,), True),
    (("import tensorflow as tf\nclass Net(tf.keras.models.Model):\n    pass",), True),
    (("from keras import Sequential\nclass Stack(Sequential):\n    pass",), True),
    # Through the notebook's own base class, in a later cell.
    (("import keras\nclass Base(keras.Model):\n    pass", "class Net(Base):\n    pass"), True),
    (("import keras\nclass Stop(keras.callbacks.Callback):\n    pass",), False),
    (("import keras\nclass Scale(keras.layers.Layer):\n    pass",), False),
    (("from torch import nn\nclass MLP(nn.Module):\n    pass",), False),
    # The notebook's own `Model` is not Keras's.
    (("from torch import nn\nclass Model(nn.Module):\n    pass", "class Net(Model):\n    pass"),
     False),
    (("model = keras.Sequential([])",), False),
])
def test_a_room_starts_with_the_kernel_only_for_a_class_that_looks_like_a_keras_model(
        sources, model):
    assert likely_model(_cells(*sources)) is model


@pytest.mark.slow
def test_without_a_spare_a_room_starts_when_the_claim_arrives(tmp_path, inputs):
    claims = tmp_path / "head-start"
    claims.mkdir()
    rooms = Rooms(tmp_path / "rooms", "none", spare=False)
    try:
        assert rooms.folder.is_dir() and not any(rooms.folder.iterdir())  # nothing started
        _until_early(rooms, claims, inputs, claim_now=True)
        run = rooms.train("model", _final(inputs), 120)
    finally:
        rooms.close()
    assert run.error is None and run.export is not None
    assert run.report["head_start"] is True


@pytest.mark.slow
def test_the_early_room_is_used_for_its_own_plan_and_every_other_model_gets_a_fresh_one(
        tmp_path, inputs):
    claims = tmp_path / "head-start"
    claims.mkdir()
    (claims / "model-0.claim.json").write_text(json.dumps(CLAIM))
    rooms = Rooms(tmp_path / "rooms", "none")
    try:
        _until_early(rooms, claims, inputs, names=("model", "other"))
        early = rooms.train("model", _final(inputs), 120)
        other = rooms.train("other", _final(inputs, name="other"), 120)
    finally:
        rooms.close()
    alone = Rooms(tmp_path / "alone", "none")
    try:
        again = alone.train("model", _final(inputs), 120)
    finally:
        alone.close()
    for run in (early, other, again):
        assert run.error is None and run.export is not None and run.export.is_dir()
    assert early.report["head_start"] is True
    assert "head_start" not in other.report and "head_start" not in again.report
    assert early.export != other.export  # a room trains once: the second model had its own
    assert early.report["loss"] == again.report["loss"]  # the same training, early or not


@pytest.mark.slow
def test_an_early_design_the_student_then_changed_is_trained_again(tmp_path, inputs):
    claims = tmp_path / "head-start"
    claims.mkdir()
    (claims / "model-0.claim.json").write_text(json.dumps(CLAIM))
    faster = {**ADAM, "config": {**ADAM["config"], "learning_rate": 0.01}}
    rooms = Rooms(tmp_path / "rooms", "none")
    try:
        _until_early(rooms, claims, inputs)
        run = rooms.train("model", _final(inputs, optimizer=faster), 120)
    finally:
        rooms.close()
    assert run.error is None and run.export is not None
    assert "head_start" not in run.report
    assert json.loads((run.export.parents[1] / "request.json").read_text())["optimizer"] == faster


@pytest.mark.slow
def test_an_early_room_starved_of_cpu_is_replaced_not_waited_for(tmp_path, inputs, monkeypatch):
    """A room on idle CPU only gets none on a machine busy with other work; stopped here
    (SIGSTOP), it gains no CPU at all, as starved. The end gives up on it within the window and
    trains the same plan in a fresh room, long before the wall limit."""
    import signal

    from grader.cleanroom import keras_run
    from grader.execution import processes

    monkeypatch.setattr(keras_run, "STARVED_SECONDS", 4.0)
    claims = tmp_path / "head-start"
    claims.mkdir()
    (claims / "model-0.claim.json").write_text(json.dumps(CLAIM))
    rooms = Rooms(tmp_path / "rooms", "none")
    try:
        _until_early(rooms, claims, inputs)
        rooms._stop_watching()  # the room has its GO: it is training now
        room = rooms._early[1]
        processes.kill(processes.descendants(room.proc.pid), signal.SIGSTOP)
        started = time.monotonic()
        run = rooms.train("model", _final(inputs), 600)
        waited = time.monotonic() - started
    finally:
        rooms.close()
    assert run.error is None and run.export is not None
    assert "head_start" not in run.report  # the fresh room's, at the usual priority
    assert run.export.parents[1].name != room.folder.name
    assert waited < 120, waited
    assert room.closed and room.proc.poll() is not None  # the starved one is gone
