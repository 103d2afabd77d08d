"""The whole pipeline for one notebook: validate → execute → harvest → check → score."""

from __future__ import annotations

import copy
import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import nbformat
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from . import __version__, checks, environment, measure, paths
from .checks.context import GradingContext
from .cleanroom import keras_run, rooms, torch_source
from .data import holdout
from .errors import GraderError
from .execution import runner, sandbox as sandbox_mod, scratch as scratch_mod
from .execution.limits import Limits
from .execution.time_limits import TimeLimits
from .harvest import artifacts
from .progress import Phase, Progress, notify
from .result import CellError, CheckResult, Data, Execution, GradeResult, score_of
from .result import Limits as LimitsReport
from .scoring import CELL_ERROR_NOTE, DataMode, RunStatus, TimedStatus, write_atomic
from .assignment import Assignment
from .submission import notebook, starter
from .training import baselines


class Options(BaseModel):
    """How a notebook is graded, declared once: the CLI builds it, and a batch worker gets it
    as this model's JSON (`model_dump_json`) and reads it back with `model_validate_json`."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    data_dir: Path | None = None
    mode: DataMode = DataMode.SUBSET
    timeout: float | None = None  # overrides the spec's whole-notebook timeout
    cell_timeout: float | None = None  # overrides the spec's per-cell timeout
    sandbox: Literal["auto", "bwrap", "none"] = "auto"
    hidden: tuple[Path, ...] = ()  # more paths the kernel must not see (e.g. a batch's reports)
    # Hears of each phase (kernel start, each cell, harvest, measuring, scoring) to display it;
    # never part of a grade (grader/progress.py), and never sent to a worker.
    progress: Progress | None = Field(default=None, exclude=True)


@dataclass
class PreparedData:
    """The assignment's data split: the student's part as a file, the holdout kept here."""

    student_npz: dict[str, str]
    holdout_images: np.ndarray | None  # as the trusted side shows them: perturbed (holdout.py)
    holdout_labels: np.ndarray | None
    summary: dict[str, Any]
    sources: tuple[Path, ...] = ()  # where the full dataset (with holdout labels) lives
    mode: DataMode = DataMode.SUBSET
    # What the grader trains designs on itself: the subset's training images in either mode
    # (grader/data/split.py); the student's file in subset mode.
    training_npz: str | None = None

    @property
    def holdout_id(self) -> str:
        """Which holdout this is, for what is remembered per holdout
        (grader/training/baselines.py)."""
        if self.holdout_images is None:
            return "none"
        return hashlib.sha256(self.holdout_images.tobytes()).hexdigest()[:16]


def prepare_data(assignment: Assignment, options: Options, folder: Path) -> PreparedData:
    spec = assignment.data
    if spec is None:
        return PreparedData({}, None, None, {}, mode=options.mode)
    from . import data

    dataset = data.load(spec.dataset, options.data_dir)
    secret = holdout.secret()
    split = data.make_split(dataset, seed=spec.seed, train_per_class=spec.train_per_class,
                            test_per_class=spec.test_per_class,
                            holdout_per_class=spec.holdout_per_class,
                            mode=options.mode,
                            holdout_secret=secret.value)
    path = folder / f"{spec.dataset}.npz"
    split.write_student_npz(path)
    training = path
    if DataMode(options.mode) is DataMode.FULL:
        training = folder / f"{spec.dataset}-graders-training.npz"
        split.write_graders_training_npz(training)
    summary = {"dataset": spec.dataset, "mode": options.mode,
               "seed": spec.seed, "train": int(len(split.train[1])),
               "test": int(len(split.test[1])), "holdout": int(len(split.holdout[1])),
               "holdout_secret": secret.source == "environment",
               "holdout_secret_source": secret.source,
               "holdout_perturbation_sd": holdout.PERTURBATION_SD,
               "source": str(dataset.location.where)}
    images = holdout.perturb(split.holdout[0], secret.value)
    return PreparedData({spec.dataset: str(path)}, images, split.holdout[1], summary,
                        (Path(dataset.location.where),), options.mode, str(training))


def sandbox_mounts(options: Options, prepared: PreparedData, harvest_dir: Path
                   ) -> sandbox_mod.Mounts:
    """What the sandboxed kernel may write, may read, and must not see. It never gets the
    holdout: neither its labels nor its images."""
    hidden = [*paths.reference_dirs(), Path("/usr/share/datasets"), Path.home() / ".keras",
              *prepared.sources, *options.hidden]
    if options.data_dir:
        hidden.append(options.data_dir.resolve())
    # The grader package the kernel imports (grader.kernel.boot): already readable where it is
    # installed, but a checkout under /tmp would be hidden by the sandbox's own /tmp.
    readable = [paths.PACKAGE_ROOT / "grader", *(Path(p) for p in prepared.student_npz.values())]
    return sandbox_mod.Mounts(writable=[harvest_dir], readable=readable, hidden=hidden)


def timed_objects(assignment: Assignment) -> set[str]:
    """Objects the grader trains itself: those a timed_training check grades."""
    return {c.object for c in assignment.checks if c.kind == "timed_training" and c.object}


def run_seed(notebook_sha256: str, assignment: Assignment) -> int:
    """The seed of inputs the grader draws for a notebook's functions: chosen here, not by the
    kernel, and the same for the same file (so grading twice gives the same score)."""
    digest = hashlib.sha256(f"{assignment.id}:{notebook_sha256}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def harvest_code(assignment: Assignment, out_dir: Path) -> str:
    """The cell the kernel runs after the student's: export each graded object
    (grader/kernel/export.py)."""
    request = {"out": str(out_dir),
               "objects": [{"name": o.name, "kind": o.kind, "input_shape": o.input_shape}
                           for o in assignment.objects]}
    return ("__import__('grader.kernel.export', fromlist=['export']).export("
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
    # see grader/training/baselines.py
    timed_baselines: dict[str, float] = field(default_factory=dict)
    timed_costs: dict[str, float] = field(default_factory=dict)  # their CPU seconds here


def execute_and_harvest(path: Path, assignment: Assignment, options: Options,
                        kernel_seed: int = 0, training_seed: int | None = None) -> Harvest:
    started = time.monotonic()
    mode = sandbox_mod.resolve(options.sandbox)
    loaded = notebook.load(path)
    if loaded.error:
        record = runner.ExecutionRecord(status=RunStatus.INVALID_NOTEBOOK, message=loaded.error)
        return Harvest(loaded, record, {}, PreparedData({}, None, None, {}), started, mode)
    work = scratch_mod.create(path)
    measure_seconds, timed_bars, timed_costs, worker, room = 0.0, {}, {}, None, None
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
        mounts = sandbox_mounts(options, prepared, harvest_dir) if mode == "bwrap" else None
        limits = assignment.limits
        room = _start_keras_room(assignment, loaded.node, work, mode, options)
        worker = _start_measuring(assignment, prepared, images_path, harvest_dir, work, mounts,
                                  room)
        kernel = runner.KernelConfig(
            memory_mb=limits.memory_mb, seed=kernel_seed, datasets=prepared.student_npz,
            head_start=_head_start(worker, room, assignment, loaded.node, prepared, images_path,
                                   harvest_dir, seed))
        times = TimeLimits.of(limits.cell_timeout, limits.notebook_timeout,
                              assignment.folder / "assignment.toml", options.timeout,
                              options.cell_timeout)
        record = runner.execute(
            loaded.node, work, times=times, kernel=kernel,
            harvest_code=harvest_code(assignment, harvest_dir), mounts=mounts,
            progress=options.progress, limits=Limits.of(limits))
        objects = artifacts.read(harvest_dir, [o.name for o in assignment.objects], None)
        objects.update(_refuse_kernel_descriptions(objects))
        # numpy functions are measured in a clean room from the notebook's source, not the kernel.
        if any(o.kind == "numpy_functions" for o in assignment.objects):
            notify(options.progress, Phase.CLEANROOM)
            from .cleanroom import numpy_run  # holds numpy-backprop's answer: only when needed

            objects.update(numpy_run.measure_all(loaded.node, assignment.objects, inputs_seed,
                                                 mode, tuple(options.hidden)))
        exported = [name for name, obj in objects.items() if obj.export is not None]
        if exported and worker is not None:
            t0 = time.monotonic()
            _announce_measuring(options.progress, assignment, exported)
            measured, timed_bars, timed_costs = measure_models(
                worker, exported, objects, assignment, prepared, images_path, seed,
                notebook_node=loaded.node)
            objects.update(measured)
            if room is not None:
                _retrain_subclassed(room, worker, loaded.node, objects, assignment, prepared,
                                    images_path, seed)
            measure_seconds = time.monotonic() - t0
    finally:
        if room is not None:
            room.close()
        if worker is not None:
            worker.close()
        work.cleanup()
    return Harvest(loaded, record, objects, prepared, started, mode, inputs_seed, measure_seconds,
                   timed_bars, timed_costs)


def _announce_measuring(progress: Progress | None, assignment: Assignment,
                        exported: list[str]) -> None:
    timed = sorted(timed_objects(assignment) & set(exported))
    budget = assignment.training
    if timed and budget:
        notify(progress, Phase.TRAINING, objects=timed, max_cpu_seconds=budget.max_cpu_seconds)
    else:
        notify(progress, Phase.MEASURE, objects=exported)


def _refuse_kernel_descriptions(objects: dict[str, artifacts.HarvestedObject]
                                ) -> dict[str, artifacts.HarvestedObject]:
    """The kernel only exports models (kernel/export.py); a description of a model coming from
    it was written by the student's code, so it earns nothing."""
    return {name: artifacts.HarvestedObject(
        name, "error", f"the kernel's harvest file describes `{name}` itself instead of exporting "
        "it: the grader's harvest code was replaced, and only a model the grader can load and "
        "measure earns points", type=obj.type)
        for name, obj in objects.items() if obj.model is not None}


