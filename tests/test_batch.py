"""`grader grade`: a class's submissions graded in parallel into a gradebook, resumably.

Most submissions fail fast or train for one epoch, so the whole file runs in a few minutes.
Every batch runs as `python -m grader.cli grade …` in a subprocess with a TMPDIR of its own, so
its kernels and workers can be told apart from other grading on the same machine.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest
from rich.console import Console

import notebook_factory as nf
from grader import batch, assignment as spec
from grader.ta import manual_scores
from grader.batch import discovery, local, preflight, store
from grader.execution.runner import KERNEL_TOKEN_VAR
from grader import paths
from grader.reports.summary import render_summary
from grader.result import GradeResult
from result_factory import check_json, result_json

ASSIGNMENTS_DIR, REFERENCE_DIR = paths.assignments_dir(), paths.reference_dir()

ASSIGNMENT = "fashion-mlp"
REPO = Path(__file__).resolve().parents[1]


# --- notebooks ---------------------------------------------------------------------------------

def code_nb(*cells: str, assignment: str | None = ASSIGNMENT, markdown: tuple[str, ...] = ()):
    nb = nbformat.v4.new_notebook(cells=[*(nbformat.v4.new_markdown_cell(m) for m in markdown),
                                         *(nbformat.v4.new_code_cell(c) for c in cells)])
    if assignment:
        nb.metadata["grader"] = {"assignment": assignment}
    return nb


def one_epoch(nb):
    """The same notebook, training for 1 epoch instead of 20 (keeps the batch quick)."""
    for cell in nb.cells:
        if cell.cell_type == "code" and "epochs=20" in cell.source:
            cell.source = cell.source.replace("epochs=20", "epochs=1")
    return nb


def starter():
    return nbformat.read(spec.load(ASSIGNMENT).starter, as_version=4)


SLEEPY = "import time\ntime.sleep({})"


def build_class(root: Path) -> dict[str, str]:
    """At least 12 students, flat and per-student folders mixed; returns student -> what it is."""
    kinds = {}

    def put(student: str, nb, rel: str | None = None, what: str = "") -> None:
        path = root / (rel or f"{student}.ipynb")
        nf.write(nb, path)
        kinds[student] = what

    # flat layout: submissions/<student>.ipynb
    put("ref", nf.reference(), what="the reference solution")
    put("starter", starter(), what="the untouched starter")
    (root / "broken.ipynb").write_text('{"cells": [{"cell_type": "code", "sou')
    kinds["broken"] = "truncated JSON"
    put("mlp300", one_epoch(nf.mlp_300_100_10()), what="the lecture's 300-100-10 MLP")
    put("raiser", code_nb("raise RuntimeError('boom')"), what="a raising cell")
    (root / "pyfile.ipynb").write_text("import keras\nmodel = None\n")
    kinds["pyfile"] = "a Python file renamed .ipynb"
    # per-student folders: submissions/<student>/…ipynb
    put("dana", one_epoch(nf.no_model_variable()), "dana/hw4.ipynb", "no `model` variable")
    put("erin", nf.untrained_model(), "erin/fashion-mlp.ipynb", "an untrained model")
    put("frank", code_nb("while True:\n    pass", "after = 1"), "frank/loop.ipynb",
        "an infinite loop")
    # gina: two notebooks, only one names the assignment in its metadata; a checkpoint copy
    put("gina", code_nb("raise ValueError('gina')"), "gina/homework.ipynb",
        "two notebooks, one naming the assignment")
    nf.write(code_nb("x = 1", assignment=None), root / "gina" / "scratch.ipynb")
    nf.write(code_nb("x = 2"), root / "gina" / ".ipynb_checkpoints" / "homework-checkpoint.ipynb")
    # hank: two notebooks that both name the assignment: ambiguous
    nf.write(code_nb("x = 1"), root / "hank" / "a.ipynb")
    nf.write(code_nb("x = 2"), root / "hank" / "b.ipynb")
    kinds["hank"] = "two notebooks naming the assignment"
    (root / "ivan").mkdir()
    (root / "ivan" / "README.txt").write_text("forgot to commit the notebook")
    kinds["ivan"] = "no notebook in the folder"
    put("jill", code_nb("import numpy as np\nraise NameError('jill')"), "jill/work/deep/nb.ipynb",
        "a notebook nested deeper in the folder")
    return kinds


# --- running the CLI ---------------------------------------------------------------------------

def short_tmp() -> Path:
    """A TMPDIR of our own, short: kernel sockets live below it (at most 107 bytes a path)."""
    return Path(tempfile.mkdtemp(prefix="gbt-", dir="/tmp"))


@pytest.fixture
def own_tmp():
    path = short_tmp()
    yield path
    shutil.rmtree(path, ignore_errors=True)


def cli_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["TMPDIR"] = str(tmp)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    env["COLUMNS"] = "160"
    env.update(extra)
    return env


def grade_cli(args: list[str], tmp: Path, timeout: float = 900, **extra: str):
    tmp.mkdir(parents=True, exist_ok=True)
    return subprocess.run([sys.executable, "-m", "grader.cli", "grade", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout,
                          env=cli_env(tmp, **extra), cwd=REPO)


def ours(tmp: Path) -> list[str]:
    """Live processes of batches run with TMPDIR=tmp: workers, kernels (found by the token the
    engine puts in every kernel's environment, or by a command line naming our folders)."""
    needle = str(tmp).encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                if fh.read().rsplit(b")", 1)[-1].split()[0] == b"Z":
                    continue
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read()
            try:
                with open(f"/proc/{entry}/environ", "rb") as fh:
                    environ = fh.read()
            except OSError:
                environ = b""
        except OSError:
            continue
        env_items = environ.split(b"\0")
        kernel = any(i.startswith(KERNEL_TOKEN_VAR.encode() + b"=") for i in env_items)
        mine = needle in cmdline or any(i.startswith((b"HOME=" + needle, b"TMPDIR=" + needle))
                                        for i in env_items)
        if mine and (kernel or b"grader" in cmdline or b"bwrap" in cmdline):
            shown = cmdline.replace(b"\0", b" ")[:160].decode(errors="replace")
            found.append(f"{entry}: {shown}")
    return found


def wait_no_processes(tmp: Path, seconds: float = 20) -> list[str]:
    deadline = time.monotonic() + seconds
    while True:
        left = ours(tmp)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.5)


