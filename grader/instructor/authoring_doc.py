"""The keys of `assignment.toml`, written into docs/authoring.md from the spec's own models.

    python3 -m grader.instructor.authoring_doc          # rewrite that section of docs/authoring.md
    python3 -m grader.instructor.authoring_doc --check  # exit 1 when the committed one differs

The section between the two markers below is generated from grader/assignment/tables.py (tables,
object kinds and check kinds, each key's type, default and description) and from the check
registry (what each kind grades, which calibration file it compares with), so the guide cannot
drift from what the grader accepts: a fast test runs `--check`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from ..assignment import tables as spec_format
from ..paths import PACKAGE_ROOT

DOC = PACKAGE_ROOT / "docs" / "authoring.md"
BEGIN = ("<!-- BEGIN GENERATED: spec keys, by `python3 -m grader.instructor.authoring_doc` from "
         "grader/assignment/tables.py; do not edit by hand -->")
END = "<!-- END GENERATED: spec keys -->"

# What each check kind grades, in a line (a test requires one for every registered kind).
WHAT = {
    "layers": "Each expected layer present, in order, with the right type and size; extras "
              "cost points (partial credit).",
    "activations": "Each layer's activation, as the reference's (softmax in the layer or as a "
                   "separate Activation are the same).",
    "output_shapes": "Each layer's output shape.",
    "param_count": "The model's total parameters.",
    "loss": "A cross-entropy that suits the output layer and the label encoding.",
    "optimizer": "The optimizer's class.",
    "accuracy": "The student's trained model, measured by the grader on private images whose "
                "labels never enter the kernel (partial credit up to the bar).",
    "timed_training": "The grader trains the student's design from scratch with its own loop "
                      "and budget (`[training]`): does the design learn?",
    "dropout_behaviour": "Dropout by behaviour: two training passes differ, two inference "
                         "passes agree.",
    "contains_layers": "A free architecture that must include some layer types.",
    "manual": "A written answer a TA grades (`grader grade --manual scores.csv`).",
    "reconstruction": "An autoassociator's reconstruction error on the private images, against "
                      "the error of outputting the mean image.",
    "code_accuracy": "A classifier of an autoassociator's codes (the object has `encoder`), "
                     "against chance.",
    "forward_pass": "A numpy forward pass, run in a numpy-only clean room on the grader's "
                    "inputs.",
    "backward_pass": "A numpy backward pass, on the grader's inputs and on a wide network "
                     "within a time limit.",
    "gradient_check": "The backward pass agrees with finite differences of the forward pass.",
    "numpy_only": "The functions import nothing but numpy (`forbidden`).",
}

# What grading a kind compares with, besides the student's notebook (grader/checks/).
COMPARES_WITH = {
    "layers": "expected.json (the reference's and accepted alternatives' layers)",
    "activations": "expected.json", "output_shapes": "expected.json",
    "param_count": "expected.json", "loss": "expected.json (the reference's loss and labels)",
    "optimizer": "expected.json, or `expected`",
    "accuracy": "thresholds.json (the bar calibrate sets; `threshold` only without one)",
    "timed_training": "thresholds.json and designs.json (the reference design retrained here)",
    "dropout_behaviour": "nothing: training=True and False passes must differ, and inference "
                         "must be deterministic",
    "contains_layers": "`required`",
    "manual": "nothing: a TA's points (`grader grade --manual`)",
    "reconstruction": "the mean image's error (fixed bar), recorded in thresholds.json",
    "code_accuracy": "chance (fixed bar), recorded in thresholds.json",
    "forward_pass": "the grader's own numpy forward pass",
    "backward_pass": "the grader's own numpy backward pass",
    "gradient_check": "finite differences of the student's forward pass",
    "numpy_only": "the notebook's imports",
}


def _type(prop: dict[str, Any]) -> str:
    """A JSON Schema property as a TOML author reads it."""
    if "anyOf" in prop:
        kinds = [_type(p) for p in prop["anyOf"] if p.get("type") != "null"]
        return " or ".join(dict.fromkeys(kinds))
    if "const" in prop:
        return f'"{prop["const"]}"'
    if "enum" in prop:
        return " \\| ".join(f'"{v}"' for v in prop["enum"])
    if "$ref" in prop:
        return "table"
    kind = prop.get("type")
    bounds = []
    for key, sign in (("exclusiveMinimum", ">"), ("minimum", "≥"), ("exclusiveMaximum", "<"),
                      ("maximum", "≤")):
        if key in prop:
            bounds.append(f"{sign} {prop[key]:g}")
    if kind == "array":
        return f"list of {_type(prop.get('items') or {})}"
    name = {"number": "number", "integer": "integer", "string": "string", "boolean": "bool",
            "object": "table"}.get(kind or "", "any")
    return f"{name} {', '.join(bounds)}" if bounds else name


def _default(model: type[BaseModel], key: str) -> str:
    info = model.model_fields[key]
    if info.is_required():
        return "**required**"
    if info.default_factory is not None:
        value = info.default_factory()
        if isinstance(value, list):
            return ", ".join(f"`{item}`" for item in value) or "empty"
        return "empty" if value == {} else "its table's defaults"
    if info.default is None or info.default is PydanticUndefined:
        return "not set"
    value = info.default
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f'`"{value}"`'
    return f"`{value:,}`".replace(",", "_") if isinstance(value, int) else f"`{value:g}`"


def _keys(model: type[BaseModel], skip: tuple[str, ...] = ()) -> list[str]:
    schema = model.model_json_schema()
    props = schema.get("properties") or {}
    rows = ["| key | type | default | what it is |", "|---|---|---|---|"]
    for key in model.model_fields:
        if key in skip:
            continue
        prop = props.get(key, {})
        about = (prop.get("description") or "").replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `{key}` | {_type(prop)} | {_default(model, key)} | {about} |")
    return rows


def _doc(model: type[BaseModel]) -> str:
    doc = model.__dict__.get("__doc__") or ""
    return " ".join(doc.split())


def _first_line(fn: Any) -> str:
    doc = (getattr(fn, "__doc__", None) or "").strip()
    return " ".join(doc.split("\n\n")[0].split()) if doc else ""


def render() -> str:
    from ..checks import REGISTRY

    model = spec_format.file_model()
    out = [BEGIN, "", "### The file's top level", ""]
    out += _keys(model, skip=("execution", "data", "training", "environment",
                              "reference_variants", "objects", "checks"))
    tables = [("execution", spec_format.ExecutionTable), ("data", model.model_fields["data"]),
              ("training", spec_format.TrainingTable),
              ("environment", spec_format.EnvironmentTable)]
    for name, table in tables:
        if not isinstance(table, type):  # [data]: narrowed to this grader's datasets
            table = next(a for a in table.annotation.__args__ if isinstance(a, type)
                         and issubclass(a, BaseModel))
        required = "optional" if name in ("data", "training") else "optional, defaults below"
        out += ["", f"### `[{name}]` ({required})", ""]
        if _doc(table):
            out += [_doc(table), ""]
        out += _keys(table)
    out += ["", "### `[[reference_variants]]` (optional, repeatable): other accepted solutions",
            "", "Their architectures are accepted too (a student may build either), and they are "
            "correct runs for the models they train.", ""]
    out += _keys(spec_format.VariantTable)
    out += ["", "### `[[objects]]`: the variables the grader harvests, by `kind`", ""]
    common = tuple(spec_format.ObjectTable.model_fields)
    out += ["Every object:", ""] + _keys(spec_format.ObjectTable)
    for kind in spec_format.object_kinds():
        kind_model = spec_format.kind_model("objects", kind)
        own = [k for k in kind_model.model_fields if k not in common]
        out += ["", f"#### `kind = \"{kind}\"`", ""]
        out += (_keys(kind_model, skip=common) if own else ["No keys of its own."])
    common = tuple(spec_format.CheckTable.model_fields)
    out += ["", "### `[[checks]]`: what earns points, by `kind`", "",
            "Every check:", ""] + _keys(spec_format.CheckTable)
    for kind in spec_format.check_kinds():
        kind_model = spec_format.kind_model("checks", kind)
        out += ["", f"#### `kind = \"{kind}\"`", ""]
        about = WHAT.get(kind, _first_line(REGISTRY[kind]))
        facts = []
        grades = kind_model.object_kind
        facts.append("grades no object" if grades == "none" else
                     f"grades a `{grades}` object (`object = \"NAME\"`)" if grades else
                     "its object is not checked")
        if kind_model.needs:
            facts.append("needs " + " and ".join(f"`[{t}]`" for t in kind_model.needs))
        for key, value in kind_model.object_needs.items():
            facts.append(f"its object must set `{key} = {str(value).lower()}`")
        if kind in COMPARES_WITH:
            facts.append(f"compares with {COMPARES_WITH[kind]}")
        out += [(about + " " if about else "") + "; ".join(facts)[:1].upper()
                + "; ".join(facts)[1:] + ".", ""]
        own = [k for k in kind_model.model_fields if k not in common]
        out += (_keys(kind_model, skip=common) if own else ["No keys of its own."])
    out += ["", END]
    return "\n".join(out) + "\n"


def replaced(text: str, section: str) -> str:
    """`text` with its generated section replaced by `section` (markers included)."""
    if BEGIN not in text or END not in text:
        raise ValueError(f"{DOC} has no generated section (its markers: {BEGIN} … {END})")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return head + section.rstrip("\n") + tail


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m grader.instructor.authoring_doc",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 when docs/authoring.md is not current")
    args = parser.parse_args(argv)
    text = DOC.read_text(encoding="utf-8")
    new = replaced(text, render())
    if args.check:
        if new != text:
            print(f"{DOC} is not current: run python3 -m grader.instructor.authoring_doc",
                  file=sys.stderr)
            return 1
        return 0
    if new != text:
        DOC.write_text(new, encoding="utf-8")
        print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
