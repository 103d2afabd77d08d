"""Usage errors get exit 2 and a message that says what to do; none of these runs a notebook."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from grader import cli, assignment as spec
from grader.submission import notebook

REPO = Path(__file__).resolve().parents[1]
STARTER = REPO / "assignments" / "fashion-mlp" / "fashion-mlp.ipynb"


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, " ".join(err.split())  # rich may wrap long lines


def grader(args: list[str], home: Path | None = None) -> subprocess.CompletedProcess:
    """The CLI in its own process (GRADER_HOME is read when grader.paths is imported)."""
    env = {**os.environ, "COLUMNS": "200",
           "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    if home:
        env["GRADER_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "grader.cli", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def starter_copy(tmp_path) -> Path:
    """The fashion-mlp starter: metadata.grader.assignment = fashion-mlp."""
    path = tmp_path / "hw" / "fashion-mlp.ipynb"
    path.parent.mkdir()
    shutil.copy(STARTER, path)
    assert notebook.load(path).assignment_hint == "fashion-mlp"
    return path


def conflicted(path: Path) -> Path:
    """The starter as git leaves it after a failed merge: markers inside its JSON."""
    lines = STARTER.read_text().splitlines(keepends=True)
    i = next(k for k, line in enumerate(lines) if '"source"' in line)
    path.write_text("".join(lines[:i] + ["<<<<<<< HEAD\n", lines[i], "=======\n", lines[i],
                                         ">>>>>>> origin/main\n"] + lines[i + 1:]))
    return path


# --- a broken spec --------------------------------------------------------------------------------

@pytest.fixture
def home_with_broken_spec(tmp_path) -> Path:
    home = tmp_path / "home"
    for aid in ("fashion-mlp", "numpy-backprop"):
        shutil.copytree(REPO / "assignments" / aid, home / "assignments" / aid)
    toml = home / "assignments" / "numpy-backprop" / "assignment.toml"
    toml.write_text(toml.read_text().replace('kind = "gradient_check"', 'kind = "gradient"'))
    return home


def test_list_shows_the_good_specs_and_each_broken_one(home_with_broken_spec):
    proc = grader(["list"], home_with_broken_spec)
    assert proc.returncode == 2
    assert "fashion-mlp" in proc.stdout and "model-accuracy" in proc.stdout
    assert "numpy-backprop" not in proc.stdout
    toml = home_with_broken_spec / "assignments" / "numpy-backprop" / "assignment.toml"
    line = next(i for i, text in enumerate(toml.read_text().splitlines(), 1)
                if text == 'kind = "gradient"')
    assert (f"grader: error: {toml}, line {line}, checks[2].kind: unknown check kind 'gradient'"
            in proc.stderr), proc.stderr
    assert "Traceback" not in proc.stderr


def test_list_of_good_specs_exits_0(capsys):
    code, out, err = run(["list"], capsys)
    assert code == 0 and err == ""
    assert all(aid in out for aid in spec.available())


def test_check_with_a_broken_spec_exits_2_with_the_located_problem(home_with_broken_spec,
                                                                    starter_copy):
    proc = grader(["check", starter_copy, "-a", "numpy-backprop", "--force",
                   "--out", starter_copy.parent / "out"], home_with_broken_spec)
    assert proc.returncode == 2
    assert "checks[2].kind: unknown check kind 'gradient'" in proc.stderr
    assert not (starter_copy.parent / "out").exists()


def test_grade_with_a_broken_spec_exits_2(home_with_broken_spec, starter_copy):
    proc = grader(["grade", starter_copy.parent, "-a", "numpy-backprop",
                   "--out", starter_copy.parent / "out"], home_with_broken_spec)
    assert proc.returncode == 2
    assert "unknown check kind 'gradient'" in proc.stderr


# --- arguments ------------------------------------------------------------------------------------

def test_check_given_a_folder_says_use_grade(tmp_path, capsys):
    code, _, err = run(["check", tmp_path], capsys)
    assert code == 2
    assert f"{tmp_path} is a folder: use `grader grade {tmp_path}`" in err


@pytest.mark.parametrize("command", ["check", "grade"])
@pytest.mark.parametrize("value", ["0", "-5", "-0.5", "nan", "soon"])
def test_timeout_must_be_positive(starter_copy, capsys, command, value):
    target = starter_copy if command == "check" else starter_copy.parent
    with pytest.raises(SystemExit) as info:
        cli.main([command, str(target), f"--timeout={value}"])
    assert info.value.code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "argument --timeout:" in err
    assert "positive number of seconds" in err or "not a number of seconds" in err


def test_worker_timeout_must_be_positive(starter_copy, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["grade", str(starter_copy.parent), "--worker-timeout", "0"])
    assert info.value.code == 2


@pytest.mark.parametrize("command", ["check", "grade", "data"])
def test_data_dir_that_does_not_exist(starter_copy, tmp_path, capsys, command):
    target = {"check": [starter_copy], "grade": [starter_copy.parent], "data": []}[command]
    missing = tmp_path / "nowhere"
    code, _, err = run([command, *target, "--data-dir", missing], capsys)
    assert code == 2
    assert f"--data-dir {missing}: no such folder" in err


@pytest.mark.parametrize("command", ["check", "grade"])
def test_data_dir_without_the_dataset_says_what_it_should_hold(starter_copy, tmp_path, capsys,
                                                               command):
    empty = tmp_path / "data"
    (empty / "mnist").mkdir(parents=True)  # another dataset's folder, and not even that one
    target = starter_copy if command == "check" else starter_copy.parent
    code, _, err = run([command, target, "--data-dir", empty, "--out", tmp_path / "out"], capsys)
    assert code == 2
    assert (f"--data-dir {empty} holds no fashion-mnist dataset (fashion-mlp needs it): "
            f"expected the folder {empty / 'fashion-mnist'}/ with train-images-idx3-ubyte.gz"
            in err), err
    assert not (tmp_path / "out").exists()


def test_data_dir_with_the_dataset_is_accepted(mnist_dir):
    cli._check_data_dir(mnist_dir, spec.load("fashion-mlp"))  # no error
    cli._check_data_dir(mnist_dir, spec.load("mnist-cnn"))


# --- wrong -a ---------------------------------------------------------------------------------------

def test_check_refuses_a_notebook_of_another_assignment(starter_copy, capsys):
    code, _, err = run(["check", starter_copy, "-a", "numpy-backprop",
                        "--out", starter_copy.parent / "out"], capsys)
    assert code == 2
    assert ("is a notebook of 'fashion-mlp' (its metadata.grader.assignment), not of "
            "'numpy-backprop'") in err
    assert "Use -a fashion-mlp, or --force" in err
    assert not (starter_copy.parent / "out").exists()


def test_check_force_grades_it_as_asked(tmp_path, capsys):
    """--force: graded as numpy-backprop (a conflicted notebook: an error result, no kernel)."""
    path = conflicted(tmp_path / "hw.ipynb")
    assert notebook.load(path).assignment_hint == "fashion-mlp"
    code, _, err = run(["check", path, "-a", "numpy-backprop", "--json",
                        "--out", tmp_path / "out"], capsys)
    assert code == 2 and "not of 'numpy-backprop'" in err
    code, out, _ = run(["check", path, "-a", "numpy-backprop", "--force", "--json",
                        "--out", tmp_path / "out"], capsys)
    assert code == 0
    assert json.loads(out)["assignment"] == "numpy-backprop"


def test_grade_says_how_many_notebooks_disagree_and_refuses(tmp_path, capsys):
    subs = tmp_path / "subs"
    subs.mkdir()
    for student in ("ann", "bob", "cy", "dee"):
        shutil.copy(STARTER, subs / f"{student}.ipynb")
    nb = nbformat.read(STARTER, as_version=4)
    nb.metadata["grader"] = {"assignment": "numpy-backprop"}
    nbformat.write(nb, subs / "eve.ipynb")
    code, _, err = run(["grade", subs, "-a", "numpy-backprop", "--out", tmp_path / "out"],
                       capsys)
    assert code == 2
    assert ("4 of 5 notebooks name another assignment than 'numpy-backprop' in their "
            "metadata.grader.assignment: fashion-mlp (4: ann, bob, cy, …)") in err
    assert "pass --force" in err
    assert not (tmp_path / "out").exists()


def test_grade_force_warns_and_goes_on(tmp_path, capsys):
    subs = tmp_path / "subs"
    subs.mkdir()
    shutil.copy(STARTER, subs / "ann.ipynb")
    args = argparse.Namespace(submissions=subs, out=tmp_path / "out", force=True)
    cli._refuse_other_assignments(args, spec.load("numpy-backprop"))  # no exception
    err = " ".join(capsys.readouterr().err.split())
    assert "warning: 1 of 1 notebooks name another assignment" in err and "(--force)" in err


def test_a_student_folder_with_another_homework_beside_is_no_disagreement(tmp_path, capsys):
    """Only the notebook that would be graded counts: ann/ also keeps last week's homework."""
    (tmp_path / "subs" / "ann").mkdir(parents=True)
    shutil.copy(STARTER, tmp_path / "subs" / "ann" / "fashion-mlp.ipynb")
    shutil.copy(REPO / "assignments" / "lenet5" / "lenet5.ipynb",
                tmp_path / "subs" / "ann" / "lenet5.ipynb")
    args = argparse.Namespace(submissions=tmp_path / "subs", out=tmp_path / "out", force=False)
    cli._refuse_other_assignments(args, spec.load("fashion-mlp"))  # no exception
    assert capsys.readouterr().err == ""


