"""The numpy clean room (trusted side): run the student's forward and backward pass, from the
notebook's source, in a fresh sandboxed interpreter, on inputs the grader chose.

What the clean room can import is enforced by the sandbox, not asked of the student's code:
under bubblewrap the folders of TensorFlow, Keras, PyTorch, JAX and autograd are empty, the
grader's package (and any checkout of it beside this one) is not there, and neither is
`reference/`. The interpreter starts isolated (`-I -S`) with only numpy on its path. With
`--sandbox none` the same interpreter runs unsandboxed: only the path and an import blocker,
both of which student code can undo, so the result records that numpy-only was not enforced.

Finite differences: after the homework-sized cases, the grader times one more call from outside
the clean room (the student's code cannot touch that clock): a network with 2,000 hidden units
(8,001 weights). An analytic backward pass takes a few forward passes (milliseconds); one made of
finite differences of the forward pass needs one forward pass per weight (minutes), and is
stopped at the limit. Inputs appear only when the clock starts, so nothing can be precomputed.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import numpy_reference as ref
from .numpy_reference import ProbeStatus
from ..errors import GraderError
from ..execution import confine, sandbox as sandbox_mod
from ..execution.limits import Limits
from ..harvest.artifacts import HarvestedObject, load_numeric_arrays
from ..assignment.tables import ObjectOptions
from .. import paths
from ..paths import PACKAGE_ROOT
from . import source as source_mod
from ..harvest.untrusted_file import read_json
from .process import interpreter, LineReader, stop

HARNESS = Path(__file__).resolve().parents[1] / "kernel" / "numpy_harness.py"
# Frameworks that compute gradients (Part 1 allows numpy only), and the grader itself.
FORBIDDEN = ("tensorflow", "keras", "tf_keras", "torch", "jax", "jaxlib", "autograd", "theano",
             "mxnet", "paddle", "grader")
PROBE_MIN_SECONDS = 3.0  # the probe's limit, at least
PROBE_REFERENCE_FACTOR = 50  # ... and at least this many times the grader's own backward pass
STARTUP_SECONDS = 60  # bwrap, the interpreter and numpy, before any student code
SETUP_SECONDS = 120  # loading the student's definitions and the cases, before the probe
MEMORY_MB = 2048
# numpy with one BLAS thread needs few processes; its inputs and outputs are small.
LIMITS = Limits(memory_mb=MEMORY_MB, processes=32, disk_mb=256, files=1000, file_mb=64,
                cpu_seconds=600)


@dataclass
class Probe:
    status: str
    seconds: float | None
    limit: float
    reference_seconds: float
    forward_seconds: float  # the grader's forward pass at the probe's size
    n_params: int
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


KIND = "numpy_functions"  # the assignment.toml object kind this clean room measures


def measure_all(nb: Any, objects: list[Any], seed: int, sandbox: str,
                hidden: tuple[Path, ...] = ()) -> dict[str, HarvestedObject]:
    """Every numpy_functions object of an assignment (spec.ObjectSpec), measured here; they
    replace the kernel's harvest of the same names, which is only the student's claim."""
    return {o.name: measure(nb, o.name, o.options, seed, sandbox, hidden)
            for o in objects if o.kind == KIND}


def measure(nb: Any, name: str, options: ObjectOptions, seed: int, sandbox: str,
            hidden: tuple[Path, ...] = ()) -> HarvestedObject:
    """The clean room's account of `name` (the back_propagation) as a harvested object.
    `sandbox` is the resolved mode, 'bwrap' or 'none'. Raises GraderError when the grader's own
    side fails (the sandbox does not start): never the student's score."""
    forward_name = options.forward
    extracted = source_mod.extract(nb, [name, forward_name])
    room_facts = {"sandbox": sandbox, "enforced": sandbox == "bwrap",
                  "imports": [list(i) for i in extracted.imports], "cells": extracted.found,
                  "skipped_cells": extracted.skipped_cells}
    if name in extracted.missing:
        return HarvestedObject(name, "missing", f"no cell of the notebook defines `{name}`",
                               data={"room": room_facts})
    room = Path(tempfile.mkdtemp(prefix="grader-cleanroom-"))
    started = time.monotonic()
    try:
        cases = ref.make_cases(seed)
        _prepare(room, extracted.chunks, cases, name, forward_name, options)
        outcome = _run(room, sandbox, ref.make_probe(seed), hidden)
        room_facts["seconds"] = round(time.monotonic() - started, 3)
        return _collect(room, name, seed, outcome, room_facts)
    finally:
        shutil.rmtree(room, ignore_errors=True)


