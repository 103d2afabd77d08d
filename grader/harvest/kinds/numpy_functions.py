"""A numpy forward/backward pass (seed 004, Part 1), called inside the student's kernel.

The object is the student's `back_propagation`; option `forward` names their
`forward_propagation`. Both are called on inputs the grader draws from a per-run seed (plus the
homework's own seed-0 inputs), and their outputs are saved as plain arrays. Nothing here judges
them: the grader regenerates the same inputs from the seed with `make_cases` and recomputes the
answers itself (grader/checks/numpy_reference.py). Also here: losses at perturbed weights, so
the grader can check the student's gradients against finite differences of their own loss.

This module must stay pure numpy: it is imported inside the kernel, where importing
TensorFlow (or the grader's checks) would be slow and would show up as the student's import.
"""

from __future__ import annotations

import secrets
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

PARAMS = ("W1", "b1", "W2", "b2")
FORWARD_OUTPUTS = ("Y", "Z2", "H", "Z1")
SHAPES: dict[str, tuple[int, ...]] = {"W1": (3, 2), "b1": (3,), "W2": (3,), "b2": ()}
FD_CASE = 2  # the finite-difference check runs on this case (random weights, b2 ≠ 0)
FD_EPS = 1e-4
MAX_ELEMENTS = 20_000  # per returned array: N is at most 1000 here
MAX_MODULES = 3000


@dataclass(frozen=True)
class Case:
    name: str
    X: np.ndarray
    Y_T: np.ndarray
    weights: dict[str, Any]

    @property
    def b2_nonzero(self) -> bool:
        return float(self.weights["b2"]) != 0.0

    def fresh_weights(self) -> "Weights":
        """A copy per call: a student's function may update the weights in place."""
        return Weights({k: np.array(v) if isinstance(v, np.ndarray) else v
                        for k, v in self.weights.items()})


class Weights(dict):
    """The weights dict, also answering 'w1'/'w2': the homework defines lowercase keys while
    its functions read 'W1'/'W2' (seed 004, In [3] vs In [5])."""

    def __missing__(self, key: Any) -> Any:
        if isinstance(key, str):
            for name in self.keys():
                if name.lower() == key.lower():
                    return self[name]
        raise KeyError(key)


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
    """The same list for the same seed, on both sides of the sandbox."""
    n1, n2 = (int(n) for n in np.random.default_rng([seed, 0]).integers(20, 300, size=2))
    return [homework_case(), _random_case(seed, 1, n1, False),
            _random_case(seed, 2, n2, True), _random_case(seed, 3, 1, True)]


def perturbations() -> list[tuple[str, tuple[int, ...]]]:
    """Every weight element, in a fixed order (13 of them)."""
    return [(p, idx) for p in PARAMS for idx in np.ndindex(*SHAPES[p])]


def perturbed(weights: Weights, param: str, idx: tuple[int, ...], delta: float) -> Weights:
    if param == "b2":
        weights["b2"] = float(weights["b2"]) + delta
    else:
        weights[param] = np.array(weights[param], dtype=np.float64)
        weights[param][idx] += delta
    return weights


def gradient_key(key: Any) -> str | None:
    """'W1', 'w1', 'dW1', 'dLdW1', 'dL/dW1' → 'W1'."""
    if not isinstance(key, str):
        return None
    k = key.strip().lower()
    for prefix in ("dl/d", "dld", "d"):
        if k.startswith(prefix) and k[len(prefix):] in {p.lower() for p in PARAMS}:
            k = k[len(prefix):]
            break
    return next((p for p in PARAMS if p.lower() == k), None)


# ---- in the kernel -----------------------------------------------------------------------------

class _Timeout(BaseException):
    """BaseException: a student's `except Exception` must not swallow the grader's time limit."""


def _call(thunk: Callable[[], Any], seconds: float) -> tuple[Any, str | None]:
    """(result, None) or (None, error); student code may raise anything, or never return."""
    try:
        previous = signal.signal(signal.SIGALRM, _raise_timeout)
        signal.setitimer(signal.ITIMER_REAL, seconds)
    except ValueError:  # not the main thread: no per-call limit, the harvest's own limit holds
        previous = None
    try:
        return thunk(), None
    except _Timeout:
        return None, f"did not return within {seconds:g} s"
    except BaseException as exc:  # noqa: BLE001 - SystemExit, KeyboardInterrupt from student code
        return None, _describe(exc)
    finally:
        if previous is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


def _describe(exc: BaseException) -> str:
    try:
        text = str(exc)
    except BaseException:  # noqa: BLE001 - a student's exception class may break str()
        text = ""
    return (f"{type(exc).__name__}: {text}" if text else type(exc).__name__)[:300]


def _raise_timeout(signum: int, frame: Any) -> None:
    raise _Timeout()


def _as_array(value: Any, what: str) -> np.ndarray:
    try:  # tensors, lists and scalars convert; objects and strings do not
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} is not numeric ({type(value).__name__}): {exc}") from None
    if arr.size > MAX_ELEMENTS:
        raise ValueError(f"{what} has {arr.size} elements")
    return arr


