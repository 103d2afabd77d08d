"""UNTRUSTED SIDE. Runs inside the numpy clean room, in the same interpreter as the student's code.

Copied into the clean room's folder and run as a script (`python -I -S numpy_harness.py`)
by grader/cleanroom/numpy_run.py. It never imports the grader (the grader is not even mounted)
and the grader never imports it. Everything it writes is checked on the trusted side, which
also keeps the time of the speed probe itself, from outside: nothing here is believed.

Files in the current folder: request.json, cases.npz and student.json from the grader;
results.json and results.npz back. Then the probe: "READY" on the protocol pipe, "GO" on stdin,
probe.npz in, probe_out.npz and probe.json out, "DONE" on the pipe. "STARTED", before any
student code runs, tells the grader that a clean room which stops later stopped on the student.
"""

import builtins
import importlib.abc
import json
import os
import signal
import sys

MAX_ELEMENTS = 20_000  # per returned array
FORWARD_OUTPUTS = ("Y", "Z2", "H", "Z1")
PARAMS = ("W1", "b1", "W2", "b2")


class _Blocked(importlib.abc.MetaPathFinder):
    """Readable errors for the frameworks Part 1 forbids. Not the enforcement: under bubblewrap
    their folders are not there at all; this only says why an import failed."""

    def __init__(self, names):
        self.names = frozenset(names)

    def find_spec(self, fullname, path, target=None):
        if fullname.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {fullname!r}: the grader runs Part 1 in a "
                                      "numpy-only clean room", name=fullname)
        return None


class _Timeout(BaseException):
    """BaseException: a student's `except Exception` must not swallow the time limit."""


def _raise_timeout(signum, frame):
    raise _Timeout()


def _describe(exc):
    try:
        text = str(exc)
    except BaseException:  # a student's exception class may break str()
        text = ""
    return (f"{type(exc).__name__}: {text}" if text else type(exc).__name__)[:300]


def _call(thunk, seconds):
    """(result, None) or (None, why): student code may raise anything, or never return."""
    signal.signal(signal.SIGALRM, _raise_timeout)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return thunk(), None
    except _Timeout:
        return None, f"did not return within {seconds:g} s"
    except BaseException as exc:  # SystemExit, KeyboardInterrupt from student code too
        return None, _describe(exc)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


class Weights(dict):
    """The weights dict, also answering 'w1'/'w2': the homework defines lowercase keys while
    its functions read 'W1'/'W2' (seed 004, In [3] vs In [5])."""

    def __missing__(self, key):
        if isinstance(key, str):
            for name in self.keys():
                if name.lower() == key.lower():
                    return self[name]
        raise KeyError(key)


def gradient_key(key):
    """'W1', 'w1', 'dW1', 'dLdW1', 'dL/dW1' → 'W1'."""
    if not isinstance(key, str):
        return None
    k = key.strip().lower()
    for prefix in ("dl/d", "dld", "d"):
        if k.startswith(prefix) and k[len(prefix):] in {p.lower() for p in PARAMS}:
            k = k[len(prefix):]
            break
    return next((p for p in PARAMS if p.lower() == k), None)


