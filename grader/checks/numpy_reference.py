"""The grader's own forward and backward pass for seed 004, Part 1 (trusted side).

X (N, 2) → Z1 = X·W1ᵀ + b1 → H = σ(Z1) → Z2 = H·W2 + b2 → Y = σ(Z2),
L = 1/(2N) Σ (Y − Y_T)². Each gradient has the shape of its weight: W1 (3, 2), b1 (3,),
W2 (3,), b2 a number.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# The inputs are defined beside the kernel code that feeds them to the student; the grader
# regenerates them here from the seed instead of reading them back from the kernel.
from ..harvest.kinds.numpy_functions import (  # noqa: F401 - re-exported for the checks
    FD_CASE, FD_EPS, FORWARD_OUTPUTS, PARAMS, SHAPES, Case, make_cases, perturbations)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def forward(X: np.ndarray, weights: dict[str, Any], *, b2_inside: bool = False) -> dict[str, np.ndarray]:
    """`b2_inside`: the seed's bug, Z2 = H·(W2 + b2), right only when b2 = 0 (for diagnoses)."""
    Z1 = X @ np.asarray(weights["W1"]).T + weights["b1"]
    H = sigmoid(Z1)
    W2, b2 = np.asarray(weights["W2"]), float(weights["b2"])
    Z2 = H @ (W2 + b2) if b2_inside else H @ W2 + b2
    return {"Y": sigmoid(Z2), "Z2": Z2, "H": H, "Z1": Z1}


def backward(X: np.ndarray, Y_T: np.ndarray, weights: dict[str, Any], *,
             b2_inside: bool = False) -> dict[str, np.ndarray]:
    """L and the gradients, keyed "L", "W1", "b1", "W2", "b2".

    With `b2_inside`, what the seed's solution computes: the buggy forward pass, then the
    chain rule written for the correct one.
    """
    f = forward(X, weights, b2_inside=b2_inside)
    Y, H = f["Y"], f["H"]
    n = X.shape[0]
    dZ2 = (Y - Y_T) / n * Y * (1.0 - Y)
    dZ1 = np.outer(dZ2, np.asarray(weights["W2"])) * H * (1.0 - H)
    return {"L": np.float64(np.sum((Y - Y_T) ** 2) / (2 * n)),
            "W1": dZ1.T @ X, "b1": dZ1.sum(axis=0), "W2": H.T @ dZ2, "b2": np.float64(dZ2.sum())}


def numerical_gradients(plus: np.ndarray, minus: np.ndarray,
                        eps: float = FD_EPS) -> dict[str, np.ndarray]:
    """Central differences from the losses at W ± eps (in `perturbations()` order)."""
    slopes = (np.asarray(plus, dtype=np.float64) - np.asarray(minus, dtype=np.float64)) / (2 * eps)
    out = {p: np.zeros(SHAPES[p]) for p in PARAMS}
    for slope, (param, idx) in zip(slopes, perturbations()):
        out[param][idx] = slope
    return out
