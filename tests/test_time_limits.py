"""A timeout's message names the limit that stopped the notebook: the cell's or the whole
notebook's, its value, and where it came from (--timeout, or the spec's [execution]).

Real kernels on tiny notebooks that sleep, graded as numpy-backprop (numpy only), with limits of
a few seconds.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

import notebook_factory as nf
from grader import cli, pipeline, assignment as spec
from grader.execution.time_limits import Origin, Scope, TimeLimit, TimeLimits

SLEEP = "import time\ntime.sleep(60)"
TOML = "assignments/numpy-backprop/assignment.toml"

notebook = nf.of_cells


def timeout_errors(result: dict) -> list[dict]:
    return [e for e in result["cell_errors"] if e["ename"] == "CellTimeoutError"]


@pytest.mark.slow
def test_the_notebooks_limit_from_timeout_is_named_not_the_cells(tmp_path):
    """The issue's case: --timeout stops a cell well inside the spec's per-cell limit (60 s)."""
    path = notebook(tmp_path / "nb" / "a.ipynb", "x = 1", SLEEP, "y = 2")
    out = tmp_path / "report"
    code = cli.main(["check", str(path), "--out", str(out), "--timeout", "4"])
    assert code != 3  # not a grader error
    result = json.loads((out / "result.json").read_text())
    execution = result["execution"]
    assert execution["status"] == "timeout"
    assert execution["message"] == ("the notebook ran past its 4 s limit (--timeout 4) in cell 2;"
                                    " cells from cell 3 on were not run")
    assert execution["time_limit"] == {"scope": "notebook", "seconds": 4.0, "origin": "option",
                                       "source": "--timeout 4"}
    [error] = timeout_errors(result)
    assert error["cell"] == 1 and error["evalue"] == "the notebook ran past its 4 s limit " \
        "(--timeout 4)"
    assert "per-cell" not in json.dumps(result)  # the spec's 60 s did not stop it


@pytest.mark.slow
def test_cell_timeout_sets_the_cells_limit_and_is_named(tmp_path):
    """--cell-timeout replaces the spec's per-cell limit (60 s here): the sleeping cell stops
    at 3 s, the message names the option, and the next cell still runs."""
    path = notebook(tmp_path / "nb" / "a.ipynb", "x = 1", SLEEP, "y = 2")
    out = tmp_path / "report"
    code = cli.main(["check", str(path), "--out", str(out), "--cell-timeout", "3"])
    assert code != 3  # not a grader error
    result = json.loads((out / "result.json").read_text())
    assert result["execution"]["status"] == "completed"
    [error] = timeout_errors(result)
    assert error["cell"] == 1
    assert error["evalue"] == "cell In [2] ran past its 3 s per-cell limit (--cell-timeout 3)"
    assert result["execution"]["time_limit"] == {"scope": "cell", "seconds": 3.0,
                                                 "origin": "option", "source": "--cell-timeout 3"}


@pytest.mark.slow
def test_the_cells_limit_from_the_spec_is_named_and_the_rest_runs(tmp_path):
    base = spec.load("numpy-backprop")
    assignment = dataclasses.replace(base, limits=base.limits.model_copy(
        update={"cell_timeout": 3, "notebook_timeout": 120}))
    path = notebook(tmp_path / "a.ipynb", "x = 1", SLEEP, "y = 2")
    result = pipeline.grade(path, assignment, pipeline.Options()).as_dict()
    assert result["execution"]["status"] != "grader_error", result["execution"]
    [error] = timeout_errors(result)
    assert error["cell"] == 1
    assert error["evalue"] == (f"cell In [2] ran past its 3 s per-cell limit ({TOML} "
                               "[execution] cell_timeout)")
    assert result["execution"]["status"] == "completed"  # one slow cell does not stop the rest
    assert result["execution"]["time_limit"] == {
        "scope": "cell", "seconds": 3.0, "origin": "spec",
        "source": f"{TOML} [execution] cell_timeout"}


@pytest.mark.parametrize(("remaining", "scope"), [(500.0, Scope.CELL), (300.0, Scope.CELL),
                                                  (299.0, Scope.NOTEBOOK)])
def test_the_binding_limit_is_the_one_that_ends_first(remaining, scope):
    times = TimeLimits.of(300, 900, Path(TOML))
    assert times.binding(remaining).scope is scope


def test_timeout_replaces_only_the_notebooks_limit():
    times = TimeLimits.of(300, 900, Path(TOML), option=120)
    assert times.notebook == TimeLimit(Scope.NOTEBOOK, 120, Origin.OPTION, "--timeout 120")
    assert times.cell.origin is Origin.SPEC and times.cell.seconds == 300
    assert times.notebook.describe() == "its 120 s limit (--timeout 120)"
    spec_only = TimeLimits.of(300, 900, Path(TOML)).notebook
    assert spec_only.describe() == f"its 900 s limit ({TOML} [execution] notebook_timeout)"


def test_cell_timeout_replaces_only_the_cells_limit():
    """Above the spec's per-cell limit too: with --full, one 10-epoch fit on the whole dataset
    outlasts any per-cell limit set for the subset, and --timeout alone cannot lift it."""
    times = TimeLimits.of(600, 900, Path(TOML), option=3600, cell_option=3000)
    assert times.cell == TimeLimit(Scope.CELL, 3000, Origin.OPTION, "--cell-timeout 3000")
    assert times.notebook == TimeLimit(Scope.NOTEBOOK, 3600, Origin.OPTION, "--timeout 3600")
    assert times.binding(3600).scope is Scope.CELL and times.binding(2000).scope is Scope.NOTEBOOK
    assert times.cell.describe() == "its 3000 s per-cell limit (--cell-timeout 3000)"
    assert TimeLimits.of(600, 900, Path(TOML), option=3600).cell.seconds == 600


def test_the_cli_carries_both_time_limits_into_the_grading_options():
    args = cli.build_parser().parse_args(
        ["check", "a.ipynb", "--timeout", "3600", "--cell-timeout", "3000"])
    options = cli._grading_options(args)
    assert (options.timeout, options.cell_timeout) == (3600, 3000)
    # A batch worker gets the options as JSON: the cell's limit must survive the trip.
    assert pipeline.Options.model_validate_json(options.model_dump_json()).cell_timeout == 3000
    grade = cli.build_parser().parse_args(["grade", "subs", "-a", "lenet5", "--cell-timeout", "9"])
    assert cli._grading_options(grade).cell_timeout == 9