def _start_measuring(assignment: Assignment, prepared: PreparedData, images: Path | None,
                     harvest_dir: Path, work: scratch_mod.Scratch,
                     kernel_mounts: sandbox_mod.Mounts | None,
                     room: rooms.Rooms | None) -> measure.Worker | None:
    """The trusted measuring process, started now so that it has imported TensorFlow when the
    notebook is done; only for assignments that grade Keras models."""
    if images is None or not any(o.kind == "keras" for o in assignment.objects):
        return None
    inputs = [images, harvest_dir, *(Path(p) for p in prepared.student_npz.values())]
    # In subset mode the grader's training file is the student's, already there.
    if prepared.training_npz and Path(prepared.training_npz) not in inputs:
        inputs.append(Path(prepared.training_npz))
    if room is not None:
        inputs.append(room.folder)
    mounts = None if kernel_mounts is None else \
        sandbox_mod.Mounts(writable=[], readable=[], hidden=kernel_mounts.hidden)
    return measure.Worker(work.private / "measure", inputs, Limits.of(assignment.limits), mounts)


def _start_keras_room(assignment: Assignment, nb: Any, work: scratch_mod.Scratch, mode: str,
                      options: Options) -> rooms.Rooms | None:
    """The Keras clean rooms, for an assignment whose grader trains a design itself, when the
    notebook defines a class (a subclassed model only its class builds); one starts with the
    kernel when a class looks like a Keras model."""
    timed = timed_objects(assignment)
    if not timed or assignment.training is None or not keras_run.wanted(nb):
        return None
    return rooms.Rooms(work.private / "keras-room", mode, tuple(options.hidden),
                       spare=keras_run.likely_model(nb))