def _forward(fn: Callable, case: Case) -> dict[str, np.ndarray]:
    result = fn(case.X.copy(), case.fresh_weights())
    if not isinstance(result, (tuple, list)) or len(result) != 4:
        raise ValueError("forward_propagation must return (Y, Z2, H, Z1), not "
                         f"{type(result).__name__}" + (f" of length {len(result)}"
                                                       if isinstance(result, (tuple, list)) else ""))
    return {k: _as_array(v, k) for k, v in zip(FORWARD_OUTPUTS, result)}


def _backward(fn: Callable, case: Case, weights: Weights | None = None,
              loss_only: bool = False) -> dict[str, np.ndarray]:
    result = fn(case.X.copy(), case.Y_T.copy(),
                weights if weights is not None else case.fresh_weights())
    if not isinstance(result, (tuple, list)) or len(result) != 2 \
            or not isinstance(result[0], Mapping):
        raise ValueError("back_propagation must return (gradients, L) with gradients a dict, not "
                         f"{type(result).__name__}")
    gradients, loss = result
    out = {"L": _as_array(loss, "L")}
    if out["L"].size != 1:
        raise ValueError(f"L must be one number, not an array of shape {out['L'].shape}")
    if loss_only:
        return out
    for key in list(gradients.keys())[:20]:
        param = gradient_key(key)
        if param and param not in out:
            out[param] = _as_array(gradients[key], f"gradients[{key!r}]")
    missing = [p for p in PARAMS if p not in out]
    if missing:
        keys = ", ".join(repr(k) for k in list(gradients.keys())[:10])
        raise ValueError(f"the gradients dict has no {', '.join(missing)} (its keys: {keys})")
    return out


def harvest(value: Any, obj: dict[str, Any], namespace: dict[str, Any], out: Path) -> dict[str, Any]:
    # Before anything of ours is imported: which libraries did the notebook load?
    modules = sorted({m.split(".")[0] for m in list(sys.modules)})[:MAX_MODULES]
    grader_checks = any(m.startswith("grader.checks") for m in list(sys.modules))
    cls = type(value)
    type_name = f"{cls.__module__}.{cls.__qualname__}"
    if not callable(value):
        return {"status": "wrong_type", "type": type_name,
                "message": f"`{obj['name']}` is a {type_name}, not a function"}
    forward_name = str(obj.get("forward", "forward_propagation"))
    forward = namespace.get(forward_name)
    seconds = float(obj.get("call_timeout", 10))
    # Inputs from a seed the grader chose (pipeline.run_seed, from the notebook's hash), so
    # hard-coded outputs cannot match; a request without one (a direct call) draws a fresh seed.
    seed = int(obj["run_seed"]) if obj.get("run_seed") is not None else secrets.randbits(32)
    cases = make_cases(seed)
    arrays: dict[str, np.ndarray] = {}
    records = []
    for i, case in enumerate(cases):
        record: dict[str, Any] = {"name": case.name}
        if callable(forward):
            outputs, error = _call(lambda: _forward(forward, case), seconds)
            record["forward_error"] = error
            arrays.update({f"c{i}_{k}": v for k, v in (outputs or {}).items()})
        else:
            record["forward_error"] = f"no function `{forward_name}` in the notebook"
        outputs, error = _call(lambda: _backward(value, case), seconds)
        record["backward_error"] = error
        arrays.update({f"c{i}_{k}": v for k, v in (outputs or {}).items()})
        records.append(record)
    fd_error = _finite_differences(value, cases[FD_CASE], seconds, arrays) \
        if records[FD_CASE]["backward_error"] is None else "back_propagation failed on its inputs"
    np.savez(out / f"{obj['name']}.arrays.npz", **arrays)
    return {"status": "found", "type": type_name, "seed": seed, "cases": records,
            "forward_found": callable(forward), "fd_error": fd_error, "modules": modules,
            "grader_checks_loaded": grader_checks, "arrays": f"{obj['name']}.arrays.npz"}


def _finite_differences(fn: Callable, case: Case, seconds: float,
                        arrays: dict[str, np.ndarray]) -> str | None:
    """The student's own L at W ± eps, element by element; the grader does the arithmetic."""
    plus, minus = (np.full(len(perturbations()), np.nan) for _ in range(2))
    for j, (param, idx) in enumerate(perturbations()):
        for sign, into in ((1.0, plus), (-1.0, minus)):
            weights = perturbed(case.fresh_weights(), param, idx, sign * FD_EPS)
            outputs, error = _call(lambda: _backward(fn, case, weights, loss_only=True), seconds)
            if error:
                return f"back_propagation failed with {param} perturbed: {error}"
            into[j] = float(outputs["L"].reshape(-1)[0])
    arrays["fd_plus"], arrays["fd_minus"] = plus, minus
    return None