def _prepare(room: Path, chunks: list[tuple[int, str]], cases: list[ref.Case], name: str, forward_name: str,
             options: ObjectOptions) -> None:
    site = room / "site"  # numpy, and nothing else, on the clean room's path
    site.mkdir()
    numpy_dir = Path(np.__file__).resolve().parent
    for item in (numpy_dir, numpy_dir.with_name("numpy.libs")):
        if item.exists():
            (site / item.name).symlink_to(item)
    shutil.copy(HARNESS, room / HARNESS.name)
    (room / "student.json").write_text(json.dumps([{"cell": c, "source": t} for c, t in chunks]))
    arrays = {}
    for i, case in enumerate(cases):
        arrays.update(_case_arrays(f"c{i}", case))
    np.savez(room / "cases.npz", **arrays)
    call_timeout = options.call_timeout
    request = {"numpy_path": str(site), "forbidden": list(FORBIDDEN), "backward": name,
               "forward": forward_name, "call_timeout": call_timeout,
               "load_timeout": call_timeout, "b2": [c.weights["b2"] for c in cases],
               "fd_case": ref.FD_CASE, "fd_eps": ref.FD_EPS,
               "perturbations": [[p, list(idx)] for p, idx in ref.perturbations()],
               "probe_b2": 0.0, "probe_timeout": 600}
    (room / "request.json").write_text(json.dumps(request))


def _case_arrays(prefix: str, case: ref.Case) -> dict[str, np.ndarray]:
    out = {f"{prefix}_X": case.X, f"{prefix}_Y_T": case.Y_T}
    out.update({f"{prefix}_{p}": np.asarray(case.weights[p]) for p in ("W1", "b1", "W2")})
    return out


@functools.lru_cache(maxsize=1)
def _reference_seconds_once() -> tuple[float, float]:
    """Measured once per grader process (a batch grades many notebooks): the probe's size never
    changes, and the limit has a wide margin on both sides."""
    return _reference_seconds(ref.make_probe(0))


def _reference_seconds(probe: ref.Case) -> tuple[float, float]:
    """The grader's own backward and forward pass at the probe's size, best of three after a
    warm-up call."""
    def best(fn) -> float:
        fn()
        times = []
        for _ in range(3):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return min(times)
    return (best(lambda: ref.backward(probe.X, probe.Y_T, probe.weights)),
            best(lambda: ref.forward(probe.X, probe.weights)))


@dataclass
class _Outcome:
    started: bool  # the harness ran up to the student's code: what follows is the student's
    ready: bool
    probe: Probe
    exit_note: str  # how the process ended, for a clean room that stopped early
    stderr: str


