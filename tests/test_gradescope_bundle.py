"""`grader gradescope-bundle`: the zip's layout, and its run_autograder run as Gradescope would
(with /autograder moved into a temporary folder), on the fast numpy-backprop assignment."""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from grader import spec
from grader.cli import main as cli_main

ASSIGNMENT = "numpy-backprop"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("bundle") / "autograder.zip"
    assert cli_main(["gradescope-bundle", "-a", ASSIGNMENT, "--out", str(target)]) == 0
    return target


def test_zip_has_gradescopes_layout(bundle):
    with zipfile.ZipFile(bundle) as archive:
        names = set(archive.namelist())
        modes = {info.filename: info.external_attr >> 16 for info in archive.infolist()}
        setup = archive.read("setup.sh").decode()
    # Gradescope: "a zip file with setup.sh and run_autograder at its root".
    assert {"setup.sh", "run_autograder"} <= names
    assert modes["setup.sh"] & 0o111 and modes["run_autograder"] & 0o111
    assert {"pyproject.toml", "grader/cli.py", f"assignments/{ASSIGNMENT}/assignment.toml",
            f"reference/{ASSIGNMENT}/numpy-backprop-solution.ipynb"} <= names
    # Only this assignment's material, and no bytecode.
    assert not any(n.startswith(("assignments/fashion-mlp", "reference/lenet5")) for n in names)
    assert not any("__pycache__" in n for n in names)
    assert "pip install --quiet -e /autograder/source" in setup
    for script in ("setup.sh", "run_autograder"):
        with zipfile.ZipFile(bundle) as archive:
            text = archive.read(script).decode()
        assert subprocess.run(["bash", "-n"], input=text, text=True).returncode == 0, script


def run_autograder(bundle: Path, root: Path, submission: dict[str, Path]) -> dict:
    """Unpack like Gradescope, with /autograder at `root`, and run one submission."""
    source = root / "source"
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(source)
    script = (source / "run_autograder").read_text().replace("/autograder", str(root))
    (root / "run_autograder").write_text(script)
    (root / "submission").mkdir()
    for name, path in submission.items():
        shutil.copy(path, root / "submission" / name)
    proc = subprocess.run(["bash", str(root / "run_autograder")], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads((root / "results" / "results.json").read_text())


def test_run_autograder_grades_the_submission(bundle, tmp_path):
    assignment = spec.load(ASSIGNMENT)
    results = run_autograder(bundle, tmp_path, {"numpy-backprop.ipynb": assignment.reference})
    assert results["score"] == assignment.max_score == 10
    assert [t["status"] for t in results["tests"]] == ["passed"] * len(assignment.checks)


def test_run_autograder_without_a_notebook_still_writes_results(bundle, tmp_path):
    readme = tmp_path / "notes.txt"
    readme.write_text("forgot the notebook")
    results = run_autograder(bundle, tmp_path / "ag", {"notes.txt": readme})
    assert results["score"] == 0 and results["tests"] == []
    assert "No notebook (.ipynb) was found" in results["output"]