def read_grades(out: Path) -> list[dict[str, str]]:
    with (out / "grades.csv").open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def results(out: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in out.glob("*/result.json")}


def mtimes(out: Path) -> dict[str, int]:
    return {p.parent.name: p.stat().st_mtime_ns for p in out.glob("*/result.json")}


# --- the class batch ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def graded_class(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp("class")
    subs = root / "submissions"
    kinds = build_class(subs)
    out = root / "grades"
    tmp = short_tmp()
    started = time.monotonic()
    # The reference (training and its plots) runs in about 65 s on a loaded 2-core machine.
    proc = grade_cli([subs, "--assignment", ASSIGNMENT, "--out", out, "--data-dir", data_dir,
                      "--timeout", "120", "-j", "2"], tmp)
    seconds = time.monotonic() - started
    assert proc.returncode == 0, proc.stdout + proc.stderr
    yield {"root": root, "subs": subs, "out": out, "tmp": tmp, "kinds": kinds, "proc": proc,
           "seconds": seconds}
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.mark.slow
def test_every_student_has_one_row_and_totals_match_result_json(graded_class):
    out, kinds = graded_class["out"], graded_class["kinds"]
    assert len(kinds) >= 12
    rows = read_grades(out)
    assert sorted(r["student"] for r in rows) == sorted(kinds)  # each exactly once
    by_student = results(out)
    assert set(by_student) == set(kinds)
    check_ids = [c.id for c in spec.load(ASSIGNMENT).checks]
    assert list(rows[0]) == ["student", "total", "max", *check_ids, "status", "message"]
    for row in rows:
        result = by_student[row["student"]]
        assert float(row["total"]) == pytest.approx(result["score"]), row["student"]
        assert float(row["max"]) == result["max_score"] == 16
        points = {c["id"]: c["points"] for c in result["checks"]}
        for cid in check_ids:
            assert float(row[cid]) == pytest.approx(points[cid]), (row["student"], cid)
        assert row["status"] == result["execution"]["status"] == result["batch"]["status"]
        assert result["batch"]["student"] == row["student"]
        assert result["assignment_version"] == spec.load(ASSIGNMENT).version_key()