def _retrain_subclassed(room: rooms.Rooms, worker: measure.Worker, nb: Any,
                        objects: dict[str, artifacts.HarvestedObject], assignment: Assignment,
                        prepared: PreparedData, images: Path, seed: int) -> None:
    """The timed training of each subclassed model the trusted side measured: a fresh instance
    of its class, trained in a clean room, then predicted by the measuring process."""
    inputs = _room_inputs(assignment, prepared, seed)
    for name in sorted(timed_objects(assignment)):
        obj = objects.get(name)
        if obj is None or obj.status != "found" or not obj.model or \
                obj.model.get("source") != "savedmodel":
            continue
        obj.timed = _retrain_one(room, worker, nb, name, obj, inputs, images,
                                 len(prepared.holdout_labels))


def _room_inputs(assignment: Assignment, prepared: PreparedData, seed: int) -> rooms.Inputs:
    """The measuring process's budget (`training_budget`), with the room's wall limit."""
    training = training_budget(assignment, prepared, seed)
    if training is None:  # a room starts only for an assignment whose grader trains
        raise GraderError("the Keras clean room has no training budget for this assignment")
    wall = assignment.training.wall_seconds_per_model
    return rooms.Inputs(Path(training["train_npz"]), training["n_classes"],
                        {**training, "wall_seconds": wall})


