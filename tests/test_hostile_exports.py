"""Bloated model exports (issue 23). Run with `pytest -m hostile`.

A Keras archive is a zip: one that would inflate past the grader's caps (a 3 GiB config.json
deflates to a few MB) is refused before anything is inflated, with its sizes and the cap in what
the student is told, and the measuring process goes on with the other models.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from grader import measure
from grader.checks.context import GradingContext
from grader.execution.runner import ExecutionRecord
from grader.measure import archive

pytestmark = pytest.mark.hostile


def bloated(path: Path, member: str, inflated: int, others: dict[str, bytes] | None = None
            ) -> Path:
    """A zip whose `member` inflates to `inflated` bytes of spaces (a few kB compressed)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in (others or {}).items():
            zf.writestr(name, data)
        with zf.open(member, "w", force_zip64=True) as fh:
            chunk = b" " * 2**20
            for _ in range(inflated // len(chunk)):
                fh.write(chunk)
    return path


def test_a_bloated_config_is_refused_with_its_sizes(tmp_path):
    path = bloated(tmp_path / "model.keras", "config.json", 40 * 2**20,
                   {"metadata.json": b"{}"})
    with pytest.raises(ValueError) as refused:
        archive.check(path)
    compressed = zipfile.ZipFile(path).getinfo("config.json").compress_size
    assert str(refused.value) == (
        f"the exported model was not loaded: its config.json inflates to 40 MiB from "
        f"{archive.size(compressed)} compressed, and the grader reads at most 16 MiB")


def test_an_archive_inflating_past_the_total_cap_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(archive, "MAX_INFLATED_BYTES", 8 * 2**20)
    path = bloated(tmp_path / "model.keras", "model.weights.h5", 12 * 2**20)
    with pytest.raises(ValueError, match=r"the archive inflates to 12 MiB from .* compressed, "
                                         r"and the grader reads at most 8 MiB"):
        archive.check(path)


def test_an_archive_of_many_files_is_refused(tmp_path):
    path = tmp_path / "model.keras"
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(archive.MAX_MEMBERS + 1):
            zf.writestr(f"assets/{i}", b"")
    with pytest.raises(ValueError, match=f"holds {archive.MAX_MEMBERS + 1} files"):
        archive.check(path)


@pytest.mark.slow
def test_a_real_keras_archive_and_a_non_zip_pass_the_check(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(10)])
    model.save(tmp_path / "model.keras")
    archive.check(tmp_path / "model.keras")
    (tmp_path / "other.keras").write_text("not a zip: Keras says so itself")
    archive.check(tmp_path / "other.keras")


@pytest.mark.slow
def test_the_refusal_reaches_the_student_as_the_reason(tmp_path):
    """The measuring process refuses the archive unread and goes on: the model gets an error
    with the sizes, which the checks give the student as why it earned nothing."""
    import keras

    folder = tmp_path / "harvest"
    folder.mkdir()
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(10)])
    model.save(folder / "good.keras")
    with zipfile.ZipFile(folder / "good.keras") as zf:
        members = {name: zf.read(name) for name in zf.namelist() if name != "config.json"}
    bloated(folder / "model.keras", "config.json", 40 * 2**20, members)
    images = folder / "images.npy"
    np.save(images, np.zeros((8, 28, 28), dtype="uint8"), allow_pickle=False)
    worker = measure.Worker(tmp_path / "measure", [folder], 4096, mounts=None)
    try:
        found = worker.measure(measure.Request(images=images, objects=[
            {"name": "model", "export": str(folder / "model.keras"), "input_shape": None},
            {"name": "good", "export": str(folder / "good.keras"), "input_shape": None}]),
            rows=8)
    finally:
        worker.close()
    assert found.objects["good"].status == "found"  # the process survived the refusal
    refused = found.objects["model"]
    assert refused.status == "error"
    assert "config.json inflates to 40 MiB from" in refused.message
    assert "the grader reads at most 16 MiB" in refused.message
    context = GradingContext(found.objects, {}, {}, ExecutionRecord())
    reason = context.why_missing("model")
    assert reason.startswith("`model` could not be inspected: ") and "inflates to 40 MiB" in reason
