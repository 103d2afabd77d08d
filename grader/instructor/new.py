"""`grader new ID --from reference.ipynb`: an assignment folder from a reference solution.

Writes, into the course folder (grader/paths.py):

- `reference/<id>/<id>-solution.ipynb`: the reference, with `metadata.grader.assignment`;
- `assignments/<id>/<id>.ipynb`: the starter, the reference with its solution cells stubbed;
- `assignments/<id>/assignment.toml`: the checks the reference's models call for.

What the reference calls for is read from its source (`ast`), never by running it here (grader
calibrate runs it next, in the sandbox): the dataset it loads (`mnist`, `fashion_mnist`), the
packages it imports, and each Keras model it builds, compiles and trains, with whether it has
dropout. Each model gets the architecture checks (layers, activations, output shapes,
parameters), loss and optimizer where it is compiled, the dropout probe and its check where it
has dropout, and accuracy and timed training where it is trained. Points and titles are
defaults for the instructor to edit; the structure is what calibration and the checks need.

Solution cells: those between nbgrader's `### BEGIN SOLUTION` and `### END SOLUTION` markers
when the reference has them (only the lines between are replaced); otherwise every cell that
builds, compiles or trains a graded model, or defines a model class, whole.
"""

from __future__ import annotations

import ast
import copy
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .. import paths

SOLUTION_BEGIN = re.compile(r"^(\s*)#+\s*BEGIN SOLUTION\s*$", re.MULTILINE)
SOLUTION_END = re.compile(r"^\s*#+\s*END SOLUTION\s*$", re.MULTILINE)
STUB = "raise NotImplementedError()  # your code here"
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")

DATASETS = {"mnist": "mnist", "fashion_mnist": "fashion-mnist"}
MODEL_CALLS = {"Sequential", "Model"}  # keras.Sequential(...), keras.Model(inputs, outputs)
MODEL_BASES = {"Model", "keras.Model", "tf.keras.Model", "keras.models.Model"}
# Default points, for the instructor to edit (kind: points).
POINTS = {"layers": 3, "activations": 2, "output_shapes": 1, "param_count": 1, "loss": 1,
          "optimizer": 1, "dropout_behaviour": 1, "accuracy": 5, "timed_training": 2}
TITLES = {"layers": "Layers in order", "activations": "Activations of every layer",
          "output_shapes": "Output shapes of every layer", "param_count": "Total parameters",
          "loss": "Loss suits the output and the label encoding",
          "optimizer": "Optimizer as the homework asks",
          "dropout_behaviour": "Dropout is active in training only",
          "accuracy": "Accuracy of the trained model on the grader's private images",
          "timed_training": "Does the design learn? The grader trains it from scratch"}


class NewError(Exception):
    """The reference cannot be made into an assignment (a usage error: its message says why)."""


@dataclass
class ModelUse:
    name: str
    subclassed: bool = False
    compiled: bool = False
    trained: bool = False
    dropout: bool = False
    cells: set[int] = field(default_factory=set)  # code cells that build, compile or train it


@dataclass
class Reading:
    """What the reference's source calls for."""

    dataset: str | None
    packages: list[str]
    models: list[ModelUse]
    solution_cells: set[int]  # code cells to stub when the notebook has no markers
    markers: bool


