"""The whole pipeline for one notebook: validate → execute → harvest → check → score."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__, baselines, checks, environment, measure, notebook
from .checks.context import GradingContext
from .cleanroom import numpy_run as numpy_cleanroom
from .errors import GraderError
from .execution import runner, sandbox as sandbox_mod, scratch as scratch_mod
from .execution.limits import Limits
from .harvest import artifacts
from .scoring import CheckResult, GradeResult, RunStatus, total
from .paths import REFERENCE_DIR
from .spec import Assignment


# The instructor's secret that picks the holdout images (grader/data/split.py); the kernel's
# environment never carries it (execution/runner.py keeps only a fixed list of variables).
HOLDOUT_SECRET_VAR = "GRADER_HOLDOUT_SECRET"


@dataclass
class Options:
    data_dir: Path | None = None
    full: bool = False
    timeout: float | None = None  # overrides the spec's whole-notebook timeout
    sandbox: str = "auto"  # auto | bwrap | none
    hidden: tuple[Path, ...] = ()  # more paths the kernel must not see (e.g. a batch's reports)


@dataclass
class PreparedData:
    """The assignment's data split: the student's part as a file, the holdout kept here."""

    student_npz: dict[str, str]
    holdout_images: np.ndarray | None
    holdout_labels: np.ndarray | None
    summary: dict[str, Any]
    sources: tuple[Path, ...] = ()  # where the full dataset (with holdout labels) lives


def prepare_data(assignment: Assignment, options: Options, folder: Path) -> PreparedData:
    spec = assignment.data
    if spec is None:
        return PreparedData({}, None, None, {})
    from . import data

    dataset = data.load(spec.dataset, options.data_dir)
    split = data.make_split(dataset, seed=spec.seed, train_per_class=spec.train_per_class,
                            test_per_class=spec.test_per_class,
                            holdout_per_class=spec.holdout_per_class, full=options.full,
                            holdout_secret=os.environ.get(HOLDOUT_SECRET_VAR) or None)
    path = folder / f"{spec.dataset}.npz"
    split.write_student_npz(path)
    summary = {"dataset": spec.dataset, "mode": "full" if options.full else "subset",
               "seed": spec.seed, "train": int(len(split.train[1])),
               "test": int(len(split.test[1])), "holdout": int(len(split.holdout[1])),
               "holdout_secret": bool(os.environ.get(HOLDOUT_SECRET_VAR)),
               "source": str(dataset.location.where)}
    return PreparedData({spec.dataset: str(path)}, split.holdout[0], split.holdout[1], summary,
                        (Path(dataset.location.where),))


def sandbox_mounts(options: Options, prepared: PreparedData, harvest_dir: Path,
                   images: Path | None) -> sandbox_mod.Mounts:
    """What the sandboxed kernel may write, may read, and must not see."""
    hidden = [REFERENCE_DIR, Path("/usr/share/datasets"), Path.home() / ".keras",
              *prepared.sources, *options.hidden]
    if options.data_dir:
        hidden.append(options.data_dir.resolve())
    readable = [Path(p) for p in prepared.student_npz.values()]
    if images is not None:
        readable.append(images)
    return sandbox_mod.Mounts(writable=[harvest_dir], readable=readable, hidden=hidden)


def timed_objects(assignment: Assignment) -> set[str]:
    """Objects the grader trains itself: those a timed_training check grades."""
    return {c.object for c in assignment.checks if c.kind == "timed_training" and c.object}


def run_seed(notebook_sha256: str, assignment: Assignment) -> int:
    """The seed of inputs the grader draws for a notebook's functions: chosen here, not by the
    kernel, and the same for the same file (so grading twice gives the same score)."""
    digest = hashlib.sha256(f"{assignment.id}:{notebook_sha256}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def harvest_code(assignment: Assignment, out_dir: Path, images: Path | None,
                 train_npz: str | None = None, training_seed: int = 0,
                 inputs_seed: int | None = None) -> str:
    wanted = timed_objects(assignment)
    request = {"out": str(out_dir), "images": str(images) if images else None,
               "objects": [{"name": o.name, "kind": o.kind, "input_shape": o.input_shape,
                            "timed": o.name in wanted, "run_seed": inputs_seed, **o.options}
                           for o in assignment.objects]}
    budget = assignment.training
    if budget and train_npz:
        # Only for models that cannot be rebuilt outside the kernel (subclassed ones).
        request["training"] = {"train_npz": train_npz, "epochs": budget.epochs,
                               "batch_size": budget.batch_size, "seed": training_seed,
                               "max_seconds": budget.max_seconds, "max_params": budget.max_params}
    return ("__import__('grader.kernel.harvest', fromlist=['harvest']).harvest("
            f"get_ipython().user_ns, {json.dumps(json.dumps(request))})")


@dataclass
class Harvest:
    """Everything the trusted side holds once the kernel is gone."""

    loaded: notebook.LoadedNotebook
    record: runner.ExecutionRecord
    objects: dict[str, artifacts.HarvestedObject]
    data: PreparedData
    started: float
    sandbox: str = "none"
    run_seed: int | None = None
    measure_seconds: float = 0.0  # the trusted measuring process, grader's training included
    timed_baselines: dict[str, float] = field(default_factory=dict)  # see grader/baselines.py


def execute_and_harvest(path: Path, assignment: Assignment, options: Options,
                        kernel_seed: int = 0, training_seed: int | None = None) -> Harvest:
    started = time.monotonic()
    mode = sandbox_mod.resolve(options.sandbox)
    loaded = notebook.load(path)
    if loaded.error:
        record = runner.ExecutionRecord(status="invalid_notebook", message=loaded.error)
        return Harvest(loaded, record, {}, PreparedData({}, None, None, {}), started, mode)
    work = scratch_mod.create(path)
    measure_seconds, timed_bars, worker = 0.0, {}, None
    try:
        prepared = prepare_data(assignment, options, work.private)
        images_path = None
        if prepared.holdout_images is not None:
            images_path = work.private / "holdout_images.npy"
            np.save(images_path, prepared.holdout_images, allow_pickle=False)
        harvest_dir = work.private / f"harvest-{secrets.token_hex(8)}"
        harvest_dir.mkdir()
        seed = training_seed if training_seed is not None else \
            assignment.training.seed if assignment.training else 0
        inputs_seed = run_seed(loaded.sha256, assignment)
        mounts = sandbox_mounts(options, prepared, harvest_dir, images_path) \
            if mode == "bwrap" else None
        limits = assignment.limits
        kernel = runner.KernelConfig(memory_mb=limits.memory_mb, seed=kernel_seed,
                                     datasets=prepared.student_npz)
        worker = _start_measuring(assignment, prepared, images_path, harvest_dir, work, mounts)
        record = runner.execute(
            loaded.node, work, cell_timeout=limits.cell_timeout,
            notebook_timeout=options.timeout or limits.notebook_timeout, kernel=kernel,
            harvest_code=harvest_code(assignment, harvest_dir, images_path,
                                      next(iter(prepared.student_npz.values()), None), seed,
                                      inputs_seed),
            mounts=mounts, limits=Limits.of(limits))
        rows = None if prepared.holdout_labels is None else len(prepared.holdout_labels)
        objects = artifacts.read(harvest_dir, [o.name for o in assignment.objects], rows)
        # numpy functions are measured in a clean room from the notebook's source, not the kernel.
        objects.update(numpy_cleanroom.measure_all(loaded.node, assignment.objects, inputs_seed,
                                                   mode, tuple(options.hidden)))
        objects.update(_refuse_kernel_claims(objects, assignment))
        exported = [name for name, obj in objects.items() if obj.export is not None]
        if exported and worker is not None:
            t0 = time.monotonic()
            measured, timed_bars = measure_models(worker, exported, objects, assignment,
                                                  prepared, images_path, seed)
            objects.update(measured)
            measure_seconds = time.monotonic() - t0
    finally:
        if worker is not None:
            worker.close()
        work.cleanup()
    return Harvest(loaded, record, objects, prepared, started, mode, inputs_seed, measure_seconds,
                   timed_bars)


def _refuse_kernel_claims(objects: dict[str, artifacts.HarvestedObject], assignment: Assignment
                          ) -> dict[str, artifacts.HarvestedObject]:
    """A Keras model described by the kernel itself is scored only where the assignment asks
    for a subclassed model (`subclassed = true`), which only its own class can rebuild; anywhere
    else such a description could be the student's own forgery, so it earns nothing."""
    specs = {o.name: o for o in assignment.objects}
    refused = {}
    for name, obj in objects.items():
        if obj.model is not None and not specs[name].options.get("subclassed"):
            refused[name] = artifacts.HarvestedObject(
                name, "error", f"`{name}` is a subclassed Keras model, which the grader cannot "
                "load without running your code; this assignment grades Sequential or "
                "functional models (keras.Sequential([...]) or keras.Model(inputs, outputs))",
                type=obj.type)
    return refused


