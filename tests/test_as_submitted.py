"""Notebooks as students submit them (issue 10, items 5 and 6), graded end to end.

A submitted notebook carries more than the homework: Colab's leftovers (`!pip install`, its own
magics and modules), an `input()`, plots, pandas tables, seaborn heatmaps, Windows line endings,
and the metadata of whatever saved it. Seed 004 is a real student's Homework 4, rebuilt in
tests/student_notebooks/ as one notebook per assignment part, imports, plots and mistakes as
written. What is right earns full points; a cell that fails only because of where the grader runs
costs nothing by itself, and the report names it and says so.

Three real gradings, each once per module: fashion-mlp twice (the Colab notebook and the seed's
Parts 2–3) and lenet5 once (the seed's Part 4). Part 1 runs in the numpy clean room in seconds.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
import socket
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import nbformat
import pytest
from rich.console import Console

import notebook_factory as nf
from grader.submission import notebook
from grader import pipeline, assignment as spec
from grader.execution import runner, sandbox
from grader.execution.scratch import Scratch
from grader.reports import terminal
from grader.scoring import CELL_ERROR_NOTE

STUDENT_NOTEBOOKS = Path(__file__).parent / "student_notebooks"
# Small enough that a `!pip install` waiting on a network (pip's own default: 15 s a try, 6 tries
# a URL) would end as CellTimeoutError; large enough for the 20-epoch fit on a busy machine.
COLAB_CELL_TIMEOUT = 150.0


# ---- the notebook a Colab user downloads and finishes in VS Code on Windows ---------------------

def _lines(source: str, newline: str) -> list[str]:
    """A cell's source as nbformat stores it: a list of lines, each with its own line ending."""
    lines = source.split("\n")
    return [line + newline for line in lines[:-1]] + [lines[-1]]


def _colab_cell(kind: str, source: str, newline: str, count: int | None = None,
                outputs: list | None = None) -> dict:
    """A cell as Colab saves it: its id and Colab's own keys in the cell's metadata."""
    cell = {"cell_type": kind, "source": _lines(source, newline),
            "metadata": {"id": uuid.uuid4().hex[:12]}}
    if kind == "code":
        cell["metadata"].update(colab={"base_uri": "https://localhost:8080/"},
                                outputId=str(uuid.uuid4()))
        cell.update(execution_count=count, outputs=outputs or [])
    return cell


def _stream(text: str) -> dict:
    return {"output_type": "stream", "name": "stdout", "text": [text]}


def _reference_sources() -> dict[str, str]:
    cells = nf.reference_notebook("fashion-mlp").cells
    return {(c.metadata.get("tags") or ["shapes"])[0]: c.source for c in cells
            if c.cell_type == "code"}


def colab_notebook(newline: str = "\n") -> dict:
    """The fashion-mlp reference as a Colab user has it: Colab's set-up cells first (an old
    `%tensorflow_version`, pip installs, Google Drive, nvidia-smi), an `input()` for their UNI,
    `%matplotlib inline`, a pandas table of the history and a seaborn confusion matrix; outputs
    of the Colab run left in. Saved by Colab: nbformat 4.0, ids in the cells' metadata."""
    ref = _reference_sources()
    code = [
        ("%tensorflow_version 2.x", None),
        ("!pip install -q seaborn scikit-learn\n!pip install -q tensorflow-addons\n"
         "%pip install -q keras-tuner", None),
        ("!nvidia-smi", None),
        ("from google.colab import drive\ndrive.mount('/content/drive')",
         [_stream("Mounted at /content/drive\n")]),
        ("uni = input('Your UNI: ')", None),
        ("%matplotlib inline\n" + ref["load"], None),
        (ref["plot"], None), (ref["shapes"], None), (ref["prep"], None), (ref["encode"], None),
        (ref["split"], None), (ref["model"], None), (ref["output"], None),
        (ref["train"], [_stream("Epoch 1/20\n375/375 - 3s - loss: 0.5312 - accuracy: 0.8139\n")]),
        ("import pandas as pd\n\npd.DataFrame(history.history)", None),
        (ref["curves"], None), (ref["evaluate"], None),
        ("from sklearn.metrics import confusion_matrix\nimport seaborn as sns\n\n"
         "predicted = np.argmax(model.predict(X_test), axis=1)\n"
         "plt.figure(figsize=(10, 8))\n"
         "sns.heatmap(confusion_matrix(ytest, predicted), annot=True, fmt='d')\n"
         "plt.xlabel('Predicted')\nplt.ylabel('True')\nplt.show()", None),
    ]
    cells = [_colab_cell("markdown", "# Homework 4, Parts 2–3\n\nFashion-MNIST, 128-64-10",
                         newline)]
    cells += [_colab_cell("code", source, newline, count, outputs)
              for count, (source, outputs) in enumerate(code, start=1)]
    return {"nbformat": 4, "nbformat_minor": 0, "cells": cells, "metadata": {
        "colab": {"provenance": [], "name": "HW4_Parts2-3.ipynb", "gpuType": "T4"},
        "accelerator": "GPU", "gpuClass": "standard",
        "kernelspec": {"name": "python3", "display_name": "Python 3"},
        "language_info": {"name": "python"}}}