@pytest.mark.slow
def test_grades_are_right_for_each_kind_of_submission(graded_class):
    r = results(graded_class["out"])
    status = {s: v["execution"]["status"] for s, v in r.items()}
    checks = {s: {c["id"]: c for c in v["checks"]} for s, v in r.items()}
    assert r["ref"]["score"] == 16 and status["ref"] == "completed"
    assert r["starter"]["score"] == 0
    assert any(e["ename"] == "NotImplementedError" for e in r["starter"]["cell_errors"])
    assert status["broken"] == "invalid_notebook" and r["broken"]["score"] == 0
    assert status["pyfile"] == "invalid_notebook"
    layers = checks["mlp300"]["model-layers"]
    assert layers["status"] == "partial" and "found Dense(300, relu)" in layers["message"]
    assert checks["mlp300"]["model-params"]["points"] == 0
    assert r["raiser"]["score"] == 0 and r["raiser"]["cell_errors"][0]["ename"] == "RuntimeError"
    assert r["dana"]["models"]["model"]["status"] == "missing" and r["dana"]["score"] == 0
    assert checks["erin"]["model-accuracy"]["points"] == 0
    assert checks["erin"]["model-layers"]["status"] == "passed"
    assert status["frank"] == "timeout" and r["frank"]["score"] == 0
    # gina: the notebook whose metadata names the assignment, not scratch.ipynb or the checkpoint
    assert r["gina"]["batch"]["source"] == "gina/homework.ipynb"
    assert r["gina"]["cell_errors"][0]["evalue"] == "gina"
    assert status["hank"] == "ambiguous" and "a.ipynb" in r["hank"]["execution"]["message"]
    assert all(c["status"] == "error" and "b.ipynb" in c["message"] for c in r["hank"]["checks"])
    assert status["ivan"] == "no_notebook" and r["ivan"]["score"] == 0
    assert r["jill"]["batch"]["source"] == "jill/work/deep/nb.ipynb"
    assert r["jill"]["cell_errors"][0]["ename"] == "NameError"
    # every graded notebook's hash is recorded, for resuming
    for student, result in r.items():
        if status[student] not in ("ambiguous", "no_notebook"):
            assert len(result["notebook_sha256"]) == 64, student


@pytest.mark.slow
def test_per_student_folders_and_reports(graded_class):
    out = graded_class["out"]
    for student in graded_class["kinds"]:
        folder = out / student
        assert (folder / "result.json").is_file()
        if store.html_renderer() is not None:
            assert (folder / "report.html").is_file(), student
    assert not list(out.glob("*/.*"))  # no temporary files left behind


@pytest.mark.slow
def test_summary_html_shows_histogram_pass_rates_and_students(graded_class):
    html = (graded_class["out"] / "summary.html").read_text()
    assert "<svg" in html and "histogram of total scores" in html
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org", "")
    for check in spec.load(ASSIGNMENT).checks:
        assert check.id in html
    for student in graded_class["kinds"]:
        assert f">{student}<" in html
    assert 'href="ref/report.html"' in html or store.html_renderer() is None
    assert "Where the class struggled" in html  # most of this class fails most checks


