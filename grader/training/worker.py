"""Grader-side training process: `python -m grader.training.worker REQUEST.json`.

Rebuilds a Sequential/functional model from its harvested JSON config (Keras safe mode: no
lambdas, no custom classes), trains it with timed_fit and writes `result.json` + `predictions.npz`.
Runs as its own process so a huge or broken architecture cannot take the grader down.
"""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path


def main(request_path: str) -> int:
    request = json.loads(Path(request_path).read_text())
    out = Path(request["out"])
    mem = int(request.get("memory_mb", 6144)) * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    import numpy as np

    try:
        import keras

        from .timed_fit import timed_fit

        keras.utils.set_random_seed(request["seed"])  # before the weights are created
        config_text = Path(request["config"]).read_text()
        model = keras.models.model_from_json(config_text)
        with np.load(request["train_npz"], allow_pickle=False) as data:
            x_train, y_train = data["x_train"], data["y_train"]
        images = np.load(request["images"], allow_pickle=False)
        optimizer = keras.optimizers.deserialize(request["optimizer"]) \
            if isinstance(request["optimizer"], dict) else request["optimizer"]
        loss = keras.losses.deserialize(request["loss"]) \
            if isinstance(request["loss"], dict) else request["loss"]
        result = timed_fit(model, x_train=x_train, y_train=y_train, images=images,
                           layout=tuple(request["layout"]), loss=loss, optimizer=optimizer,
                           epochs=request["epochs"], batch_size=request["batch_size"],
                           max_seconds=request["max_seconds"], n_classes=request["n_classes"],
                           seed=request["seed"])
        np.savez(out / "predictions.npz", predictions=result.pop("predictions"))
        result["status"] = "trained"
    except Exception as exc:  # reported to the student as a message, never as a traceback
        result = {"status": "error", "message": f"{type(exc).__name__}: {exc}"[:500]}
    (out / "result.json").write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
