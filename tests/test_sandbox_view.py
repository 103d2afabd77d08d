"""The sandbox shows a confined process only what it needs (an allow-list), and works wherever
the grader lives: the project, its venv or the data under /tmp, data reached through symlinks, a
read-only install. Run with `pytest -m hostile`; the tests that run TensorFlow are also `slow`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import notebook_factory as nf
from grader import pipeline, assignment as spec
from grader.execution import sandbox
from grader import paths

ASSIGNMENTS_DIR, REFERENCE_DIR = paths.assignments_dir(), paths.reference_dir()
PROJECT_ROOT = paths.PACKAGE_ROOT

pytestmark = [pytest.mark.hostile,
              pytest.mark.skipif(not sandbox.bwrap_path(), reason="bubblewrap unavailable")]

REPO = Path(__file__).resolve().parents[1]


notebook = nf.of_cells


@pytest.mark.parametrize("view", list(sandbox.View))
def test_no_view_shows_secrets_or_data(view, data_dir):
    """Nothing bound lies in them; what is bound around them (/usr) has them hidden."""
    ops = sandbox.plan(sandbox.Mounts(view=view))
    binds = [op for op in ops if op.kind in ("ro", "rw")]
    hidden = {op.dest for op in ops if op.kind == "hide"}
    secret = [REFERENCE_DIR, ASSIGNMENTS_DIR, data_dir.resolve(), Path("/usr/share/datasets"),
              Path.home() / ".keras", Path.home() / ".cache"]
    for folder in (f.resolve() for f in secret if f.exists()):
        for op in binds:
            source = Path(op.source)
            assert not (source == folder or folder in source.parents), (op, folder)
            if source in folder.parents:
                assert str(Path(op.dest) / folder.relative_to(source)) in hidden, (op, folder)
    assert "/" not in {op.source for op in binds} and str(Path.home()) not in \
        {op.source for op in binds}


def test_the_kernel_view_leaves_the_trusted_side_out():
    sources = {op.source for op in sandbox.plan(sandbox.Mounts(view=sandbox.View.KERNEL))}
    package = sandbox.GRADER_PACKAGE
    assert str(package / "kernel") in sources and str(package) not in sources
    assert not any(s.startswith(str(package / "checks")) for s in sources)


def test_the_numpy_view_hides_every_other_package():
    ops = sandbox.plan(sandbox.Mounts(view=sandbox.View.NUMPY))
    hidden = {op.dest for op in ops if op.kind == "hide"}
    numpy_dir = Path(importlib.util.find_spec("numpy").origin).resolve().parent
    assert str(numpy_dir.parent) in hidden  # site-packages
    assert str(numpy_dir) in {op.dest for op in ops if op.kind == "ro"}


@pytest.mark.slow
def test_copies_of_the_reference_and_of_a_dataset_are_not_readable(tmp_path, data_dir):
    """Another checkout's reference/ and a dataset copied elsewhere on the machine (outside /tmp
    too) are simply not in the kernel's view, nor the trusted side of the grader's package."""
    elsewhere = Path(tempfile.mkdtemp(prefix="grader-test-copy-", dir="/var/tmp"))
    try:
        shutil.copytree(REFERENCE_DIR / "fashion-mlp", elsewhere / "reference" / "fashion-mlp")
        shutil.copytree(data_dir / "fashion-mnist", elsewhere / "data" / "fashion-mnist")
        shutil.copytree(REFERENCE_DIR / "fashion-mlp", tmp_path / "copy" / "reference")
        paths = [elsewhere / "reference" / "fashion-mlp" / "thresholds.json",
                 elsewhere / "data" / "fashion-mnist", tmp_path / "copy" / "reference",
                 REFERENCE_DIR, ASSIGNMENTS_DIR, data_dir,
                 Path("/usr/share/datasets/fashion-mnist"),
                 PROJECT_ROOT / "grader" / "checks", Path.home() / ".cache",
                 *[p / "reference" for p in PROJECT_ROOT.parent.iterdir() if p != PROJECT_ROOT]]
        probe = (f"import os\nseen = [p for p in {[str(p) for p in paths]!r} "
                 "if os.path.exists(p)]\nassert not seen, seen\n"
                 "try:\n    import grader.checks\nexcept ImportError:\n    pass\n"
                 "else:\n    raise AssertionError('the trusted side is importable')")
        result = pipeline.grade(notebook(tmp_path / "nb" / "a.ipynb", probe),
                                spec.load("numpy-backprop"), pipeline.Options(sandbox="bwrap"))
    finally:
        shutil.rmtree(elsewhere, ignore_errors=True)
    assert result.sandbox == "bwrap" and result.execution.status == "completed"
    assert result.cell_errors == [], result.cell_errors[0].evalue


@pytest.mark.slow
def test_data_reached_through_a_symlink(tmp_path, data_dir):
    """A --data-dir whose dataset folder is a link elsewhere (bwrap cannot mount on a link)."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "fashion-mnist").symlink_to(data_dir / "fashion-mnist")
    result = pipeline.grade(notebook(tmp_path / "nb" / "a.ipynb", "x = 1",
                                     assignment="fashion-mlp"),
                            spec.load("fashion-mlp"), pipeline.Options(data_dir=tmp_path / "data"))
    assert not result.grader_error, result.execution
    assert result.execution.status == "completed" and result.data.train > 0