def _run(room: Path, sandbox: str, probe: ref.Case, hidden: tuple[Path, ...]) -> _Outcome:
    reference_seconds, forward_seconds = _reference_seconds_once()
    limit = max(PROBE_MIN_SECONDS, PROBE_REFERENCE_FACTOR * reference_seconds)
    result = Probe(ProbeStatus.NOT_RUN, None, round(limit, 3), round(reference_seconds, 5),
                   round(forward_seconds, 5), probe.n_params)
    confinement = _confinement(room, sandbox, hidden)
    try:
        proc = subprocess.Popen(confinement.command(_command(room)), cwd=room,
                                env=_environment(room), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
    except BaseException:
        confinement.close()
        raise
    reader = LineReader(proc)
    started = ready = False
    try:
        started = reader.wait_for("STARTED", STARTUP_SECONDS)
        ready = started and reader.wait_for("READY", SETUP_SECONDS)
        if ready:
            _write_into_room(room / "probe.part.npz", _case_arrays("p", probe))
            os.replace(room / "probe.part.npz", room / "probe.npz")
            started = time.monotonic()  # the clock starts when the inputs exist
            proc.stdin.write(b"GO\n")
            proc.stdin.flush()
            done = reader.wait_for("DONE", limit)
            elapsed = time.monotonic() - started
            result.seconds = round(elapsed, 4)
            if done and elapsed <= limit:
                result.status = ProbeStatus.PASSED
            elif elapsed >= limit:
                result.status = ProbeStatus.TOO_SLOW
            else:  # the process ended during the call: it crashed, or exited on purpose
                result.status, result.error = ProbeStatus.FAILED, "the clean room stopped during the call"
    except (BrokenPipeError, OSError):
        pass
    finally:
        stop(proc, confinement)
    stderr = reader.stderr()
    hits = confinement.hits
    exit_note = hits[0].message("the clean room") if hits else f"exit status {proc.returncode}"
    return _Outcome(started, ready, result, exit_note, stderr)


def _write_into_room(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """The room belongs to the clean room's uid, so it may hold a link planted by the student's
    code: the grader never writes through one (unlink, then create anew, never following)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as fh:
        np.savez(fh, **arrays)


def _command(room: Path) -> list[str]:
    return [interpreter(), "-I", "-S", str(room / HARNESS.name)]


def _confinement(room: Path, sandbox: str, hidden: tuple[Path, ...]) -> confine.Confinement:
    """The only place this module uses the sandbox: keep it to `Mounts` and `Confinement`.
    The NUMPY view shows the standard library and numpy, nothing else of site-packages."""
    mounts = sandbox_mod.Mounts(writable=[room],
                                hidden=[*_forbidden_folders(), *_grader_folders(), *hidden],
                                view=sandbox_mod.View.NUMPY)
    return confine.Confinement(mounts, room, LIMITS, sandboxed=sandbox == "bwrap",
                               label="cleanroom")


def _forbidden_folders() -> list[Path]:
    """Where the forbidden frameworks are installed, found without importing them."""
    import importlib.util

    folders = []
    for name in FORBIDDEN:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        for location in (spec.submodule_search_locations or []) if spec else []:
            folders.append(Path(location).resolve())
    return folders


def _grader_folders() -> list[Path]:
    """The grader's package and reference/, here and in any checkout beside this one, and the
    datasets: the clean room needs none of them."""
    folders = [PACKAGE_ROOT / "grader", *paths.reference_dirs(), Path("/usr/share/datasets"),
               Path.home() / ".keras"]
    try:
        folders += [p / "grader" for p in PACKAGE_ROOT.parent.iterdir()
                    if p != PACKAGE_ROOT and (p / "grader" / "checks").is_dir()]
        folders += [p / "reference" for p in PACKAGE_ROOT.parent.iterdir()
                    if p != PACKAGE_ROOT and (p / "reference").is_dir()]
    except OSError:
        pass
    return [f.resolve() for f in folders if f.exists()]


def _environment(room: Path) -> dict[str, str]:
    # One BLAS thread: the probe's limit should not depend on how busy the other core is.
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(room), "LANG": "C.UTF-8",
            "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "PYTHONDONTWRITEBYTECODE": "1"}




def _collect(room: Path, name: str, seed: int, outcome: _Outcome,
             room_facts: dict[str, Any]) -> HarvestedObject:
    """Validate what the clean room wrote; anything malformed is the student's code's doing,
    except a sandbox that never started."""
    output = (room / "output.txt").read_text(errors="replace")[-300:] \
        if (room / "output.txt").is_file() else ""
    if not outcome.started:  # no student code had run yet: the grader's own failure
        raise GraderError("the numpy clean room did not start ("
                          + (outcome.stderr.strip() or output.strip() or outcome.exit_note)[-300:] + ")")
    report = read_json(room / "results.json") if outcome.ready else None
    room_facts["probe"] = outcome.probe.as_dict()
    if report is None:
        return HarvestedObject(name, "error", "the clean room running your functions stopped "
                               f"before reporting ({outcome.exit_note})"
                               + (f": {output.strip()}" if output.strip() else ""),
                               data={"room": room_facts})
    # The probe's outputs come from probe_out.npz only, whatever else results.npz holds.
    arrays = {k: v for k, v in load_numeric_arrays(room / "results.npz").items()
              if not k.startswith("probe_")}
    probe_report = read_json(room / "probe_out.json") or read_json(room / "probe.json") or {}
    if outcome.probe.status == ProbeStatus.PASSED:
        probe_arrays = load_numeric_arrays(room / "probe_out.npz")
        error = probe_report.get("error")
        if error is not None or not probe_arrays:
            outcome.probe.status = ProbeStatus.FAILED
            outcome.probe.error = str(error)[:300] if error else "no outputs"
        arrays.update({f"probe_{k}": v for k, v in probe_arrays.items()})
        room_facts["probe"] = outcome.probe.as_dict()
    cases = report.get("cases") if isinstance(report.get("cases"), list) else []
    reported = {"cases": cases, "fd_error": report.get("fd_error"),
                "load_error": report.get("load_error"),
                "forward_found": report.get("forward_callable") is True,
                "modules": [str(m)[:100] for m in report.get("modules", [])[:3000]]
                if isinstance(report.get("modules"), list) else []}
    if report.get("backward_callable") is not True:
        why = reported["load_error"] or "it is not a function"
        return HarvestedObject(name, "wrong_type", f"`{name}` is not callable in the clean room "
                               f"({str(why)[:300]})", type="not callable",
                               data={"room": room_facts, **reported})
    return HarvestedObject(name, "found", type="function",
                           data={"seed": seed, "room": room_facts, **reported}, arrays=arrays)
