"""No solution leaves the instructor's machine: `grader publish` (an action repository students'
workflows can read) and the Gradescope zip carry the grader and what calibration wrote, never a
reference or variant notebook, and the published grader grades without them."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from grader.instructor import publish
from grader import assignment as spec
from grader.submission import starter
from grader.cli import main as cli_main

REPO = Path(__file__).resolve().parents[1]
REFERENCE_NOTEBOOKS = sorted((REPO / "reference").rglob("*.ipynb"))


def _code(data: bytes) -> list[str] | None:
    try:
        return starter.code_cells(nbformat.reads(data.decode("utf-8"), as_version=4))
    except Exception:  # noqa: BLE001 - not a notebook
        return None


def assert_no_solution(files: dict[str, bytes]) -> None:
    """Checked here independently of grader/instructor/publish.py's own refusal."""
    assert REFERENCE_NOTEBOOKS, "the repository's reference notebooks are the comparison"
    digests = {hashlib.sha256(p.read_bytes()).hexdigest(): p.name for p in REFERENCE_NOTEBOOKS}
    solution_code = {p.name: _code(p.read_bytes()) for p in REFERENCE_NOTEBOOKS}
    for name, data in files.items():
        assert not (name.startswith("reference/") and name.endswith(".ipynb")), name
        assert hashlib.sha256(data).hexdigest() not in digests, \
            f"{name} is {digests[hashlib.sha256(data).hexdigest()]}"
        code = _code(data) if name.endswith(".ipynb") else None
        for ref, ref_code in solution_code.items():
            assert code is None or code != ref_code, f"{name} has the code of {ref}"
    known = publish.solutions([spec.load(a) for a in spec.available()])
    assert publish.solution_leaks(files, known) == []


def read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and ".git" not in p.relative_to(root).parts}


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("action-repo")
    assert cli_main(["publish", "--out", str(out)]) == 0
    return out


def test_the_action_repository_has_no_solution(published):
    files = read_tree(published)
    assert_no_solution(files)
    for aid in spec.available():
        assignment = spec.load(aid)
        assert f"assignments/{aid}/assignment.toml" in files
        assert f"assignments/{aid}/{assignment.starter.name}" in files
        for name in ("expected.json", "thresholds.json", "designs.json", "constraints.txt"):
            assert (f"reference/{aid}/{name}" in files) == (assignment.reference_dir / name).is_file()
    assert {"action.yml", "action/grade.sh", "action/not_graded.py", "action/allow-userns.sh",
            "pyproject.toml", "grader/cli.py"} <= set(files)
    assert not any(n.startswith(("tests/", "bench/")) for n in files)


def test_the_gradescope_zip_has_no_solution(tmp_path):
    target = tmp_path / "autograder.zip"
    assert cli_main(["gradescope-bundle", "-a", "numpy-backprop", "--out", str(target)]) == 0
    with zipfile.ZipFile(target) as archive:
        assert_no_solution({n: archive.read(n) for n in archive.namelist()})


@pytest.mark.parametrize("disguise", ["renamed copy", "code in a .py", "notebook elsewhere"])
def test_a_solution_under_another_name_is_refused(tmp_path, monkeypatch, disguise):
    assignment = spec.load("lenet5")
    solution = assignment.reference
    planted = tmp_path / "planted"
    if disguise == "renamed copy":
        shutil.copy(solution, planted)
        name = "assignments/lenet5/hints.json"
    elif disguise == "code in a .py":
        cells = starter.code_cells(nbformat.read(str(solution), as_version=4))
        planted.write_text("\n\n".join(cells))
        name = "grader/checks/lenet_helpers.py"
    else:
        nb = nbformat.read(str(solution), as_version=4)
        nb.metadata["title"] = "worked example"
        nbformat.write(nb, str(planted))
        name = "assignments/lenet5/example.ipynb"
    real = publish.grading_files
    monkeypatch.setattr(publish, "grading_files", lambda a: {**real(a), name: planted})
    with pytest.raises(publish.PublishError, match=name.replace(".", r"\.")):
        publish.publish([assignment], tmp_path / "out")
    assert not (tmp_path / "out" / name).exists()