@pytest.mark.slow
@pytest.mark.skipif(not shutil.which("chromium"), reason="headless Chromium is not installed")
def test_summary_html_renders_in_chromium(graded_class, tmp_path):
    png = tmp_path / "summary.png"
    subprocess.run([sys.executable, str(REPO / "bench" / "screenshot_reports.py"),
                    str(graded_class["out"] / "summary.html"), "--out", str(png)],
                   check=True, timeout=180, capture_output=True)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 30_000  # a blank page compresses to a few kilobytes


@pytest.mark.slow
def test_progress_and_one_line_per_student(graded_class):
    text = graded_class["proc"].stdout
    for student in graded_class["kinds"]:
        assert any(line.startswith(student + " ") for line in text.splitlines()), student
    assert "16/16" in text and "timeout" in text and "ambiguous" in text
    assert "grades.csv" in text and "summary.html" in text


@pytest.mark.slow
def test_no_kernel_outlives_the_batch(graded_class):
    assert wait_no_processes(graded_class["tmp"], 5) == []


@pytest.mark.slow
def test_rerun_skips_everything_and_regrades_a_changed_notebook(graded_class, data_dir):
    out, subs, tmp = graded_class["out"], graded_class["subs"], graded_class["tmp"]
    before = mtimes(out)
    proc = grade_cli([subs, "-a", ASSIGNMENT, "--out", out, "--data-dir", data_dir, "-j", "2",
                      "--timeout", "120"], tmp)
    assert proc.returncode == 0, proc.stderr
    # hank (ambiguous) and ivan (no notebook) are not graded, so not skipped either
    assert f"0 graded, {len(graded_class['kinds']) - 2} skipped" in proc.stdout, proc.stdout
    assert mtimes(out) == before  # nothing rewritten, not even the error results
    # The notebook changed: only that student is regraded.
    nf.write(code_nb("raise KeyError('new version')"), subs / "raiser.ipynb")
    proc = grade_cli([subs, "-a", ASSIGNMENT, "--out", out, "--data-dir", data_dir, "-j", "2",
                      "--timeout", "120"], tmp)
    assert proc.returncode == 0, proc.stderr
    after = mtimes(out)
    assert [s for s in after if after[s] != before[s]] == ["raiser"]
    assert results(out)["raiser"]["cell_errors"][0]["ename"] == "KeyError"
    assert read_grades(out)  # rebuilt
    assert wait_no_processes(tmp, 5) == []


# --- killed mid-batch, then resumed ------------------------------------------------------------

@pytest.mark.slow
def test_killed_batch_resumes_without_regrading(tmp_path, data_dir, own_tmp):
    subs, out, tmp = tmp_path / "subs", tmp_path / "out", own_tmp
    students = [f"s{i:02d}" for i in range(7)]
    for i, student in enumerate(students):
        nb = code_nb(SLEEPY.format(3), f"raise ValueError('{student}')")
        nf.write(nb, subs / (f"{student}.ipynb" if i % 2 else f"{student}/hw.ipynb"))
    cmd = [sys.executable, "-m", "grader.cli", "grade", str(subs), "-a", ASSIGNMENT, "--out",
           str(out), "--data-dir", str(data_dir), "-j", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=cli_env(tmp), cwd=REPO)
    seen_running = []
    try:
        deadline = time.monotonic() + 300
        while len(list(out.glob("*/result.json"))) < 2:
            assert proc.poll() is None, "the batch ended before it could be killed"
            assert time.monotonic() < deadline, "no result written in time"
            seen_running = seen_running or ours(tmp)
            time.sleep(0.1)
        seen_running = seen_running or ours(tmp)
        proc.send_signal(signal.SIGKILL)  # the batch process only: its workers must follow
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert seen_running, "the process detector saw no worker or kernel while grading"
    assert wait_no_processes(tmp, 30) == []  # workers and kernels died with the batch
    written = mtimes(out)
    assert 2 <= len(written) < len(students)
    assert not (out / "grades.csv").exists()  # the killed run never got to the gradebook

    rerun = grade_cli([subs, "-a", ASSIGNMENT, "--out", out, "--data-dir", data_dir, "-j", "2"],
                      tmp)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert f"{len(written)} student(s) already graded" in rerun.stdout
    assert f"{len(students) - len(written)} graded, {len(written)} skipped" in rerun.stdout
    after = mtimes(out)
    for student, mtime in written.items():
        assert after[student] == mtime, f"{student} was graded again"
    rows = read_grades(out)
    assert sorted(r["student"] for r in rows) == students  # every student exactly once
    r = results(out)
    assert all(r[s]["cell_errors"][0]["evalue"] == s for s in students)
    assert wait_no_processes(tmp, 10) == []

    forced = grade_cli([subs, "-a", ASSIGNMENT, "--out", out, "--data-dir", data_dir, "-j", "2",
                        "--force"], tmp)
    assert forced.returncode == 0, forced.stderr
    assert f"{len(students)} graded, 0 skipped" in forced.stdout
    assert all(mtimes(out)[s] != after[s] for s in students)


