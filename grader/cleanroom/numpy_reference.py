"""The grader's own forward and backward pass for seed 004, Part 1 (trusted side), and the inputs
the grader chooses for the student's functions.

X (N, D) → Z1 = X·W1ᵀ + b1 → H = σ(Z1) → Z2 = H·W2 + b2 → Y = σ(Z2),
L = 1/(2N) Σ (Y − Y_T)². Each gradient has the shape of its weight: W1 (hidden, D), b1 (hidden,),
W2 (hidden,), b2 a number. The homework's network has D = 2 and 3 hidden units; the speed probe
(`make_probe`) has 2,000 hidden units, so that a backward pass made of one forward pass per
parameter cannot finish in time (see grader/cleanroom/numpy_run.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

PARAMS = ("W1", "b1", "W2", "b2")
FORWARD_OUTPUTS = ("Y", "Z2", "H", "Z1")
SHAPES: dict[str, tuple[int, ...]] = {"W1": (3, 2), "b1": (3,), "W2": (3,), "b2": ()}
FD_CASE = 2  # the finite-difference check runs on this case (random weights, b2 ≠ 0)
FD_EPS = 1e-4
# The speed probe: N examples, D inputs, PROBE_HIDDEN hidden units → 4·PROBE_HIDDEN + 1 weights.
PROBE_N, PROBE_HIDDEN = 200, 2000


class ProbeStatus:
    """How the timed call on the wide network ended (grader/cleanroom/numpy_run.py)."""

    PASSED = "passed"  # returned within the limit (its values are compared by the checks)
    TOO_SLOW = "too_slow"  # still running at the limit: stopped
    FAILED = "failed"  # raised, returned something unusable, or the process ended
    NOT_RUN = "not_run"  # the clean room stopped before the call


@dataclass(frozen=True)
class Case:
    name: str
    X: np.ndarray
    Y_T: np.ndarray
    weights: dict[str, Any]

    @property
    def b2_nonzero(self) -> bool:
        return float(self.weights["b2"]) != 0.0

    @property
    def n_params(self) -> int:
        return int(sum(np.size(self.weights[p]) for p in PARAMS))


def homework_case() -> Case:
    """The notebook's own inputs: np.random.seed(0), then the draws in the homework's order."""
    rs = np.random.RandomState(0)
    w1, w2 = rs.randn(3, 2), rs.randn(3)
    x, y = rs.rand(1000, 2), rs.randint(low=0, high=2, size=(1000,))
    return Case("the homework's inputs (seed 0, b2 = 0, N = 1000)", x, y,
                {"W1": w1, "b1": np.zeros(3), "W2": w2, "b2": 0})


def _random_case(seed: int, index: int, n: int, b2_nonzero: bool) -> Case:
    rng = np.random.default_rng([seed, index])
    w1, b1, w2 = rng.normal(size=(3, 2)), rng.normal(size=3), rng.normal(size=3)
    b2 = float(rng.choice([-1, 1]) * rng.uniform(0.5, 2.0)) if b2_nonzero else 0.0
    x, y = rng.normal(size=(n, 2)), rng.integers(0, 2, size=n)
    label = f"b2 = {b2:+.2f}" if b2_nonzero else "b2 = 0"
    return Case(f"random weights, {label}, N = {n}", x, y,
                {"W1": w1, "b1": b1, "W2": w2, "b2": b2})


def make_cases(seed: int) -> list[Case]:
    """The same list for the same seed (the grader's, from the notebook's hash)."""
    n1, n2 = (int(n) for n in np.random.default_rng([seed, 0]).integers(20, 300, size=2))
    return [homework_case(), _random_case(seed, 1, n1, False),
            _random_case(seed, 2, n2, True), _random_case(seed, 3, 1, True)]


def make_probe(seed: int) -> Case:
    """A wide network (2,000 hidden units, 8,001 weights), b2 = 0 so that the seed's one mistake
    (b2 inside the dot product) does not show here: the probe is about how, not what."""
    rng = np.random.default_rng([seed, 99])
    h = PROBE_HIDDEN
    weights = {"W1": rng.normal(size=(h, 2)), "b1": rng.normal(size=h),
               "W2": rng.normal(size=h) / np.sqrt(h), "b2": 0.0}
    return Case(f"a wider network ({h} hidden units, {4 * h + 1:,} weights, N = {PROBE_N})",
                rng.normal(size=(PROBE_N, 2)), rng.integers(0, 2, size=PROBE_N), weights)


def perturbations() -> list[tuple[str, tuple[int, ...]]]:
    """Every weight element of the homework's network, in a fixed order (13 of them)."""
    return [(p, idx) for p in PARAMS for idx in np.ndindex(*SHAPES[p])]


def perturbed(weights: dict[str, Any], param: str, idx: tuple[int, ...], delta: float) -> dict[str, Any]:
    """A copy of `weights` with one element moved by `delta`."""
    out = {k: np.array(v, dtype=np.float64) if isinstance(v, np.ndarray) else v
           for k, v in weights.items()}
    if param == "b2":
        out["b2"] = float(out["b2"]) + delta
    else:
        out[param][idx] += delta
    return out


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
