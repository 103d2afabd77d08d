"""A grader failure is never a student's score: each cause gives `grader_error`, no points, exit 3
from `grader check`, and a student left "not graded" by `grader grade`."""

from __future__ import annotations

import csv
import gzip
import json
import re
import shutil
import sys
from pathlib import Path

import nbformat
import pytest

from grader import cli, environment, pipeline, assignment as spec
from grader.errors import GraderError
from grader.execution import runner
from grader import paths

ASSIGNMENTS_DIR, REFERENCE_DIR = paths.assignments_dir(), paths.reference_dir()

ASSIGNMENT = "fashion-mlp"


def small_notebook(path: Path, *cells: str) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells or ("x = 1",)])
    nb.metadata["grader"] = {"assignment": ASSIGNMENT}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def assert_not_graded(result, cause: str) -> None:
    assert result.grader_error, result.execution
    assert result.score is None
    assert result.checks == []
    assert cause in result.execution.message
    assert "the grader failed, not the notebook" in result.execution.message


@pytest.mark.slow
def test_kernel_interpreter_that_cannot_start_is_a_grader_error(tmp_path, data_dir, monkeypatch):
    monkeypatch.setattr(runner.sys, "executable", str(tmp_path / "no-such-python"))
    result = pipeline.grade(small_notebook(tmp_path / "a.ipynb"), spec.load(ASSIGNMENT),
                            pipeline.Options(data_dir=data_dir))
    assert_not_graded(result, "kernel could not start")


@pytest.mark.slow
def test_sandbox_that_cannot_start_is_a_grader_error(tmp_path, data_dir, monkeypatch):
    from grader.execution import sandbox

    if sandbox.resolve("auto") != "bwrap":
        pytest.skip("bubblewrap is not usable here")
    # A sandbox whose set-up fails before the kernel runs (here: bwrap refuses an option).
    real_wrap = sandbox.wrap
    monkeypatch.setattr(sandbox, "wrap", lambda cmd, *a, **k: [real_wrap(cmd, *a, **k)[0],
                                                               "--no-such-option", *cmd])
    result = pipeline.grade(small_notebook(tmp_path / "a.ipynb"), spec.load(ASSIGNMENT),
                            pipeline.Options(data_dir=data_dir))
    assert_not_graded(result, "kernel could not start")


@pytest.mark.slow
def test_measuring_process_that_dies_before_it_is_ready_is_a_grader_error(tmp_path, data_dir,
                                                                          monkeypatch):
    """The trusted side's own failure (its interpreter, TensorFlow's import) is never the
    student's zero: the model was built, the grader could not measure it."""
    from grader.execution import confine

    real = confine.Confinement.command

    def broken(self, argv):
        if self.label == "measure":
            argv = [argv[0], "-c", "raise SystemExit('cannot import tensorflow (simulated)')"]
        return real(self, argv)

    monkeypatch.setattr(confine.Confinement, "command", broken)
    path = small_notebook(tmp_path / "a.ipynb", "import keras",
                          "model = keras.Sequential([keras.Input((784,)), "
                          "keras.layers.Dense(10, activation='softmax')])\n"
                          "model.compile(optimizer='adam', loss='categorical_crossentropy')")
    result = pipeline.grade(path, spec.load(ASSIGNMENT), pipeline.Options(data_dir=data_dir))
    assert_not_graded(result, "measuring process failed")
    assert "cannot import tensorflow (simulated)" in result.execution.message


def test_unreadable_dataset_is_a_grader_error(tmp_path):
    broken = tmp_path / "data" / "fashion-mnist"
    broken.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        with gzip.open(broken / f"{name}.gz", "wb") as fh:
            fh.write(b"not an IDX file")
    result = pipeline.grade(small_notebook(tmp_path / "a.ipynb"), spec.load(ASSIGNMENT),
                            pipeline.Options(data_dir=tmp_path / "data"))
    assert_not_graded(result, "cannot read the dataset")