def saved_by_vscode(nb: dict, minor: int | None = None) -> dict:
    """What VS Code writes over a notebook: its interpreter block and kernelspec, its fuller
    language_info (and nbformat 4.2 for a notebook it created)."""
    nb = json.loads(json.dumps(nb))
    nb["metadata"].update(
        kernelspec={"display_name": "Python 3.11.7 ('.venv': venv)", "language": "python",
                    "name": "python3"},
        language_info={"codemirror_mode": {"name": "ipython", "version": 3},
                       "file_extension": ".py", "mimetype": "text/x-python", "name": "python",
                       "nbconvert_exporter": "python", "pygments_lexer": "ipython3",
                       "version": "3.11.7"},
        vscode={"interpreter": {"hash": "5c7b7d0d7bfb3a4e1f2d6b8a0c3e9f1a2b4c6d8e0f1a3b5c7d9e"
                                        "0f2a4b6c8d0e"}})
    if minor is not None:
        nb["nbformat_minor"] = minor
    return nb


def write_file(nb: dict, path: Path, newline: str = "\n") -> Path:
    """The file as the editor wrote it, with its line endings (Windows: CRLF)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(json.dumps(nb, indent=1, ensure_ascii=False).replace("\n", newline)
                     .encode())
    return path


def colab_then_vscode_on_windows(folder: Path) -> Path:
    """Started in Colab, downloaded, finished in VS Code on Windows: both editors' metadata,
    CRLF in every cell's source and in the file."""
    nb = saved_by_vscode(colab_notebook(newline="\r\n"))
    return write_file(nb, folder / "HW4_Parts2-3.ipynb", newline="\r\n")


def _with_crlf(source: Path, dest: Path) -> Path:
    nb = nbformat.read(source, as_version=4)
    for cell in nb.cells:
        cell.source = cell.source.replace("\n", "\r\n")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(nbformat.writes(nb).replace("\n", "\r\n").encode())
    return dest


# ---- one grading per notebook, shared by the module ---------------------------------------------

def _grade_colab(folder: Path, data_dir: Path):
    if sandbox.resolve("auto") != "bwrap":
        # The notebook runs `pip install`: only inside bubblewrap can a regression of the
        # kernel's pip settings never install into the environment these tests run in.
        pytest.skip("bubblewrap is not available here")
    assignment = spec.load("fashion-mlp")
    limits = assignment.limits.model_copy(update={"cell_timeout": COLAB_CELL_TIMEOUT})
    return pipeline.grade(colab_then_vscode_on_windows(folder),
                          dataclasses.replace(assignment, limits=limits),
                          pipeline.Options(data_dir=data_dir))


def _grade_seed(name: str, assignment_id: str):
    def grade(folder: Path, data_dir: Path):
        return pipeline.grade(STUDENT_NOTEBOOKS / name, spec.load(assignment_id),
                              pipeline.Options(data_dir=data_dir))
    return grade


GRADINGS = {
    "colab": _grade_colab,
    "seed-part2-3": _grade_seed("seed004_part2_3.ipynb", "fashion-mlp"),
    "seed-part4": _grade_seed("seed004_part4.ipynb", "lenet5"),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory, data_dir):
    cache = {}

    def run(name: str):
        if name not in cache:
            cache[name] = GRADINGS[name](tmp_path_factory.mktemp(name), data_dir)
        return cache[name]
    return run


def checks_by_id(result):
    return {c.id: c for c in result.checks}


def not_passed(result):
    return [(c.id, c.points, c.message) for c in result.checks if c.status != "passed"]


# ---- the kernel's pip --------------------------------------------------------------------------

def _wheel(folder: Path, name: str) -> Path:
    """A minimal valid wheel, for a wheel folder a machine's pip.conf points at."""
    folder.mkdir(parents=True)
    path = folder / f"{name}-1.0-py3-none-any.whl"
    info = f"{name}-1.0.dist-info"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr(f"{name}/__init__.py", "")
        wheel.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        wheel.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\n"
                                        "Root-Is-Purelib: true\nTag: py3-none-any\n")
        wheel.writestr(f"{info}/RECORD", "")
    return path