# --- worker failures ----------------------------------------------------------------------------

@pytest.mark.slow
def test_a_hung_worker_becomes_an_error_result_and_is_retried(tmp_path, data_dir, own_tmp):
    subs, out, tmp = tmp_path / "subs", tmp_path / "out", own_tmp
    nf.write(code_nb(SLEEPY.format(120)), subs / "slow.ipynb")
    nf.write(code_nb("raise ValueError('quick')"), subs / "quick.ipynb")
    proc = grade_cli([subs, "-a", ASSIGNMENT, "--out", out, "--data-dir", data_dir, "-j", "2",
                      "--worker-timeout", "8"], tmp)
    assert proc.returncode == 0, proc.stderr
    r = results(out)
    assert r["slow"]["execution"]["status"] == "worker_timeout" and r["slow"]["score"] == 0
    assert "8 s" in r["slow"]["execution"]["message"]
    assert all("stopped" in c["message"] for c in r["slow"]["checks"])
    assert r["slow"]["batch"]["complete"] is False
    assert r["quick"]["execution"]["status"] == "completed"
    assert wait_no_processes(tmp, 20) == []
    rows = {row["student"]: row for row in read_grades(out)}
    assert rows["slow"]["status"] == "worker_timeout" and rows["slow"]["total"] == "0"
    # Not cached: the next run tries the hung student again (and only that one).
    again = grade_cli([subs, "-a", ASSIGNMENT, "--out", out, "--data-dir", data_dir,
                       "--worker-timeout", "8"], tmp)
    assert "1 graded, 1 skipped" in again.stdout, again.stdout
    assert wait_no_processes(tmp, 20) == []


def test_a_crashing_worker_becomes_an_error_result(tmp_path, monkeypatch):
    """The worker process dies (as by the OOM killer): that student gets 0 with a clear message,
    the others are graded. No kernel involved, so it runs in-process and fast."""
    subs = tmp_path / "subs"
    for name in ("a", "b", "c"):
        nf.write(code_nb("x = 1"), subs / f"{name}.ipynb")
    crash = [sys.executable, "-c", "import os, signal, sys; print('dying'); sys.stdout.flush(); "
             "os.kill(os.getpid(), signal.SIGKILL)"]
    monkeypatch.setattr(local.LocalExecutor, "command", crash)
    monkeypatch.setattr(preflight, "check", lambda *a: None)
    buffer = io.StringIO()
    options = batch.BatchOptions(out=tmp_path / "out", jobs=2)
    report = batch.run(subs, spec.load(ASSIGNMENT), options, Console(file=buffer, width=160))
    assert {o.status for o in report.outcomes} == {"worker_failed"}
    result = json.loads((tmp_path / "out" / "a" / "result.json").read_text())
    message = result["execution"]["message"]
    assert "killed by SIGKILL" in message and "out of memory" in message and "dying" in message
    assert result["score"] == 0 and all(c["status"] == "error" for c in result["checks"])
    assert (tmp_path / "out" / "a" / "worker.log").read_text().strip() == "dying"
    assert len(read_grades(tmp_path / "out")) == 3


