"""Grader side of timed training: run the worker process on a harvested config, read its result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..execution.runner import PROJECT_ROOT

MAX_RESULT_BYTES = 2**20


def worker_env(home: Path) -> dict[str, str]:
    """The same numeric settings as the student's kernel: results repeat run after run."""
    env = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL") if k in os.environ}
    env.update(HOME=str(home), KERAS_HOME=str(home / ".keras"), PYTHONPATH=str(PROJECT_ROOT),
               PYTHONHASHSEED="0", TF_CPP_MIN_LOG_LEVEL="2", TF_ENABLE_ONEDNN_OPTS="0",
               OMP_NUM_THREADS="2", TF_NUM_INTRAOP_THREADS="2", TF_NUM_INTEROP_THREADS="1")
    return env


def train(config_json: str, compile_info: dict[str, Any], layout: list[int], train_npz: Path,
          images: Path, *, epochs: int, batch_size: int, max_seconds: float, n_classes: int,
          seed: int, memory_mb: int) -> dict[str, Any]:
    """Returns the worker's result with `predictions` (an array) or `status: error` and a message."""
    loss = compile_info.get("loss_config") or compile_info.get("loss")
    optimizer = compile_info.get("optimizer_config") or compile_info.get("optimizer")
    if not loss or not optimizer:
        return {"status": "error", "message": "the model was never compiled, so the grader does "
                "not know which loss and optimizer to train it with"}
    with tempfile.TemporaryDirectory(prefix="grader-train-") as tmp:
        folder = Path(tmp)
        (folder / "home").mkdir()
        (folder / "model.json").write_text(config_json)
        request = {"config": str(folder / "model.json"), "loss": loss, "optimizer": optimizer,
                   "layout": layout, "train_npz": str(train_npz), "images": str(images),
                   "epochs": epochs, "batch_size": batch_size, "max_seconds": max_seconds,
                   "n_classes": n_classes, "seed": seed, "out": str(folder),
                   "memory_mb": memory_mb}
        (folder / "request.json").write_text(json.dumps(request))
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "grader.training.worker", str(folder / "request.json")],
                env=worker_env(folder / "home"), cwd=folder, capture_output=True,
                timeout=max_seconds * 2 + 120, start_new_session=True)
        except subprocess.TimeoutExpired:
            return {"status": "error", "message": f"timed training ran past {max_seconds * 2 + 120:.0f} s"}
        result_path = folder / "result.json"
        if not result_path.is_file() or result_path.stat().st_size > MAX_RESULT_BYTES:
            tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            return {"status": "error", "message": f"the training process failed "
                    f"(exit {proc.returncode}): {tail[0][:300]}"}
        result = json.loads(result_path.read_text())
        if result.get("status") == "trained":
            with np.load(folder / "predictions.npz", allow_pickle=False) as data:
                result["predictions"] = data["predictions"].astype("float64")
        return result