def _start_measuring(assignment: Assignment, prepared: PreparedData, images: Path | None,
                     harvest_dir: Path, work: scratch_mod.Scratch,
                     kernel_mounts: sandbox_mod.Mounts | None) -> measure.Worker | None:
    """The trusted measuring process, started now so that it has imported TensorFlow when the
    notebook is done; only for assignments that grade Keras models."""
    if images is None or not any(o.kind == "keras" for o in assignment.objects):
        return None
    inputs = [images, harvest_dir, *(Path(p) for p in prepared.student_npz.values())]
    mounts = None if kernel_mounts is None else \
        sandbox_mod.Mounts(writable=[], readable=[], hidden=kernel_mounts.hidden)
    return measure.Worker(work.private / "measure", inputs, Limits.of(assignment.limits), mounts)


def measure_models(worker: measure.Worker, names: list[str],
                   objects: dict[str, artifacts.HarvestedObject], assignment: Assignment,
                   prepared: PreparedData, images: Path, seed: int
                   ) -> tuple[dict[str, artifacts.HarvestedObject], dict[str, float]]:
    """The trusted side's measurement of the models the kernel exported (grader/measure), and
    the accuracy of each timed reference design trained the same way on this machine."""
    specs = {o.name: o for o in assignment.objects}
    wanted = timed_objects(assignment)
    # An encoder is loaded before the classifier of its codes.
    names = sorted(names, key=lambda n: bool(specs[n].options.get("encoder")))
    budget = assignment.training
    train_npz = next(iter(prepared.student_npz.values()), None)
    training = None
    if budget and train_npz:
        training = {"train_npz": train_npz, "epochs": budget.epochs,
                    "batch_size": budget.batch_size, "max_seconds": budget.max_seconds,
                    "seed": seed, "max_params": budget.max_params,
                    "n_classes": int(prepared.holdout_labels.max()) + 1}
    timed = [n for n in names if n in wanted]
    mode = "full" if prepared.summary.get("mode") == "full" else "subset"
    have = baselines.known(assignment, timed, mode, seed) if training else {}
    missing = baselines.requests(assignment, [n for n in timed if n not in have], {}) \
        if training else []
    request = measure.Request(
        images=images, max_params=budget.max_params if budget else measure.DEFAULT_MAX_PARAMS,
        training=training,
        objects=[{**specs[n].options, "name": n, "export": str(objects[n].export),
                  "input_shape": specs[n].input_shape, "timed": n in wanted} for n in names],
        baselines=missing,
        timeout=300.0 + (len(timed) + len(missing)) * ((budget.max_seconds * 2 + 60)
                                                       if budget else 0))
    result = worker.measure(request, len(prepared.holdout_labels))
    for name, run in result.baselines.items():
        if run.get("status") == "trained":
            have[name] = baselines.remember(assignment, name, mode, seed, run["predictions"],
                                            prepared.holdout_labels)
    return result.objects, have


