"""Step 1: malformed files get a graded error and a score of zero, never a traceback."""

from __future__ import annotations

import json

import nbformat
import pytest

from grader.submission import notebook
from grader import pipeline, assignment as spec


@pytest.fixture(scope="module")
def assignment():
    return spec.load("fashion-mlp")


CASES = {
    "empty": (b"", "empty"),
    "truncated": (b'{"cells": [{"cell_type": "code", "sour', "not valid notebook JSON"),
    "python": (b"import keras\nmodel = keras.Sequential()\n", "not valid notebook JSON"),
    "json-not-notebook": (b'{"hello": 1}', "not a Jupyter notebook"),
    "bad-schema": (json.dumps({"cells": [{"cell_type": "code"}], "metadata": {},
                               "nbformat": 4, "nbformat_minor": 5}).encode(), "not valid nbformat"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_file_is_a_graded_error(tmp_path, assignment, name):
    content, words = CASES[name]
    path = tmp_path / f"{name}.ipynb"
    path.write_bytes(content)
    result = pipeline.grade(path, assignment)
    assert result.score == 0
    assert result.max_score == assignment.max_score
    assert result.execution.status == "invalid_notebook"
    assert words in result.execution.message
    # the student's file, theirs to fix: each check a 0 that says why, never "grader error"
    assert all(c.status == "failed" and words in c.message for c in result.checks)


def test_no_code_cells_is_reported(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# only words")])
    path = tmp_path / "words.ipynb"
    nbformat.write(nb, path)
    assert notebook.load(path).error == "the notebook has no code cells"


def test_assignment_hint_comes_from_metadata(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    nb.metadata["grader"] = {"assignment": "fashion-mlp"}
    path = tmp_path / "hinted.ipynb"
    nbformat.write(nb, path)
    assert notebook.load(path).assignment_hint == "fashion-mlp"