def test_pip_in_the_kernel_neither_waits_on_a_network_nor_finds_a_package(tmp_path):
    """`pip` with the kernel's environment, given an index that accepts connections and never
    answers (a network dropping packets) and a machine-wide pip.conf naming a wheel folder: it
    fails at once, connects to nothing and fetches nothing. `pip download` into a scratch folder
    rather than `pip install`, so that a regression cannot install into this environment."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # the kernel completes the handshake; nobody ever reads or answers
    port = silent.getsockname()[1]
    wheels = tmp_path / "wheels"
    _wheel(wheels, "grader_probe_pkg")
    site_config = tmp_path / "xdg" / "pip" / "pip.conf"
    site_config.parent.mkdir(parents=True)
    site_config.write_text(f"[global]\nfind-links = {wheels}\n")
    scratch = Scratch(tmp_path, tmp_path / "work", tmp_path / "home", tmp_path / "private",
                      tmp_path / "submission", tmp_path / "tmp")
    env = {**runner.kernel_env(scratch), "XDG_CONFIG_DIRS": str(tmp_path / "xdg")}
    fetched = tmp_path / "fetched"
    try:
        # Without the kernel's settings this waits 15 s × 6 tries on the silent index (≈ 110 s
        # measured here), then takes the wheel from the folder.
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(fetched),
             "--index-url", f"http://127.0.0.1:{port}/simple", "--trusted-host", "127.0.0.1",
             "grader-probe-pkg"], env=env, capture_output=True, text=True, timeout=60)
        silent.setblocking(False)
        with pytest.raises(BlockingIOError):
            silent.accept()  # no connection is waiting: pip never tried the index
    finally:
        silent.close()
    assert proc.returncode != 0
    assert "No matching distribution found for grader-probe-pkg" in proc.stderr
    assert not fetched.exists() or list(fetched.iterdir()) == []


# ---- what Colab and VS Code save ----------------------------------------------------------------

@pytest.mark.parametrize("form", ["colab", "vscode-new-on-windows", "colab-then-vscode"])
def test_notebooks_saved_by_colab_or_vscode_are_valid(tmp_path, form):
    """Their metadata, Colab's nbformat 4.0 with ids in cell metadata, VS Code's 4.2, and CRLF
    in the file and the cells: the grader reads each as a notebook (a file it refused would
    score nothing) and keeps the student's line endings for the kernel."""
    if form == "colab":
        path = write_file(colab_notebook(), tmp_path / "a.ipynb")
    elif form == "vscode-new-on-windows":
        nb = saved_by_vscode(colab_notebook(newline="\r\n"), minor=2)
        del nb["metadata"]["colab"], nb["metadata"]["accelerator"], nb["metadata"]["gpuClass"]
        for cell in nb["cells"]:
            cell["metadata"] = {}
        path = write_file(nb, tmp_path / "a.ipynb", newline="\r\n")
    else:
        path = colab_then_vscode_on_windows(tmp_path)
    loaded = notebook.load(path)
    assert loaded.error is None
    code = [c for c in loaded.node.cells if c.cell_type == "code"]
    assert len(code) == 18
    pip_cell = code[1].source
    assert pip_cell.startswith("!pip install") and pip_cell.count("\n") == 2
    assert ("\r\n" in pip_cell) == (form != "colab")


@pytest.mark.parametrize("name, assignment_id", [
    ("seed004_part1.ipynb", "numpy-backprop"), ("seed004_part2_3.ipynb", "fashion-mlp"),
    ("seed004_part4.ipynb", "lenet5")])
def test_each_seed_notebook_names_its_assignment(name, assignment_id):
    """As if started from the assignment's starter: `grader check` needs no `-a`."""
    loaded = notebook.load(STUDENT_NOTEBOOKS / name)
    assert loaded.error is None and loaded.assignment_hint == assignment_id


# ---- graded end to end --------------------------------------------------------------------------