def _retrain_one(room: rooms.Rooms, worker: measure.Worker, nb: Any, name: str,
                 obj: artifacts.HarvestedObject, inputs: rooms.Inputs, images: Path, rows: int
                 ) -> dict[str, Any]:
    claim = obj.data.get("claim") or {}
    info = obj.model.get("compile") or {}
    layers = obj.model["layers"] or []
    output = (layers or [{}])[-1].get("output_shape") or [None, 10]
    planned = rooms.design_plan(nb, name, claim.get("class_name"), info,
                                tuple(obj.input_layout or ()), layers, tuple(output), inputs)
    if not isinstance(planned, keras_run.Plan):
        return planned
    run = room.train(name, planned, inputs.budget["wall_seconds"])
    if run.report.get("cannot_learn"):  # the room's word can only cost the student points
        return {"status": TimedStatus.CANNOT_LEARN, "message": run.error}
    if run.export is None:
        return {"status": TimedStatus.GRADER_FAILED if run.rebuild_failed else TimedStatus.ERROR,
                "message": run.error or "the clean room exported no model"}
    request = measure.Request(images=images, objects=[{
        "name": name, "retrained": str(run.export), "expected_layers": layers,
        "report": run.report, "seed": inputs.budget["seed"]}], timeout=120.0)
    measured = worker.measure(request, rows).objects.get(name)
    if measured is None or measured.timed is None:
        return {"status": TimedStatus.GRADER_FAILED, "message": "the grader could not measure "
                "the model its clean room trained"
                + (f": {measured.message}" if measured and measured.message else "")}
    return measured.timed


def training_budget(assignment: Assignment, prepared: PreparedData, seed: int
                    ) -> dict[str, Any] | None:
    """How the measuring process trains a design: the assignment's budget, on the subset's
    training images in either data mode (its bars were calibrated there), from the grader's
    seed."""
    budget = assignment.training
    train_npz = prepared.training_npz
    if not budget or not train_npz or prepared.holdout_labels is None:
        return None
    return {"train_npz": train_npz, "epochs": budget.epochs, "batch_size": budget.batch_size,
            "max_cpu_seconds": budget.max_cpu_seconds, "seed": seed,
            "max_params": budget.max_params, "n_classes": int(prepared.holdout_labels.max()) + 1}


def _head_start(worker: measure.Worker | None, room: rooms.Rooms | None,
                assignment: Assignment, nb: Any, prepared: PreparedData, images: Path | None,
                harvest_dir: Path, seed: int) -> dict[str, Any] | None:
    """The kernel's side of training designs while the notebook runs (grader/measure/
    head_start.py, grader/cleanroom/rooms.py): where it exports them and which names; None when
    nothing would use it."""
    keras_objects = {o.name: o.input_shape for o in assignment.objects if o.kind == "keras"}
    names = sorted(timed_objects(assignment) & set(keras_objects))
    training = training_budget(assignment, prepared, seed)
    if worker is None or images is None or not names or training is None:
        return None
    folder = harvest_dir / "head-start"
    worker.watch(folder, {n: keras_objects[n] for n in names}, training, images)
    if room is not None:
        inputs = _room_inputs(assignment, prepared, seed)
        source = copy.deepcopy(nb)  # the kernel fills `nb`'s outputs while the room plans
        room.watch(folder, names,
                   lambda name, claim: rooms.early_plan(source, name, claim, inputs))
    return {"out": str(folder), "names": names}