def _copy_project(dest: Path) -> Path:
    """The project as a fresh clone would be, under /tmp, made read-only."""
    for name in ("grader", "assignments", "reference", "pyproject.toml"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, dest / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.npz", "*.keras"))
        else:
            shutil.copy2(source, dest / name)
    for folder, dirs, files in os.walk(dest):
        for name in dirs + files:
            path = Path(folder) / name
            path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    return dest


def _check(python: str, cwd: Path, notebook_path: Path, out: Path, *args: str,
           env: dict[str, str] | None = None) -> dict:
    run = subprocess.run([python, "-m", "grader.cli", "check", str(notebook_path), "--out",
                          str(out), "--sandbox", "bwrap", *args], cwd=cwd,
                         env={**os.environ, **(env or {})}, capture_output=True, text=True,
                         timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads((out / "result.json").read_text())


@pytest.fixture
def writable_again():
    made: list[Path] = []
    yield made
    for top in made:  # let pytest remove its temporary folder
        for folder, dirs, _ in os.walk(top):
            for name in dirs:
                (Path(folder) / name).chmod(0o755)
        top.chmod(0o755)


@pytest.mark.slow
def test_a_read_only_clone_under_tmp_grades_the_numpy_reference(tmp_path, writable_again):
    """The README's habit: grade from a fresh clone under /tmp; read-only here as well."""
    clone = _copy_project(tmp_path / "clone")
    writable_again.append(clone)
    clone.chmod(0o555)
    result = _check(sys.executable, clone, clone / "reference" / "numpy-backprop" /
                    "numpy-backprop-solution.ipynb", tmp_path / "report")
    assert result["sandbox"] == "bwrap" and result["score"] == result["max_score"] == 10


def _fresh_venv(where: Path) -> Path:
    """A new venv, not --system-site-packages: what it imports comes only through its own
    site-packages, as after `pip install` into it. A .pth there lists the running environment's
    packages, so nothing is downloaded; only a process that runs the venv's own interpreter
    (and so reads its pyvenv.cfg) finds them, the base binary behind its link does not."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True,
                   timeout=300)
    inner = subprocess.run([str(where / "bin" / "python"), "-c",
                            "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                           check=True, capture_output=True, text=True).stdout.strip()
    outer = [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
    (Path(inner) / "outer-environment.pth").write_text("\n".join(outer + [str(REPO)]) + "\n")
    return where / "bin" / "python"


@pytest.mark.slow
def test_a_fresh_venv_sees_only_its_own_packages(tmp_path):
    """The premise of the venv tests: the base interpreter behind the venv's link has none of
    the grader's packages, so a process started by that binary could not grade."""
    python = _fresh_venv(tmp_path / "venv")
    probe = "import nbclient, keras; print('ok')"
    assert subprocess.run([str(python), "-c", probe], capture_output=True, text=True,
                          cwd=tmp_path).stdout.strip() == "ok"
    base = os.path.realpath(python)
    lost = subprocess.run([base, "-I", "-c", probe], capture_output=True, text=True)
    assert lost.returncode != 0 and "ModuleNotFoundError" in lost.stderr


@pytest.mark.slow
def test_a_venv_under_tmp_grades_the_numpy_reference(tmp_path):
    python = _fresh_venv(tmp_path / "venv")
    result = _check(str(python), REPO, spec.load("numpy-backprop").reference, tmp_path / "report")
    assert result["sandbox"] == "bwrap" and result["score"] == 10


@pytest.mark.slow
def test_a_venv_under_tmp_grades_a_subclassed_model(tmp_path, mnist_dir):
    """Every process the grader starts runs the venv's interpreter: the subclassed mnist-cnn
    reference is retrained in the Keras clean room, which must import TensorFlow from the venv."""
    python = _fresh_venv(tmp_path / "venv")
    result = _check(str(python), REPO, spec.load("mnist-cnn").reference, tmp_path / "report",
                    "--data-dir", str(mnist_dir))
    assert result["sandbox"] == "bwrap" and result["execution"]["status"] == "completed"
    kinds = {c.id: c.kind for c in spec.load("mnist-cnn").checks}
    checks = {c["id"]: c for c in result["checks"]}
    timed = [c for i, c in checks.items() if kinds[i] == "timed_training"]
    assert timed and all(c["status"] == "passed" for c in timed), timed
    automatic = [c for i, c in checks.items() if kinds[i] != "manual"]
    assert all(c["points"] == c["max_points"] for c in automatic), \
        [(c["id"], c["message"]) for c in automatic if c["points"] != c["max_points"]]


@pytest.mark.slow
def test_a_read_only_clone_with_keras_home_through_symlinks(tmp_path, data_dir, writable_again):
    """Keras models from a read-only clone under /tmp, the dataset in a $KERAS_HOME that is a
    link to a folder whose dataset is a link too: the kernel and the measuring process start."""
    clone = _copy_project(tmp_path / "clone")
    writable_again.append(clone)
    real_home = tmp_path / "keras-real"
    (real_home / "datasets").mkdir(parents=True)
    (real_home / "datasets" / "fashion-mnist").symlink_to(data_dir / "fashion-mnist")
    (tmp_path / "keras-home").symlink_to(real_home)
    path = nf.write(nf.untrained_model(), tmp_path / "nb" / "untrained.ipynb")
    result = _check(sys.executable, clone, path, tmp_path / "report",
                    env={"KERAS_HOME": str(tmp_path / "keras-home"), "GRADER_OFFLINE": "1"})
    assert "keras-home" in result["data"]["source"], result["data"]
    checks = {c["id"]: c for c in result["checks"]}
    for check in ("model-layers", "model-activations", "model-params"):
        assert checks[check]["status"] == "passed", checks[check]["message"]


def test_mounts_come_parents_first(tmp_path):
    """A folder bound under /tmp after /tmp's tmpfs, a hidden folder before what is shown again
    inside it, every tmpfs before the binds under it."""
    work, out = tmp_path / "work", tmp_path / "private" / "out"
    for folder in (work, out, tmp_path / "data" / "secret"):
        folder.mkdir(parents=True)
    ops = sandbox.plan(sandbox.Mounts(writable=[out], readable=[tmp_path / "data"],
                                      hidden=[tmp_path / "data" / "secret"], private=[work],
                                      view=sandbox.View.NUMPY))
    for i, op in enumerate(ops):
        for later in ops[i + 1:]:
            assert not Path(op.dest).is_relative_to(later.dest) or op.dest == later.dest, \
                (op, later)
    dests = [op.dest for op in ops]
    assert dests.index("/tmp") < min(dests.index(str(out)), dests.index(str(work)))


def test_a_folder_whose_name_extends_another_is_not_inside_it(tmp_path):
    """Mount paths are compared as strings: /data/mnist-extra is not under /data/mnist, so
    hiding the one leaves the other shown."""
    assert sandbox._under("/data/mnist/train", "/data/mnist")
    assert sandbox._under("/data/mnist", "/data/mnist")
    assert not sandbox._under("/data/mnist-extra", "/data/mnist")
    assert sandbox._under("/anything", "/")
    shown, beside = tmp_path / "ds", tmp_path / "ds-extra"
    for folder in (shown, beside):
        folder.mkdir()
    ops = sandbox.plan(sandbox.Mounts(readable=[shown, beside], hidden=[beside],
                                      view=sandbox.View.NUMPY))
    hides = {op.dest for op in ops if op.kind == "hide"}
    assert {str(shown), str(beside)} <= {op.dest for op in ops if op.kind == "ro"}
    assert str(beside) in hides and str(shown) not in hides
