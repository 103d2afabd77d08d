"""grader new ID --from reference.ipynb: an assignment folder from a reference solution."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from grader import cli, paths, assignment as spec
from grader.instructor import new

MARKDOWN = "# MNIST: an MLP with dropout\n\nFlatten → Dense 256 relu → Dropout 0.3 → Dense 10."
LOAD = ("import numpy as np\nfrom tensorflow import keras\n\n"
        "(x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()\n"
        "x_train, x_test = x_train / 255.0, x_test / 255.0")
BUILD = ("# Build the network: Flatten, Dense 256 relu, Dropout 0.3, Dense 10 softmax\n"
         "model = keras.Sequential([\n    keras.Input(shape=(28, 28)),\n"
         "    keras.layers.Flatten(),\n    keras.layers.Dense(256, activation='relu'),\n"
         "    keras.layers.Dropout(0.3),\n    keras.layers.Dense(10, activation='softmax'),\n])")
TRAIN = ("model.compile(optimizer='adam', loss='sparse_categorical_crossentropy',\n"
         "              metrics=['accuracy'])\n"
         "history = model.fit(x_train, y_train, epochs=3, batch_size=128, verbose=0)")
EVALUATE = "print(model.evaluate(x_test, y_test, verbose=0))"


def reference_notebook(path: Path, *cells: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(MARKDOWN)] + [
        nbformat.v4.new_code_cell(c) for c in (cells or (LOAD, BUILD, TRAIN, EVALUATE))]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.fixture
def course(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "course"
    root.mkdir()
    monkeypatch.delenv(paths.COURSE_VARIABLE, raising=False)
    monkeypatch.delenv(paths.LEGACY_COURSE_VARIABLE, raising=False)
    return root


def kinds(text: str) -> list[str]:
    return [line.split('"')[1] for line in text.splitlines() if line.startswith("kind = ")]


def test_the_reference_calls_for_its_checks(tmp_path):
    nb = nbformat.read(reference_notebook(tmp_path / "ref.ipynb"), as_version=4)
    reading = new.read_reference(nb)
    assert reading.dataset == "mnist"
    assert reading.packages == ["numpy", "tensorflow"]
    [model] = reading.models
    assert (model.name, model.compiled, model.trained, model.dropout) == ("model", True, True,
                                                                          True)
    assert new.checks_for(model) == ["layers", "activations", "output_shapes", "param_count",
                                     "loss", "optimizer", "dropout_behaviour", "accuracy",
                                     "timed_training"]
    assert reading.solution_cells == {2, 3}  # build and train; not loading or evaluating


def test_the_functional_api_and_a_subclass_are_models(tmp_path):
    functional = ("from tensorflow import keras\n"
                  "(x, y), _ = keras.datasets.fashion_mnist.load_data()\n"
                  "inputs = keras.Input(shape=(28, 28))\nh = keras.layers.Flatten()(inputs)\n"
                  "h = keras.layers.Dense(64, activation='relu')(h)\n"
                  "net = keras.Model(inputs, keras.layers.Dense(10, activation='softmax')(h))\n"
                  "net.compile(optimizer='sgd', loss='sparse_categorical_crossentropy')")
    reading = new.read_reference(nbformat.read(reference_notebook(tmp_path / "f.ipynb",
                                                                  functional), as_version=4))
    assert reading.dataset == "fashion-mnist"
    [model] = reading.models
    assert model.name == "net" and model.compiled and not model.trained and not model.dropout
    subclassed = ("from tensorflow import keras\n"
                  "class Net(keras.Model):\n    def __init__(self):\n        super().__init__()\n"
                  "        self.d = keras.layers.Dropout(0.5)\n"
                  "        self.out = keras.layers.Dense(10)\n"
                  "    def call(self, x, training=False):\n"
                  "        return self.out(self.d(x, training=training))\n")
    train = ("m = Net()\nm.compile(optimizer='adam', loss='sparse_categorical_crossentropy')\n"
             "m.fit(x, y, epochs=1)")
    reading = new.read_reference(nbformat.read(reference_notebook(
        tmp_path / "s.ipynb", "from keras.datasets import mnist\n(x, y), _ = mnist.load_data()",
        subclassed, train), as_version=4))
    [model] = reading.models
    assert model.subclassed and model.dropout and model.trained
    assert "activations" not in new.checks_for(model)
    assert reading.solution_cells == {2, 3}  # the class and its training (cell 0: markdown)


def test_nbgrader_markers_stub_only_the_lines_between(tmp_path):
    marked = BUILD.replace("model = keras", "### BEGIN SOLUTION\nmodel = keras") + \
        "\n### END SOLUTION\nmodel.summary()"
    nb = nbformat.read(reference_notebook(tmp_path / "m.ipynb", LOAD, marked, TRAIN),
                       as_version=4)
    reading = new.read_reference(nb)
    starter = new.starter_of(nb, reading)
    assert starter.cells[2].source.endswith(f"{new.STUB}\nmodel.summary()")
    assert "Dense(256" not in starter.cells[2].source
    assert starter.cells[3].source == TRAIN  # marked notebooks: only the marked lines go


def test_new_writes_the_folder_into_the_course(course, tmp_path, capsys):
    source = reference_notebook(tmp_path / "ref.ipynb")
    code = cli.main(["new", "mnist-mlp", "--from", str(source), "--course", str(course),
                     "--no-calibrate"])
    out = " ".join(capsys.readouterr().out.split())
    assert code == 0, out
    toml = course / "assignments" / "mnist-mlp" / "assignment.toml"
    assert f"wrote: {toml}" in out
    assert f"next: grader calibrate -a mnist-mlp --course {course}" in out
    text = toml.read_text()
    assert kinds(text) == ["keras", "layers", "activations", "output_shapes", "param_count",
                           "loss", "optimizer", "dropout_behaviour", "accuracy",
                           "timed_training"]
    assert "probe_dropout = true" in text and 'dataset = "mnist"' in text
    assignment = spec.load("mnist-mlp", course / "assignments")
    assert assignment.title == "MNIST: an MLP with dropout"
    reference = nbformat.read(course / "reference" / "mnist-mlp" / "mnist-mlp-solution.ipynb",
                              as_version=4)
    assert reference.metadata["grader"]["assignment"] == "mnist-mlp"
    starter = nbformat.read(course / "assignments" / "mnist-mlp" / "mnist-mlp.ipynb",
                            as_version=4)
    assert starter.metadata["grader"]["assignment"] == "mnist-mlp"
    assert starter.cells[1].source == LOAD
    assert starter.cells[2].source == ("# Build the network: Flatten, Dense 256 relu, "
                                       f"Dropout 0.3, Dense 10 softmax\n{new.STUB}")
    assert starter.cells[3].source == new.STUB
    # not calibrated yet: grading it is refused with the command
    code = cli.main(["check", str(course / "assignments" / "mnist-mlp" / "mnist-mlp.ipynb"),
                     "--course", str(course), "--out", str(tmp_path / "r")])
    assert code == 2 and "grader calibrate -a mnist-mlp" in capsys.readouterr().err


def test_new_refuses_a_taken_id_and_a_reference_without_a_model(course, tmp_path, capsys):
    source = reference_notebook(tmp_path / "ref.ipynb")
    assert cli.main(["new", "mnist-mlp", "--from", str(source), "--course", str(course),
                     "--no-calibrate"]) == 0
    capsys.readouterr()
    assert cli.main(["new", "mnist-mlp", "--from", str(source), "--course", str(course),
                     "--no-calibrate"]) == 2
    assert "already exists" in capsys.readouterr().err
    bare = reference_notebook(tmp_path / "bare.ipynb", LOAD)
    assert cli.main(["new", "other", "--from", str(bare), "--course", str(course),
                     "--no-calibrate"]) == 2
    assert "no Keras model" in " ".join(capsys.readouterr().err.split())
    assert not (course / "assignments" / "other").exists()


@pytest.mark.slow
def test_a_new_homework_from_grader_new_to_a_graded_class(tmp_path, mnist_dir):
    """The issue's instructor, with the installed grader: a reference solution becomes a
    homework in a course folder of its own, is calibrated, and grades a class."""
    grader = Path(sys.executable).parent / "grader"
    if not grader.exists():
        pytest.skip("no installed grader beside this interpreter")
    course = tmp_path / "course"
    course.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("GRADER_HOME", "GRADER_COURSE")}
    env.update(GRADER_COURSE=str(course), COLUMNS="200")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(grader), *args], env=env, cwd=tmp_path, capture_output=True,
                              text=True, timeout=1800)

    source = reference_notebook(tmp_path / "mlp-dropout.ipynb")
    made = run("new", "mnist-mlp", "--from", str(source), "--runs", "1",
               "--data-dir", str(mnist_dir))
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
    assert "correct runs" in made.stdout and "thresholds.json" in made.stdout
    assert ("title of model-layers: Layers in order: Flatten → Dense 256 → Dropout 0.3 → Dense 10"
            in made.stdout), made.stdout
    assert "title of model-param-count: Total parameters (203,530)" in made.stdout
    for name in ("expected.json", "thresholds.json", "designs.json", "constraints.txt"):
        assert (course / "reference" / "mnist-mlp" / name).is_file(), name
    listed = run("list")
    assert f"assignments from: {course / 'assignments'} ($GRADER_COURSE)" in listed.stdout
    subs = tmp_path / "submissions"
    subs.mkdir()
    shutil.copy(course / "reference" / "mnist-mlp" / "mnist-mlp-solution.ipynb",
                subs / "alice.ipynb")
    shutil.copy(course / "assignments" / "mnist-mlp" / "mnist-mlp.ipynb", subs / "bob.ipynb")
    graded = run("grade", str(subs), "-a", "mnist-mlp", "--out", str(tmp_path / "grades"),
                 "-j", "1", "--data-dir", str(mnist_dir))
    assert graded.returncode == 0, graded.stdout[-3000:] + graded.stderr[-3000:]
    rows = {r["student"]: r for r in csv.DictReader(
        (tmp_path / "grades" / "grades.csv").open(encoding="utf-8"))}
    result = json.loads((tmp_path / "grades" / "alice" / "result.json").read_text())
    assert result["score"] == result["max_score"] == 17, [
        (c["id"], c["status"], c["message"]) for c in result["checks"]]
    assert float(rows["bob"]["total"]) == 0

    # A wrong variant: calibrate grades it and holds it to its metadata.
    variants = course / "reference" / "mnist-mlp" / "variants"
    variants.mkdir()
    untrained = reference_notebook(variants / "untrained.ipynb", LOAD, BUILD,
                                   TRAIN.split("\nhistory")[0], EVALUATE)
    nb = nbformat.read(untrained, as_version=4)
    nb.metadata["grader"] = {"assignment": "mnist-mlp", "variant": {
        "label": "compiled, never trained", "verdict": "wrong",
        "loses": ["model-accuracy"], "keeps": ["model-layers", "model-timed-training"]}}
    nbformat.write(nb, untrained)
    again = run("calibrate", "-a", "mnist-mlp", "--runs", "1", "--data-dir", str(mnist_dir))
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "'untrained' (compiled, never trained): loses model-accuracy" in again.stdout
    nb.metadata["grader"]["variant"]["loses"] = ["model-accuracy", "model-layers"]
    nb.metadata["grader"]["variant"]["keeps"] = []
    nbformat.write(nb, untrained)
    silent = run("calibrate", "-a", "mnist-mlp", "--runs", "1", "--data-dir", str(mnist_dir))
    assert silent.returncode == 2  # refused before any run: no verdict on the timed check
    assert ("untrained.ipynb: a wrong variant must say whether it loses or keeps each check of "
            "the grader's own training (model-timed-training)") in " ".join(silent.stderr.split())
    nb.metadata["grader"]["variant"]["keeps"] = ["model-timed-training"]
    nbformat.write(nb, untrained)
    wrong = run("calibrate", "-a", "mnist-mlp", "--runs", "1", "--data-dir", str(mnist_dir))
    assert wrong.returncode == 3
    assert ("the wrong variant 'untrained' (compiled, never trained): model-layers passed, "
            "but this variant must lose it") in " ".join(wrong.stderr.split())


def test_titles_name_what_calibration_measured(course, tmp_path, capsys, monkeypatch):
    source = reference_notebook(tmp_path / "ref.ipynb")
    monkeypatch.setenv(paths.COURSE_VARIABLE, str(course))
    spec_path, _, _ = new.create("mnist-mlp", source)
    reference = course / "reference" / "mnist-mlp"
    layers = [{"class": "Flatten", "output_shape": [None, 784], "params": 0, "config": {}},
              {"class": "Dense", "output_shape": [None, 256], "params": 200960,
               "activation": "relu", "config": {"units": 256}},
              {"class": "Dropout", "output_shape": [None, 256], "params": 0,
               "config": {"rate": 0.3}},
              {"class": "Dense", "output_shape": [None, 10], "params": 2570,
               "activation": "softmax", "config": {"units": 10}}]
    (reference / "expected.json").write_text(json.dumps({"objects": {"model": {"variants": [
        {"label": "reference", "total_params": 203530, "layers": layers,
         "compile": {"loss": "sparse_categorical_crossentropy", "optimizer": "Adam"}}]}}}))
    text = spec_path.read_text().replace('title = "Total parameters"',
                                         'title = "Parameters, as the instructor put it"')
    spec_path.write_text(text)
    assignment = spec.load("mnist-mlp")
    done = new.retitle(spec_path, new.measured_titles(assignment))
    assert done == ["model-layers", "model-activations", "model-optimizer"]
    titles = {c.id: c.title for c in spec.load("mnist-mlp").checks}
    assert titles["model-layers"] == ("Layers in order: Flatten → Dense 256 → Dropout 0.3 → "
                                      "Dense 10")
    assert titles["model-activations"] == "Activations: relu, softmax"
    assert titles["model-optimizer"] == "Optimizer is Adam"
    assert titles["model-param-count"] == "Parameters, as the instructor put it"  # kept
