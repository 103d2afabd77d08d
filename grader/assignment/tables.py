"""The format of `assignment.toml`: typed models that reject unknown keys (pydantic v2).

Every table forbids keys it does not know, so a typo (`pionts = 3`, `[trainig]`) is an error
rather than a silently ignored setting. Check kinds come from the registry in grader/checks/ and
object kinds are `keras` plus the modules of grader/kernel/kinds/, so a spec can only name what
this grader can do. Each check kind declares its own keys (`only`, `rtol`, …) in an options model
below; a kind added to the registry without one accepts any keys until it gets one.

The models are built on first use (`file_model()`): the kinds are read from the registry then,
and importing grader.assignment stays cheap and free of import cycles.
"""

from __future__ import annotations

import difflib
import functools
import keyword
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, NonNegativeFloat,
                      NonNegativeInt, PositiveFloat, PositiveInt, create_model)

KINDS_DIR = Path(__file__).resolve().parents[1] / "kernel" / "kinds"
SCHEMA_ID = "https://dl-grader.invalid/schemas/assignment.schema.json"


def _identifier(value: str) -> str:
    """A Python variable name: what the grader looks up in the student's namespace."""
    if not value.isidentifier() or keyword.iskeyword(value):
        raise ValueError(f"{value!r} is not a Python variable name")
    return value


def _import_name(value: str) -> str:
    """What follows `import` (sklearn), not the name pip installs (scikit-learn)."""
    if not all(part.isidentifier() for part in value.split(".")):
        raise ValueError(f"{value!r} is not an import name (write the name used in `import`, "
                         "e.g. sklearn for scikit-learn)")
    return value


def _notebook_name(value: str) -> str:
    if not value.endswith(".ipynb") or value.startswith("/") or ".." in value.split("/"):
        raise ValueError(f"{value!r} is not a notebook file name (*.ipynb, inside the folder)")
    return value


# The patterns are for the JSON Schema only; the validators give the messages.
Identifier = Annotated[str, AfterValidator(_identifier),
                       Field(json_schema_extra={"pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"})]