def test_grader_bug_is_a_grader_error_not_a_traceback(tmp_path, data_dir, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the grader")

    monkeypatch.setattr(pipeline, "prepare_data", broken)
    result = pipeline.grade(small_notebook(tmp_path / "a.ipynb"), spec.load(ASSIGNMENT),
                            pipeline.Options(data_dir=data_dir))
    assert_not_graded(result, "RuntimeError: a bug in the grader")


@pytest.mark.slow
def test_check_exits_3_and_reports_render_without_a_score(tmp_path, data_dir, monkeypatch,
                                                         capsys):
    monkeypatch.setattr(runner.sys, "executable", str(tmp_path / "no-such-python"))
    out = tmp_path / "report"
    code = cli.main(["check", str(small_notebook(tmp_path / "a.ipynb")), "-a", ASSIGNMENT,
                     "--data-dir", str(data_dir), "--out", str(out)])
    assert code == cli.EXIT_GRADER_ERROR == 3
    err = capsys.readouterr().err
    assert "GRADER ERROR" in err
    saved = json.loads((out / "result.json").read_text())
    assert saved["score"] is None and saved["execution"]["status"] == "grader_error"
    from grader.reports import render
    from grader.reports.classroom import classroom_payload

    assert "grader failed" in render(saved, "html")
    assert "grader failed" in render(saved, "md")
    payload = classroom_payload(saved)
    assert payload["status"] == "error" and payload["tests"][0]["score"] == 0


def test_missing_declared_package_stops_check_with_exit_3(tmp_path, data_dir, monkeypatch, capsys):
    home = tmp_path / "home"
    shutil.copytree(ASSIGNMENTS_DIR / ASSIGNMENT, home / "assignments" / ASSIGNMENT)
    shutil.copytree(REFERENCE_DIR / ASSIGNMENT, home / "reference" / ASSIGNMENT)
    toml = home / "assignments" / ASSIGNMENT / "assignment.toml"
    text = re.sub(r"(?ms)^packages = \[.*?\]", 'packages = ["numpy", '
                  '"no_such_package_for_grading"]', toml.read_text(), count=1)
    assert "no_such_package_for_grading" in text
    toml.write_text(text)
    monkeypatch.setenv("GRADER_COURSE", str(home))
    monkeypatch.setenv("GRADER_CACHE_DIR", str(tmp_path / "cache"))
    assignment = spec.load(ASSIGNMENT, home / "assignments")
    assert "no_such_package_for_grading" in assignment.packages
    with pytest.raises(GraderError, match=r"pip install no_such_package_for_grading"):
        environment.verify(assignment.packages)
    # Found once, remembered per environment: a second check costs nothing.
    environment.verify(["numpy"])
    assert list((tmp_path / "cache").glob("packages-*.ok"))


@pytest.mark.slow
def test_undeclared_missing_import_is_a_hint_on_its_cell(tmp_path, data_dir):
    path = small_notebook(tmp_path / "a.ipynb", "import numpy as np",
                          "import no_such_package_for_grading", "y = np.zeros(3)")
    result = pipeline.grade(path, spec.load(ASSIGNMENT), pipeline.Options(data_dir=data_dir))
    assert not result.grader_error
    assert len(result.cell_errors) == 1
    error = result.cell_errors[0]
    assert error.cell == 1 and error.ename == "ModuleNotFoundError"
    assert "`no_such_package_for_grading`" in error.hint
    assert "not installed where the grader runs" in error.hint


@pytest.mark.slow
def test_batch_leaves_grader_errors_ungraded_retries_them_and_stops_early(tmp_path, data_dir,
                                                                          monkeypatch):
    """Every student fails on the grader's side (a kernel interpreter that cannot start):
    no number in grades.csv, the batch stops after the first few with exit 3."""
    subs = tmp_path / "subs"
    for name in ("ann", "bob", "cat", "dan", "eve"):
        small_notebook(subs / f"{name}.ipynb")
    from grader.batch import local

    monkeypatch.setattr("grader.batch.canary.ensure_reference_scores_full_marks", lambda *a: None)
    # Each worker is a process of its own: start it with a kernel interpreter that is gone.
    broken = ("import sys; sys.executable = sys.argv.pop(1); from grader.batch.worker import "
              "main; sys.exit(main(sys.argv[1:]))")
    monkeypatch.setattr(local.LocalExecutor, "command", [sys.executable, "-c", broken,
                                                 str(tmp_path / "no-such-python")])
    out = tmp_path / "out"
    code = cli.main(["grade", str(subs), "-a", ASSIGNMENT, "--out", str(out), "-j", "1",
                     "--data-dir", str(data_dir)])
    assert code == cli.EXIT_GRADER_ERROR
    results = [json.loads(p.read_text()) for p in out.glob("*/result.json")]
    assert len(results) == 3  # stopped after the first three
    assert all(r["score"] is None and r["batch"]["complete"] is False for r in results)
    # A run with the set-up fixed grades everyone, those three included.
    monkeypatch.undo()
    monkeypatch.setattr("grader.batch.canary.ensure_reference_scores_full_marks", lambda *a: None)
    code = cli.main(["grade", str(subs), "-a", ASSIGNMENT, "--out", str(out), "-j", "2",
                     "--data-dir", str(data_dir)])
    assert code == 0
    rows = list(csv.DictReader((out / "grades.csv").open()))
    assert len(rows) == 5 and all(r["status"] == "completed" and r["total"] == "0" for r in rows)


def test_gradebook_has_no_number_for_a_grader_error():
    from grader.batch import gradebook_csv

    assignment = spec.load(ASSIGNMENT)
    result = pipeline.grader_error_result(assignment, Path("missing.ipynb"), "sandbox broken")
    rows = list(csv.reader(gradebook_csv(assignment, [("ann", result)]).splitlines()))
    assert rows[1][0] == "ann" and rows[1][1] == ""
    assert rows[1][-2] == "grader_error"


def test_grader_error_result_matches_the_published_schema():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((Path(__file__).resolve().parents[1] / "schemas" /
                         "result.schema.json").read_text())
    result = pipeline.grader_error_result(spec.load(ASSIGNMENT), Path("x.ipynb"), "no sandbox")
    jsonschema.validate(result.as_dict(), schema)


def descendants(root: int) -> list[str]:
    """The command lines of every process below `root`, from /proc's parent links."""
    import os

    parents, commands = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            commands[int(entry)] = Path(f"/proc/{entry}/cmdline").read_bytes().replace(
                b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        children = [p for p, parent in parents.items() if parent == pid]
        found += [commands.get(c, "") for c in children]
        frontier += children
    return found


@pytest.mark.slow
def test_ctrl_c_during_check_exits_130_writes_nothing_and_leaves_no_process(tmp_path, data_dir):
    """Ctrl-C reaches the whole foreground process group, as a terminal sends it."""
    import os
    import signal
    import subprocess
    import time

    path = small_notebook(tmp_path / "slow.ipynb", "import time\ntime.sleep(120)")
    out = tmp_path / "report"
    env = {**os.environ, "GRADER_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.Popen([sys.executable, "-m", "grader.cli", "check", str(path), "-a",
                             ASSIGNMENT, "--data-dir", str(data_dir), "--out", str(out)],
                            start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    def session() -> str:
        return subprocess.run(["ps", "-o", "pid=,stat=,cmd=", "-s", str(proc.pid)],
                              capture_output=True, text=True).stdout

    # This grader's own kernel (a descendant), not another grading's on the same machine.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(
            "grader.kernel.boot" in cmd for cmd in descendants(proc.pid)):
        time.sleep(0.5)
    time.sleep(5)  # the kernel is running the slow cell
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, (stdout, stderr)
    assert "interrupted" in stderr
    assert not (out / "result.json").exists()
    time.sleep(1)
    left = session()
    running = [line for line in left.splitlines() if line.split()[1][:1] != "Z"]  # zombies: dead
    assert running == [], left
