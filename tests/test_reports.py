"""Reports rendered from a result dict: HTML (escaped, architecture diff, charts), Markdown,
Gradescope results.json, the GitHub Classroom payload, and a headless-Chromium screenshot."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from grader.reports import FORMATS, render, write_all
from grader.reports.classroom import classroom_payload, to_classroom
from grader.reports.gradescope import to_gradescope
from grader.reports.html import render_html
from grader.reports.markdown import render_markdown
from grader.result import GradeResult
from result_factory import result_json

REPO = Path(__file__).resolve().parents[1]
EVIL = "<script>alert('pwned')</script>"


def _layer(cls, units, act, params, inputs):
    return {"class": cls, "output_shape": [None, units], "params": params, "activation": act,
            "config": {"units": units, "use_bias": True},
            "weights": [{"shape": [inputs, units]}, {"shape": [units]}]}


def sample_result() -> dict:
    """A fabricated fashion-mlp result with every status and every report feature."""
    comparison = [
        {"expected": "Dense(128, relu)", "found": "Dense(128, relu)", "expected_shape": "(None, 128)",
         "found_shape": "(None, 128)", "found_params": 100480, "match": True},
        {"expected": "Dense(64, relu)", "found": "Dense(32, relu)", "expected_shape": "(None, 64)",
         "found_shape": "(None, 32)", "found_params": 4128, "match": False},
        {"expected": None, "found": "Dropout(rate 0.5)", "expected_shape": None,
         "found_shape": "(None, 32)", "found_params": 0, "match": False},
        {"expected": "Dense(10, softmax)", "found": "Dense(10, softmax)",
         "expected_shape": "(None, 10)", "found_shape": "(None, 10)", "found_params": 330,
         "match": True},
    ]
    checks = [
        {"id": "model-layers", "title": "Layers in order: Dense 128 → Dense 64 → Dense 10",
         "points": 1.0, "max_points": 3, "status": "partial",
         "message": "layer 2: expected Dense(64, relu), found Dense(32, relu); layer 3: unexpected "
                    "extra Dropout(rate 0.5). Found: Dense(128, relu) → Dense(32, relu) → "
                    "Dropout(rate 0.5) → Dense(10, softmax)",
         "details": {"variant": "reference", "comparison": comparison}},
        {"id": "model-activations", "title": "Activations: relu, relu, softmax", "points": 2.0,
         "max_points": 2, "status": "passed", "message": "activations match: relu, relu, softmax",
         "details": {}},
        {"id": "model-params", "title": "Total parameters (109,386)", "points": 0.0,
         "max_points": 1, "status": "failed", "message": "expected 109,386 parameters, found 104,938",
         "details": {}},
        {"id": "model-loss", "title": "Loss suits the softmax output and the label encoding",
         "points": 0.0, "max_points": 1, "status": "failed",
         "message": f"loss {EVIL!r} does not suit a 10-class classifier | @octocat [x](http://e.vil)",
         "details": {}},
        {"id": "model-optimizer", "title": "Optimizer is Adam", "points": 0.0, "max_points": 1,
         "status": "error", "message": "the grader failed on this check (KeyError: 'optimizer'); "
                                       "ask your TA to review it\n::error::fake annotation",
         "details": {}},
        {"id": "model-accuracy", "title": "Accuracy of the trained model on the grader's private images",
         "points": 5.0, "max_points": 5, "status": "passed",
         "message": "measured 0.861 on 2,000 private images (pixels scaled to [0, 1]); expected at "
                    "least 0.820", "details": {"accuracy": 0.861, "threshold": 0.82, "scaling": "unit"}},
        {"id": "model-timed-training", "title": "Does the design learn? The grader trains it from scratch",
         "points": 1.2, "max_points": 2, "status": "partial",
         "message": "measured 0.793 after 5 epochs of the grader's training (1.8 s/epoch); expected "
                    "at least 0.810 (partial credit between 0.455 and 0.810)",
         "details": {"accuracy": 0.793, "threshold": 0.81, "kind": "timed_training"}},
        {"id": "q2-1", "title": "2.1 Why does dropout help?", "points": 0.0, "max_points": 4,
         "status": "manual", "message": "awaiting TA grading; answer begins: Dropout <b>prevents</b>",
         "details": {"question": "2.1", "answer": "Dropout <b>prevents</b> co-adaptation.\n\n"
                                                  f"Second paragraph {EVIL} & more."}},
    ]
    layers = [_layer("Dense", 128, "relu", 100480, 784), _layer("Dense", 32, "relu", 4128, 128),
              {"class": "Dropout", "output_shape": [None, 32], "params": 0, "activation": None,
               "config": {"rate": 0.5}, "weights": []},
              _layer("Dense", 10, "softmax", 330, 32)]
    return {
        "assignment": "fashion-mlp", "assignment_title": "Fashion-MNIST: a 128-64-10 feed-forward network",
        "assignment_version": "1-3f2a9c", "notebook": "submissions/alice/fashion-mlp.ipynb",
        "notebook_sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "score": round(sum(c["points"] for c in checks), 2), "max_score": 19.0, "checks": checks,
        "models": {"model": {
            "status": "found", "type": "keras.src.models.sequential.Sequential", "kind": "sequential",
            "layers": layers, "total_params": 104938,
            "compile": {"compiled": True, "loss": "categorical_crossentropy", "from_logits": False,
                        "optimizer": "Adam", "learning_rate": 0.001, "train_steps": 235},
            "input_layout": [784],
            "timed_training": {"status": "trained", "epochs_run": 5,
                               "seconds_per_epoch": [2.41, 1.72, 1.69, 1.70, 1.75],
                               "stopped_by_time": False,
                               "loss": [0.912, 0.561, 0.498, 0.463, 0.437],
                               "train_accuracy": [0.688, 0.801, 0.826, 0.838, 0.846],
                               "seconds": 11.3, "seed": 0}}},
        "execution": {"status": "completed", "message": "", "harvested": True},
        "cell_errors": [
            {"cell": 6, "execution_count": 5, "ename": "NameError",
             "evalue": "name 'x_tset' is not defined", "line": 3,
             "traceback": "\x1b[0;31mNameError\x1b[0m Traceback (most recent call last)\n"
                          "Cell In[5], line 3\n----> 3 model.evaluate(x_tset, y_test)\n"
                          "NameError: name 'x_tset' is not defined"},
            {"cell": 9, "execution_count": 8, "ename": "ValueError", "evalue": EVIL, "line": None,
             "traceback": f"ValueError: {EVIL}"},
        ],
        "data": {"dataset": "fashion-mnist", "mode": "subset", "seed": 2026, "train": 6000,
                 "test": 1000, "holdout": 2000, "source": "/usr/share/datasets/fashion-mnist"},
        "timings": {"kernel_start": 1.92, "execute": 38.4, "harvest": 2.1, "timed_training": 11.3,
                    "grade": 0.05, "total": 54.1},
        "grader_version": "0.1.0", "sandbox": "bwrap", "unchanged_starter": False,
        "limits": None, "schema_version": 1,
    }


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)


def test_html_escapes_untrusted_text():
    page = render_html(sample_result())
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(" in page
    assert "<b>prevents</b>" not in page and "&lt;b&gt;prevents&lt;/b&gt;" in page
    parser = _Collector()
    parser.feed(page)
    assert "script" not in parser.tags
    # No network: nothing loads from elsewhere, and the policy forbids it anyway.
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "").replace("http://e.vil", "")
    assert "default-src 'none'" in page


def test_html_architecture_rows_and_differences():
    page = render_html(sample_result())
    for label in ("Dense(128, relu)", "Dense(64, relu)", "Dense(32, relu)", "Dropout(rate 0.5)",
                  "Dense(10, softmax)"):
        assert label in page
    assert page.count('class="k-match"') == 2
    assert page.count('class="k-differs"') == 1 and page.count('class="k-extra"') == 1
    # The differing cells themselves are marked, not only the row.
    assert '<td class="diff">Dense(64, relu)</td>' in page
    assert '<td class="diff">(None, 32)</td>' in page
    assert "≠ differs" in page and "+ extra" in page


def test_html_header_charts_errors_and_answers():
    page = render_html(sample_result())
    assert "9.2" in page and "19" in page and "bwrap" in page and "54.1 s" in page
    assert page.count("<svg") >= 4  # loss, accuracy, two gauges
    assert "<polyline" in page and "threshold 0.810" in page and "holdout 0.793" in page
    assert "cell 7" in page and "line 3" in page and "NameError" in page
    assert "\x1b" not in page  # ANSI colour codes stripped from tracebacks
    assert "Dropout &lt;b&gt;prevents&lt;/b&gt; co-adaptation." in page
    for status in ("passed", "partial", "failed", "error", "manual"):
        assert f'class="row-{status}"' in page


def test_html_tolerates_a_sparse_result():
    # as an older grader wrote it: no models, cell errors, data, timings, limits, sandbox
    page = render_html(result_json([{"id": "a", "status": "error", "message": "boom"}],
                                   execution={"status": "timeout",
                                              "message": "the notebook ran past 900 s"}))
    assert "boom" in page and "did not run to the end (timeout)" in page


def test_html_diverged_training_and_reconstruction_gauge():
    result = sample_result()
    result["models"]["model"]["timed_training"]["loss"] = [float("nan"), 2.5, float("inf"), 1.0, 0.9]
    result["checks"].append({"id": "ae-recon", "title": "Reconstruction error", "points": 2,
                             "max_points": 2, "status": "passed", "message": "k=32: ...",
                             "details": {"mse": 0.0123, "threshold": 0.015, "k": 32}})
    page = render_html(result)
    points = re.findall(r'<polyline points="([^"]*)"', page)
    assert points and not any("nan" in p or "inf" in p for p in points)
    assert len(points[0].split()) == 3  # the two non-finite epochs are left out
    assert "reconstruction error 0.0123 (≤ 0.0150 expected)" in page


def test_html_groups_checks_by_model_when_details_name_it():
    from grader.reports.html import model_views

    result = sample_result()
    result["models"]["cnn"] = dict(result["models"]["model"], timed_training=None)
    views = {v["name"]: v for v in model_views(GradeResult.model_validate(result))}
    assert views[None]["comparisons"]  # two models and no `object` in details: not guessed
    result["checks"][0]["details"]["object"] = "model"
    views = {v["name"]: v for v in model_views(GradeResult.model_validate(result))}
    assert views["model"]["comparisons"] and not views["cnn"]["comparisons"]


def test_markdown_table_and_details():
    text = render_markdown(sample_result())
    rows = [l for l in text.splitlines() if l.startswith("| ")]
    result = sample_result()
    for check in result["checks"]:
        assert any(f" {check['status']} |" in row for row in rows), check["id"]
    assert any("**total**" in row and "**9.2**" in row and "**19**" in row for row in rows)
    # Each table row has exactly the header's columns: escaped pipes do not split cells.
    header = next(l for l in text.splitlines() if l.startswith("| | check"))
    for row in rows[:len(result["checks"]) + 1]:
        assert row.replace("\\|", "").count("|") == header.count("|")
    assert "<script" not in text and "&lt;script&gt;" in text
    assert "@octocat" not in text and "\\[x\\]" in text
    assert "<details><summary>💥 Optimizer is Adam" in text
    assert "<details><summary>In [5] (cell 7), line 3: NameError" in text
    assert "| 2 | Dense(64, relu) (None, 64) | Dense(32, relu) (None, 32) | **≠ differs** |" in text


def test_markdown_is_safe_for_github_and_bounded():
    result = sample_result()
    text = render_markdown(result)
    lines = text.splitlines()
    assert lines[lines.index(next(l for l in lines if l.startswith("| | check"))) - 1] == ""
    assert "::error::" not in text  # a job log would run it as a workflow command
    result["cell_errors"] = [dict(result["cell_errors"][0], cell=i, traceback="x" * 50_000)
                             for i in range(60)]
    result["checks"][0]["message"] = "y" * 100_000
    long = render_markdown(result)
    assert len(long) <= 60_000 and "… and 40 more" in long


def test_gradescope_schema():
    result = sample_result()
    out = to_gradescope(result)
    assert set(out) >= {"score", "execution_time", "output", "tests"}
    assert out["score"] == pytest.approx(result["score"])
    assert sum(t["score"] for t in out["tests"]) == pytest.approx(out["score"])
    assert isinstance(out["execution_time"], int)
    for test in out["tests"]:
        assert {"name", "score", "max_score", "output", "visibility"} <= set(test)
        assert test["visibility"] == "visible"
        assert test["score"] <= test["max_score"] or test["max_score"] == 0
    graded = [t for t in out["tests"] if "graded by a TA" not in t["name"]]
    assert [t["status"] for t in graded] == ["failed", "passed", "failed", "failed", "failed",
                                             "passed", "failed"]
    assert "Dense(32, relu)" in out["tests"][0]["output"]
    manual = out["tests"][-1]
    assert manual["max_score"] == 0 and "status" not in manual and "co-adaptation" in manual["output"]
    assert "In [5] (cell 7), line 3: NameError" in out["output"]
    json.dumps(out)  # serialisable as is


def test_classroom_payload_schema():
    result = sample_result()
    decoded = json.loads(base64.b64decode(to_classroom(result), validate=True))
    assert decoded == classroom_payload(result)
    assert set(decoded) == {"version", "status", "max_score", "tests"}
    assert decoded["version"] == 1 and decoded["status"] == "error"  # one check errored
    assert decoded["max_score"] == 15.0  # the 4 points of the written answer are not Classroom's
    for test in decoded["tests"]:
        assert set(test) == {"name", "status", "score", "message", "test_code", "filename",
                             "line_no", "duration"}
        assert test["status"] in {"pass", "fail", "error"}
        assert test["filename"] == "fashion-mlp.ipynb"
        assert not any(line.startswith("::") for line in test["message"].splitlines())
    assert sum(t["score"] for t in decoded["tests"]) == pytest.approx(result["score"])
    assert [t["test_code"] for t in decoded["tests"]][-1] == "model-timed-training"


def test_classroom_overall_status():
    result = sample_result()
    for check in result["checks"]:
        if check["status"] != "manual":
            check.update(status="passed", points=check["max_points"])
    assert classroom_payload(result)["status"] == "pass"
    result["checks"][0]["status"] = "partial"
    assert classroom_payload(result)["status"] == "fail"
    result["execution"]["status"] = "timeout"
    assert classroom_payload(result)["status"] == "error"


def test_render_and_write_all(tmp_path):
    result = sample_result()
    for fmt in FORMATS:
        assert render(result, fmt)
    assert json.loads(render(result, "json")) == result
    with pytest.raises(ValueError):
        render(result, "pdf")
    written = write_all(result, tmp_path / "out")
    assert sorted(p.name for p in written.values()) == ["report.html", "report.md", "result.json"]
    assert json.loads((tmp_path / "out" / "result.json").read_text()) == result


def test_templates_are_package_data():
    text = (REPO / "pyproject.toml").read_text()
    assert '"grader.reports" = ["templates/*.j2"]' in text
    assert (REPO / "grader" / "reports" / "templates" / "report.html.j2").is_file()


@pytest.mark.skipif(not (shutil.which("chromium") or shutil.which("chromium-browser")),
                    reason="headless Chromium is not installed")
@pytest.mark.slow
def test_screenshots_of_both_pages_at_1280_and_400_px(tmp_path):
    subprocess.run([sys.executable, str(REPO / "bench" / "screenshot_reports.py"),
                    "--out-dir", str(tmp_path)], check=True, timeout=600, capture_output=True)
    for page in ("report", "summary"):
        for width in (1280, 400):
            data = (tmp_path / f"{page}-{width}.png").read_bytes()
            assert data[:8] == b"\x89PNG\r\n\x1a\n"
            assert int.from_bytes(data[16:20], "big") == width  # the IHDR chunk's width
            assert len(data) > 30_000  # a blank page compresses to a few kilobytes


@pytest.mark.skipif(not (shutil.which("chromium") or shutil.which("chromium-browser")),
                    reason="headless Chromium is not installed")
@pytest.mark.slow
def test_screenshot_of_a_saved_result(tmp_path):
    source = tmp_path / "result.json"
    source.write_text(json.dumps(sample_result()))
    png = tmp_path / "report.png"
    subprocess.run([sys.executable, str(REPO / "bench" / "screenshot_reports.py"), str(source),
                    "--out", str(png)], check=True, timeout=180, capture_output=True)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 30_000


def test_cli_report_rerenders_a_saved_result(tmp_path, capsys):
    from grader.cli import main as cli_main

    saved = tmp_path / "result.json"
    saved.write_text(json.dumps(sample_result()))
    assert cli_main(["report", str(saved), "--format", "gradescope",
                     "--out", str(tmp_path / "results.json")]) == 0
    gradescope = json.loads((tmp_path / "results.json").read_text())
    assert gradescope["score"] == sample_result()["score"]
    assert cli_main(["report", str(saved), "-f", "md"]) == 0
    assert "| check |" in capsys.readouterr().out
    assert cli_main(["report", str(tmp_path / "missing.json"), "-f", "html"]) == 2
    (tmp_path / "bad.json").write_text("{not json")
    assert cli_main(["report", str(tmp_path / "bad.json"), "-f", "html"]) == 2


def sample_class() -> tuple[dict, list[dict]]:
    """A fabricated fashion-mlp class for summary.html: full marks, partial credit, a TA
    override, an unchanged starter, cell errors, a timeout, a grader error, no notebook."""
    from grader.ta import manual_scores
    from grader import assignment as spec

    assignment = spec.load("fashion-mlp")
    info = {"id": assignment.id, "title": assignment.title, "version": "1+3f2a9c1b7d0e",
            "max_score": assignment.max_score,
            "checks": [{"id": c.id, "title": c.title, "max_points": c.points, "kind": c.kind}
                       for c in assignment.checks]}

    def result(points: dict[str, float], status="completed", message="", errors=0,
               starter=False) -> dict:
        checks = []
        for c in assignment.checks:
            got = points.get(c.id, 0.0)
            state = "passed" if got >= c.points else "failed" if got == 0 else "partial"
            checks.append({"id": c.id, "title": c.title, "points": got, "max_points": c.points,
                           "status": state, "message": f"{c.id}: {state}", "details": {}})
        if status == "grader_error":
            checks = []
        return result_json(
            checks, assignment=assignment.id, score=None if status == "grader_error" else
            sum(c["points"] for c in checks), max_score=assignment.max_score,
            execution={"status": status, "message": message},
            cell_errors=[{"cell": i, "execution_count": i, "ename": "NameError",
                          "evalue": "x", "line": 1, "traceback": ""} for i in range(errors)],
            unchanged_starter=starter)

    full = {c.id: c.points for c in assignment.checks}
    partial = {**full, "model-layers": 1.0, "model-params": 0.0, "model-timed-training": 1.2}
    overridden = manual_scores.apply(GradeResult.model_validate(result(
        {**full, "model-layers": 1.0})), [manual_scores.ManualScore(
            "dana", "model-layers", 3, "Dropout before the output layer is fine")]).as_dict()
    students = [
        ("alice", result(full)), ("bob", result(partial, errors=1)), ("dana", overridden),
        ("carol", result({}, errors=3, starter=True)),
        ("erin", result({"model-layers": 3, "model-activations": 2}, "timeout",
                        "the notebook ran past its 900 s limit; cells from cell 14 on were not run",
                        errors=1)),
        ("frank", result({}, "grader_error", "the grader failed, not the notebook: bwrap is "
                                             "not installed")),
        ("grace", result({}, "no_notebook", "no .ipynb file in grace/")),
        ("a-student-with-a-very-long-folder-name", result({**full, "model-accuracy": 2.5})),
    ]
    return info, [{"student": s, "result": r, "report": f"{s}/report.html"}
                  for s, r in students]


# --- what GitHub Classroom's reporter shows -------------------------------------------------------

def reporter_views(payload: dict) -> dict[str, float]:
    """The three numbers classroom-resources/autograding-grading-reporter derives from one
    runner's payload (src/aggregate-results.js, console-results.js, notify-classroom.js)."""
    tests, top = payload["tests"], payload["max_score"]
    passed = sum(1 for t in tests if t["status"] == "pass")
    return {"table": passed / len(tests) * (top or 1), "log_percent": passed / len(tests) * 100,
            "recorded": sum(t["score"] for t in tests), "max": top}


