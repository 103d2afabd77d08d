"""Read what the kernel harvested. Everything here is untrusted input: bounded, typed, pickle-free."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..data.model_inputs import SCALINGS
from ..scoring import TimedStatus

MAX_MANIFEST_BYTES = 5 * 2**20
MAX_PREDICTION_BYTES = 64 * 2**20
MAX_EXPORT_BYTES = 256 * 2**20  # a Keras archive: an 8M-parameter CNN with Adam's state ~100 MB
MAX_EXPORT_FILES = 64  # a SavedModel holds a handful (saved_model.pb, variables/, assets/)
_STATUSES = {"found", "missing", "wrong_type", "error"}


@dataclass
class HarvestedObject:
    name: str
    status: str  # found | missing | wrong_type | error | not_harvested
    message: str = ""
    type: str | None = None
    model: dict[str, Any] | None = None
    input_layout: list[int] | None = None
    predictions: dict[str, np.ndarray] = field(default_factory=dict)
    predict_error: str | None = None
    export: Path | None = None  # the kernel's Keras archive of the model, for grader/measure
    design: dict[str, Any] | None = None  # what the trusted side retrains: config and compile
    timed: dict[str, Any] | None = None  # the grader's own training (training/)
    data: dict[str, Any] = field(default_factory=dict)  # kind-specific JSON (kernel/kinds/)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)  # kind-specific numeric arrays

    def summary(self) -> dict[str, Any]:
        """The `models` entry of result.json."""
        out: dict[str, Any] = {"status": self.status}
        if self.message:
            out["message"] = self.message
        if self.type:
            out["type"] = self.type
        if self.model:
            out.update(self.model)
        if self.input_layout:
            out["input_layout"] = self.input_layout
        if self.timed:
            out["timed_training"] = {k: v for k, v in self.timed.items() if k != "predictions"}
        return out


def read(out_dir: Path, names: list[str], expected_rows: int | None) -> dict[str, HarvestedObject]:
    raw, problem = manifest_entries(out_dir)
    objects = {}
    for name in names:
        entry = raw.get(name)
        if not isinstance(entry, dict) or entry.get("status") not in _STATUSES:
            objects[name] = HarvestedObject(name, "not_harvested", problem)
            continue
        objects[name] = _parse(name, entry, out_dir, expected_rows)
    return objects


def manifest_entries(out_dir: Path) -> tuple[dict[str, Any], str]:
    """The manifest's entries (unvalidated), and what to say of an entry that is not there."""
    manifest_path = out_dir / "manifest.json"
    problem = "the grader could not inspect the kernel (it died or timed out before the end)"
    if manifest_path.is_file() and manifest_path.stat().st_size <= MAX_MANIFEST_BYTES:
        try:
            loaded = json.loads(manifest_path.read_text())
            raw = loaded.get("objects", {}) if isinstance(loaded, dict) else {}
            return (raw if isinstance(raw, dict) else {}), problem
        except (json.JSONDecodeError, UnicodeDecodeError):
            problem = "the grader's harvest file was unreadable"
    return {}, problem


def _parse(name: str, entry: dict[str, Any], out_dir: Path, rows: int | None) -> HarvestedObject:
    obj = HarvestedObject(name, entry["status"], str(entry.get("message", ""))[:1000],
                          type=_str(entry.get("type")))
    if obj.status != "found":
        return obj
    if isinstance(entry.get("timed"), dict):  # the grader's own training (measure/worker.py)
        obj.timed = read_timed(entry["timed"], out_dir, rows)
    if "export" in entry and "model" not in entry:  # measured by the trusted side
        obj.export = _export_path(out_dir, entry["export"])
        if obj.export is None:
            return HarvestedObject(name, "error", "the model's export is missing, malformed or "
                                   f"over {MAX_EXPORT_BYTES // 2**20} MB", type=obj.type)
        # What the kernel says of a SavedModel it exported (class name, input layout, compile
        # settings): validated and used by the trusted side, which checks it against the graph.
        obj.data["claim"] = {k: entry[k] for k in ("class_name", "layout", "compile", "layers",
                                                   "framework", "modules") if k in entry}
        return obj
    if "model" not in entry:  # another kind of object: its check module validates the rest
        obj.data = {k: v for k, v in entry.items()
                    if k not in ("status", "type", "arrays", "timed")}
        arrays_name = entry.get("arrays")
        if isinstance(arrays_name, str) and "/" not in arrays_name:
            obj.arrays = load_numeric_arrays(out_dir / arrays_name)
        return obj
    model = entry.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("layers"), list):
        return HarvestedObject(name, "error", "the harvested model description was malformed")
    obj.model = model
    if isinstance(entry.get("behaviour"), dict):
        obj.data["behaviour"] = entry["behaviour"]
    if isinstance(entry.get("design"), dict):
        obj.design = entry["design"]
    if isinstance(entry.get("fingerprint"), dict):
        # The measuring process's, for the class's similarity report, which bounds it where it
        # is read (pipeline._similarity_evidence): harvest stays below grader/similarity/.
        obj.data["fingerprint"] = entry["fingerprint"]
    layout = entry.get("input_layout")
    obj.input_layout = layout if isinstance(layout, list) else None
    obj.predict_error = _str(entry.get("predict_error"))
    pred_name = entry.get("predictions")
    if isinstance(pred_name, str) and "/" not in pred_name and rows:
        obj.predictions = _load_predictions(out_dir / pred_name, rows)
        if not obj.predictions and not obj.predict_error:
            errors = entry.get("predict_errors") or {}
            obj.predict_error = "; ".join(f"{k}: {v}" for k, v in errors.items())[:500] or \
                "the model's predictions could not be read"
    return obj