def test_publish_rewrites_its_own_folder_and_refuses_others(published, tmp_path, capsys):
    (published / ".git").mkdir(exist_ok=True)
    (published / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (published / "grader" / "stale.py").write_text("# from an older publish\n")
    assert cli_main(["publish", "--out", str(published), "-a", "fashion-mlp"]) == 0
    assert not (published / "grader" / "stale.py").exists()
    assert (published / ".git" / "HEAD").is_file()  # the checkout is kept
    assert not (published / "assignments" / "lenet5").exists()
    marker = json.loads((published / publish.MARKER).read_text())
    assert marker["assignments"] == ["fashion-mlp"]
    foreign = tmp_path / "course-notes"
    foreign.mkdir()
    (foreign / "notes.md").write_text("mine")
    assert cli_main(["publish", "--out", str(foreign)]) == 2
    assert "not written by grader publish" in capsys.readouterr().err
    assert (foreign / "notes.md").read_text() == "mine"
    assert cli_main(["publish", "--out", str(published)]) == 0  # back to every assignment


def test_publish_names_grader_source_that_is_an_answer(tmp_path, capsys):
    """Where it must ship (numpy-backprop is published), the bundle says so."""
    assert cli_main(["publish", "--out", str(tmp_path / "out"), "-a", "numpy-backprop"]) == 0
    err = capsys.readouterr().err
    assert "grader/cleanroom/numpy_reference.py is numpy-backprop" in err


def run_published(root: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """The published grader, as `pip install` of the action repository would run it."""
    env = {k: v for k, v in os.environ.items() if k not in ("GRADER_HOME", "GRADER_COURSE")}
    env["PYTHONPATH"] = str(root)
    return subprocess.run([sys.executable, "-m", "grader.cli", *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_the_published_grader_grades_without_reference_notebooks(published, tmp_path):
    assert not list((published / "reference").rglob("*.ipynb"))
    listed = run_published(published, "list")
    assert listed.returncode == 0, listed.stderr
    assert all(aid in listed.stdout for aid in spec.available())
    nb = tmp_path / "numpy-backprop.ipynb"
    shutil.copy(REPO / "reference" / "numpy-backprop" / "numpy-backprop-solution.ipynb", nb)
    proc = run_published(published, "check", str(nb), "--out", str(tmp_path / "r"), "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["score"] == result["max_score"] == 10
    where = subprocess.run([sys.executable, "-c", "import grader; print(grader.__file__)"],
                           cwd=published, env={**os.environ, "PYTHONPATH": str(published)},
                           capture_output=True, text=True, timeout=60).stdout
    assert where.startswith(str(published))  # the published copy graded, not this checkout


@pytest.mark.slow
def test_a_keras_solution_scores_full_marks_with_only_the_calibration_files(published, tmp_path,
                                                                            data_dir):
    """fashion-mlp's reference, graded by the published grader: expected.json, thresholds.json
    and designs.json are all the checks need."""
    nb = tmp_path / "fashion-mlp.ipynb"
    shutil.copy(REPO / "reference" / "fashion-mlp" / "fashion-mlp-solution.ipynb", nb)
    proc = run_published(published, "check", str(nb), "--out", str(tmp_path / "r"), "--json",
                         "--data-dir", str(data_dir), timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    lost = [(c["id"], c["message"]) for c in result["checks"] if c["points"] < c["max_points"]]
    assert lost == [] and result["score"] == 16


def test_numpy_backprops_answer_ships_only_with_numpy_backprop(tmp_path):
    """The grader's own forward and backward pass is numpy-backprop's answer: a bundle of other
    assignments leaves it out, and its grader still starts."""
    out = tmp_path / "fashion-only"
    assert cli_main(["publish", "--out", str(out), "-a", "fashion-mlp"]) == 0
    files = set(read_tree(out))
    assert not files & set(publish.ANSWER_SOURCE), sorted(files & set(publish.ANSWER_SOURCE))
    probe = subprocess.run([sys.executable, "-c", "import grader.cli, grader.pipeline, "
                            "grader.batch, grader.checks; print('ok')"], cwd=out,
                           capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert probe.stdout.strip() == "ok", probe.stderr[-1000:]
    everything = tmp_path / "all"
    assert cli_main(["publish", "--out", str(everything)]) == 0
    assert set(publish.ANSWER_SOURCE) <= set(read_tree(everything))