ImportName = Annotated[str, AfterValidator(_import_name),
                       Field(json_schema_extra={"pattern": r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$"})]
NotebookName = Annotated[str, AfterValidator(_notebook_name),
                         Field(json_schema_extra={"pattern": r"^(?!/)(?!.*(^|/)\.\.(/|$)).*\.ipynb$"})]
Slug = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
Text = Annotated[str, Field(min_length=1)]


class Table(BaseModel):
    """A TOML table: unknown keys are errors, and TOML's types are taken as they are."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ExecutionTable(Table):
    """Caps on the student's kernel (and on the grader's own processes that read its files):
    each holds for the kernel's whole process tree, children included."""

    cell_timeout: PositiveFloat = Field(300.0, description="seconds for any one cell")
    notebook_timeout: PositiveFloat = Field(900.0, description="seconds for the whole notebook")
    memory_mb: PositiveInt = Field(6144, description="memory of the kernel's processes, tmpfs "
                                   "files included (cgroup), and the address space of each "
                                   "(RLIMIT_AS), in MB")
    processes: PositiveInt = Field(256, description="processes and threads alive at once")
    disk_mb: PositiveInt = Field(1024, description="everything the kernel writes (its working "
                                 "folder, home, /tmp, /dev/shm), in MB")
    files: PositiveInt = Field(10_000, description="files and folders the kernel may create")
    file_mb: PositiveInt = Field(512, description="size of any one file, in MB")


class DataTable(Table):
    dataset: str = Field(description="the dataset load_data() serves")
    seed: NonNegativeInt = Field(description="fixes the subset and the private holdout")
    train_per_class: PositiveInt = Field(description="training images per class load_data() "
                                         "serves in subset mode (the subset size: see "
                                         "docs/authoring.md)")
    test_per_class: PositiveInt = Field(description="test images per class it serves")
    holdout_per_class: PositiveInt = Field(description="private images per class the grader "
                                           "measures accuracy on, drawn from the rest of the "
                                           "training split")


class TrainingTable(Table):
    """The grader's own training of each architecture: same budget and seed for everyone."""

    epochs: PositiveInt = Field(5, description="epochs of the grader's training of a design")
    batch_size: PositiveInt = Field(128, description="its batch size")
    # CPU seconds of the training process, not wall-clock: a busy machine must not change a
    # grade. A safety net far above any sound design's cost; training stops after the epoch
    # that passes it.
    max_cpu_seconds: PositiveFloat = Field(
        600.0, description="CPU-seconds cap per model (a safety net: the budget is `epochs`); "
                           "the grader trains on the subset's images, with --full too")
    seed: NonNegativeInt = Field(0, description="the seed of the grader's starting weights")
    max_params: PositiveInt = Field(20_000_000, description="above this the grader declines")

    @property
    def wall_seconds_per_model(self) -> float:
        """The wall-clock safety net for one model's training: its CPU cap, spent on two threads
        of a machine busy with other work, with room to spare."""
        return self.max_cpu_seconds * 3 + 120


class EnvironmentTable(Table):
    packages: list[ImportName] = Field(
        default_factory=list,
        description="import names the assignment's notebooks may import (besides the "
                    "standard library), e.g. numpy, sklearn")
    optional: list[ImportName] = Field(
        default_factory=list,
        description="import names the notebooks may also import that an installation may "
                    "lack, each installed by an extra of the grader (torch: pip install -e "
                    "'.[torch]'); not required before grading: a notebook that imports one "
                    "where it is missing is a grader error naming the install, never a zero")


class VariantTable(Table):
    label: Text = Field(description="what it does differently, as reports and calibrate name it")
    notebook: NotebookName = Field(description="relative to reference/<id>/")


# --- objects: the variables the grader harvests ------------------------------------------------

class ObjectTable(Table):
    name: Identifier = Field(description="the variable's name in the student's notebook")
    kind: str = Field(description='"keras", or a module of grader/kernel/kinds/')
    input_shape: list[PositiveInt] | None = Field(None, description="the shape of one input "
                                                  "(without the batch), where the model does "
                                                  "not declare it")


class KerasObject(ObjectTable):
    encoder: Identifier | None = Field(None, description="feed this object the private images "
                                       "encoded by that model's first layer")
    probe_dropout: bool = Field(False, description="forward passes with training=True and "
                                "False, to grade dropout by behaviour")


class NumpyFunctionsObject(ObjectTable):
    forward: Identifier = Field("forward_propagation", description="the forward function's "
                                "name")
    call_timeout: PositiveFloat = Field(10.0, description="seconds for one call")


OBJECT_KIND_MODELS: dict[str, type[ObjectTable]] = {
    "keras": KerasObject, "numpy_functions": NumpyFunctionsObject}


# --- checks ---------------------------------------------------------------------------------------

class CheckTable(Table):
    """A [[checks]] entry: what earns points."""

    id: Slug = Field(description="unique within the assignment; a column of grades.csv")
    title: Text = Field(description="what students read in their report")
    kind: str = Field(description="one of the kinds below")
    points: PositiveFloat = Field(description="full marks for this check")
    object: Identifier | None = Field(None, description="the [[objects]] entry it grades")

    # The kind of object the check grades ("none": it grades none; None: not known), and the
    # tables it needs.
    object_kind: ClassVar[str | None] = "keras"
    needs: ClassVar[tuple[str, ...]] = ()
    # Keys the graded [[objects]] entry must set, with the value (the measurement it asks for).
    object_needs: ClassVar[dict[str, Any]] = {}


class ArchitectureCheck(CheckTable):
    ignore: list[Text] = Field(default_factory=list, description="layer classes left out of "
                               "the comparison, e.g. Dropout")


class LayersCheck(ArchitectureCheck):
    only: list[PositiveInt] = Field(default_factory=list, description="grade only these "
                                    "expected layers (1-based positions); empty: all")


class OptimizerCheck(CheckTable):
    expected: Text | list[Text] | None = Field(None, description="accepted optimizer classes "
                                               "(default: the reference's)")


Fraction = Annotated[float, Field(gt=0, lt=1)]


class AccuracyCheck(CheckTable):
    needs = ("data",)
    threshold: Annotated[float, Field(gt=0, le=1)] | None = Field(
        None, description="used only when thresholds.json has none")
    homework_figure: Fraction | None = Field(
        None, description="the accuracy the homework states for a solution on the full data "
                          "(e.g. 0.888): grader calibrate never sets the bar above it less the "
                          "margin, so a solution that reaches it passes")


class TimedTrainingCheck(CheckTable):
    needs = ("data", "training")


class ContainsLayersCheck(CheckTable):
    required: list[Text | list[Text]] = Field(min_length=1, description="layer classes; a "
                                              "list inside accepts any one of its classes")


class ManualCheck(CheckTable):
    object_kind = "none"
    question: Text | None = Field(None, description="the question's number in the notebook, "
                                  "e.g. 2.1 (default: the check id)")


class ReconstructionCheck(CheckTable):
    needs = ("data",)
    margin_below_mean_image: Fraction = Field(
        0.05, description="full marks for an error at least this fraction below the error of "
                          "outputting the mean image")


class CodeAccuracyCheck(CheckTable):
    needs = ("data",)
    encoder: Identifier | None = None
    margin_above_chance: Fraction = Field(
        0.10, description="full marks for an accuracy at least this far above chance (0.20 "
                          "for 10 classes)")


class ToleranceCheck(CheckTable):
    object_kind = "numpy_functions"
    rtol: NonNegativeFloat = Field(1e-5, description="relative tolerance against the grader's "
                                   "values")
    atol: NonNegativeFloat = Field(1e-8, description="absolute tolerance against them")


class BackwardCheck(ToleranceCheck):
    accept_transposed_w1: bool = Field(True, description="accept dL/dW1 laid out transposed")


class GradientCheck(BackwardCheck):
    rtol: NonNegativeFloat = Field(1e-3, description="relative tolerance against finite "
                                   "differences (and of the gate on the wide network)")
    atol: NonNegativeFloat = Field(1e-6, description="absolute tolerance against them")


# Part 1 allows numpy only (seed 004): frameworks that compute gradients, and the grader itself.
NUMPY_ONLY_FORBIDDEN = ("tensorflow", "torch", "jax", "keras", "autograd", "theano", "mxnet",
                        "paddle", "grader")


class NumpyOnlyCheck(CheckTable):
    object_kind = "numpy_functions"
    forbidden: list[ImportName] = Field(default_factory=lambda: list(NUMPY_ONLY_FORBIDDEN),
                                        description="modules the notebook must not import")


class DropoutBehaviourCheck(CheckTable):
    object_needs = {"probe_dropout": True}


CHECK_KIND_MODELS: dict[str, type[CheckTable]] = {
    "layers": LayersCheck, "activations": ArchitectureCheck, "output_shapes": ArchitectureCheck,
    "param_count": ArchitectureCheck, "loss": CheckTable, "optimizer": OptimizerCheck,
    "accuracy": AccuracyCheck, "timed_training": TimedTrainingCheck,
    "dropout_behaviour": DropoutBehaviourCheck, "contains_layers": ContainsLayersCheck,
    "manual": ManualCheck, "reconstruction": ReconstructionCheck,
    "code_accuracy": CodeAccuracyCheck, "forward_pass": ToleranceCheck,
    "backward_pass": BackwardCheck, "gradient_check": GradientCheck,
    "numpy_only": NumpyOnlyCheck,
}


class FreeFormCheck(CheckTable):
    """A registered kind with no options model yet: its own keys are not checked."""

    model_config = ConfigDict(extra="allow")
    object_kind = None


class Options(Table):
    """A kind's own keys (those beyond the entry's common ones), with their defaults: what the
    grader reads as `spec.options.<key>`. One model per kind, derived from the kind's entry
    model by `options_model`, so each key and its default are written once."""


class CheckOptions(Options):
    """The own keys of a [[checks]] kind."""


class ObjectOptions(Options):
    """The own keys of an [[objects]] kind."""


class FreeFormOptions(CheckOptions):
    """The options of a check kind with no model yet: whatever the file set."""

    model_config = ConfigDict(extra="allow")


@functools.cache
def options_model(kind: str, table: str = "checks") -> type[Options]:
    """The options of a kind of [[checks]] (or of [[objects]]): its model's fields minus the
    common ones."""
    if table == "objects":
        entry, common, base = OBJECT_KIND_MODELS.get(kind, ObjectTable), ObjectTable, ObjectOptions
    else:
        entry, common, base = CHECK_KIND_MODELS.get(kind), CheckTable, CheckOptions
        if entry is None:
            return FreeFormOptions
    own = {name: (info.annotation, info) for name, info in entry.model_fields.items()
           if name not in common.model_fields}
    return create_model(f"{entry.__name__}Options", __base__=base, **own)


def options_of(entry: CheckTable | ObjectTable) -> Options:
    """A validated entry's own keys as its kind's options model (frozen); the keys the file
    set are its `model_fields_set`."""
    table = "objects" if isinstance(entry, ObjectTable) else "checks"
    model = options_model(entry.kind, table)
    written = {name: getattr(entry, name) for name in model.model_fields
               if name in entry.model_fields_set}
    return model.model_validate({**written, **(entry.model_extra or {})})


class AssignmentTable(Table):
    id: Slug = Field(description="the folder's name under assignments/")
    title: Text = Field(description="shown by grader list and in reports")
    version: Text | int = Field("1", description="part of every result's assignment_version; "
                                "change it when the grading changes")
    starter: NotebookName = Field(description="the starter notebook, in the same folder")
    reference: NotebookName = Field(description="the reference solution, relative to "
                                    "reference/<id>/")
    reference_label: Text = Field("reference", description="the reference solution's name in "
                                  "expected.json and reports")
    reference_variants: list[VariantTable] = Field(
        default_factory=list, description="other accepted solutions")
    execution: ExecutionTable = Field(default_factory=ExecutionTable)
    data: DataTable | None = None
    training: TrainingTable | None = None
    environment: EnvironmentTable = Field(default_factory=EnvironmentTable)
    objects: list[Any] = Field(default_factory=list)  # narrowed by file_model()
    checks: list[Any] = Field(min_length=1)


# --- kinds this grader knows, and the model of a whole file --------------------------------------

def check_kinds() -> tuple[str, ...]:
    """The kinds a spec may name: those with typed options here. grader/checks' REGISTRY grades
    the same kinds (tests/test_spec.py holds the two equal), without an import each way."""
    return tuple(CHECK_KIND_MODELS)


def object_kinds() -> tuple[str, ...]:
    """`keras` plus grader/kernel/kinds/<kind>.py, found without importing them."""
    modules = sorted(p.stem for p in KINDS_DIR.glob("*.py") if not p.stem.startswith("_"))
    return ("keras", *modules)


def dataset_names() -> tuple[str, ...]:
    from ..data.sources import DATASETS

    return tuple(DATASETS)


def _tagged(base: type[BaseModel], kind: str) -> type[BaseModel]:
    return create_model(f"{base.__name__}_{kind}", __base__=base, kind=(Literal[kind], ...))


def _union(models: list[type[BaseModel]]) -> Any:
    if len(models) == 1:
        return models[0]
    return Annotated[Union[tuple(models)], Field(discriminator="kind")]


@functools.cache
def file_model() -> type[AssignmentTable]:
    """AssignmentTable with its kinds and datasets narrowed to what this grader knows."""
    checks = [_tagged(CHECK_KIND_MODELS.get(kind, FreeFormCheck), kind) for kind in check_kinds()]
    objects = [_tagged(OBJECT_KIND_MODELS.get(kind, ObjectTable), kind)
               for kind in object_kinds()]
    data = create_model("DataTable", __base__=DataTable,
                        dataset=(Literal[dataset_names()], Field(description="the dataset "
                                                                  "load_data() serves")))
    return create_model(
        "Assignment", __base__=AssignmentTable,
        data=(data | None, None),
        objects=(list[_union(objects)], Field(default_factory=list,
                                               description="variables the grader harvests")),
        checks=(list[_union(checks)], Field(min_length=1, description="what earns points")))


def kind_model(table: str, kind: Any) -> type[BaseModel] | None:
    """The model of one [[checks]] or [[objects]] entry of this kind (None: unknown kind)."""
    if table == "checks" and kind in check_kinds():
        return CHECK_KIND_MODELS.get(kind, FreeFormCheck)
    if table == "objects" and kind in object_kinds():
        return OBJECT_KIND_MODELS.get(kind, ObjectTable)
    return None


def json_schema() -> dict[str, Any]:
    schema = file_model().model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
            **schema, "title": "assignment.toml",
            "description": "An assignment of dl-grader (assignments/<id>/assignment.toml, "
                           "read as TOML). Generated by schemas/generate.py from "
                           "grader/assignment/tables.py; do not edit by hand."}


# --- what one table cannot say about another -----------------------------------------------------

Problem = tuple[tuple[Any, ...], str]  # (where in the file, what is wrong)


def cross_check(spec: AssignmentTable, folder: Path) -> list[Problem]:
    """Consistency between tables: unique ids, checks naming declared objects of the right kind."""
    problems: list[Problem] = []
    if spec.id != folder.name:
        problems.append((("id",), f"{spec.id!r} differs from the folder's name {folder.name!r}"))
    if not (folder / spec.starter).is_file():
        problems.append((("starter",), f"no such file in {folder.name}/: {spec.starter}"))
    objects: dict[str, Any] = {}
    for i, obj in enumerate(spec.objects):
        if obj.name in objects:
            problems.append((("objects", i, "name"), f"{obj.name!r} is declared twice"))
        objects.setdefault(obj.name, obj)
    for i, obj in enumerate(spec.objects):
        problems += _reference(("objects", i, "encoder"), getattr(obj, "encoder", None), objects,
                               "keras", "an encoder")
    seen: set[str] = set()
    for i, check in enumerate(spec.checks):
        if check.id in seen:
            problems.append((("checks", i, "id"), f"{check.id!r} is used by another check"))
        seen.add(check.id)
        problems += _check_object(i, check, objects)
        problems += _reference(("checks", i, "encoder"), getattr(check, "encoder", None),
                               objects, "keras", "an encoder")
        for table in check.needs:
            if getattr(spec, table) is None:
                problems.append((("checks", i, "kind"), f"a {check.kind!r} check needs a "
                                 f"[{table}] table, and this file has none"))
    packages = spec.environment.packages
    for i, name in enumerate(packages):
        if name in packages[:i]:
            problems.append((("environment", "packages", i), f"{name!r} is listed twice"))
    for i, name in enumerate(spec.environment.optional):
        if name in packages or name in spec.environment.optional[:i]:
            problems.append((("environment", "optional", i), f"{name!r} is listed twice"))
    return problems


def _check_object(i: int, check: CheckTable, objects: dict[str, Any]) -> list[Problem]:
    want = type(check).object_kind
    if want == "none" and check.object:
        return [(("checks", i, "object"), f"a {check.kind!r} check grades no object")]
    if want in (None, "none"):
        return []
    if check.object is None:
        return [(("checks", i), f"object: field required (a {check.kind!r} check grades one "
                 f"of the [[objects]]: {_names(objects)})")]
    problems = _reference(("checks", i, "object"), check.object, objects, want,
                          f"a {check.kind!r} check")
    obj = objects.get(check.object)
    for key, value in type(check).object_needs.items():
        if obj is not None and not problems and getattr(obj, key, None) != value:
            problems.append((("checks", i, "object"), f"a {check.kind!r} check needs "
                             f"{key} = {str(value).lower()} on the [[objects]] entry "
                             f"{check.object!r}: without it the grader does not measure what "
                             "the check grades"))
    return problems


def _reference(where: tuple[Any, ...], name: str | None, objects: dict[str, Any], kind: str,
               user: str) -> list[Problem]:
    if name is None:
        return []
    obj = objects.get(name)
    if obj is None:
        return [(where, f"{name!r} is not declared in [[objects]] ({_names(objects)})"
                 + did_you_mean(name, objects))]
    if obj.kind != kind:
        return [(where, f"{name!r} is a {obj.kind} object; {user} needs a {kind} one")]
    return []


def _names(objects: dict[str, Any]) -> str:
    return "declared: " + ", ".join(objects) if objects else "none declared"


def did_you_mean(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def words(text: str) -> str:
    """pydantic's messages in the grader's voice: 'Field required' → 'field required'."""
    text = re.sub(r"^Value error, ", "", re.sub(r"^Input should be", "should be", text))
    return text[:1].lower() + text[1:]