def test_classroom_table_log_and_recorded_grade_agree():
    result = sample_result()
    result["checks"][-2].update(points=1.0, status="partial")  # whole points: exact agreement
    views = reporter_views(classroom_payload(result))
    assert views["recorded"] == pytest.approx(9.0) == pytest.approx(views["table"])
    assert views["log_percent"] == pytest.approx(100 * 9 / 15)
    assert views["max"] == 15
    # A partly passed check is shown as what it earned: 1 of its 3 tests passes.
    names = [(t["name"], t["status"]) for t in classroom_payload(result)["tests"]
             if t["test_code"] == "model-layers"]
    assert [s for _, s in names] == ["pass", "fail", "fail"]
    assert names[0][0].endswith("(1/3)")


def test_classroom_fractional_credit_is_recorded_exactly():
    result = sample_result()  # model-timed-training earned 1.2 of 2
    payload = classroom_payload(result)
    views = reporter_views(payload)
    assert views["recorded"] == pytest.approx(result["score"])  # what Classroom keeps
    assert 0 <= views["recorded"] - views["table"] < 1  # the table shows whole units only
    assert len(payload["tests"]) <= 50


def test_classroom_half_points_make_half_point_tests():
    result = result_json([
        {"id": "a", "title": "A", "points": 1.5, "max_points": 2, "status": "partial",
         "message": "half"},
        {"id": "b", "title": "B", "points": 1, "max_points": 1, "status": "passed", "message": ""}])
    payload = classroom_payload(result)
    assert len(payload["tests"]) == 6  # 0.5 points each
    views = reporter_views(payload)
    assert views["table"] == pytest.approx(views["recorded"]) == pytest.approx(2.5)