# --- discovery ----------------------------------------------------------------------------------

def test_discovery_layouts_and_choices(tmp_path):
    root = tmp_path / "subs"
    nf.write(code_nb("x = 1"), root / "alice.ipynb")
    nf.write(code_nb("x = 1", assignment=None), root / "bob" / "notes.ipynb")
    nf.write(code_nb("x = 1", assignment=None), root / "bob" / "fashion-mlp.ipynb")
    nf.write(code_nb("x = 1", assignment="lenet5"), root / "carol" / "other.ipynb")
    nf.write(code_nb("x = 1"), root / "carol" / "mine.ipynb")
    nf.write(code_nb("x = 1"), root / "dave.ipynb")
    nf.write(code_nb("x = 1"), root / "dave" / "x.ipynb")
    nf.write(code_nb("x = 1"), root / ".hidden.ipynb")
    nf.write(code_nb("x = 1"), root / "grades" / "leftover.ipynb")  # the output folder
    (root / "erin").mkdir()
    subs = {s.student: s for s in discovery.discover(root, ASSIGNMENT, "fashion-mlp.ipynb",
                                                     exclude=root / "grades")}
    assert sorted(subs) == ["alice", "bob", "carol", "dave", "erin"]
    assert subs["alice"].layout == "file" and subs["alice"].notebook.name == "alice.ipynb"
    assert subs["bob"].notebook.name == "fashion-mlp.ipynb"  # named like the starter
    assert subs["carol"].notebook.name == "mine.ipynb"  # metadata names this assignment
    assert subs["dave"].notebook is None and "both dave.ipynb and the folder" in subs["dave"].error
    assert subs["erin"].status == "no_notebook"


def test_usage_errors_exit_2(tmp_path, capsys):
    from grader.cli import main

    assert main(["grade", str(tmp_path / "nope"), "-a", ASSIGNMENT]) == 2
    assert "not a folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["grade", str(tmp_path / "empty"), "-a", ASSIGNMENT,
                 "--out", str(tmp_path / "o")]) == 2
    assert "no submissions" in capsys.readouterr().err
    nf.write(code_nb("x = 1"), tmp_path / "subs" / "a.ipynb")
    assert main(["grade", str(tmp_path / "subs"), "-a", "no-such-homework"]) == 2
    assert "unknown assignment" in capsys.readouterr().err
    nf.write(code_nb("x = 1", assignment="lenet5"), tmp_path / "subs" / "b.ipynb")
    assert main(["grade", str(tmp_path / "subs"), "--out", str(tmp_path / "o")]) == 2
    assert "pass --assignment" in capsys.readouterr().err
    assert main(["grade", str(tmp_path / "subs"), "-a", ASSIGNMENT, "-j", "0"]) == 2


# --- TA points ------------------------------------------------------------------------------------

MANUAL_CHECK = """
[[checks]]
id = "written-encoding"
title = "3.1.4: which encoding of the target, and why"
kind = "manual"
question = "3.1.4"
points = 2
"""


@pytest.fixture
def home_with_manual_check(tmp_path):
    """A GRADER_HOME whose fashion-mlp also has a written answer a TA grades."""
    home = tmp_path / "home"
    shutil.copytree(ASSIGNMENTS_DIR / ASSIGNMENT, home / "assignments" / ASSIGNMENT)
    toml = home / "assignments" / ASSIGNMENT / "assignment.toml"
    toml.write_text(toml.read_text() + MANUAL_CHECK)
    (home / "reference" / ASSIGNMENT).mkdir(parents=True)
    for name in ("expected.json", "thresholds.json"):
        shutil.copy(REFERENCE_DIR / ASSIGNMENT / name, home / "reference" / ASSIGNMENT / name)
    return home