def read_reference(nb: nbformat.NotebookNode) -> Reading:
    cells = [(i, c.source) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    trees: dict[int, ast.AST] = {}
    for i, source in cells:
        try:
            trees[i] = ast.parse(_python(source))
        except SyntaxError as exc:
            raise NewError(f"cell {i + 1} of the reference is not valid Python: {exc.msg} "
                           f"(line {exc.lineno})") from None
    classes = _model_classes(trees)
    dropout_classes = {c for c, tree in classes.items() if _has_dropout(tree)}
    models: dict[str, ModelUse] = {}
    dataset, packages = None, []
    for i, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                packages += _imported(node)
            if isinstance(node, ast.Attribute) and node.attr in DATASETS:
                dataset = dataset or DATASETS[node.attr]
            if isinstance(node, ast.ImportFrom) and node.module and \
                    node.module.endswith("datasets"):
                for alias in node.names:
                    if alias.name in DATASETS:
                        dataset = dataset or DATASETS[alias.name]
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and \
                    isinstance(node.targets[0], ast.Name) and isinstance(node.value, ast.Call):
                callee = _callee(node.value.func)
                name = node.targets[0].id
                if callee in MODEL_CALLS or callee in classes:
                    use = models.setdefault(name, ModelUse(name))
                    use.subclassed = callee in classes
                    use.dropout = use.dropout or callee in dropout_classes or _has_dropout(node)
                    use.cells.add(i)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                    isinstance(node.func.value, ast.Name) and node.func.value.id in models:
                use = models[node.func.value.id]
                if node.func.attr == "compile":
                    use.compiled = True
                    use.cells.add(i)
                elif node.func.attr == "fit":
                    use.trained = True
                    use.cells.add(i)
                elif node.func.attr == "add":
                    use.dropout = use.dropout or _has_dropout(node)
                    use.cells.add(i)
    for use in models.values():  # the functional API: its Dropout layers precede Model(...)
        use.dropout = use.dropout or any(_has_dropout(trees[i]) for i in use.cells)
    graded = [m for m in models.values() if m.compiled or m.trained]
    class_cells = {i for i, tree in trees.items() for node in ast.walk(tree)
                   if isinstance(node, ast.ClassDef) and node.name in classes}
    stdlib = set(sys.stdlib_module_names)
    return Reading(dataset=dataset,
                   packages=sorted({p for p in packages if p not in stdlib} | {"numpy"}),
                   models=graded,
                   solution_cells=set().union(*(m.cells for m in graded), class_cells),
                   markers=any(SOLUTION_BEGIN.search(s) for _, s in cells))


def _python(source: str) -> str:
    """A cell's source without IPython's magics and shell escapes."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                     for line in source.splitlines())


def _callee(func: ast.AST) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _imported(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name.split(".")[0] for a in node.names]
    return [node.module.split(".")[0]] if node.module and not node.level else []


def _has_dropout(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Call) and "Dropout" in _callee(n.func) for n in ast.walk(node))


def _model_classes(trees: dict[int, ast.AST]) -> dict[str, ast.ClassDef]:
    found = {}
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and any(
                    ast.unparse(b) in MODEL_BASES for b in node.bases):
                found[node.name] = node
    return found


def checks_for(model: ModelUse) -> list[str]:
    """The check kinds a model calls for, in the order the report shows them."""
    kinds = ["layers"]
    if not model.subclassed:  # a subclassed model's graph: activations are read as layers
        kinds.append("activations")
    kinds += ["output_shapes", "param_count"]
    if model.compiled:
        kinds.append("loss")
        if not model.subclassed:
            kinds.append("optimizer")
    if model.dropout:
        kinds.append("dropout_behaviour")
    if model.trained:
        kinds += ["accuracy", "timed_training"]
    return kinds


def render_spec(aid: str, title: str, reading: Reading, starter: str, reference: str) -> str:
    if reading.dataset is None:
        raise NewError("the reference loads no dataset the grader serves (keras.datasets.mnist "
                       "or fashion_mnist): write assignment.toml by hand (docs/authoring.md)")
    if not reading.models:
        raise NewError("the reference compiles or trains no Keras model assigned to a variable "
                       "(model = keras.Sequential(...), keras.Model(...) or a subclass of "
                       "keras.Model): nothing for the checks to grade")
    trained = any(m.trained for m in reading.models)
    lines = [f"# Written by `grader new {aid}` from {reference}: edit points and titles;",
             "# the checks are what the reference's models call for (docs/authoring.md).",
             f'id = "{aid}"', f"title = {_toml_string(title)}", 'version = "1"',
             f'starter = "{starter}"', "# Relative to reference/<id>/",
             f'reference = "{reference}"', "",
             "[data]", f'dataset = "{reading.dataset}"',
             "seed = 2026               # fixes the subset and the holdout",
             "train_per_class = 600     # the subset load_data() serves (docs/authoring.md: "
             "subset sizes)",
             "test_per_class = 100", "holdout_per_class = 200", ""]
    if trained:
        lines += ["# The grader's own training of each design (timed_training checks).",
                  "[training]", "epochs = 3", "batch_size = 128",
                  "max_cpu_seconds = 120     # a safety net in CPU seconds", "seed = 0", ""]
    lines += ["[environment]",
              "packages = [" + ", ".join(f'"{p}"' for p in reading.packages) + "]", ""]
    for model in reading.models:
        lines += ["[[objects]]", f'name = "{model.name}"', 'kind = "keras"']
        if model.dropout:
            lines.append("probe_dropout = true      # the dropout_behaviour check measures it")
        lines.append("")
    total = 0
    for model in reading.models:
        for kind in checks_for(model):
            points = POINTS[kind]
            total += points
            prefix = f"{model.name}: " if len(reading.models) > 1 else ""
            lines += ["[[checks]]", f'id = "{model.name}-{kind.replace("_", "-")}"',
                      f"title = {_toml_string(prefix + TITLES[kind])}", f'kind = "{kind}"',
                      f'object = "{model.name}"', f"points = {points}", ""]
    lines.insert(2, f"# {total} points in all.")
    return "\n".join(lines).rstrip("\n") + "\n"


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def starter_of(nb: nbformat.NotebookNode, reading: Reading) -> nbformat.NotebookNode:
    """The reference with its solution stubbed and its outputs cleared."""
    out = copy.deepcopy(nb)
    for i, cell in enumerate(out.cells):
        if cell.cell_type != "code":
            continue
        cell.outputs, cell.execution_count = [], None
        if reading.markers:
            cell.source = _strip_marked(cell.source)
        elif i in reading.solution_cells:
            comments = [line for line in cell.source.splitlines()
                        if line.lstrip().startswith("#")][:3]
            cell.source = "\n".join([*comments, STUB])
    return out


def _strip_marked(source: str) -> str:
    """nbgrader's convention: the lines between the markers become the stub."""
    out, pos = [], 0
    for begin in SOLUTION_BEGIN.finditer(source):
        if begin.start() < pos:
            continue
        end = SOLUTION_END.search(source, begin.end())
        if end is None:
            break
        out += [source[pos:begin.start()], begin.group(1) + STUB]
        pos = end.end()
    out.append(source[pos:])
    return "".join(out)


def create(aid: str, source: Path, title: str | None = None) -> tuple[Path, Path, Path]:
    """Write the assignment folder and the reference into the course; returns (spec, starter,
    reference). Nothing is written when the reference cannot be read or the id is taken."""
    if not ID_PATTERN.match(aid):
        raise NewError(f"{aid!r} is not an assignment id: lower-case letters, digits, '-', "
                       "'_' and '.', starting with a letter or digit")
    if not source.is_file():
        raise NewError(f"no such file: {source}")
    folder, ref_folder = paths.assignments_dir() / aid, paths.reference_dir() / aid
    for existing in (folder, ref_folder):
        if existing.exists():
            raise NewError(f"{existing} already exists: choose another id, or remove it to "
                           "start again")
    try:
        nb = nbformat.read(source, as_version=4)
    except Exception as exc:  # noqa: BLE001 - any unreadable notebook
        raise NewError(f"{source} is not a readable notebook ({exc})") from None
    reading = read_reference(nb)
    starter_name, reference_name = f"{aid}.ipynb", f"{aid}-solution.ipynb"
    text = render_spec(aid, title or _title(nb, aid), reading, starter_name, reference_name)
    nb.metadata.setdefault("grader", {})
    nb.metadata["grader"] = {**dict(nb.metadata["grader"]), "assignment": aid}
    nb.metadata["grader"].pop("variant", None)
    starter = starter_of(nb, reading)
    folder.mkdir(parents=True)
    ref_folder.mkdir(parents=True)
    (folder / "assignment.toml").write_text(text, encoding="utf-8")
    nbformat.write(starter, folder / starter_name)
    nbformat.write(nb, ref_folder / reference_name)
    return folder / "assignment.toml", folder / starter_name, ref_folder / reference_name


def _title(nb: nbformat.NotebookNode, aid: str) -> str:
    """The notebook's first heading, else the id."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            found = re.search(r"^#+\s+(.+)$", cell.source, re.MULTILINE)
            if found:
                return found.group(1).strip()
    return aid


def _layer_label(layer: dict) -> str:
    config = layer.get("config") or {}
    size = config.get("units") or config.get("filters") or config.get("rate")
    return f"{layer['class']} {size}" if size is not None else str(layer["class"])


def measured_titles(assignment) -> dict[str, str]:  # noqa: ANN001 - a spec.Assignment
    """Titles naming what calibration measured on the reference (expected.json): the layers,
    activations, parameter count and optimizer a student must match."""
    objects = assignment.expected().get("objects") or {}
    titles = {}
    for check in assignment.checks:
        found = (objects.get(check.object or "") or {}).get("variants") or []
        if not found:
            continue
        reference = found[0]
        layers = reference.get("layers") or []
        if check.kind == "layers" and layers:
            titles[check.id] = "Layers in order: " + " → ".join(_layer_label(l) for l in layers)
        elif check.kind == "activations":
            named = [l["activation"] for l in layers if l.get("activation") not in (None, "linear")]
            if named:
                titles[check.id] = "Activations: " + ", ".join(named)
        elif check.kind == "param_count" and reference.get("total_params"):
            titles[check.id] = f"Total parameters ({reference['total_params']:,})"
        elif check.kind == "optimizer" and (reference.get("compile") or {}).get("optimizer"):
            titles[check.id] = f"Optimizer is {reference['compile']['optimizer']}"
    return titles


def retitle(spec_path: Path, titles: dict[str, str]) -> list[str]:
    """Replace the default title of each check `titles` names (one `grader new` wrote and the
    instructor has not changed); returns the ids retitled."""
    text = spec_path.read_text(encoding="utf-8")
    done = []
    for check_id, title in titles.items():
        pattern = re.compile(rf'^(id = "{re.escape(check_id)}"\ntitle = )"([^"\n]*)"$',
                             re.MULTILINE)
        found = pattern.search(text)
        if found and found.group(2).split(": ", 1)[-1] in TITLES.values():
            text = text[:found.start()] + found.group(1) + _toml_string(title) + \
                text[found.end():]
            done.append(check_id)
    spec_path.write_text(text, encoding="utf-8")
    return done
