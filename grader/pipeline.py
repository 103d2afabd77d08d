"""The whole pipeline for one notebook: validate → execute → harvest → check → score."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__, checks, notebook
from .checks.context import GradingContext
from .cleanroom import numpy_run as numpy_cleanroom
from .execution import runner, sandbox as sandbox_mod, scratch as scratch_mod
from .harvest import artifacts
from .scoring import CheckResult, GradeResult, total
from .paths import REFERENCE_DIR
from .spec import Assignment


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
                            holdout_per_class=spec.holdout_per_class, full=options.full)
    path = folder / f"{spec.dataset}.npz"
    split.write_student_npz(path)
    summary = {"dataset": spec.dataset, "mode": "full" if options.full else "subset",
               "seed": spec.seed, "train": int(len(split.train[1])),
               "test": int(len(split.test[1])), "holdout": int(len(split.holdout[1])),
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
    return ("__import__('grader.harvest.in_kernel', fromlist=['harvest']).harvest("
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


def execute_and_harvest(path: Path, assignment: Assignment, options: Options,
                        kernel_seed: int = 0, training_seed: int | None = None) -> Harvest:
    started = time.monotonic()
    mode = sandbox_mod.resolve(options.sandbox)
    loaded = notebook.load(path)
    if loaded.error:
        record = runner.ExecutionRecord(status="invalid_notebook", message=loaded.error)
        return Harvest(loaded, record, {}, PreparedData({}, None, None, {}), started, mode)
    work = scratch_mod.create(path)
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
        record = runner.execute(
            loaded.node, work, cell_timeout=limits.cell_timeout,
            notebook_timeout=options.timeout or limits.notebook_timeout, kernel=kernel,
            harvest_code=harvest_code(assignment, harvest_dir, images_path,
                                      next(iter(prepared.student_npz.values()), None), seed,
                                      inputs_seed),
            mounts=mounts)
        rows = None if prepared.holdout_labels is None else len(prepared.holdout_labels)
        objects = artifacts.read(harvest_dir, [o.name for o in assignment.objects], rows)
        # numpy functions are measured in a clean room from the notebook's source, not the kernel.
        objects.update(numpy_cleanroom.measure_all(loaded.node, assignment.objects, inputs_seed,
                                                   mode, tuple(options.hidden)))
        if assignment.training and images_path is not None and prepared.student_npz:
            wanted = timed_objects(assignment)
            for obj in objects.values():
                if obj.timed is None and obj.name in wanted:  # not already trained in the kernel
                    obj.timed = timed_training(obj, assignment, prepared, images_path, seed)
    finally:
        work.cleanup()
    return Harvest(loaded, record, objects, prepared, started, mode, inputs_seed)


def timed_training(obj: artifacts.HarvestedObject, assignment: Assignment,
                   prepared: PreparedData, images: Path, seed: int) -> dict[str, Any] | None:
    """The grader's own training of the student's architecture; None when there is no model."""
    if obj.status != "found" or not obj.model:
        return None
    budget = assignment.training
    params = int(obj.model.get("total_params") or 0)
    if params > budget.max_params:
        return {"status": "declined", "message": f"the model has {params:,} parameters; the grader "
                f"does not retrain models over {budget.max_params:,}"}
    if obj.model.get("kind") == "subclassed" or not obj.config_json:
        return {"status": "error", "message": "the architecture cannot be rebuilt outside your "
                "notebook (a subclassed model or a custom layer)"}
    if not obj.input_layout:
        return {"status": "error", "message": "the model accepts no 28x28 image layout"}
    from .training import outside

    n_classes = int(prepared.holdout_labels.max()) + 1
    started = time.monotonic()
    result = outside.train(obj.config_json, obj.model.get("compile") or {}, obj.input_layout,
                           Path(next(iter(prepared.student_npz.values()))), images,
                           epochs=budget.epochs, batch_size=budget.batch_size,
                           max_seconds=budget.max_seconds, n_classes=n_classes, seed=seed,
                           memory_mb=assignment.limits.memory_mb)
    result["seconds"] = round(time.monotonic() - started, 3)
    result["seed"] = seed
    return result


def grade(path: Path, assignment: Assignment, options: Options | None = None) -> GradeResult:
    harvest = execute_and_harvest(path, assignment, options or Options())
    t_grade = time.monotonic()
    record = harvest.record
    if record.status == "invalid_notebook":
        results = _all_error(assignment, record.message)
    else:
        ctx = GradingContext(harvest.objects, assignment.expected(), assignment.thresholds(),
                             record, harvest.data.holdout_labels,
                             holdout_images=harvest.data.holdout_images, notebook=harvest.loaded.node)
        ctx.notes["run_seed"] = harvest.run_seed
        ctx.notes["manual_questions"] = [str(c.options.get("question", c.id))
                                         for c in assignment.checks if c.kind == "manual"]
        results = [checks.run(spec, ctx) for spec in assignment.checks]
    now = time.monotonic()
    timings = {"kernel_start": record.kernel_start_seconds, "execute": record.execute_seconds,
               "harvest": record.harvest_seconds,
               "timed_training": sum((o.timed or {}).get("seconds", 0.0)
                                     for o in harvest.objects.values()),
               "grade": now - t_grade,
               "total": now - harvest.started}
    models = {name: obj.summary() for name, obj in harvest.objects.items()}
    result = _result(assignment, harvest.loaded, record, results, models, harvest.data.summary,
                     timings)
    result.sandbox = harvest.sandbox
    return result


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
