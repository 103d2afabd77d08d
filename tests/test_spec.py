"""assignment.toml: typed specs that reject typos with file, line and field; [environment];
the JSON Schemas of schemas/ and the files they describe. Fast: no notebook is executed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import pytest
from pydantic import ValidationError

from grader import batch, pipeline, assignment as spec
from grader.submission import notebook
from grader.assignment import tables as spec_format
from grader.checks import REGISTRY
from grader.scoring import DataMode

REPO = Path(__file__).resolve().parents[1]
SCHEMAS = REPO / "schemas"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
BASE = "fashion-mlp"


# --- the committed specs ---------------------------------------------------------------------------

@pytest.mark.parametrize("aid", spec.available())
def test_every_committed_spec_is_valid(aid):
    a = spec.load(aid)
    assert a.id == aid and a.checks and a.max_score > 0
    assert "numpy" in a.packages


def test_packages_follow_the_homework():
    """Homework 4 tells students to use scikit-learn, pandas and seaborn; Part 1 numpy only."""
    for aid in ("fashion-mlp", "lenet5", "autoassociator"):
        assert {"tensorflow", "keras", "numpy", "matplotlib", "sklearn", "pandas",
                "seaborn"} <= set(spec.load(aid).packages)
    for aid in ("autoassociator", "mnist-cnn"):
        assert {"tensorflow", "keras", "numpy", "matplotlib"} <= set(spec.load(aid).packages)
    assert "tensorflow" not in spec.load("numpy-backprop").packages


def test_no_starter_forbids_the_homeworks_own_tools():
    """The grader serves the homework: a starter must not tell students to avoid a package the
    assignment declares (Homework 4's scikit-learn, pandas, seaborn)."""
    import re

    import nbformat

    tools = r"(scikit|sklearn|pandas|seaborn)"
    forbidding = re.compile(r"(not installed|\bno |don't use|do not use|without)[^.\n]{0,40}"
                            + tools + "|" + tools + r"[^.\n]{0,40}(not installed|not available|"
                            r"not allowed|forbidden)", re.I)
    for aid in spec.available():
        assignment = spec.load(aid)
        text = "\n".join(c.source for c in nbformat.read(assignment.starter, as_version=4).cells)
        assert not forbidding.search(text), (aid, forbidding.search(text).group(0))


def test_check_options_are_typed_as_written_with_their_kinds_defaults():
    checks = {c.id: c for c in spec.load("mnist-cnn").checks}
    layers = checks["fully-connected"].options
    assert (layers.only, layers.ignore) == ([4, 5], ["Dropout"])
    assert layers.model_fields_set == {"only", "ignore"}
    assert checks["q2-1"].options.question == "2.1" and checks["q2-1"].object is None
    assert checks["q2-1"].options.model_dump() == {"question": "2.1"}  # a manual check's only key
    backward = {c.id: c for c in spec.load("numpy-backprop").checks}["backward"]
    assert (backward.options.rtol, backward.options.atol) == (1e-5, 1e-8)
    assert backward.options.accept_transposed_w1 is True
    # Unset keys read their kind's one default; the same key may default differently by kind.
    assert spec_format.options_model("layers")().only == []
    assert spec_format.options_model("gradient_check")().rtol == 1e-3
    assert spec_format.options_model("forward_pass")().rtol == 1e-5
    assert "grader" in spec_format.options_model("numpy_only")().forbidden
    with pytest.raises(ValidationError):  # frozen, like the spec it comes from
        layers.only = [1]
    obj = spec.load("numpy-backprop").objects[0]
    assert (obj.options.forward, obj.options.call_timeout) == ("forward_propagation", 10)
    coded = {o.name: o.options for o in spec.load("autoassociator").objects}
    assert (coded["classifier"].encoder, coded["aanetwork"].encoder) == ("aanetwork", None)
    probed = spec.load("mnist-cnn").objects[0].options
    assert probed.probe_dropout and not coded["classifier"].probe_dropout
    assert probed.model_dump(exclude_unset=True) == {"probe_dropout": True}  # as written


def test_every_registered_check_kind_has_typed_options():
    assert set(spec_format.CHECK_KIND_MODELS) == set(REGISTRY)
    assert spec_format.check_kinds() == tuple(REGISTRY)
    assert set(spec_format.object_kinds()) == {"keras", "numpy_functions"}


def test_validating_specs_imports_no_tensorflow():
    code = ("import sys; from grader import assignment as spec\n"
            "[spec.load(a) for a in spec.available()]\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr


# --- broken specs: every problem, located ----------------------------------------------------------

def nth_line(text: str, needle: str, n: int = 0) -> int:
    """1-based line of the n-th line that starts with `needle`."""
    hits = [i for i, line in enumerate(text.splitlines(), 1) if line.startswith(needle)]
    return hits[n]


@pytest.fixture
def home(tmp_path):
    """A copy of assignments/fashion-mlp under tmp_path/assignments/, to break."""
    shutil.copytree(REPO / "assignments" / BASE, tmp_path / "assignments" / BASE)
    return tmp_path / "assignments"


def broken(home: Path, edit) -> tuple[str, spec.SpecError]:
    path = home / BASE / "assignment.toml"
    text = edit(path.read_text())
    path.write_text(text)
    with pytest.raises(spec.SpecError) as info:
        spec.load(BASE, home)
    return text, info.value


def check_block(text: str, check_id: str) -> str:
    start = text.index(f'id = "{check_id}"')
    return text[start:text.index("[[checks]]", start) if "[[checks]]" in text[start:] else None]


def test_missing_points_names_file_line_and_field(home):
    text, err = broken(home, lambda t: t.replace(check_block(t, "model-params"),
                                                 check_block(t, "model-params")
                                                 .replace("points = 1\n", "")))
    line = nth_line(text, "[[checks]]", 3)  # the 4th check's header: the key is missing
    assert str(err) == f"{home / BASE / 'assignment.toml'}, line {line}, checks[3].points: " \
                       "field required"
    assert err.problems == [str(err)]


@pytest.mark.parametrize("edit, where, words", [
    (lambda t: t.replace('kind = "optimizer"', 'kind = "optimiser"'),
     ('kind = "optimiser"', 0), ["checks[5].kind: unknown check kind 'optimiser'",
                                 "did you mean 'optimizer'?"]),
    (lambda t: t.replace('name = "model"\nkind = "keras"', 'name = "model"\nkind = "kears"'),
     ('kind = "kears"', 0), ["objects[0].kind: unknown object kind 'kears' (known: keras, "
                             "numpy_functions)"]),
    (lambda t: t.replace("cell_timeout = 300", "cell_timout = 300"),
     ("cell_timout", 0), ["execution.cell_timout: unknown key; did you mean 'cell_timeout'?"]),
    (lambda t: t.replace("[training]", "[trainig]"),
     ("[trainig]", 0), ["trainig: unknown key; did you mean 'training'?"]),
    (lambda t: t.replace('points = 5', 'points = "5"'),
     ('points = "5"', 0), ["checks[6].points: should be a valid number"]),
    (lambda t: t.replace("memory_mb = 6144", "memory_mb = -1"),
     ("memory_mb", 0), ["execution.memory_mb: should be greater than 0"]),
    (lambda t: t.replace('dataset = "fashion-mnist"', 'dataset = "fashion_mnist"'),
     ("dataset", 0), ["data.dataset: unknown dataset 'fashion_mnist' (known: fashion-mnist, "
                      "mnist)"]),
    (lambda t: t.replace('"sklearn"', '"scikit-learn"'),
     ("packages", 0), ["environment.packages[4]: 'scikit-learn' is not an import name"]),
    (lambda t: t.replace('kind = "layers"\nobject = "model"',
                         'kind = "layers"\nobject = "model"\nonyl = [1]'),
     ("onyl", 0), ["checks[0].onyl: unknown key; did you mean 'only'?"]),
    (lambda t: t.replace('id = "model-loss"', 'id = "model-layers"'),
     ('id = "model-layers"', 1), ["checks[4].id: 'model-layers' is used by another check"]),
    (lambda t: t.replace('kind = "timed_training"\nobject = "model"',
                         'kind = "timed_training"\nobject = "modle"'),
     ('object = "modle"', 0), ["checks[7].object: 'modle' is not declared in [[objects]] "
                               "(declared: model); did you mean 'model'?"]),
    (lambda t: t.replace('kind = "param_count"', 'kind = "forward_pass"'),
     ('object = "model"', 3), ["checks[3].object: 'model' is a keras object; a 'forward_pass' check needs "
                                    "a numpy_functions one"]),
    (lambda t: t.replace('id = "fashion-mlp"', 'id = "fashion-mpl"'),
     ('id = "fashion-mpl"', 0), ["id: 'fashion-mpl' differs from the folder's name "
                                 "'fashion-mlp'"]),
    (lambda t: t.replace('starter = "fashion-mlp.ipynb"', 'starter = "fashion.ipynb"'),
     ("starter = ", 0), ["starter: no such file in fashion-mlp/: fashion.ipynb"]),
    (lambda t: t.replace("title = \"Fashion-MNIST: a 128-64-10 feed-forward network\"\n", ""),
     None, ["title: field required"]),
    (lambda t: t.replace("version = \"1\"", "version = \"1\"\nversion = \"2\""),
     ('version = "2"', 0), ["not valid TOML"]),
])
def test_a_typo_is_located(home, edit, where, words):
    text, err = broken(home, edit)
    message = str(err)
    assert message.startswith(str(home / BASE / "assignment.toml"))
    for w in words:
        assert w in message, message
    if where:
        assert f"line {nth_line_containing(text, *where)}," in message or \
            f"line {nth_line_containing(text, *where)}:" in message, message
    else:
        assert ", line " not in message, message


def nth_line_containing(text: str, needle: str, n: int) -> int:
    return [i for i, line in enumerate(text.splitlines(), 1) if needle in line][n]


def test_timed_training_without_a_training_table(home):
    start = "[training]"
    _, err = broken(home, lambda t: t[:t.index(start)] + t[t.index("# The objects"):])
    assert "checks[7].kind: a 'timed_training' check needs a [training] table" in str(err)


def test_a_dropout_check_needs_the_dropout_probe(home):
    """Without probe_dropout the grader never measures the behaviour a dropout_behaviour check
    grades: a correct notebook lost its points ("could not probe"). Now the spec says so."""
    dropout = ('[[checks]]\nid = "model-dropout"\ntitle = "Dropout"\nkind = '
               '"dropout_behaviour"\nobject = "model"\npoints = 1\n')
    text, err = broken(home, lambda t: t + "\n" + dropout)
    line = nth_line_containing(text, 'kind = "dropout_behaviour"', 0) + 1
    assert (f"line {line}, checks[8].object: a 'dropout_behaviour' check needs "
            "probe_dropout = true on the [[objects]] entry 'model'") in str(err)
    path = home / BASE / "assignment.toml"
    path.write_text(text.replace('name = "model"\nkind = "keras"\n',
                                 'name = "model"\nkind = "keras"\nprobe_dropout = true\n'))
    assert spec.load(BASE, home).checks[-1].kind == "dropout_behaviour"


def test_every_problem_is_listed_in_file_order(home):
    def edit(t):
        return (t.replace("cell_timeout = 300", "cell_timout = 300")
                .replace('kind = "optimizer"', 'kind = "optimiser"'))
    text, err = broken(home, edit)
    assert len(err.problems) == 2
    assert "cell_timout" in err.problems[0] and "optimiser" in err.problems[1]
    assert str(err) == "\n".join(err.problems)


def test_lines_after_a_multiline_array_are_right(tmp_path):
    """autoassociator's `required = [..., [...]]` spans brackets; the next check's line holds."""
    shutil.copytree(REPO / "assignments" / "autoassociator", tmp_path / "autoassociator")
    path = tmp_path / "autoassociator" / "assignment.toml"
    text = path.read_text().replace('id = "q2-loss"\ntitle', 'id = "q2-loss"\ntitel')
    path.write_text(text)
    with pytest.raises(spec.SpecError) as info:
        spec.load("autoassociator", tmp_path)
    line = nth_line_containing(text, "titel", 0)
    assert f"line {line}, checks[3].titel: unknown key; did you mean 'title'?" in str(info.value)


def test_unknown_assignment_lists_the_known_ones():
    with pytest.raises(spec.SpecError, match="unknown assignment 'nope': .* known there: autoassociator"):
        spec.load("nope")
    with pytest.raises(spec.SpecError, match="unknown assignment"):
        spec.load("../assignments/fashion-mlp")


def test_one_broken_spec_does_not_hide_the_others(tmp_path):
    for aid in ("fashion-mlp", "numpy-backprop"):
        shutil.copytree(REPO / "assignments" / aid, tmp_path / aid)
    path = tmp_path / "numpy-backprop" / "assignment.toml"
    path.write_text(path.read_text().replace("points = 2\nrtol", "pints = 2\nrtol", 1))
    good, bad = spec.load_all(tmp_path)
    assert [a.id for a in good] == ["fashion-mlp"]
    assert len(bad) == 1 and "checks[0].points: field required" in str(bad[0])


# --- JSON Schemas -------------------------------------------------------------------------------------

def validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / name).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_committed_schemas_are_generated_from_the_models():
    proc = subprocess.run([sys.executable, str(SCHEMAS / "generate.py"), "--check"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("aid", spec.available())
def test_every_spec_matches_the_assignment_schema(aid):
    raw = tomllib.loads((REPO / "assignments" / aid / "assignment.toml").read_text())
    errors = [e.message for e in validator("assignment.schema.json").iter_errors(raw)]
    assert errors == []


def test_the_assignment_schema_rejects_what_the_models_reject():
    raw = tomllib.loads((REPO / "assignments" / BASE / "assignment.toml").read_text())
    v = validator("assignment.schema.json")
    assert v.is_valid(raw)
    for mutate in (lambda r: r["checks"][3].pop("points"),
                   lambda r: r["checks"][5].update(kind="optimiser"),
                   lambda r: r["objects"][0].update(kind="kears"),
                   lambda r: r["execution"].update(cell_timout=3),
                   lambda r: r.update(trainig={}),
                   lambda r: r["checks"][0].update(onyl=[1]),
                   lambda r: r["environment"]["packages"].append("scikit-learn"),
                   lambda r: r.update(starter="../fashion-mlp.ipynb"),
                   lambda r: r["objects"][0].update(name="my model")):
        copy = json.loads(json.dumps(raw))
        mutate(copy)
        assert not v.is_valid(copy)


def test_a_real_result_matches_the_result_schema():
    """Written by `grader check reference/fashion-mlp/fashion-mlp-solution.ipynb` (16/16)."""
    result = json.loads((FIXTURES / "fashion-mlp-reference.result.json").read_text())
    assert result["score"] == result["max_score"] == 16
    v = validator("result.schema.json")
    assert [e.message for e in v.iter_errors(result)] == []
    for mutate in (lambda r: r["checks"][0].update(status="pass"),
                   lambda r: r["execution"].update(status="died"),
                   lambda r: r.pop("score"),
                   lambda r: r.update(schema_version=2)):
        copy = json.loads(json.dumps(result))
        mutate(copy)
        assert not v.is_valid(copy)


def test_error_results_match_the_result_schema(tmp_path):
    """An unreadable notebook (graded, never executed) and a batch's student without one."""
    assignment = spec.load(BASE)
    path = tmp_path / "broken.ipynb"
    path.write_text("<<<<<<< HEAD\n{}\n=======\n{}\n>>>>>>> theirs\n")
    invalid = json.loads(pipeline.grade(path, assignment).to_json())
    missing = batch.error_result(assignment, "no_notebook", "no notebook found").as_dict()
    grader_error = {**missing, "execution": {**missing["execution"], "status": "grader_error"}}
    v = validator("result.schema.json")
    for result in (invalid, missing, grader_error):
        assert [e.message for e in v.iter_errors(result)] == []
    assert "merge-conflict markers" in invalid["execution"]["message"]
    assert notebook.load(path).error == invalid["execution"]["message"]


@pytest.mark.parametrize("aid", ["mnist-cnn", "fashion-mlp"])
def test_the_batchs_limit_for_a_student_is_beyond_the_graders_training(aid):
    # The grader's training is the subset's in both modes (grader/data/split.py): one budget.
    assignment = spec.load(aid)
    for mode in DataMode:
        timeout = batch.worker_timeout(assignment, pipeline.Options(mode=mode))
        assert timeout > assignment.training.wall_seconds_per_model + \
            assignment.limits.notebook_timeout