def answered(text: str):
    nb = starter()
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown" and cell.source.startswith("**3.1.4**"):
            nb.cells[i + 1].source = text
    return nb


@pytest.mark.slow
def test_manual_scores_merge_into_results_and_gradebook(tmp_path, data_dir, own_tmp,
                                                        home_with_manual_check):
    subs, out, tmp = tmp_path / "subs", tmp_path / "out", own_tmp
    nf.write(answered("One-hot, because the softmax outputs one probability per class."),
             subs / "alice.ipynb")
    nf.write(answered("*YOUR ANSWER HERE*"), subs / "bob" / "fashion-mlp.ipynb")
    home = {"GRADER_HOME": str(home_with_manual_check)}
    base = [subs, "-a", ASSIGNMENT, "--out", out, "--data-dir", data_dir, "-j", "2"]
    first = grade_cli(base, tmp, **home)
    assert first.returncode == 0, first.stdout + first.stderr
    check = {c["id"]: c for c in results(out)["alice"]["checks"]}["written-encoding"]
    assert check["status"] == "manual" and check["points"] == 0
    assert "awaiting TA grading; answer begins: One-hot" in check["message"]
    graded_at = mtimes(out)

    bad = tmp_path / "bad.csv"
    bad.write_text("student,check,points\nzed,written-encoding,1\nalice,nope,1\n"
                   "alice,written-encoding,3\nbob,model-layers,3\nbob,written-encoding,x\n")
    proc = grade_cli([*base, "--manual", bad], tmp, **home)
    assert proc.returncode == 2
    for words in ("unknown student 'zed'", "line 3: unknown check 'nope'",
                  "line 6: points 'x'"):
        assert words in proc.stderr, proc.stderr
    proc = grade_cli([*base, "--manual", bad.with_name("nothing.csv")], tmp, **home)
    assert proc.returncode == 2 and "no such file" in proc.stderr
    bad.write_text("student,check,points\nalice,written-encoding,3\nbob,model-layers,4\n")
    proc = grade_cli([*base, "--manual", bad], tmp, **home)
    assert proc.returncode == 2
    assert "3 points for alice/written-encoding is outside 0..2" in proc.stderr
    assert "4 points for bob/model-layers is outside 0..3" in proc.stderr  # an override
    assert mtimes(out) == graded_at  # a bad file changes nothing

    scores = tmp_path / "scores.csv"
    scores.write_text("\ufeffStudent,Check,Points,Comment\n"
                      "alice,written-encoding,1.5,\"right encoding, reason incomplete\"\n"
                      "bob,written-encoding,,\n")  # bob: not graded yet
    proc = grade_cli([*base, "--manual", scores], tmp, **home)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 graded, 2 skipped" in proc.stdout  # merging does not regrade
    alice = results(out)["alice"]
    check = {c["id"]: c for c in alice["checks"]}["written-encoding"]
    assert check["points"] == 1.5 and check["status"] == "manual"
    assert check["message"] == "graded by TA: 1.5/2 — right encoding, reason incomplete"
    assert alice["score"] == pytest.approx(sum(c["points"] for c in alice["checks"]))
    rows = {r["student"]: r for r in read_grades(out)}
    assert rows["alice"]["written-encoding"] == "1.5"
    assert float(rows["alice"]["total"]) == pytest.approx(alice["score"])
    assert float(rows["alice"]["max"]) == 18
    assert rows["bob"]["written-encoding"] == "0"

    # Regrading an unchanged notebook keeps the TA's points.
    proc = grade_cli([*base, "--force"], tmp, **home)
    assert proc.returncode == 0 and "2 graded, 0 skipped" in proc.stdout, proc.stdout
    check = {c["id"]: c for c in results(out)["alice"]["checks"]}["written-encoding"]
    assert check["points"] == 1.5
    assert wait_no_processes(tmp, 10) == []


