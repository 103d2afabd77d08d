"""The grader's own training of a design: its starting weights, its loop, its CPU cap.

Runs wherever TensorFlow is loaded: the trusted measuring process (grader/measure), and, copied
beside grader/kernel/keras_harness.py, the Keras clean room for a subclassed model that only its
own class can rebuild. So it imports nothing of the grader outside grader/training/.

The loop is the Keras guides' loop written from scratch (a gradient tape over the model's
trainable variables, the compiled loss, `optimizer.apply_gradients`), never `model.fit`: a
subclassed model's `fit`, `train_step`, `compile` or callbacks are the student's code and could
train nothing, or anything.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from . import initial, learnable

SPARSE_LOSSES = {"sparse_categorical_crossentropy", "SparseCategoricalCrossentropy"}
# Part of the key under which a reference design's accuracy here is remembered
# (grader/training/baselines.py): a different loop trains to different numbers.
LOOP_VERSION = "tape-1"
CAP_NAME = "[training] max_cpu_seconds"
PREDICT_GRACE = 30.0  # CPU seconds past the cap that predicting the holdout may still take


class TooSlow(RuntimeError):
    """The design spent its CPU cap and the grace for predicting the holdout."""


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


def loss_name(loss: Any) -> str | None:
    if isinstance(loss, str):
        return loss
    if isinstance(loss, dict):
        return loss.get("class_name")
    return getattr(loss, "name", None)


def _loss_function(loss: Any) -> Any:
    """A callable giving one scalar per batch, from a name, a config or a Loss object."""
    import keras

    fn = keras.losses.deserialize(loss) if isinstance(loss, dict) else keras.losses.get(loss)
    if isinstance(fn, type):
        fn = fn()
    return lambda y, p: keras.ops.mean(fn(y, p))


def train(model: Any, x: np.ndarray, y: np.ndarray, *, loss: Any, optimizer: Any, epochs: int,
          batch_size: int, max_cpu_seconds: float, n_classes: int, seed: int) -> dict[str, Any]:
    """Train a built `model` from the grader's starting weights. Raises learnable.CannotLearn
    (or initial.UnknownVariable) before any step when the design cannot learn as compiled."""
    import keras

    keras.utils.set_random_seed(seed)
    if isinstance(optimizer, (str, dict)):  # a name or a config: a fresh optimizer
        optimizer = keras.optimizers.get(optimizer)
    start = initial.reinitialise(model, seed)
    steps_per_epoch = -(-len(x) // batch_size)
    learnable.check(model, optimizer, epochs * steps_per_epoch)
    step = _step(model, _loss_function(loss), optimizer, x, y, n_classes)
    result = run_epochs(lambda rows: step(x[rows], y[rows]), len(x), epochs=epochs,
                        batch_size=batch_size, max_cpu_seconds=max_cpu_seconds, seed=seed)
    return {**result, "weights_changed": _changed(model, start)}


def run_epochs(step: Any, n_rows: int, *, epochs: int, batch_size: int, max_cpu_seconds: float,
               seed: int) -> dict[str, Any]:
    """The grader's loop, whatever the framework: `step(rows)` trains on those rows of the
    training set and gives (loss, hits); the rows are shuffled by `seed` every epoch."""
    rng = np.random.default_rng(seed)
    clock = _Clock(max_cpu_seconds)
    losses, accuracies, epoch_seconds, steps = [], [], [], 0
    for _ in range(epochs):
        began, total, correct, seen = time.monotonic(), 0.0, 0, 0
        order = rng.permutation(n_rows)
        for i in range(0, n_rows, batch_size):
            rows = order[i:i + batch_size]
            value, right = step(rows)
            total += float(value) * len(rows)
            correct, seen, steps = correct + int(right), seen + len(rows), steps + 1
            if clock.spent():  # within the epoch: one slow design holds the cores cap + a batch
                break
        epoch_seconds.append(round(time.monotonic() - began, 3))
        losses.append(total / max(1, seen))
        accuracies.append(correct / max(1, seen))
        if clock.stopped:
            break
    return {"epochs_run": len(epoch_seconds), "epochs": epochs, "steps": steps,
            "seconds_per_epoch": epoch_seconds, "cpu_seconds": round(clock.used(), 2),
            "cpu_cap": max_cpu_seconds, "cap_name": CAP_NAME, "stopped_by_time": clock.stopped,
            "loss": losses, "train_accuracy": accuracies}


def _step(model: Any, loss: Any, optimizer: Any, x: np.ndarray, y: np.ndarray,
          n_classes: int) -> Any:
    """One compiled training step: the loss (plus the model's regularisation losses), its
    gradients over the trainable variables, the optimizer's update; and the batch's hits."""
    import tensorflow as tf

    variables = model.trainable_variables
    optimizer.build(variables)
    sparse = y.dtype.kind in "iu"

    @tf.function(input_signature=[tf.TensorSpec((None, *x.shape[1:]), tf.float32),
                                  tf.TensorSpec((None, *y.shape[1:]), tf.as_dtype(y.dtype))])
    def step(xb, yb):  # noqa: ANN001, ANN202
        with tf.GradientTape() as tape:
            pred = model(xb, training=True)
            value = loss(yb, pred)
            if model.losses:
                value = value + tf.add_n(model.losses)
        grads = tape.gradient(value, variables)
        optimizer.apply_gradients(zip(grads, variables))
        guess = tf.argmax(tf.reshape(pred, (-1, n_classes)), axis=-1)
        truth = tf.reshape(tf.cast(yb, tf.int64), (-1,)) if sparse else \
            tf.argmax(tf.reshape(yb, (-1, n_classes)), axis=-1)
        return value, tf.reduce_sum(tf.cast(tf.equal(guess, truth), tf.int64))

    return step


class _Clock:
    """CPU seconds of this process, every thread included: unlike wall-clock seconds, they do not
    grow when other work shares the machine, so a busy machine trains the same steps."""

    def __init__(self, cap: float) -> None:
        self.cap, self.start, self.stopped = cap, time.process_time(), False

    def used(self) -> float:
        return time.process_time() - self.start

    def spent(self) -> bool:
        self.stopped = self.stopped or self.used() >= self.cap
        return self.stopped


def _changed(model: Any, start: dict[str, np.ndarray]) -> bool:
    """Did training move any trainable weight from where the grader started it?"""
    return any(not np.array_equal(np.asarray(v.numpy()), start[v.path])
               for v in model.trainable_variables if v.path in start)


def timed_fit(model: Any, *, x_train: np.ndarray, y_train: np.ndarray, images: np.ndarray,
              layout: tuple[int, ...], loss: Any, optimizer: Any, epochs: int, batch_size: int,
              max_cpu_seconds: float, n_classes: int, seed: int,
              pixel_divisor: float = 255.0) -> dict[str, Any]:
    """Train an uncompiled model on the training subset (pixels divided by `pixel_divisor`:
    [0, 1], or 0..255 with 1 for a model that rescales them itself) and predict the holdout
    `images` the same way; the measuring process's entry point."""
    started, cpu_start = time.monotonic(), time.process_time()
    keras_seed(seed)  # before the model's first call creates its variables
    x = x_train.astype("float32").reshape((len(x_train), *layout)) / pixel_divisor
    probe = np.asarray(model(x[:2], training=False))
    y = encode_labels(y_train, loss_name(loss), probe.shape, n_classes)
    result = train(model, x, y, loss=loss, optimizer=optimizer, epochs=epochs,
                   batch_size=batch_size, max_cpu_seconds=max_cpu_seconds, n_classes=n_classes,
                   seed=seed)
    holdout = images.astype("float32").reshape((len(images), *layout)) / pixel_divisor
    pred = predict_holdout(lambda batch: np.asarray(model(batch, training=False)), holdout,
                           cpu_start, max_cpu_seconds)
    return {**result, "predictions": pred.reshape((len(images), -1)).astype("float32"),
            "seconds": round(time.monotonic() - started, 3)}


def predict_holdout(predict: Any, holdout: np.ndarray, cpu_start: float,
                    max_cpu_seconds: float) -> np.ndarray:
    """The trained design's outputs on the grader's images, 256 at a time; TooSlow once the
    training's CPU seconds and these pass the cap and its grace."""
    pred = []
    for i in range(0, len(holdout), 256):
        used = time.process_time() - cpu_start
        if used > max_cpu_seconds + PREDICT_GRACE:
            raise TooSlow(f"the design is too slow to measure: it used {used:.0f} CPU seconds "
                          f"before predicting the grader's images, past the grader's cap of "
                          f"{max_cpu_seconds:.0f} ({CAP_NAME}) and {PREDICT_GRACE:.0f} s more")
        pred.append(predict(holdout[i:i + 256]))
    return np.concatenate(pred)


def keras_seed(seed: int) -> None:
    import keras

    keras.utils.set_random_seed(seed)