def grade(path: Path, assignment: Assignment, options: Options | None = None) -> GradeResult:
    """Grade one notebook. A failure of the grader's own set-up gives a `grader_error` result
    with the cause and no score, never a student's zero."""
    started = time.monotonic()
    try:
        harvest = execute_and_harvest(path, assignment, options or Options())
        if harvest.record.status == "start_failed":  # student code never ran: ours to fix
            raise GraderError(harvest.record.message)
    except (GraderError, sandbox_mod.SandboxUnavailable) as exc:
        return grader_error_result(assignment, path, str(exc), started)
    except Exception as exc:  # noqa: BLE001 - a bug or a broken install, never the student's
        from .data import DatasetError

        cause = str(exc) if isinstance(exc, DatasetError) else \
            f"internal error ({type(exc).__name__}: {exc})"
        return grader_error_result(assignment, path, cause, started)
    return _score(harvest, assignment)


def _score(harvest: Harvest, assignment: Assignment) -> GradeResult:
    t_grade = time.monotonic()
    record = harvest.record
    if record.status == "invalid_notebook":
        results = _all_error(assignment, record.message)
    else:
        ctx = GradingContext(harvest.objects, assignment.expected(), assignment.thresholds(),
                             record, harvest.data.holdout_labels,
                             holdout_images=harvest.data.holdout_images, notebook=harvest.loaded.node)
        ctx.notes["run_seed"] = harvest.run_seed
        ctx.notes["timed_baselines"] = harvest.timed_baselines
        ctx.notes["manual_questions"] = [str(c.options.get("question", c.id))
                                         for c in assignment.checks if c.kind == "manual"]
        results = [checks.run(spec, ctx) for spec in assignment.checks]
    now = time.monotonic()
    timings = {"kernel_start": record.kernel_start_seconds, "execute": record.execute_seconds,
               "harvest": record.harvest_seconds,
               "measure": harvest.measure_seconds,
               "timed_training": sum((o.timed or {}).get("seconds", 0.0)
                                     for o in harvest.objects.values()),
               "grade": now - t_grade,
               "total": now - harvest.started}
    models = {name: obj.summary() for name, obj in harvest.objects.items()}
    result = _result(assignment, harvest.loaded, record, results, models, harvest.data.summary,
                     timings)
    for error in result.cell_errors:
        hint = environment.missing_module_hint(error, assignment.packages)
        if hint:
            error["hint"] = hint
    result.sandbox = harvest.sandbox
    result.limits = record.limits
    return result


