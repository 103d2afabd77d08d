"""The grader's initial weights: chosen by each variable's role and shape under the grader's seed,
whatever the design's config or its class's __init__ put there.

Values come from numpy, not from Keras's initializers, so that the trusted side can regenerate
them from a shape alone: it checks a model the clean room trained against them without running
the student's class. Runs in the trusted measuring process and, copied, in the Keras clean room,
so it imports nothing of the grader.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

# Keras's own defaults for each role (Dense, Conv*, BatchNormalization, Embedding).
ROLES = {"kernel": "glorot_uniform", "recurrent_kernel": "glorot_uniform",
         "depthwise_kernel": "glorot_uniform", "pointwise_kernel": "glorot_uniform",
         "bias": "zeros", "beta": "zeros", "moving_mean": "zeros",
         "gamma": "ones", "moving_variance": "ones", "embeddings": "uniform"}
LEARNED = {"glorot_uniform", "uniform"}  # roles whose starting values are random


class UnknownVariable(ValueError):
    """A variable the grader cannot give a starting value: it may carry data."""


def role(name: str, shape: tuple[int, ...], trainable: bool) -> str:
    """The initializer for a variable named `name` (its last path component)."""
    known = ROLES.get(name.rsplit("/", 1)[-1].split(":")[0])
    if known:
        return known
    if not trainable:  # e.g. Normalization's adapted mean and variance: statistics of data
        raise UnknownVariable(f"the non-trainable variable `{name}` {tuple(shape)} is not one "
                              "the grader knows how to start from")
    return "glorot_uniform" if len(shape) >= 2 else "zeros"


def value(kind: str, shape: tuple[int, ...], seed: int, occurrence: int = 0) -> np.ndarray:
    """The starting value of the `occurrence`-th variable of this kind and shape."""
    shape = tuple(int(d) for d in shape)
    if kind == "zeros":
        return np.zeros(shape, "float32")
    if kind == "ones":
        return np.ones(shape, "float32")
    salt = zlib.crc32(repr((kind, shape)).encode())
    rng = np.random.default_rng([int(seed), salt, int(occurrence)])
    if kind == "uniform":
        return rng.uniform(-0.05, 0.05, shape).astype("float32")
    fan_in, fan_out = _fans(shape)
    limit = np.sqrt(6.0 / max(1, fan_in + fan_out))
    return rng.uniform(-limit, limit, shape).astype("float32")


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """Keras's fans: (in, out) for a matrix; times the receptive field for a convolution."""
    if len(shape) < 2:
        return (shape[0] if shape else 1), (shape[0] if shape else 1)
    field = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * field, shape[-1] * field


def reinitialise(model: Any, seed: int) -> dict[str, np.ndarray]:
    """Assign the grader's starting value to every weight of a built model; returns them by
    path. Raises UnknownVariable for state the grader cannot choose."""
    seen: dict[tuple[str, tuple[int, ...]], int] = {}
    start = {}
    for variable in model.weights:
        shape = tuple(int(d) for d in variable.shape)
        kind = role(variable.path, shape, bool(variable.trainable))
        k = seen.get((kind, shape), 0)
        seen[(kind, shape)] = k + 1
        start[variable.path] = value(kind, shape, seed, k)
        variable.assign(start[variable.path])
    return start


def is_start(array: np.ndarray, seed: int, name: str = "kernel", tolerance: float = 0.0) -> bool:
    """Whether `array` is still one of the grader's starting values for its shape (any
    occurrence): how the trusted side tells an untrained variable."""
    shape = tuple(array.shape)
    try:
        kind = role(name, shape, True)
    except UnknownVariable:
        return False
    for k in range(64):
        if np.allclose(array, value(kind, shape, seed, k), rtol=0.0, atol=tolerance):
            return True
        if kind not in LEARNED:
            return False
    return False
