"""The GitHub Action's grading step, run as GitHub's runner would, offline."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
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


@pytest.mark.slow
def test_grade_step_writes_summary_and_classroom_result(tmp_path, data_dir):
    notebook = tmp_path / "fashion-mlp.ipynb"
    shutil.copy(REPO / "assignments" / "fashion-mlp" / "fashion-mlp.ipynb", notebook)
    github_output, summary = tmp_path / "output", tmp_path / "summary.md"
    env = {**os.environ, "NOTEBOOK": str(notebook), "OUT": str(tmp_path / "report"),
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
