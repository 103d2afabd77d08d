"""The TA's daily work in `grader grade`: `--student` regrades, the roster, the LMS exports
(lms.csv, canvas.csv) and the feedback to hand back (OUT/<student>/feedback/).

The parsing, exporting and annotating run on synthetic files and results (fast). One small
numpy-backprop class (notebooks that grade in seconds) is graded for real, once per module,
and regraded with --student.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import nbformat
import pytest
from rich.console import Console

import notebook_factory as nf
from grader import assignment as spec
from grader.batch import feedback, gradebook, roster as roster_mod, store
from grader.cli import main
from grader.execution import runner
from grader.result import BatchInfo, Execution, GradeResult
from grader.scoring import RunStatus
from result_factory import result_json
from test_batch import grade_cli, mtimes, read_grades, results, short_tmp, wait_no_processes

ASSIGNMENT = "numpy-backprop"

GITHUB_CLASSROOM_ROSTER = (  # as GitHub Classroom's "Download roster" writes it
    '"identifier","github_username","github_id","name"\n'
    '"s001","alice","101","Alice Liddell"\n'
    '"s002","Bob","102",""\n'
    '"s003","","",""\n'  # never linked a GitHub account
    '"s004","dave","104","Dave Bowman"\n')


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def rows_of(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


# --- the roster ---------------------------------------------------------------------------------

def test_github_classroom_roster_matches_repository_folders(tmp_path):
    roster = roster_mod.load(write(tmp_path / "roster.csv", GITHUB_CLASSROOM_ROSTER))
    match = roster.match(["hw4-alice", "hw4-bob", "hw4-zed"])
    assert match.prefix == "hw4-"
    assert {s: e.student_id for s, e in match.by_student.items()} == {
        "hw4-alice": "s001", "hw4-bob": "s002"}  # usernames match case-insensitively
    assert match.entry("hw4-alice").name == "Alice Liddell"
    assert match.unmatched == ["hw4-zed"]  # listed, not dropped
    assert [e.student_id for e in match.absent] == ["s003", "s004"]


def test_one_prefix_for_the_class_whatever_the_usernames(tmp_path):
    roster = roster_mod.load(write(tmp_path / "r.csv", "github_username,student_id\n"
                                   "alice-b,1\nb,2\ncarol,3\n"))
    match = roster.match(["hw4-alice-b", "hw4-carol", "notes"])  # and a stray folder
    assert {s: e.student_id for s, e in match.by_student.items()} == {"hw4-alice-b": "1",
                                                                      "hw4-carol": "3"}
    assert match.unmatched == ["notes"] and [e.key for e in match.absent] == ["b"]
    # Without the others to vote, a lone folder goes to the longer username.
    assert roster.match(["hw4-alice-b"]).entry("hw4-alice-b").student_id == "1"


def test_a_course_roster_with_its_own_column_names(tmp_path):
    path = write(tmp_path / "course.csv",
                 "Student Number,GitHub,First Name,Last Name,Section,Canvas User ID,Email\n"
                 "1001,ada-l,Ada,Lovelace,L01,555,ada@uni.edu\n"
                 "1002,charles,Charles,Babbage,L02,556,cb@uni.edu\n")
    match = roster_mod.load(path).match(["ADA-L", "charles"])
    ada = match.entry("ADA-L")
    assert (ada.student_id, ada.name, ada.section, ada.canvas_id, ada.sis_login_id) == (
        "1001", "Ada Lovelace", "L01", "555", "ada@uni.edu")
    assert match.prefix == "" and not match.unmatched and not match.absent


def test_folders_named_by_student_id_need_no_key_column(tmp_path):
    path = write(tmp_path / "ids.csv", "student_id,name\n2201,Grace Hopper\n2202,Alan Turing\n")
    match = roster_mod.load(path).match(["2201", "2202"])
    assert match.entry("2202").name == "Alan Turing"
    # A Canvas gradebook export as roster: its ID is Canvas's user id, not the student's.
    path = write(tmp_path / "canvas.csv", "Student,ID,SIS User ID,SIS Login ID,Section\n"
                 "\"Hopper, Grace\",77,2201,ghopper,A\n")
    entry = roster_mod.load(path).entries[0]
    assert (entry.student_id, entry.canvas_id, entry.name) == ("2201", "77", "Hopper, Grace")


def test_roster_problems_are_reported_with_file_and_line(tmp_path):
    with pytest.raises(roster_mod.RosterError, match="no student id column"):
        roster_mod.load(write(tmp_path / "a.csv", "github_username,name\nalice,Alice\n"))
    with pytest.raises(roster_mod.RosterError, match="no such file"):
        roster_mod.load(tmp_path / "missing.csv")
    bad = write(tmp_path / "b.csv", "github_username,student_id\nalice,1\nbob,\nALICE,3\ncarol,1\n")
    with pytest.raises(roster_mod.RosterError) as err:
        roster_mod.load(bad)
    text = str(err.value)
    assert text.startswith(f"{bad}: 3 problem(s)")
    for words in ("line 3: no student id for 'bob'",
                  "line 4: a second row for the submission 'ALICE' (first on line 2)",
                  "line 5: a second row for student id '1' (first on line 2)"):
        assert words in text, text
    (tmp_path / "c.csv").write_bytes(b"student_id\n\xff\xfe\n")
    with pytest.raises(roster_mod.RosterError, match="not a readable UTF-8"):
        roster_mod.load(tmp_path / "c.csv")
    two = roster_mod.load(write(tmp_path / "d.csv", "github_username,student_id\nalice,1\n"))
    with pytest.raises(roster_mod.RosterError, match="2 submissions match 'alice': Alice, alice"):
        two.match(["Alice", "alice"])


# --- the exports --------------------------------------------------------------------------------

def fake_result(score, status: str, complete: bool = True) -> GradeResult:
    return GradeResult.model_validate(result_json(
        score=score, max_score=10, execution={"status": status},
        batch={"student": "s", "complete": complete, "status": status}))


EXPORT_ROWS = [("=cmd", fake_result(4, "completed")),  # a folder name a spreadsheet would run
               ("hw4-alice", fake_result(7.5, "completed")),
               ("hw4-bob", fake_result(None, "grader_error", complete=False)),
               ("hw4-carol", fake_result(0, "worker_timeout", complete=False)),
               ("hw4-erin", fake_result(0, "no_notebook"))]


def test_lms_export_leaves_the_not_graded_empty_never_zero(tmp_path):
    assignment = spec.load(ASSIGNMENT)
    match = roster_mod.load(write(tmp_path / "r.csv", GITHUB_CLASSROOM_ROSTER)).match(
        [s for s, _ in EXPORT_ROWS])
    rows = rows_of(gradebook.lms_csv(assignment, EXPORT_ROWS, match))
    assert rows[0] == ["student_id", "name", "score", "max", "percent", "status", "submission"]
    by_submission = {r[6]: r for r in rows[1:] if r[6]}
    assert by_submission["hw4-alice"] == ["s001", "Alice Liddell", "7.5", "10", "75",
                                          "completed", "hw4-alice"]
    assert by_submission["hw4-bob"][2:6] == ["", "10", "", "grader_error"]
    assert by_submission["hw4-carol"][2:6] == ["", "10", "", "worker_timeout"]  # retried next run
    assert by_submission["hw4-erin"][:4] == ["", "", "0", "10"]  # no roster row; no notebook: 0
    assert "'=cmd" in by_submission  # not run as a formula
    absent = [r for r in rows[1:] if not r[6]]
    assert [(r[0], r[2], r[5]) for r in absent] == [("s003", "", "no_submission"),
                                                    ("s004", "", "no_submission")]
    # Without a roster the submission's name is the student id.
    plain = rows_of(gradebook.lms_csv(assignment, EXPORT_ROWS[1:2], None))
    assert plain[1][:3] == ["hw4-alice", "", "7.5"]


def accepted_by_canvas(header: list[str]) -> bool:
    """Canvas's GradebookImporter header rule (app/models/gradebook_importer.rb): Student and
    ID first; SIS User ID, when present, followed by SIS Login ID; the last student column
    before the assignments is Section."""
    if len(header) <= 3 or "Student" not in header[0] or "ID" not in header[1]:
        return False
    columns = 3
    if "SIS Login ID" in header[2]:
        columns = 4
    elif "SIS User ID" in header[2] and "SIS Login ID" in header[3]:
        columns = 5
    return "Section" in header[columns - 1]


def test_canvas_export_is_canvas_s_import_format(tmp_path):
    assignment = spec.load(ASSIGNMENT)
    path = write(tmp_path / "r.csv", "github_username,student_id,name,canvas_id,section\n"
                 "alice,s001,\"Liddell, Alice\",9001,L01\nbob,s002,Bob,,L02\ndave,s004,Dave,,\n")
    match = roster_mod.load(path).match([s for s, _ in EXPORT_ROWS])
    rows = rows_of(gradebook.canvas_csv(assignment, EXPORT_ROWS, match, "4567"))
    assert accepted_by_canvas(rows[0])
    assert not accepted_by_canvas(["Student", "ID", "SIS User ID", "Section", "x"])  # it bites
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section",
                       f"{assignment.title} (4567)"]
    assert rows[1] == ["Points Possible", "", "", "", "", "10"]
    by_id = {r[2]: r for r in rows[2:]}
    assert by_id["s001"] == ["Liddell, Alice", "9001", "s001", "", "L01", "7.5"]
    assert by_id["s002"][5] == ""  # grader_error: empty, so the import changes nothing
    assert by_id["s004"][5] == ""  # on the roster, no submission
    unknown = [r for r in rows[2:] if not r[2]]
    assert [r[0] for r in unknown] == ["'=cmd", "hw4-carol", "hw4-erin"]
    assert [r[5] for r in unknown] == ["4", "", "0"]
    untitled = rows_of(gradebook.canvas_csv(assignment, EXPORT_ROWS, match))
    assert untitled[0][5] == assignment.title  # Canvas matches it by title, or creates it


# --- the feedback notebook ------------------------------------------------------------------------

def executed_notebook(minor: int = 5) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Homework"),
        nbformat.v4.new_code_cell("x = 1", execution_count=1),
        nbformat.v4.new_code_cell("y = z", execution_count=2, outputs=[nbformat.v4.new_output(
            "error", ename="NameError", evalue="name 'z' is not defined", traceback=[])]),
        nbformat.v4.new_code_cell("while True: pass", execution_count=3),
        nbformat.v4.new_code_cell("print('never')"),  # not run: the notebook timed out
        nbformat.v4.new_code_cell("print('nor this')")])
    nb.nbformat_minor = minor
    if minor < 5:
        for cell in nb.cells:
            cell.pop("id", None)
    return nb


def test_feedback_notes_before_each_failing_cell_and_where_the_run_stopped():
    evil = "```\n<script>alert(1)</script>\n````"
    result = GradeResult.model_validate(result_json(
        execution={"status": "timeout", "message": "the notebook ran past its 60 s limit; "
                   "cells from cell 5 on were not run"},
        cell_errors=[{"cell": 2, "execution_count": 2, "ename": "NameError",
                      "evalue": "name 'z' is not defined", "line": 1, "traceback": ""},
                     {"cell": 3, "execution_count": 3, "ename": "CellTimeoutError",
                      "evalue": evil, "line": None, "traceback": ""}]))
    text = feedback.annotated(nbformat.writes(executed_notebook()).encode(), result)
    nb = nbformat.reads(text, as_version=4)
    nbformat.validate(nb)
    kinds = [("note" if feedback.NOTE_TAG in c.metadata.get("tags", []) else c.cell_type)
             for c in nb.cells]
    assert kinds == ["note", "markdown", "code", "note", "code", "note", "code", "note", "code",
                     "code"]
    first_error = nb.cells[3].source
    assert "(`In [2]`, line 1)" in first_error and "name 'z' is not defined" in first_error
    assert "costs no points by itself" in first_error and nb.cells[4].source == "y = z"
    # The student's text stays inside a code block it cannot close: a fence longer than its own.
    timeout_note = nb.cells[5].source
    assert "`````text\nCellTimeoutError: " + evil + "\n`````" in timeout_note
    assert "did not run the cells from here on" in nb.cells[7].source
    assert "cells from cell 5 on were not run" in nb.cells[7].source
    assert nb.cells[8].source == "print('never')"
    # Notebooks older than nbformat 4.5 have no cell ids, and the notes add none.
    old = nbformat.reads(feedback.annotated(nbformat.writes(executed_notebook(4)).encode(),
                                            result), as_version=4)
    nbformat.validate(old)
    assert all("id" not in c for c in old.cells)


def test_an_executed_notebook_that_is_not_one_gives_no_feedback_notebook():
    result = GradeResult.model_validate(result_json())
    assert feedback.annotated(b'{"cells": "not a list"}', result) is None
    assert feedback.annotated(b"\xff\xfe", result) is None
    assert feedback.annotated(None, result) is None


def test_the_store_replaces_or_keeps_the_feedback_notebook(tmp_path):
    out = tmp_path / "out"
    result = store.error_result(spec.load(ASSIGNMENT), "completed", "graded",
                                Path("/subs/alice/hw4.ipynb"))
    result = result.model_copy(update={"batch": BatchInfo(student="alice", status="completed",
                                                          complete=True)})
    results_store = store.ResultStore(out, Console(file=io.StringIO()), None)
    executed = nbformat.writes(executed_notebook()).encode()
    results_store.write(result, executed=executed)
    folder = out / "alice" / "feedback"
    assert sorted(p.name for p in folder.iterdir()) == ["hw4.ipynb", "report.html"]
    assert (folder / "report.html").read_text() == (out / "alice" / "report.html").read_text()
    results_store.refresh(result.model_copy(update={"score": 5.0}))  # the TA's points changed
    assert (folder / "hw4.ipynb").is_file()
    results_store.write(result.model_copy(
        update={"execution": Execution(status=RunStatus.INVALID_NOTEBOOK)}))
    assert sorted(p.name for p in folder.iterdir()) == ["report.html"]  # no stale notebook


# --- usage errors (before anything is graded) ---------------------------------------------------

def test_unknown_student_and_bad_roster_are_usage_errors(tmp_path, capsys):
    subs, out = tmp_path / "subs", tmp_path / "out"
    for name in ("hw4-alice", "hw4-bob"):
        nf.write(nf.reference_notebook(ASSIGNMENT), subs / f"{name}.ipynb")
    base = ["grade", str(subs), "-a", ASSIGNMENT, "--out", str(out)]
    assert main([*base, "--student", "hw4-alcie", "--student", "hw4-bob"]) == 2
    err = capsys.readouterr().err
    assert "no submission named 'hw4-alcie' (did you mean hw4-alice" in err
    roster = write(tmp_path / "roster.csv", "github_username,student_id\nalice,\n")
    assert main([*base, "--roster", str(roster)]) == 2
    assert f"{roster}: 1 problem(s)" in capsys.readouterr().err
    assert main([*base, "--canvas-assignment", "4567"]) == 2
    assert "--canvas-assignment needs --roster" in capsys.readouterr().err
    write(roster, GITHUB_CLASSROOM_ROSTER)
    assert main([*base, "--roster", str(roster), "--canvas-assignment", "hw4"]) == 2
    assert "is a number" in capsys.readouterr().err
    assert not out.exists()  # nothing written


# --- a class graded for real ---------------------------------------------------------------------

PLOT = "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2, 4])\nplt.title('my curve')\nplt.show()"
HUGE_IMAGE = ("from IPython.display import display\n"
              "display({'image/png': 'A' * 1_500_000}, raw=True)")
FLOOD = "for _ in range(200):\n    display({'image/png': 'B' * 100_000}, raw=True)"  # 20 MB


def bob_notebook() -> nbformat.NotebookNode:
    """The reference with a plot, a failing cell, an oversized image, and outputs saved from
    the student's own run (which the feedback must not show as the grader's)."""
    nb = nf.reference_notebook(ASSIGNMENT)
    stale = nbformat.v4.new_output("stream", name="stdout", text="SAVED ON MY LAPTOP\n")
    nb.cells[1:1] = [
        nbformat.v4.new_code_cell(PLOT, execution_count=41, outputs=[stale]),
        nbformat.v4.new_code_cell("print('before')\nundefined_thing + 1"),
        nbformat.v4.new_code_cell(HUGE_IMAGE),
        nbformat.v4.new_code_cell(FLOOD),
        nbformat.v4.new_code_cell("", execution_count=42, outputs=[stale])]
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp("ta")
    subs, out, tmp = root / "subs", root / "out", short_tmp()
    nf.write(nf.reference_notebook(ASSIGNMENT), subs / "hw4-alice.ipynb")
    nf.write(bob_notebook(), subs / "hw4-bob" / "hw4.ipynb")
    nf.write(nbformat.read(spec.load(ASSIGNMENT).starter, as_version=4), subs / "hw4-carol.ipynb")
    roster = write(root / "roster.csv", GITHUB_CLASSROOM_ROSTER)
    base = [subs, "-a", ASSIGNMENT, "--out", out, "--data-dir", data_dir, "-j", "2"]
    proc = grade_cli([*base, "--roster", roster, "--canvas-assignment", "4567"], tmp)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    yield {"subs": subs, "out": out, "tmp": tmp, "base": base, "roster": roster, "proc": proc}
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.mark.slow
def test_the_class_s_exports_agree_with_its_results(graded):
    out, text = graded["out"], graded["proc"].stdout
    r = results(out)
    assert (r["hw4-alice"]["score"], r["hw4-bob"]["score"], r["hw4-carol"]["score"]) == (10, 10, 0)
    assert "roster: 2 submission(s) matched (after the shared prefix 'hw4-')" in text
    assert "no row for 1 submission(s), exported under their own name: hw4-carol" in text
    assert "2 student(s) without a submission" in text and "Dave Bowman" in text
    lms = list(csv.DictReader((out / "lms.csv").open(encoding="utf-8")))
    assert [(x["student_id"], x["score"], x["status"], x["submission"]) for x in lms] == [
        ("s001", "10", "completed", "hw4-alice"), ("s002", "10", "completed", "hw4-bob"),
        ("", "0", "completed", "hw4-carol"), ("s003", "", "no_submission", ""),
        ("s004", "", "no_submission", "")]
    canvas = rows_of((out / "canvas.csv").read_text(encoding="utf-8"))
    assert accepted_by_canvas(canvas[0]) and canvas[0][5].endswith(" (4567)")
    assert {row[2]: row[5] for row in canvas[2:] if row[2]} == {
        "s001": "10", "s002": "10", "s003": "", "s004": ""}
    assert "lms.csv" in text and "canvas.csv" in text


@pytest.mark.slow
def test_feedback_holds_the_student_s_run_annotated_and_nothing_hidden(graded):
    out = graded["out"]
    folder = out / "hw4-bob" / "feedback"
    assert sorted(p.name for p in folder.iterdir()) == ["hw4.ipynb", "report.html"]
    assert (folder / "report.html").read_bytes() == (out / "hw4-bob" / "report.html").read_bytes()
    raw = (folder / "hw4.ipynb").read_text(encoding="utf-8")
    nb = nbformat.reads(raw, as_version=4)
    nbformat.validate(nb)
    plot = next(c for c in nb.cells if c.source == PLOT)
    assert any("image/png" in o.get("data", {}) for o in plot.outputs)  # the plot, as Jupyter
    assert plot.execution_count != 41  # the grader's run, not the one saved
    assert "SAVED ON MY LAPTOP" not in raw
    failing = next(i for i, c in enumerate(nb.cells)
                   if c.cell_type == "code" and "undefined_thing" in c.source)
    note = nb.cells[failing - 1]
    assert feedback.NOTE_TAG in note.metadata["tags"]
    assert "NameError: name 'undefined_thing' is not defined" in note.source
    assert "costs no points by itself" in note.source
    huge = next(c for c in nb.cells if c.source == HUGE_IMAGE)
    assert "over the grader's limit for images" in huge.outputs[0]["text"]
    flood = next(c for c in nb.cells if c.source == FLOOD).outputs
    kept = [o for o in flood if "image/png" in o.get("data", {})]
    assert 50 <= len(kept) < 80 and len(flood) == len(kept) + 1  # one note for what was dropped
    assert len(raw) < runner.MAX_NOTEBOOK_IMAGE_CHARS + 200_000
    for hidden in ("grader.kernel.export", "holdout", "reference/"):
        assert hidden not in raw, hidden
    alice = nbformat.read(out / "hw4-alice" / "feedback" / "hw4-alice.ipynb", as_version=4)
    notes = [c for c in alice.cells if feedback.NOTE_TAG in c.metadata.get("tags", [])]
    assert len(notes) == 1  # the heading note only: nothing failed


@pytest.mark.slow
def test_student_regrades_only_those_named_even_if_unchanged(graded):
    out, tmp = graded["out"], graded["tmp"]
    before = mtimes(out)
    feedback_before = (out / "hw4-alice" / "feedback" / "hw4-alice.ipynb").stat().st_mtime_ns
    graded_at = results(out)["hw4-bob"]["batch"]["graded_at"]
    proc = grade_cli([*graded["base"], "--student", "hw4-bob", "--roster", graded["roster"]], tmp)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "--student: regrading 1 student(s), even if unchanged; the other 2" in proc.stdout
    assert "1 graded, 0 skipped (already graded), 2 left as they were" in proc.stdout
    after = mtimes(out)
    assert [s for s in after if after[s] != before[s]] == ["hw4-bob"]
    assert (out / "hw4-alice" / "feedback" / "hw4-alice.ipynb").stat().st_mtime_ns == \
        feedback_before
    assert json.loads((out / "hw4-bob" / "result.json").read_text())["batch"]["graded_at"] > \
        graded_at
    assert sorted(row["student"] for row in read_grades(out)) == ["hw4-alice", "hw4-bob",
                                                                  "hw4-carol"]
    assert (out / "canvas.csv").is_file()
    assert "hw4-carol" in (out / "summary.html").read_text()
    assert wait_no_processes(tmp, 10) == []