def test_check_names_an_unknown_assignment_from_the_metadata(tmp_path, capsys):
    nb = nbformat.read(STARTER, as_version=4)
    nb.metadata["grader"] = {"assignment": "homework-9"}
    nbformat.write(nb, tmp_path / "hw.ipynb")
    code, _, err = run(["check", tmp_path / "hw.ipynb"], capsys)
    assert code == 2
    assert "metadata.grader.assignment names 'homework-9', which this grader does not have" in err


# --- merge-conflict markers ---------------------------------------------------------------------

def test_conflict_markers_are_named(tmp_path):
    loaded = notebook.load(conflicted(tmp_path / "hw.ipynb"))
    assert loaded.node is None
    assert loaded.error.startswith("the notebook contains unresolved git merge-conflict markers "
                                   "(<<<<<<<, =======, >>>>>>>; the first at line ")
    plain = tmp_path / "plain.ipynb"
    plain.write_text('{"cells": [')
    assert "not valid notebook JSON" in notebook.load(plain).error


@pytest.mark.slow
def test_check_on_a_conflicted_notebook_is_a_graded_error(tmp_path, capsys):
    """As for any malformed notebook: a result saying why (0 points), found without -a."""
    path = conflicted(tmp_path / "hw.ipynb")
    code, out, _ = run(["check", path, "--json", "--out", tmp_path / "out"], capsys)
    assert code == 0
    result = json.loads(out)
    assert result["assignment"] == "fashion-mlp" and result["score"] == 0
    assert result["execution"]["status"] == "invalid_notebook"
    assert "merge-conflict markers" in result["execution"]["message"]
    assert all("merge-conflict markers" in c["message"] for c in result["checks"])