def grader_error_result(assignment: Assignment, path: Path, cause: str,
                        started: float | None = None) -> GradeResult:
    """Not graded: the grader could not do its part. No check ran and no score is given."""
    try:
        sha = notebook.file_sha256(path)
    except OSError:
        sha = ""
    seconds = time.monotonic() - started if started is not None else 0.0
    return GradeResult(
        assignment=assignment.id, assignment_title=assignment.title,
        assignment_version=assignment.version_key(), notebook=str(path), notebook_sha256=sha,
        score=None, max_score=assignment.max_score, checks=[], models={},
        execution={"status": RunStatus.GRADER_ERROR,
                   "message": f"the grader failed, not the notebook: {cause}. Nothing was "
                              "scored; grade it again once this is fixed.",
                   "harvested": False},
        cell_errors=[], data={}, timings={"total": round(seconds, 3)},
        grader_version=__version__)


def _all_error(assignment: Assignment, message: str) -> list[CheckResult]:
    return [CheckResult.error(spec, message) for spec in assignment.checks]


def _result(assignment, loaded, record, results, models, data_summary, timings) -> GradeResult:
    return GradeResult(
        assignment=assignment.id,
        assignment_title=assignment.title,
        assignment_version=assignment.version_key(),
        notebook=str(loaded.path),
        notebook_sha256=loaded.sha256,
        score=total(results),
        max_score=assignment.max_score,
        checks=results,
        models=models,
        execution={"status": record.status, "message": record.message,
                   "harvested": record.harvested},
        cell_errors=[e.as_dict() for e in record.cell_errors],
        data=data_summary,
        timings={k: round(v, 3) for k, v in timings.items()},
        grader_version=__version__,
    )
