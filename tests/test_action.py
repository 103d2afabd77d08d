"""The GitHub Action's grading step, run as GitHub's runner would, offline."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
REPORTER_TEST_KEYS = {"name", "status", "score", "message", "test_code", "filename", "line_no",
                      "duration"}


def outputs(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def test_action_yml_runs_the_tested_script():
    action = yaml.safe_load((REPO / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    grade = next(s for s in action["runs"]["steps"] if s.get("id") == "grade")
    assert "action/grade.sh" in grade["run"]
    assert set(grade["env"]) >= {"NOTEBOOK", "ASSIGNMENT", "EXTRA_ARGS", "OUT"}
    assert action["outputs"]["result"]["value"] == "${{ steps.grade.outputs.result }}"
    example = yaml.safe_load((REPO / "examples" / "classroom.yml").read_text())
    steps = example["jobs"]["grade"]["steps"]
    runner = next(s for s in steps if "grading-reporter" in str(s.get("uses")))
    graded = runner["with"]["runners"]
    # The reporter reads <RUNNER-ID upper-cased>_RESULTS.
    assert f"{graded.upper()}_RESULTS" in runner["env"]
    assert any(s.get("id") == graded for s in steps)
    # The reporter runs when grading failed too: the result then says why.
    assert runner["if"] == "always()"
    # The sandbox is required (SANDBOX defaults to bwrap), and AppArmor is dealt with first.
    assert action["inputs"]["sandbox"]["default"] == "bwrap"
    assert grade["env"]["SANDBOX"] == "${{ inputs.sandbox }}"
    names = [s.get("name") for s in action["runs"]["steps"]]
    userns = next(s for s in action["runs"]["steps"] if "allow-userns.sh" in str(s.get("run")))
    assert names.index(userns["name"]) < names.index(grade["name"])
    assert 'args=(check "$NOTEBOOK" --out "$OUT" --sandbox "${SANDBOX:-bwrap}")' in \
        (REPO / "action" / "grade.sh").read_text()


def grader_on_path(tmp_path: Path) -> dict[str, str]:
    """`grader` as action.yml installs it, from this checkout (not another installed copy)."""
    shim = tmp_path / "shim"
    shim.mkdir(exist_ok=True)
    (shim / "grader").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m grader.cli "$@"\n')
    (shim / "grader").chmod(0o755)
    # A python3 on PATH without the grader's packages, as in a venv that is not activated: the
    # step must use the grader's own Python (`grader --python`), never this one.
    (shim / "python3").write_text("#!/bin/sh\necho 'not the grader python' >&2\nexit 97\n")
    (shim / "python3").chmod(0o755)
    return {"PATH": f"{shim}:{os.environ['PATH']}", "PYTHONPATH": str(REPO)}


def run_step(tmp_path: Path, env: dict[str, str], cwd: Path) -> tuple[subprocess.CompletedProcess,
                                                                    dict[str, str], Path]:
    github_output, summary = tmp_path / "output", tmp_path / "summary.md"
    path = grader_on_path(tmp_path)
    if "PATH" in env:  # the test's own programs come first
        env = {**env, "PATH": f"{env['PATH'].split(':')[0]}:{path['PATH']}"}
    full = {**os.environ, **path, "OUT": str(tmp_path / "report"),
            "GITHUB_OUTPUT": str(github_output), "GITHUB_STEP_SUMMARY": str(summary), **env}
    run = subprocess.run(["bash", str(REPO / "action" / "grade.sh")], env=full, cwd=cwd,
                         capture_output=True, text=True, timeout=600)
    return run, outputs(github_output) if github_output.exists() else {}, summary


def test_a_missing_notebook_still_gets_a_result_with_the_reason(tmp_path):
    repo = tmp_path / "student"
    (repo / "hw").mkdir(parents=True)
    (repo / "hw" / "Fashion MLP (1).ipynb").write_text("{}")  # renamed by the student
    run, out, summary = run_step(tmp_path, {"NOTEBOOK": "fashion-mlp.ipynb",
                                            "ASSIGNMENT": "fashion-mlp"}, repo)
    assert run.returncode == 0, run.stderr[-2000:]  # the student's to fix: the reporter fails it
    assert "::error::fashion-mlp.ipynb was not graded" in run.stdout
    payload = json.loads(base64.b64decode(out["result"]))
    assert payload["status"] == "error" and payload["max_score"] == 16
    assert sum(t["score"] for t in payload["tests"]) == 0 and len(payload["tests"]) == 16
    message = payload["tests"][0]["message"]
    assert "fashion-mlp.ipynb is not in the repository" in message
    assert "hw/Fashion MLP (1).ipynb" in message
    assert out["score"] == "0" and out["max-score"] == "16"
    assert "is not in the repository" in summary.read_text()
    assert (tmp_path / "report" / "report.html").is_file()
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(json.loads((tmp_path / "report" / "result.json").read_text()),
                        json.loads((REPO / "schemas" / "result.schema.json").read_text()))


def test_a_notebook_of_another_assignment_scores_zero_with_the_graders_words(tmp_path):
    repo = tmp_path / "student"
    repo.mkdir()
    shutil.copy(REPO / "assignments" / "numpy-backprop" / "numpy-backprop.ipynb",
                repo / "fashion-mlp.ipynb")
    run, out, _ = run_step(tmp_path, {"NOTEBOOK": "fashion-mlp.ipynb",
                                      "ASSIGNMENT": "fashion-mlp"}, repo)
    assert run.returncode == 0, run.stderr[-2000:]
    payload = json.loads(base64.b64decode(out["result"]))
    assert payload["max_score"] == 16 and sum(t["score"] for t in payload["tests"]) == 0
    assert "is a notebook of 'numpy-backprop'" in payload["tests"][0]["message"]


def test_an_unusable_sandbox_is_a_grader_error_never_an_unsandboxed_grade(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "bwrap").write_text("#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\n"
                                "exit 1\n")
    (fake / "bwrap").chmod(0o755)
    knob = tmp_path / "apparmor_restrict_unprivileged_userns"
    knob.write_text("1\n")
    repo = tmp_path / "student"
    repo.mkdir()
    shutil.copy(REPO / "assignments" / "numpy-backprop" / "numpy-backprop.ipynb", repo)
    run, out, summary = run_step(tmp_path, {
        "NOTEBOOK": "numpy-backprop.ipynb", "ASSIGNMENT": "numpy-backprop",
        "PATH": f"{fake}:{os.environ['PATH']}", "USERNS_SYSCTL_FILE": str(knob)}, repo)
    assert run.returncode == 3, run.stdout[-2000:] + run.stderr[-2000:]
    assert "::error::the grader failed, not the notebook" in run.stdout
    assert "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0" in run.stdout
    payload = json.loads(base64.b64decode(out["result"]))
    # Nothing for Classroom to record (max_score 0), and the cause in the log and summary.
    assert payload["max_score"] == 0 and payload["status"] == "error"
    assert "bwrap" in payload["tests"][-1]["message"]
    assert out["score"] == ""
    result = json.loads((tmp_path / "report" / "result.json").read_text())
    assert result["execution"]["status"] == "grader_error" and result["score"] is None
    assert "GRADER ERROR" in run.stderr or "not graded" in summary.read_text() + run.stdout


@pytest.mark.parametrize("value, expect_call", [("1\n", True), ("0\n", False), (None, False)])
def test_apparmor_userns_restriction_is_lifted_for_the_job(tmp_path, value, expect_call):
    knob = tmp_path / "knob"
    if value is not None:
        knob.write_text(value)
    calls = tmp_path / "calls"
    sudo = tmp_path / "sudo"
    sudo.write_text(f"#!/bin/sh\necho \"$@\" >> {calls}\n")
    sudo.chmod(0o755)
    run = subprocess.run(["bash", str(REPO / "action" / "allow-userns.sh")], capture_output=True,
                         text=True, timeout=60,
                         env={**os.environ, "USERNS_SYSCTL_FILE": str(knob), "SUDO": str(sudo)})
    assert run.returncode == 0
    if expect_call:
        assert calls.read_text().split() == ["sysctl", "-w",
                                             "kernel.apparmor_restrict_unprivileged_userns=0"]
    else:
        assert not calls.exists()


def test_a_failed_sysctl_is_said_loudly(tmp_path):
    knob = tmp_path / "knob"
    knob.write_text("1\n")
    run = subprocess.run(["bash", str(REPO / "action" / "allow-userns.sh")], capture_output=True,
                         text=True, timeout=60,
                         env={**os.environ, "USERNS_SYSCTL_FILE": str(knob), "SUDO": "false"})
    assert run.returncode == 0  # grading decides: --sandbox bwrap makes it a grader error
    assert run.stdout.splitlines()[-1].startswith("::error::could not run sudo sysctl")


@pytest.mark.slow
def test_grade_step_writes_summary_and_classroom_result(tmp_path, data_dir):
    notebook = tmp_path / "fashion-mlp.ipynb"
    shutil.copy(REPO / "assignments" / "fashion-mlp" / "fashion-mlp.ipynb", notebook)
    github_output, summary = tmp_path / "output", tmp_path / "summary.md"
    env = {**os.environ, **grader_on_path(tmp_path), "NOTEBOOK": str(notebook),
           "OUT": str(tmp_path / "report"),
           "EXTRA_ARGS": f"--data-dir {data_dir}", "GITHUB_OUTPUT": str(github_output),
           "GITHUB_STEP_SUMMARY": str(summary)}
    run = subprocess.run(["bash", str(REPO / "action" / "grade.sh")], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    # Student text is printed between ::stop-commands::TOKEN and ::TOKEN::.
    token = re.search(r"::stop-commands::([0-9a-f]{32})", run.stdout).group(1)
    assert f"::{token}::" in run.stdout
    out = outputs(github_output)
    assert out["score"] == "0" and out["max-score"] == "16"
    payload = json.loads(base64.b64decode(out["result"]))
    assert set(payload) == {"version", "status", "max_score", "tests"}
    assert payload["version"] == 1 and payload["status"] in ("fail", "error")
    assert payload["max_score"] == 16
    assert payload["tests"] and all(set(t) == REPORTER_TEST_KEYS for t in payload["tests"])
    assert sum(t["score"] for t in payload["tests"]) == 0
    assert "no variable `model`" in summary.read_text()
    assert (tmp_path / "report" / "report.html").is_file()


def test_a_grader_that_stopped_before_grading_records_no_grade(tmp_path):
    """Exit 3 with no result.json (a package the assignment declares does not import, say)."""
    errors = tmp_path / "stderr"
    errors.write_text("grader: grader error (nothing was graded): the kernel's interpreter "
                      "cannot import sklearn: pip install scikit-learn\n")
    proc = subprocess.run([sys.executable, str(REPO / "action" / "not_graded.py"), "--out",
                           str(tmp_path / "out"), "--notebook", "fashion-mlp.ipynb",
                           "--assignment", "fashion-mlp", "--exit-status", "3", "--stderr",
                           str(errors), "--workspace", str(tmp_path)], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["execution"]["status"] == "grader_error" and result["score"] is None
    assert "pip install scikit-learn" in result["execution"]["message"]
    from grader.reports.classroom import classroom_payload
    assert classroom_payload(result)["max_score"] == 0  # Classroom records nothing
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(result, json.loads((REPO / "schemas" / "result.schema.json").read_text()))
