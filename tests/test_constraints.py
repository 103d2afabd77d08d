"""reference/<id>/constraints.txt: the Python and package versions calibration ran with."""

from __future__ import annotations

import importlib.metadata as metadata
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from grader.instructor import constraints

REPO = Path(__file__).resolve().parents[1]


def test_every_dependency_is_pinned_to_the_installed_version():
    pins = constraints.pinned()
    for text in metadata.distribution("dl-grader").requires:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue  # the test extra
        name = canonicalize_name(req.name)
        assert pins[name] == metadata.version(req.name), name
    # ... and what they need in turn (TensorFlow's own dependencies), but not the grader itself.
    assert "protobuf" in pins and "ml-dtypes" in pins
    assert "dl-grader" not in pins and "pytest" not in pins


def test_the_file_says_which_python():
    text = constraints.render("lenet5")
    assert constraints.python_version(text) == platform.python_version()
    lines = [l for l in text.splitlines() if l and not l.startswith("#")]
    assert lines and all(Requirement(l).specifier and "==" in l for l in lines)
    names = [Requirement(l).name for l in lines]
    assert names == sorted(names)


def test_calibrate_constraints_only_writes_the_assignments_file(tmp_path):
    home = tmp_path / "home"
    shutil.copytree(REPO / "assignments" / "numpy-backprop", home / "assignments" / "numpy-backprop")
    (home / "reference" / "numpy-backprop").mkdir(parents=True)
    proc = subprocess.run([sys.executable, "-m", "grader.cli", "calibrate", "-a", "numpy-backprop",
                           "--constraints-only"], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "GRADER_HOME": str(home)}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    written = home / "reference" / "numpy-backprop" / "constraints.txt"
    assert "tensorflow==" in written.read_text()
    assert "python " + platform.python_version() in written.read_text()