def _export_path(out_dir: Path, name: Any) -> Path | None:
    """A `.keras` archive file, a `.savedmodel` folder or a PyTorch module's `.onnx` file the
    kernel wrote, within the limits."""
    if not isinstance(name, str) or "/" in name or name.startswith("."):
        return None
    path = out_dir / name
    if path.is_symlink():
        return None
    if name.endswith((".keras", ".onnx")):
        ok = path.is_file() and path.stat().st_size <= MAX_EXPORT_BYTES
    elif name.endswith(".savedmodel"):
        ok = path.is_dir() and _tree_within_limits(path)
    else:
        ok = False
    return path if ok else None


def _tree_within_limits(root: Path) -> bool:
    """Plain files and folders only (no links, devices or fifos), bounded in size and number."""
    total, count = 0, 0
    for folder, dirs, files in os.walk(root):
        for entry in (*dirs, *files):
            path = Path(folder) / entry
            count += 1
            if count > MAX_EXPORT_FILES or path.is_symlink():
                return False
            if entry in files:
                if not path.is_file():
                    return False
                total += path.stat().st_size
                if total > MAX_EXPORT_BYTES:
                    return False
    return True


def _load_predictions(path: Path, rows: int) -> dict[str, np.ndarray]:
    if not path.is_file() or path.stat().st_size > MAX_PREDICTION_BYTES:
        return {}
    out = {}
    try:
        with np.load(path, allow_pickle=False) as data:
            for key in data.files:
                arr = data[key]
                if (arr.dtype.kind == "f" and arr.ndim == 2 and arr.shape[0] == rows
                        and 1 <= arr.shape[1] <= 1000):
                    out[key] = np.nan_to_num(arr.astype("float64"), nan=0.0)
    except (OSError, ValueError):
        return {}
    return out


def read_timed(timed: dict[str, Any], out_dir: Path, rows: int | None) -> dict[str, Any]:
    """A timed-training entry and its predictions, validated."""
    keep = {k: timed[k] for k in ("status", "message", "epochs_run", "epochs",
                                  "seconds_per_epoch", "cpu_seconds", "cpu_cap",
                                  "stopped_by_time", "loss", "train_accuracy", "where", "seconds",
                                  "seed", "cap_name") if k in timed}
    if timed.get("head_start") is True:
        keep["head_start"] = True
    if timed.get("scaling") in SCALINGS:  # the pixels the grader's training fed the design
        keep["scaling"] = timed["scaling"]
    notes = timed.get("notes")
    if isinstance(notes, list):  # what the grader replaced in the design: text, bounded
        keep["notes"] = [str(n)[:300] for n in notes[:5]]
    name = timed.get("predictions_file")
    if keep.get("status") == TimedStatus.TRAINED:
        arrays = load_numeric_arrays(out_dir / name) if isinstance(name, str) and "/" not in name else {}
        pred = arrays.get("predictions")
        if pred is None or pred.ndim != 2 or (rows and pred.shape[0] != rows):
            return {"status": TimedStatus.GRADER_FAILED, "message": "the grader's training "
                    "returned no usable predictions"}
        keep["predictions"] = np.nan_to_num(pred.astype("float64"))
    return keep


def load_numeric_arrays(path: Path) -> dict[str, np.ndarray]:
    """Numeric arrays only, no pickle, bounded size; anything else is dropped."""
    if not path.is_file() or path.stat().st_size > MAX_PREDICTION_BYTES:
        return {}
    out = {}
    try:
        with np.load(path, allow_pickle=False) as data:
            for key in data.files:
                arr = data[key]
                if arr.dtype.kind in "fiub":
                    out[key] = arr
    except (OSError, ValueError):
        return {}
    return out


def _str(value: Any) -> str | None:
    return str(value)[:500] if value is not None else None