@pytest.mark.slow
def test_colab_leftovers_cost_nothing_and_are_named(graded):
    result = graded("colab")
    assert not_passed(result) == []
    assert result.score == result.max_score == 16
    assert result.execution.status == "completed"
    assert result.sandbox == "bwrap"
    errors = {e.cell: e for e in result.cell_errors}
    # cells count from the markdown title (0): 1 %tensorflow_version, 4 google.colab, 5 input()
    assert {i: e.ename for i, e in errors.items()} == {
        1: "UsageError", 4: "ModuleNotFoundError", 5: "StdinNotImplementedError"}
    assert "tensorflow_version" in errors[1].evalue
    assert "google.colab" in errors[4].evalue
    # The pip cell failed to install what is missing, quickly, without raising; nothing timed out.
    assert all(e.ename != "CellTimeoutError" for e in result.cell_errors)
    assert all(e.note == CELL_ERROR_NOTE for e in result.cell_errors)
    assert "costs no points by itself" in CELL_ERROR_NOTE


@pytest.mark.slow
def test_reports_name_the_failed_cells_and_say_they_cost_nothing(graded, tmp_path):
    result = graded("colab")
    saved = json.loads(result.to_json())
    assert [e["note"] for e in saved["cell_errors"]] == [CELL_ERROR_NOTE] * 3
    out = io.StringIO()
    terminal.render(result, Console(file=out, width=400, color_system=None))
    text = out.getvalue()
    # Each error where Jupyter shows it (In [k], as executed here) and where it sits (cell k).
    assert re.search(r"In \[\d+\] \(cell 5\), line 1: ModuleNotFoundError: "
                     r"No module named 'google.colab'", text), text
    assert re.search(r"\(cell 6\).*StdinNotImplementedError", text), text
    assert re.search(r"\(cell 2\).*: UsageError: Line magic function "
                     r"`%tensorflow_version` not found\.", text), text
    assert text.count(CELL_ERROR_NOTE) == 1


@pytest.mark.slow
def test_seed_student_parts_2_3_as_submitted_earn_full_marks(graded):
    """Seed 004's Parts 2–3 as written: sklearn's train_test_split, to_categorical, the
    128-64-10 model with Activation layers, seaborn, a pandas table of the history, sklearn's
    confusion matrix drawn by seaborn, 20 epochs of batch 128. Everything runs and is right."""
    result = graded("seed-part2-3")
    assert not_passed(result) == []
    assert result.score == result.max_score == 16
    assert result.execution.status == "completed" and result.cell_errors == []
    model = result.models["model"]
    assert model.total_params == 109_386  # the seed's own summary, 3.2.2
    assert [l["class"] for l in model.layers].count("Activation") == 3


@pytest.mark.slow
def test_seed_student_part4_earns_full_marks_though_it_evaluates_the_wrong_model(graded):
    """Seed 004's Part 4 as written: LeNet-5 without a Flatten and fed images without a channel
    axis, then the dropout and batch-norm variants, 10 + 15 + 15 epochs. Its In [45] evaluates
    `cnn_dropout` under the batch-norm heading; the grader measures each model itself, so that
    costs nothing, and the batch-norm model gets its own accuracy."""
    code = [c.source for c in nbformat.read(STUDENT_NOTEBOOKS / "seed004_part4.ipynb",
                                            as_version=4).cells if c.cell_type == "code"]
    assert "cnn_batch_norm.fit(" in code[-3] and "cnn_dropout.evaluate(" in code[-1]
    result = graded("seed-part4")
    assert not_passed(result) == []
    assert result.score == result.max_score == 39
    assert result.execution.status == "completed" and result.cell_errors == []
    checks = checks_by_id(result)
    assert checks["batch-norm-accuracy"].details["accuracy"] != \
        checks["dropout-accuracy"].details["accuracy"]
    for name, params in (("cnn", 61_706), ("cnn_dropout", 61_706), ("cnn_batch_norm", 62_610)):
        assert result.models[name].total_params == params
        assert result.models[name].timed_training.status == "trained"


@pytest.mark.slow
def test_seed_student_part1_with_windows_line_endings_loses_only_the_bias_point(tmp_path):
    """Part 1 as submitted, saved on Windows (CRLF in the file and in every cell): the clean room
    reads the functions from that source and the grade is the same as with Unix line endings
    (tests/test_numpy_backprop.py): 9/10, the bias added inside the dot product named."""
    path = _with_crlf(STUDENT_NOTEBOOKS / "seed004_part1.ipynb", tmp_path / "part1.ipynb")
    assert b"\r\n" in path.read_bytes()
    assignment = spec.load("numpy-backprop")
    assert notebook.load(path).assignment_hint == assignment.id
    result = pipeline.grade(path, assignment, pipeline.Options())
    checks = checks_by_id(result)
    assert {k: c.points for k, c in checks.items()} == \
        {"forward": 1, "backward": 5, "gradient-check": 2, "numpy-only": 1}
    assert "b2 is added inside the dot product, Z2 = H·(W2 + b2)" in checks["forward"].message