def test_manual_scores_unit(tmp_path):
    assignment = spec.load(ASSIGNMENT)
    path = tmp_path / "s.csv"
    path.write_text("student,points\n")
    with pytest.raises(manual_scores.ManualScoresError, match="lacks column"):
        manual_scores.read(path)
    path.write_text("student,check,points\nalice,model-layers,2\nalice,model-layers,1\n")
    with pytest.raises(manual_scores.ManualScoresError, match="second row"):
        manual_scores.load(path, assignment, ["alice"])
    result = GradeResult.model_validate(result_json([
        {"id": "auto", "points": 3.0, "max_points": 3, "status": "passed", "message": "ok"},
        {"id": "essay", "points": 0.0, "max_points": 4, "status": "manual",
         "message": "awaiting TA grading", "details": {"answer": "…"}}], score=3.0))
    score = manual_scores.ManualScore("alice", "essay", 2.5, "fine")
    graded = manual_scores.apply(result, [score])
    assert graded.score == 5.5 and graded.checks[1].details["ta_points"] == 2.5
    assert graded.checks[1].status == "manual" and result.checks[1].details == {"answer": "…"}
    assert manual_scores.apply(graded, [score]) == graded  # idempotent
    ungraded = manual_scores.apply(graded, [])  # the row was removed: back to ungraded
    assert ungraded.score == 3.0 and ungraded.checks[1].message == "awaiting TA grading"
    assert ungraded == result


def test_summary_is_escaped_and_self_contained():
    info = {"id": "x", "title": "<b>t</b>", "version": "1", "max_score": 4,
            "checks": [{"id": "c1", "title": "one", "max_points": 4, "kind": "layers"}]}
    evil = "<script>alert(1)</script>"
    students = [{"student": evil, "report": f"{evil}/report.html", "result": result_json(
        [{"id": "c1", "points": 4, "status": "passed"}], score=4, max_score=4,
        execution={"status": "completed", "message": evil})},
        {"student": "b", "report": None, "result": result_json(
            [{"id": "c1", "points": 0, "status": "failed"}], score=0, max_score=4)}]
    html = render_summary(info, students)
    assert "<script" not in html and "&lt;script&gt;" in html and "<b>t</b>" not in html
    assert "50%" in html  # c1 pass rate
    assert "Where the class struggled" not in html  # mean 2 of 4 is not below half


def test_summary_says_what_the_gradebook_holds_for_each_kind_of_student_not_graded():
    """No notebook: 0. A grading process that failed: 0 in grades.csv, retried. The grader's own
    failure: no number at all. The page must not tell the TA a grader failure is a zero."""
    info = {"id": "x", "title": "t", "version": "1", "max_score": 4,
            "checks": [{"id": "c1", "title": "one", "max_points": 4, "kind": "layers"}]}

    def student(name, status, score):
        return {"student": name, "report": None, "result": result_json(
            score=score, max_score=4, execution={"status": status})}

    unscored = student("f", "completed", None)  # ran, but the grader failed on a check
    unscored["result"]["checks"] = [check_json("c1", status="error", points=0.0)]
    html = render_summary(info, [student("a", "no_notebook", 0), student("b", "grader_error", None),
                                 student("c", "worker_timeout", 0), student("d", "grader_error", None),
                                 unscored])
    text = " ".join(html.split())
    assert "1 student(s) without a notebook to grade (no_notebook, ambiguous) have 0 points" in text
    assert ("3 student(s) the grader failed on (grader_error, or a check it could not score) have "
            "no number in the gradebook") in text
    assert "not scored yet" in text and "the grader failed on c1" in text
    assert "1 student(s) whose grading process failed or ran out of time" in text
    only_graded = render_summary(info, [student("e", "completed", 4)])
    assert "have 0 points" not in only_graded and "no number" not in only_graded
