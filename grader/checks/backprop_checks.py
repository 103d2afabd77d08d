"""Checks on a numpy forward/backward pass (seed 004, Part 1).

The grader ran the student's functions in its numpy clean room (grader/cleanroom/numpy_run.py):
the source of their definitions, in a fresh sandboxed interpreter, on inputs drawn from the
grader's seed. What the clean room wrote is the student's code's output, validated here against
the grader's own implementation (numpy_reference.py) on inputs regenerated from the seed. The
grader's own facts (the sandbox, the imports read from the source, the probe's time, measured
from outside) sit under `room`.

Finite differences: a backward pass earns its points only if it also gave the right values on a
network of 8,001 weights within the probe's limit; one forward pass per weight cannot.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..result import CheckResult
from ..assignment import CheckSpec
from .context import GradingContext, Unavailable, guarded
from ..cleanroom.numpy_reference import (FD_CASE, FD_EPS, FORWARD_OUTPUTS, PARAMS, SHAPES, Case,
                                         ProbeStatus, backward, forward, make_cases, make_probe,
                                         numerical_gradients, perturbations)

LABELS = {"L": "L", "W1": "dL/dW1", "b1": "dL/db1", "W2": "dL/dW2", "b2": "dL/db2"}
VALUES = ("L", *PARAMS)
B2_HINT = ("b2 is added inside the dot product, Z2 = H·(W2 + b2); it belongs after it: "
           "Z2 = H·W2 + b2 (the homework's own check, with b2 = 0, cannot show this)")
B2_CHARGED = ("graded on your own forward values, as the chain rule for Z2 = H·W2 + b2: b2 "
              "added inside the dot product in forward_propagation is charged once, in the "
              "forward check")


@dataclass
class _Run:
    """What the clean room wrote, validated, beside the inputs regenerated from the seed."""

    cases: list[Case]
    forward: list[dict[str, np.ndarray] | str]  # outputs, or why there are none
    backward: list[dict[str, np.ndarray] | str]
    fd: tuple[np.ndarray, np.ndarray] | str
    room: dict[str, Any]  # the grader's own facts: sandbox, imports, the probe's timing
    probe_case: Case
    probe_outputs: dict[str, np.ndarray] | None
    memo: dict[Any, Any] = field(default_factory=dict)  # verdicts shared by the four checks

    def works(self) -> bool:
        return any(isinstance(b, dict) for b in self.backward)


def _load(spec: CheckSpec, ctx: GradingContext) -> _Run:
    name = spec.object or ""
    key = ("numpy-run", name)
    if key in ctx.notes:
        return ctx.notes[key]
    obj = ctx.objects.get(name)
    if obj is None or obj.status != "found":
        if obj is not None and obj.status in ("wrong_type", "missing", "error") and obj.message:
            raise Unavailable(obj.message)
        raise Unavailable(ctx.why_missing(name))
    data = obj.data
    seed = data.get("seed")
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**64:
        raise Unavailable("the grader's clean room reported no usable seed")
    trusted = ctx.notes.get("run_seed")  # set when the pipeline chose the seed itself
    if trusted is not None and seed != trusted:
        raise Unavailable("the functions were not run on the grader's inputs")
    cases = make_cases(seed)
    records = data.get("cases")
    if not isinstance(records, list) or len(records) != len(cases):
        raise Unavailable("the clean room's report was malformed")
    fwd, bwd = [], []
    load_error = data.get("load_error")
    for i, rec in enumerate(records):
        rec = rec if isinstance(rec, dict) else {}
        fwd.append(_outputs(obj.arrays, f"c{i}_", FORWARD_OUTPUTS,
                            _with_cause(rec.get("forward_error"), load_error)))
        bwd.append(_outputs(obj.arrays, f"c{i}_", VALUES,
                            _with_cause(rec.get("backward_error"), load_error)))
    probe = _outputs(obj.arrays, "probe_", VALUES, None)
    run = _Run(cases, fwd, bwd, _fd(obj.arrays, data.get("fd_error")), data.get("room") or {},
               make_probe(seed), probe if isinstance(probe, dict) else None)
    ctx.notes[key] = run
    return run


def _with_cause(error: Any, load_error: Any) -> Any:
    """A NameError is usually a definition that failed to run: say which."""
    if isinstance(error, str) and error.startswith("NameError") and load_error:
        return f"{error} (running the notebook's definitions, {str(load_error)[:200]})"
    return error


def _outputs(arrays: dict[str, np.ndarray], prefix: str, keys: tuple[str, ...],
             error: Any) -> dict[str, np.ndarray] | str:
    if error is not None:
        return _explain(str(error)[:300])
    found = {k: arrays.get(f"{prefix}{k}") for k in keys}
    if any(v is None for v in found.values()):
        return "the grader could not read its outputs"
    return {k: v.astype(np.float64) for k, v in found.items()}


def _explain(error: str) -> str:
    if error.startswith("NotImplementedError"):
        return error + " (the starter's `raise NotImplementedError()` is still there)"
    return error


def _fd(arrays: dict[str, np.ndarray], error: Any) -> tuple[np.ndarray, np.ndarray] | str:
    if error is not None:
        return str(error)[:300]
    plus, minus = arrays.get("fd_plus"), arrays.get("fd_minus")
    n = len(perturbations())
    if plus is None or minus is None or plus.shape != (n,) or minus.shape != (n,):
        return "the grader could not read the losses at perturbed weights"
    if not (np.all(np.isfinite(plus)) and np.all(np.isfinite(minus))):
        return "L was not a finite number at slightly perturbed weights"
    return plus.astype(np.float64), minus.astype(np.float64)


def _align(got: np.ndarray, want: np.ndarray, transposed_ok: bool) -> tuple[np.ndarray | None, str]:
    """The student's array in the reference's shape, or None and why not. Singleton axes do
    not matter (the seed's b1 is (1, 3) and its b2 (1,)); W1's gradient may come transposed
    (2, 3), as the homework itself printed it."""
    g, w = np.squeeze(got), np.squeeze(want)
    if g.shape == w.shape:
        return g, ""
    if transposed_ok and g.ndim == 2 and g.shape == w.T.shape:
        return g.T, "transposed"
    return None, f"has shape {tuple(got.shape)}, expected {tuple(want.shape)}"


def _mismatch(got: np.ndarray, want: np.ndarray, rtol: float, atol: float,
              transposed_ok: bool = False) -> str | None:
    g, why = _align(got, want, transposed_ok)
    if g is None:
        return why
    if not np.all(np.isfinite(g)):
        return "contains NaN or inf"
    if np.allclose(g, np.squeeze(want), rtol=rtol, atol=atol):
        return None
    w = np.squeeze(want)
    if g.size > 6:
        return f"differs by up to {float(np.max(np.abs(g - w))):.3g}"
    return f"is {_fmt(g)}, expected {_fmt(w)}"


def _fmt(a: np.ndarray) -> str:
    a = np.asarray(a)
    if a.size == 1:
        return f"{float(a.reshape(-1)[0]):.6g}"
    return np.array2string(a, precision=5, separator=", ").replace("\n", "")


def _where(failing: list[int], cases: list[Case]) -> str:
    if len(failing) == len(cases):
        return "on every input set"
    if failing == [i for i, c in enumerate(cases) if c.b2_nonzero]:
        return "when b2 ≠ 0"
    return "on: " + "; ".join(cases[i].name for i in failing)


def _tolerances(spec: CheckSpec) -> tuple[float, float]:
    return spec.options.rtol, spec.options.atol


@dataclass
class _Comparison:
    right: int = 0
    rights: dict[str, int] = field(default_factory=dict)  # key → input sets it is right on
    failing: dict[str, list[int]] = field(default_factory=dict)  # key → failing case indexes
    example: dict[str, str] = field(default_factory=dict)  # key → the first failure, in words
    transposed: bool = False

    def messages(self, results: list[Any], cases: list[Case], fn_name: str,
                 label: Callable[[str], str]) -> list[str]:
        """Errors first, then the wrong values grouped by the input sets they fail on."""
        by_error: dict[str, list[int]] = {}
        for i, r in enumerate(results):
            if isinstance(r, str):
                by_error.setdefault(r, []).append(i)
        parts = [f"{fn_name} failed {_where(idx, cases)}: {err}" for err, idx in by_error.items()]
        groups: dict[tuple[int, ...], list[str]] = {}
        for k, idx in self.failing.items():
            groups.setdefault(tuple(idx), []).append(k)
        for idx, keys in groups.items():
            names = [label(k) for k in keys]
            text = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
            verb = "differs" if len(names) == 1 else "differ"
            parts.append(f"{text} {verb} from the reference {_where(list(idx), cases)} "
                         f"(e.g. {self.example[keys[0]]})")
        return parts


def _compare(results: list[dict[str, np.ndarray] | str], expected: Callable[[Case], dict],
             cases: list[Case], keys: tuple[str, ...], rtol: float, atol: float,
             label: Callable[[str], str], transposed_ok: bool = False) -> _Comparison:
    out = _Comparison()
    for i, (case, got) in enumerate(zip(cases, results)):
        if isinstance(got, str):
            continue
        ref = expected(case)
        for k in keys:
            problem = _mismatch(got[k], ref[k], rtol, atol, transposed_ok and k == "W1")
            if problem is None:
                out.right += 1
                out.rights[k] = out.rights.get(k, 0) + 1
                out.transposed |= k == "W1" and np.squeeze(got[k]).shape != SHAPES["W1"]
            else:
                out.failing.setdefault(k, []).append(i)
                out.example.setdefault(k, f"{case.name}: {label(k)} {problem}")
    return out


def _matches_b2_bug(results: list[dict[str, np.ndarray] | str], cases: list[Case], key: str,
                    bug: Callable[[Case], np.ndarray], rtol: float, atol: float) -> bool:
    """On every b2 ≠ 0 input the student's value is what b2 inside the dot product gives."""
    hits = [isinstance(r, dict) and _mismatch(r[key], bug(c), rtol, atol) is None
            for r, c in zip(results, cases) if c.b2_nonzero]
    return bool(hits) and all(hits)


def _b2_inside(run: _Run, rtol: float, atol: float) -> bool:
    """The seed's mistake, diagnosed: on every b2 ≠ 0 input the student's Z2 (or, without a
    forward pass, their L) is what b2 inside the dot product gives."""
    key = ("b2_inside", rtol, atol)
    if key not in run.memo:
        run.memo[key] = _diagnose_b2_inside(run, rtol, atol)
    return run.memo[key]


def _diagnose_b2_inside(run: _Run, rtol: float, atol: float) -> bool:
    if any(isinstance(r, dict) for r in run.forward):
        return _matches_b2_bug(run.forward, run.cases, "Z2",
                               lambda c: forward(c.X, c.weights, b2_inside=True)["Z2"], rtol, atol)
    return _matches_b2_bug(run.backward, run.cases, "L",
                           lambda c: backward(c.X, c.Y_T, c.weights, b2_inside=True)["L"], rtol, atol)


def _expected_backward(run: _Run, rtol: float, atol: float) -> Callable[[Case], dict]:
    """Errors carried forward: with b2 inside the dot product diagnosed, the gradients are
    graded as the chain rule at the student's own forward values."""
    inside = _b2_inside(run, rtol, atol)
    return lambda c: backward(c.X, c.Y_T, c.weights, b2_inside=inside)


@dataclass
class _ProbeVerdict:
    ok: dict[str, bool]  # value → right on the wide network, within the limit
    message: str | None  # why some value earns nothing, if one does


def _probe_verdict(run: _Run, rtol: float, atol: float, transposed_ok: bool) -> _ProbeVerdict:
    """The finite-differences gate: the same function on a network of 8,001 weights, timed by
    the grader from outside the clean room."""
    key = ("probe", rtol, atol, transposed_ok)
    if key not in run.memo:
        run.memo[key] = _judge_probe(run, rtol, atol, transposed_ok)
    return run.memo[key]


def _judge_probe(run: _Run, rtol: float, atol: float, transposed_ok: bool) -> _ProbeVerdict:
    probe = run.room.get("probe") if isinstance(run.room.get("probe"), dict) else {}
    status, case = probe.get("status"), run.probe_case
    none = dict.fromkeys(VALUES, False)
    why = ("the grader also runs back_propagation on {case} to make sure the gradients are not "
           "finite differences of the forward pass").format(case=case.name)
    if status == ProbeStatus.TOO_SLOW:
        return _ProbeVerdict(none, (
            f"back_propagation did not finish within {probe.get('limit')} s on {case.name} "
            f"(the grader's own backward pass took {_ms(probe.get('reference_seconds'))} there). "
            f"Finite differences of the forward pass need a forward pass per weight, about "
            f"{_seconds(case.n_params * _number(probe.get('forward_seconds')))} here; an analytic "
            "backward pass needs a few, so this looks like finite differences: "
            "no backward-pass points"))
    if status == ProbeStatus.FAILED:
        return _ProbeVerdict(none, f"{why}, and there it failed: {_explain(str(probe.get('error'))[:300])} "
                                   "(code written for any number of hidden units passes)")
    if status != ProbeStatus.PASSED or run.probe_outputs is None:
        return _ProbeVerdict(none, f"{why}, but the clean room stopped before that call")
    expected = backward(case.X, case.Y_T, case.weights)
    ok, wrong = {}, []
    for k in VALUES:
        problem = _mismatch(run.probe_outputs[k], expected[k], rtol, atol, transposed_ok and k == "W1")
        ok[k] = problem is None
        if problem:
            wrong.append(f"{LABELS[k]} {problem}")
    if not wrong:
        return _ProbeVerdict(ok, None)
    return _ProbeVerdict(ok, f"{why}; there {'; '.join(wrong)}, so those values earn nothing")


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def _ms(value: Any) -> str:
    return f"{_number(value) * 1000:.0f} ms"


def _seconds(value: float) -> str:
    return f"{value / 60:.0f} minutes" if value >= 120 else f"{value:.0f} s"


@guarded
def forward_pass(spec: CheckSpec, ctx: GradingContext) -> CheckResult:
    """Y, Z2, H, Z1 on every input set, against the grader's forward pass."""
    run = _load(spec, ctx)
    rtol, atol = _tolerances(spec)
    cmp = _compare(run.forward, lambda c: forward(c.X, c.weights), run.cases, FORWARD_OUTPUTS,
                   rtol, atol, label=str)
    parts = cmp.messages(run.forward, run.cases, "forward_propagation", str)
    right = cmp.right
    if "Z2" in cmp.failing and _b2_inside(run, rtol, atol):
        # The formula is wrong even where b2 = 0 hides it: Y and Z2 earn nothing (one mistake,
        # charged once: the backward pass is graded on this forward pass).
        right -= cmp.rights.get("Y", 0) + cmp.rights.get("Z2", 0)
        parts.append(B2_HINT + "; Y and Z2 earn nothing, H and Z1 are right")
    message = "; ".join(parts) if parts else \
        f"Y, Z2, H and Z1 match the reference on all {len(run.cases)} input sets"
    return CheckResult.scored(spec, right / (len(FORWARD_OUTPUTS) * len(run.cases)), message,
                              failing={k: [run.cases[i].name for i in v] for k, v in cmp.failing.items()})


def _constant(results: list[dict[str, np.ndarray] | str]) -> bool:
    """The same L and gradients for different inputs: numbers typed in, not computed."""
    ok = [r for r in results if isinstance(r, dict)]
    return len(ok) >= 2 and all(all(np.array_equal(ok[0][k], r[k]) for k in ok[0]) for r in ok[1:])


@guarded
def backward_pass(spec: CheckSpec, ctx: GradingContext) -> CheckResult:
    """L and each gradient on every input set, against the grader's backward pass; a value
    earns its share only if it was also right on the wide network, in time."""
    run = _load(spec, ctx)
    rtol, atol = _tolerances(spec)
    if _constant(run.backward):
        return CheckResult.scored(spec, 0.0, "back_propagation returns the same L and gradients "
                                  "whatever X, Y_T and the weights are: are the homework's printed "
                                  "numbers typed in instead of computed?")
    label = LABELS.__getitem__
    transposed_ok = spec.options.accept_transposed_w1
    inside = _b2_inside(run, rtol, atol)
    cmp = _compare(run.backward, _expected_backward(run, rtol, atol), run.cases, VALUES,
                   rtol, atol, label, transposed_ok)
    gate = _probe_verdict(run, rtol, atol, transposed_ok)
    parts = cmp.messages(run.backward, run.cases, "back_propagation", label)
    if gate.message and cmp.right:  # nothing right anyway: the gate adds nothing to say
        parts.append(gate.message)
    n = len(run.cases)
    fraction = sum(cmp.rights.get(k, 0) / n for k in VALUES if gate.ok[k]) / len(VALUES)
    message = "; ".join(parts) if parts else \
        f"L and all four gradients match the reference on all {n} input sets and on the wider network"
    if inside:
        message = ("L and the gradients are " + B2_CHARGED) + ("; " + message if parts else "")
    if cmp.transposed and "W1" not in cmp.failing:
        message += " (dL/dW1 came transposed, shape (2, 3), as the homework printed it: accepted)"
    return CheckResult.scored(spec, fraction, message, probe=run.room.get("probe"),
                              failing={label(k): [run.cases[i].name for i in v]
                                       for k, v in cmp.failing.items()})


@guarded
def gradient_check(spec: CheckSpec, ctx: GradingContext) -> CheckResult:
    """Are the student's gradients the derivatives of the student's own L? Central differences
    of their L at W ± eps (the clean room called their function), compared here with their
    gradients. A backward pass that is itself finite differences proves nothing: the same gate
    on the wide network applies."""
    run = _load(spec, ctx)
    case = run.cases[FD_CASE]
    analytic = run.backward[FD_CASE]
    if isinstance(analytic, str):
        return CheckResult.scored(spec, 0.0, f"back_propagation failed on {case.name}: {analytic}")
    if isinstance(run.fd, str):
        return CheckResult.scored(spec, 0.0, f"no finite-difference check: {run.fd}")
    numeric = numerical_gradients(*run.fd)
    rtol, atol = spec.options.rtol, spec.options.atol
    transposed_ok = spec.options.accept_transposed_w1
    gate = _probe_verdict(run, *_tolerances(spec), transposed_ok)
    vrtol, vatol = _tolerances(spec)
    carried = backward(case.X, case.Y_T, case.weights, b2_inside=True) \
        if _b2_inside(run, vrtol, vatol) else None
    problems, right, explained = [], 0, []
    for p in PARAMS:
        got, why = _align(analytic[p], numeric[p], transposed_ok and p == "W1")
        if got is None:
            problems.append(f"{LABELS[p]} {why}")
        elif np.all(np.isfinite(got)) and np.allclose(got, numeric[p], rtol=rtol, atol=atol):
            right += gate.ok[p]
        elif carried is not None and _mismatch(got, carried[p], vrtol, vatol) is None:
            right += gate.ok[p]  # the chain rule at their own forward values: charged once
            explained.append(LABELS[p])
        else:
            problems.append(f"{LABELS[p]} is not the derivative of your own L: finite differences "
                            f"give {_fmt(numeric[p])}, your {LABELS[p]} is {_fmt(got)}")
    where = f" ({case.name}; ε = {FD_EPS:g})"
    if explained:
        agree = [LABELS[p] for p in PARAMS if LABELS[p] not in explained and
                 not any(x.startswith(LABELS[p] + " ") for x in problems)]
        problems.insert(0, f"{_join(explained)} differ from finite differences of your own L only "
                        f"because b2 is added inside the dot product: they are {B2_CHARGED}"
                        + (f"; {_join(agree)} agree{'s' if len(agree) == 1 else ''}" if agree else ""))
        message = "; ".join(problems) + where
    else:
        message = "; ".join(problems) + where if problems else \
            "all four gradients agree with finite differences of your own L" + where
    if gate.message:
        message += "; " + gate.message
    return CheckResult.scored(spec, right / len(PARAMS), message)


@guarded
def numpy_only(spec: CheckSpec, ctx: GradingContext) -> CheckResult:
    """No framework that computes gradients. Scored because it is enforced: the functions ran in
    a clean room where those frameworks and the grader cannot be imported. The imports the
    functions depend on are read from the source (trusted); other cells' imports cost nothing."""
    run = _load(spec, ctx)
    forbidden = set(spec.options.forbidden)
    imports = [i for i in run.room.get("imports") or [] if isinstance(i, list) and len(i) == 3]
    hits = [f"{mod} (cell {cell}: `{str(line)[:80]}`)" for cell, mod, line in imports if mod in forbidden]
    if hits:
        return CheckResult.scored(spec, 0.0, "Part 1 allows numpy only; the functions' code "
                                  "imports " + "; ".join(hits))
    if not run.works():
        return CheckResult.scored(spec, 0.0, "numpy only, but there is no working back_propagation "
                                  "to credit yet")
    others = sorted({mod for _, mod, _ in notebook_imports(ctx.notebook) if mod in forbidden}) \
        if ctx.notebook is not None else []
    note = f" (the notebook also imports {', '.join(others)} in cells these functions do not " \
        "use: that costs nothing)" if others else ""
    frameworks = ", ".join(sorted(forbidden - {"grader"}))
    if run.room.get("enforced") is True:
        return CheckResult.scored(spec, 1.0, "numpy only, enforced: the functions ran in a clean "
                                  f"room where {frameworks} and the grader cannot be imported" + note,
                                  enforced=True)
    return CheckResult.scored(spec, 1.0, "numpy only as far as the grader can tell, NOT enforced "
                              "(--sandbox none): the functions' source imports none of "
                              f"{frameworks}, and the clean room's import blocker is Python-level"
                              + note, enforced=False)

_IMPORT_LINE = re.compile(r"^\s*(?:from|import)\s+([A-Za-z_][\w]*)", re.M)


def notebook_imports(nb: Any) -> list[tuple[int, str, str]]:
    """(1-based cell, top-level module, source line) for each import in the code cells."""
    found: list[tuple[int, str, str]] = []
    for number, cell in enumerate(getattr(nb, "cells", None) or [], start=1):
        if cell.get("cell_type") != "code":
            continue
        source = str(cell.get("source", ""))
        # IPython lines (%magic, !shell) are not Python; blank them to keep line numbers.
        lines = ["" if l.lstrip().startswith(("%", "!")) else l for l in source.splitlines()]
        try:
            tree = ast.parse("\n".join(lines))
        except SyntaxError:
            found += [(number, m.group(1), m.group(0).strip()) for m in _IMPORT_LINE.finditer(source)]
            continue
        in_cell: list[tuple[int, str, str]] = []
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                    and isinstance(node.args[0].value, str) and _is_import_call(node.func):
                names = [node.args[0].value]
            in_cell += [(node.lineno, name.split(".")[0], lines[node.lineno - 1].strip())
                        for name in names]
        found += [(number, name, line) for _, name, line in sorted(in_cell)]
    return found


def _is_import_call(func: ast.expr) -> bool:
    return (isinstance(func, ast.Name) and func.id == "__import__") or \
        (isinstance(func, ast.Attribute) and func.attr == "import_module")
