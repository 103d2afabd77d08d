"""Small things real notebooks do that must not cost a grade or mislead a student (no kernel)."""

from __future__ import annotations

import json

import nbformat

from grader import environment
from grader.submission import notebook
from grader.checks.context import GradingContext
from grader.execution import runner
from grader.execution.runner import CellError, ExecutionRecord
from grader.harvest.artifacts import HarvestedObject


def test_cell_ids_in_an_older_minor_version_are_accepted(tmp_path):
    """VS Code and jupytext write cell ids into files that say nbformat 4.4."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    raw = json.loads(nbformat.writes(nb))
    raw["nbformat_minor"] = 4
    raw["cells"][0]["id"] = "a1b2c3"
    path = tmp_path / "vscode.ipynb"
    path.write_text(json.dumps(raw))
    loaded = notebook.load(path)
    assert loaded.error is None and loaded.node.cells[0].source == "x = 1"


def test_the_missing_module_is_named_as_the_student_wrote_it():
    error = {"ename": "ModuleNotFoundError", "evalue": "No module named 'google.colab'"}
    hint = environment.missing_module_hint(error, ["numpy", "tensorflow"])
    assert "`google.colab`" in hint and "not installed where the grader runs" in hint
    error = {"ename": "ModuleNotFoundError", "evalue": "No module named 'sklearn.foo'"}
    assert "is one of this assignment's packages" in environment.missing_module_hint(
        error, ["sklearn"])


def test_the_line_of_an_error_is_the_cells_own_not_a_librarys():
    tb = ("StdinNotImplementedError   Traceback (most recent call last)\n"
          "Cell In[6], line 2\n      1 print(1)\n----> 2 name = input('name?')\n\n"
          "File /usr/lib/python3/site-packages/ipykernel/kernelbase.py:1514, in raw_input()\n"
          "-> 1514     raise StdinNotImplementedError()\n")
    assert runner._line_in_cell(tb, 6) == 2
    nested = ("Cell In[7], line 3\n----> 3 run()\n\nCell In[4], line 9, in run()\n"
              "----> 9 1 / 0\n")
    assert runner._line_in_cell(nested, 7) == 3


def test_a_missing_model_is_put_down_to_the_cell_that_should_have_made_it():
    """Not to a Colab set-up cell that failed first."""
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("from google.colab import drive\ndrive.mount('/content')"),
        nbformat.v4.new_code_cell("!pip install -q seaborn\nmodel = build(128)")])
    record = ExecutionRecord(cell_errors=[
        CellError(0, 1, "ModuleNotFoundError", "No module named 'google.colab'", 1, ""),
        CellError(1, 2, "NameError", "name 'build' is not defined", 2, "")])
    ctx = GradingContext({"model": HarvestedObject("model", "missing")}, {}, {}, record, None,
                         notebook=nb)
    reason = ctx.why_missing("model")
    assert "cell 2 raised NameError" in reason and "google" not in reason
