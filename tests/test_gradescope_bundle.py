"""`grader gradescope-bundle`: the zip's layout (no solution in it), its setup.sh (the Python and
package versions calibration used), and its run_autograder run as Gradescope would (with
/autograder moved into a temporary folder, grading with the bundle's own copy of the grader,
which has no reference notebook), on the fast numpy-backprop assignment."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from grader import assignment as spec
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
            f"reference/{ASSIGNMENT}/constraints.txt"} <= names
    assert not any(n.startswith("reference/") and n.endswith(".ipynb") for n in names)
    # Only this assignment's material, and no bytecode.
    assert not any(n.startswith(("assignments/fashion-mlp", "reference/lenet5")) for n in names)
    assert not any("__pycache__" in n for n in names)
    assert '--constraint "$CONSTRAINTS"' in setup and "-e /autograder/source" in setup
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
    # What setup.sh installs into the venv: the bundle's own grader (so this tests that copy).
    venv = root / "venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "grader").write_text(f'#!/bin/sh\nPYTHONPATH="{source}" exec "{sys.executable}" '
                                 '-m grader.cli "$@"\n')
    (venv / "grader").chmod(0o755)
    (venv / "python3").symlink_to(sys.executable)
    (root / "submission").mkdir()
    for name, path in submission.items():
        shutil.copy(path, root / "submission" / name)
    # cwd: outside this checkout, so that `python -m grader.cli` imports the bundle's copy.
    proc = subprocess.run(["bash", str(root / "run_autograder")], capture_output=True, text=True,
                          timeout=300, cwd=root)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads((root / "results" / "results.json").read_text())


@pytest.mark.slow
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


def python_claiming(version: str, path: Path) -> Path:
    """A stand-in for `python -c CODE` that runs CODE in this Python, which says it is `version`."""
    parts = [int(p) for p in version.split(".")]
    path.write_text(f"""#!/bin/sh
exec "{sys.executable}" - "$@" <<'PY'
import sys
code = sys.argv[2]
sys.version_info = ({parts[0]}, {parts[1]}, {parts[2]}, "final", 0)
exec(code)
PY
""")
    path.chmod(0o755)
    return path


def test_setup_installs_the_calibrated_python_and_pins(bundle, tmp_path):
    """setup.sh run with stand-ins for apt-get, curl and uv that record what they are asked."""
    root = tmp_path / "autograder"
    source = root / "source"
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(source)
    lock = (source / "reference" / ASSIGNMENT / "constraints.txt").read_text()
    python = next(line.split()[-1] for line in lock.splitlines() if line.startswith("# python"))
    assert "tensorflow==" in lock and "numpy==" in lock and "keras==" in lock
    calls, stubs = tmp_path / "calls", tmp_path / "stubs"
    stubs.mkdir()
    for tool in ("apt-get", "curl"):
        (stubs / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> {calls}\n')
    # uv: `uv venv` makes the venv with an interpreter of the version calibration used, which
    # the Python running these tests need not be.
    fake = python_claiming(python, tmp_path / f"python-{python}")
    (stubs / "uv").write_text(f"""#!/bin/sh
echo "uv $*" >> {calls}
if [ "$1" = venv ]; then mkdir -p "$4/bin" && ln -sf "{fake}" "$4/bin/python"; fi
""")
    for stub in stubs.iterdir():
        stub.chmod(0o755)
    script = (source / "setup.sh").read_text().replace("/autograder", str(root))
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}"})
    assert proc.returncode == 0, proc.stderr
    log = calls.read_text().splitlines()
    assert f"uv python install {python}" in log
    assert f"uv venv --python {python} {root}/venv" in log
    pinned = next(line for line in log if line.startswith("uv pip install"))
    assert f"--constraint {source}/reference/{ASSIGNMENT}/constraints.txt" in pinned
    assert pinned.endswith(f"-e {source}")
    assert not any(line.startswith("apt-get install") and "python3" in line for line in log)


def test_setup_refuses_a_python_other_than_calibrations(bundle, tmp_path):
    root = tmp_path / "autograder"
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(root / "source")
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    for tool in ("apt-get", "curl"):
        (stubs / tool).write_text("#!/bin/sh\n")
    # A venv whose Python says it is 3.10.12 (the image's own python3 on Ubuntu 22.04).
    fake = python_claiming("3.10.12", tmp_path / "python-3.10")
    (stubs / "uv").write_text(f"""#!/bin/sh
if [ "$1" = venv ]; then mkdir -p "$4/bin" && ln -sf "{fake}" "$4/bin/python"; fi
""")
    for stub in stubs.iterdir():
        stub.chmod(0o755)
    script = (root / "source" / "setup.sh").read_text().replace("/autograder", str(root))
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}"})
    assert proc.returncode != 0  # set -e: the image build fails instead of grading on 3.10
    assert "Python 3.10.12, not 3." in proc.stderr


def test_an_assignment_without_pins_is_not_bundled(tmp_path, capsys, monkeypatch):
    from grader.instructor import constraints, gradescope_bundle

    monkeypatch.setattr(constraints, "path_of", lambda a: tmp_path / "nothing.txt")
    with pytest.raises(gradescope_bundle.BundleError, match="grader calibrate -a numpy-backprop"):
        gradescope_bundle.files(spec.load(ASSIGNMENT))
    assert cli_main(["gradescope-bundle", "-a", ASSIGNMENT, "--out",
                     str(tmp_path / "b.zip")]) == 2
    assert "grader calibrate -a numpy-backprop" in capsys.readouterr().err
    assert not (tmp_path / "b.zip").exists()