def measure_models(worker: measure.Worker, names: list[str],
                   objects: dict[str, artifacts.HarvestedObject], assignment: Assignment,
                   prepared: PreparedData, images: Path, seed: int, notebook_node: Any = None
                   ) -> tuple[dict[str, artifacts.HarvestedObject], dict[str, float],
                              dict[str, float]]:
    """The trusted side's measurement of the models the kernel exported (grader/measure), and
    the accuracy (and CPU seconds) of each timed reference design trained the same way here."""
    specs = {o.name: o for o in assignment.objects}
    wanted = timed_objects(assignment)
    # A PyTorch answer's loss and optimizer, from the notebook's source; a Keras answer's come
    # from its compile(), so its source is not read for them.
    pytorch = {n for n in names if str(objects[n].export).endswith(".onnx")}
    cross_entropy = torch_source.cross_entropy_loss(notebook_node) if pytorch else False
    if pytorch:
        lacking = environment.missing_packages(["onnx", "onnxruntime"])
        if lacking:  # the trusted side cannot read a PyTorch answer: ours to fix, not a zero
            raise GraderError("a PyTorch answer is read with onnx and onnxruntime, which this "
                              f"installation lacks ({', '.join(sorted(lacking))}); install "
                              f"them with: {environment.install_command('onnx')}")
    # An encoder is loaded before the classifier of its codes.
    names = sorted(names, key=lambda n: bool(getattr(specs[n].options, "encoder", None)))
    budget = assignment.training
    training = training_budget(assignment, prepared, seed)
    timed = [n for n in names if n in wanted]
    # The reference design trains on the subset's images in either mode: one bar for both.
    data_key = f"{DataMode.SUBSET}-{prepared.holdout_id}"
    have = baselines.known(assignment, timed, data_key, seed) if training else {}
    missing = baselines.requests(assignment, [n for n in timed if n not in have], {}) \
        if training else []
    request = measure.Request(
        images=images, max_params=budget.max_params if budget else measure.DEFAULT_MAX_PARAMS,
        training=training,
        objects=[{**specs[n].options.model_dump(exclude_unset=True), "name": n, "export": str(objects[n].export),
                  "input_shape": specs[n].input_shape, "timed": n in wanted,
                  "claim": objects[n].data.get("claim"),
                  "cross_entropy_loss": cross_entropy,
                  "torch_training": torch_source.training(notebook_node, n)
                  if n in pytorch else None} for n in names],
        baselines=missing,
        timeout=300.0 + (len(timed) + len(missing)) * (budget.wall_seconds_per_model
                                                       if budget else 0))
    result = worker.measure(request, len(prepared.holdout_labels))
    for name, run in result.baselines.items():
        if run.get("status") == TimedStatus.TRAINED:
            have[name] = baselines.remember(assignment, name, data_key, seed,
                                            run["predictions"], prepared.holdout_labels,
                                            run.get("cpu_seconds"))
    costs = baselines.costs(assignment, timed, data_key, seed) if training else {}
    return result.objects, have, costs


def grade(path: Path, assignment: Assignment, options: Options | None = None,
          executed_to: Path | None = None) -> GradeResult:
    """Grade one notebook. A failure of the grader's own set-up gives a `grader_error` result
    with the cause and no score, never a student's zero. With `executed_to`, the notebook as
    the kernel ran it (its outputs, without the grader's harvest cell) is written there."""
    started = time.monotonic()
    options = options or Options()
    try:
        harvest = execute_and_harvest(path, assignment, options)
        if harvest.record.status == RunStatus.START_FAILED:  # student code never ran: ours to fix
            raise GraderError(harvest.record.message)
        # A framework the assignment allows, missing here (an extra such as torch): ours to fix.
        lacking = environment.missing_optional(harvest.record.cell_errors,
                                               assignment.optional_packages)
        if lacking:
            raise GraderError(lacking)
    except (GraderError, sandbox_mod.SandboxUnavailable) as exc:
        return grader_error_result(assignment, path, str(exc), started)
    except Exception as exc:  # noqa: BLE001 - a bug or a broken install, never the student's
        from .data import DatasetError

        cause = str(exc) if isinstance(exc, DatasetError) else \
            f"internal error ({type(exc).__name__}: {exc})"
        return grader_error_result(assignment, path, cause, started)
    notify(options.progress, Phase.SCORE)
    if executed_to is not None and harvest.record.status != RunStatus.INVALID_NOTEBOOK:
        _write_executed(harvest.loaded.node, executed_to)
    return _score(harvest, assignment)


def _write_executed(nb: Any, path: Path) -> None:
    """Best effort: the executed notebook is feedback, never a reason to lose the grade."""
    try:
        write_atomic(path, nbformat.writes(nb))
    except Exception:  # noqa: BLE001 - e.g. an output nbformat cannot serialise
        path.unlink(missing_ok=True)


def score_harvest(harvest: Harvest, assignment: Assignment) -> GradeResult:
    """Score what a run harvested against the assignment's current files (calibration scores
    its correct runs again once it has written the thresholds)."""
    return _score(harvest, assignment)