def test_classroom_grader_error_records_nothing():
    result = result_json(score=None, max_score=16,
                         execution={"status": "grader_error", "message": "bwrap cannot start"})
    payload = classroom_payload(result)
    # max_score 0: the reporter's notify-classroom.js skips it, so no zero is recorded.
    assert payload["max_score"] == 0 and payload["status"] == "error"
    assert payload["tests"][0]["message"] == "bwrap cannot start"


def test_cell_errors_say_they_cost_nothing_by_themselves():
    from grader.scoring import CELL_ERROR_NOTE

    result = json.loads((Path(__file__).parent / "fixtures" /
                         "fashion-mlp-reference.result.json").read_text())
    result["cell_errors"] = [{"cell": 3, "execution_count": 4, "ename": "ModuleNotFoundError",
                              "evalue": "No module named 'google.colab'", "line": 1,
                              "traceback": "", "note": CELL_ERROR_NOTE}]
    assert "costs no points by itself" in render(result, "html")
    assert "costs no points by itself" in render(result, "md")


def test_a_notebook_with_a_check_the_grader_failed_on_is_shown_as_not_scored_not_as_zero():
    result = sample_result()  # its model-optimizer check is the grader's error
    result["score"] = None
    page = " ".join(render_html(result).split())
    assert "not scored yet" in page and "Not scored yet." in page
    assert "model-optimizer" in page.split("Not scored yet.")[1][:200]
    assert "% of the points" not in page and "0% of the points" not in page


