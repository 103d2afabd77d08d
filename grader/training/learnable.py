"""Can this design learn under the grader's training? Asked before any step: a learning rate of
0, a schedule that stays at 0 over the grader's steps, or frozen weights make a model whose
accuracy is whatever it started with, so no accuracy of it says the design learns.

Runs wherever timed_fit runs (the trusted measuring process; copied, the Keras clean room).
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Variables gradient descent is meant to move (BatchNormalization's moving statistics are not).
MOVED = {"kernel", "recurrent_kernel", "depthwise_kernel", "pointwise_kernel", "bias",
         "gamma", "beta", "embeddings"}


class CannotLearn(ValueError):
    """The design as compiled cannot change its weights; the message says why."""


def check(model: Any, optimizer: Any, steps: int) -> None:
    """Raise CannotLearn for frozen weights or a learning rate that is 0 at every step."""
    frozen = [v.path for v in model.weights
              if not v.trainable and v.path.rsplit("/", 1)[-1] in MOVED]
    if frozen:
        raise CannotLearn(f"{len(frozen)} weights are frozen (trainable=False), e.g. "
                          f"`{frozen[0]}`, so training cannot change them")
    if not model.trainable_variables:
        raise CannotLearn("the model has no trainable weights")
    rates = learning_rates(optimizer, steps)
    if not np.any(rates > 0):
        raise CannotLearn(f"the optimizer's learning rate is {float(rates.max()):g} at every "
                          f"one of the grader's {steps} steps, so training cannot change the "
                          "weights")


def learning_rates(optimizer: Any, steps: int) -> np.ndarray:
    """The learning rate at a sample of the steps the grader's training will take."""
    import keras

    rate = getattr(optimizer, "_learning_rate", None)
    if isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
        points = np.unique(np.linspace(0, max(0, steps - 1), 50).astype("int64"))
        return np.array([float(keras.ops.convert_to_numpy(rate(int(p)))) for p in points])
    return np.array([float(keras.ops.convert_to_numpy(optimizer.learning_rate))])