def _score(harvest: Harvest, assignment: Assignment) -> GradeResult:
    t_grade = time.monotonic()
    record = harvest.record
    if record.status == RunStatus.INVALID_NOTEBOOK:
        results = _all_failed(assignment, record.message)
    else:
        ctx = GradingContext(harvest.objects, assignment.expected(), assignment.thresholds(),
                             record, harvest.data.holdout_labels,
                             holdout_images=harvest.data.holdout_images, notebook=harvest.loaded.node)
        ctx.notes["run_seed"] = harvest.run_seed
        ctx.notes["timed_baselines"] = harvest.timed_baselines
        ctx.notes["timed_costs"] = harvest.timed_costs
        ctx.notes["manual_questions"] = [c.options.question or c.id
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
    try:  # evidence for a TA, never a reason to lose the grade
        evidence = _similarity_evidence(harvest)
    except Exception:  # noqa: BLE001
        evidence = None
    return _result(assignment, harvest.loaded, record, results, models, harvest.data.summary,
                   timings).model_copy(update=dict(
                       sandbox=harvest.sandbox,
                       unchanged_starter=starter.unchanged(harvest.loaded.node,
                                                           assignment.starter),
                       limits=LimitsReport.model_validate(record.limits) if record.limits else None,
                       evidence=evidence))


def _cell_errors(record: Any, assignment: Assignment) -> list[CellError]:
    """The cells that raised, each with why it costs nothing by itself and, for a module the
    assignment names that this machine lacks, what to do."""
    errors = []
    for error in record.cell_errors:
        entry = {**error.as_dict(), "note": CELL_ERROR_NOTE}
        hint = environment.missing_module_hint(
            entry, (*assignment.packages, *assignment.optional_packages))
        if hint:
            entry["hint"] = hint
        errors.append(CellError.model_validate(entry))
    return errors


def _similarity_evidence(harvest: Harvest) -> dict[str, Any] | None:
    """For the class's similarity report: each model's weight fingerprint (the measuring
    process's) and the argmax labels of its holdout predictions under the scaling the accuracy
    check credits, with which holdout they are of (pairs are compared on the same one only)."""
    from .checks.keras_checks import best_accuracy
    from .measure.fingerprint import labels_text, valid

    labels = harvest.data.holdout_labels
    models: dict[str, Any] = {}
    for name, obj in sorted(harvest.objects.items()):
        entry: dict[str, Any] = {}
        fingerprint = valid(obj.data.get("fingerprint"))
        if fingerprint is not None:
            entry["weights"] = fingerprint
        if obj.predictions and labels is not None:
            best = best_accuracy(obj.predictions, labels)
            if best is not None:
                text = labels_text(obj.predictions[best[0]])
                if text:
                    entry.update(labels=text, scaling=best[0])
        if entry:
            models[name] = entry
    if not models:
        return None
    return {"holdout": harvest.data.holdout_id, "models": models}


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
        execution=Execution(status=RunStatus.GRADER_ERROR,
                            message=f"the grader failed, not the notebook: {cause}. Nothing "
                                    "was scored; grade it again once this is fixed.",
                            harvested=False),
        cell_errors=[], data=Data(), timings={"total": round(seconds, 3)},
        grader_version=__version__)


def _all_failed(assignment: Assignment, message: str) -> list[CheckResult]:
    """The student's file cannot be read as a notebook: theirs to fix, so each check is a 0."""
    return [CheckResult.scored(spec, 0.0, f"the notebook could not be read: {message}")
            for spec in assignment.checks]


def _result(assignment, loaded, record, results, models, data_summary, timings) -> GradeResult:
    time_limit = {"time_limit": record.time_limit.as_dict()} if record.time_limit else {}
    return GradeResult(
        assignment=assignment.id,
        assignment_title=assignment.title,
        assignment_version=assignment.version_key(),
        notebook=str(loaded.path),
        notebook_sha256=loaded.sha256,
        score=score_of(results),
        max_score=assignment.max_score,
        checks=results,
        models=models,
        execution=Execution(status=record.status, message=record.message,
                            harvested=record.harvested, **time_limit),
        cell_errors=_cell_errors(record, assignment),
        data=Data.model_validate(data_summary),
        timings={k: round(v, 3) for k, v in timings.items()},
        grader_version=__version__,
    )