def test_html_names_where_a_pytorch_models_loss_and_optimizer_came_from():
    """PyTorch has no compile(): the models section says what the notebook's source trains the
    model with, not "not compiled"."""
    compile_info = {"compiled": False, "framework": "pytorch", "loss": "CrossEntropyLoss",
                    "optimizer": "Adam", "learning_rate": 0.001}
    model = {"status": "found", "framework": "pytorch", "layers": [], "compile": compile_info}
    page = render_html(result_json(models={"model": model}))
    assert "trained with" in page and "<code>CrossEntropyLoss</code>" in page
    assert "learning rate 0.001" in page and "not compiled" not in page
    unknown = {**model, "compile": {**compile_info, "optimizer": None, "learning_rate": None}}
    page = render_html(result_json(models={"model": unknown}))
    assert "optimizer not known from the source" in page


def test_compiled_templates_are_kept_in_the_graders_cache_and_render_the_same(
        tmp_path, monkeypatch):
    """Compiling the templates cost a fraction of a second of every grading: the grader's cache
    folder keeps them, and a report rendered from the kept ones is the same report."""
    from grader.reports import template_cache

    monkeypatch.setenv("GRADER_CACHE_DIR", str(tmp_path))
    template_cache.bytecode_cache.cache_clear()
    try:
        first = render_html(sample_result()), render_markdown(sample_result())
        kept = sorted((tmp_path / "templates").iterdir())
        assert len(kept) >= 2 and all(p.stat().st_size > 0 for p in kept)
        template_cache.bytecode_cache.cache_clear()  # a new process: loads what was kept
        assert (render_html(sample_result()), render_markdown(sample_result())) == first
    finally:
        template_cache.bytecode_cache.cache_clear()
