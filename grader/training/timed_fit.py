"""Train a freshly initialised model on the training subset within a budget; predict the holdout.

Runs wherever TensorFlow is loaded: the trusted measuring process (grader/measure), or the
student's kernel for a subclassed model, which only its own class can rebuild.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

SPARSE_LOSSES = {"sparse_categorical_crossentropy", "SparseCategoricalCrossentropy"}


def encode_labels(labels: np.ndarray, loss_name: str | None, output_shape: tuple, n_classes: int
                  ) -> np.ndarray:
    """Integer labels for sparse losses, one-hot otherwise, shaped like the model's output."""
    sparse = (loss_name or "") in SPARSE_LOSSES
    y = labels.astype("int64") if sparse else np.eye(n_classes, dtype="float32")[labels]
    middle = tuple(d for d in output_shape[1:-1])
    if middle:  # e.g. LeNet-5 without Flatten: (None, 1, 1, 10)
        y = y.reshape((len(labels), *middle, *(() if sparse else (n_classes,))))
        if sparse:
            y = y[..., None]
    return y


class _CpuClock:
    """A Keras callback that ends training once the CPU budget is spent (after the current
    epoch). CPU seconds of this process, every thread included: unlike wall-clock seconds, they
    do not grow when other work shares the machine, so a busy machine trains the same epochs."""

    def __init__(self, keras: Any, cpu_seconds: float) -> None:
        outer = self

        class Callback(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):  # noqa: ANN001
                outer.cpu_start = time.process_time()
                outer._epoch_start = time.monotonic()

            def on_epoch_begin(self, epoch, logs=None):  # noqa: ANN001
                outer._epoch_start = time.monotonic()

            def on_epoch_end(self, epoch, logs=None):  # noqa: ANN001
                outer.epoch_times.append(time.monotonic() - outer._epoch_start)
                outer.cpu_used = time.process_time() - outer.cpu_start
                if outer.cpu_used >= cpu_seconds:
                    outer.stopped_early = True
                    self.model.stop_training = True

        self.callback = Callback()
        self.stopped_early = False
        self.epoch_times: list[float] = []
        self.cpu_used = 0.0


def timed_fit(model: Any, *, x_train: np.ndarray, y_train: np.ndarray, images: np.ndarray,
              layout: tuple[int, ...], loss: Any, optimizer: Any, epochs: int, batch_size: int,
              max_cpu_seconds: float, n_classes: int, seed: int) -> dict[str, Any]:
    """`model` must be freshly initialised and uncompiled; returns curves and holdout predictions."""
    import keras

    started = time.monotonic()
    keras.utils.set_random_seed(seed)
    x = x_train.astype("float32").reshape((len(x_train), *layout)) / 255.0
    probe = np.asarray(model(x[:2], training=False))
    loss_name = loss if isinstance(loss, str) else (loss or {}).get("class_name") \
        if isinstance(loss, dict) else getattr(loss, "name", None)
    y = encode_labels(y_train, loss_name, probe.shape, n_classes)
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    clock = _CpuClock(keras, max_cpu_seconds)
    history = model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, shuffle=True,
                        callbacks=[clock.callback])
    holdout = images.astype("float32").reshape((len(images), *layout)) / 255.0
    pred = np.asarray(model.predict(holdout, batch_size=256, verbose=0))
    return {
        "epochs_run": len(clock.epoch_times),
        "epochs": epochs,
        "seconds_per_epoch": [round(t, 3) for t in clock.epoch_times],
        "cpu_seconds": round(clock.cpu_used, 2),
        "cpu_cap": max_cpu_seconds,
        "stopped_by_time": clock.stopped_early,
        "loss": [float(v) for v in history.history.get("loss", [])],
        "train_accuracy": [float(v) for v in history.history.get("accuracy", [])],
        "predictions": pred.reshape((len(images), -1)).astype("float32"),
        "seconds": round(time.monotonic() - started, 3),
    }