def main():
    request = json.load(open("request.json"))
    proto = os.fdopen(os.dup(1), "w")
    log = os.open("output.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(log, 1)  # the student's prints go to a file, never into the protocol
    os.dup2(log, 2)
    sys.path.insert(0, request["numpy_path"])
    sys.meta_path.insert(0, _Blocked(request["forbidden"]))
    import numpy as np

    # Before any student code: the grader knows from here on that its own part started.
    proto.write("STARTED\n")
    proto.flush()

    def as_array(value, what):
        try:  # lists and scalars convert; objects and strings do not
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{what} is not numeric ({type(value).__name__}): {exc}") from None
        if arr.size > MAX_ELEMENTS:
            raise ValueError(f"{what} has {arr.size} elements")
        return arr

    def load_case(data, prefix, b2):
        weights = Weights({p: np.array(data[f"{prefix}_{p}"]) for p in ("W1", "b1", "W2")})
        weights["b2"] = b2
        return np.array(data[f"{prefix}_X"]), np.array(data[f"{prefix}_Y_T"]), weights

    def copy_weights(weights):
        return Weights({k: np.array(v) if isinstance(v, np.ndarray) else v for k, v in weights.items()})

    def run_forward(fn, X, weights):
        result = fn(X.copy(), copy_weights(weights))
        if not isinstance(result, (tuple, list)) or len(result) != 4:
            raise ValueError("forward_propagation must return (Y, Z2, H, Z1), not "
                             f"{type(result).__name__}" + (f" of length {len(result)}"
                                                           if isinstance(result, (tuple, list)) else ""))
        return {k: as_array(v, k) for k, v in zip(FORWARD_OUTPUTS, result)}

    def run_backward(fn, X, Y_T, weights, loss_only=False):
        result = fn(X.copy(), Y_T.copy(), copy_weights(weights))
        if not isinstance(result, (tuple, list)) or len(result) != 2 or not isinstance(result[0], dict):
            raise ValueError("back_propagation must return (gradients, L) with gradients a dict, not "
                             f"{type(result).__name__}")
        gradients, loss = result
        out = {"L": as_array(loss, "L")}
        if out["L"].size != 1:
            raise ValueError(f"L must be one number, not an array of shape {out['L'].shape}")
        if loss_only:
            return out
        for key in list(gradients.keys())[:20]:
            param = gradient_key(key)
            if param and param not in out:
                out[param] = as_array(gradients[key], f"gradients[{key!r}]")
        missing = [p for p in PARAMS if p not in out]
        if missing:
            keys = ", ".join(repr(k) for k in list(gradients.keys())[:10])
            raise ValueError(f"the gradients dict has no {', '.join(missing)} (its keys: {keys})")
        return out

    report = {"cases": [], "load_error": None, "fd_error": None}
    namespace = {"__name__": "__main__", "__builtins__": builtins}  # as in a notebook
    # One definition at a time, as a notebook with errors allowed: a failed import must not
    # leave the functions after it undefined.
    for chunk in json.load(open("student.json")):
        code = chunk["source"]
        _, error = _call(lambda: exec(compile(code, f"<cell {chunk['cell']}>", "exec"), namespace),
                         float(request["load_timeout"]))
        if error and not report["load_error"]:
            report["load_error"] = f"cell {chunk['cell']}: {error}"
    backward, forward = namespace.get(request["backward"]), namespace.get(request["forward"])
    report["backward_callable"], report["forward_callable"] = callable(backward), callable(forward)
    seconds = float(request["call_timeout"])
    arrays = {}
    with np.load("cases.npz", allow_pickle=False) as data:
        cases = [load_case(data, f"c{i}", b2) for i, b2 in enumerate(request["b2"])]
    for i, (X, Y_T, weights) in enumerate(cases):
        record = {"forward_error": f"no function `{request['forward']}` in the notebook",
                  "backward_error": f"no function `{request['backward']}` in the notebook"}
        if callable(forward):
            outputs, record["forward_error"] = _call(lambda: run_forward(forward, X, weights), seconds)
            arrays.update({f"c{i}_{k}": v for k, v in (outputs or {}).items()})
        if callable(backward):
            outputs, record["backward_error"] = _call(lambda: run_backward(backward, X, Y_T, weights),
                                                      seconds)
            arrays.update({f"c{i}_{k}": v for k, v in (outputs or {}).items()})
        report["cases"].append(record)
    fd = request["fd_case"]
    if callable(backward) and report["cases"][fd]["backward_error"] is None:
        # The student's own L at W ± eps; the grader does the arithmetic.
        X, Y_T, weights = cases[fd]
        losses = {1.0: [], -1.0: []}
        for param, idx in request["perturbations"]:
            for sign in (1.0, -1.0):
                moved = copy_weights(weights)
                if param == "b2":
                    moved["b2"] = float(moved["b2"]) + sign * request["fd_eps"]
                else:
                    moved[param] = np.array(moved[param], dtype=np.float64)
                    moved[param][tuple(idx)] += sign * request["fd_eps"]
                out, error = _call(lambda: run_backward(backward, X, Y_T, moved, loss_only=True),
                                   seconds)
                if error:
                    report["fd_error"] = f"back_propagation failed with {param} perturbed: {error}"
                    break
                losses[sign].append(float(out["L"].reshape(-1)[0]))
            if report["fd_error"]:
                break
        if not report["fd_error"]:
            arrays["fd_plus"], arrays["fd_minus"] = np.array(losses[1.0]), np.array(losses[-1.0])
    else:
        report["fd_error"] = "back_propagation failed on its inputs"
    np.savez("results.npz", **arrays)
    report["modules"] = sorted({m.split(".")[0] for m in list(sys.modules)})[:3000]
    with open("results.json", "w") as f:
        json.dump(report, f)
    proto.write("READY\n")
    proto.flush()
    if sys.stdin.readline().strip() != "GO" or not callable(backward):
        return
    # The probe: timed by the grader from the moment probe.npz exists until "DONE".
    with np.load("probe.npz", allow_pickle=False) as data:
        X, Y_T, weights = load_case(data, "p", float(request["probe_b2"]))
    outputs, error = _call(lambda: run_backward(backward, X, Y_T, weights),
                           float(request["probe_timeout"]))
    np.savez("probe_out.npz", **(outputs or {}))
    with open("probe.json", "w") as f:
        json.dump({"error": error}, f)
    proto.write("DONE\n")
    proto.flush()


if __name__ == "__main__":
    main()
