"""Odd files in a class folder (issue 23). Run with `pytest -m hostile`.

An entry of the submissions folder that is nobody's submission (not a notebook, a link, a name
that is not UTF-8, a student named like one of the batch's own files) is skipped with its reason,
listed at the end of the run and in summary.html, and every other student is graded.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import nbformat
import pytest

import notebook_factory as nf
from grader.batch import discovery, preflight

pytestmark = pytest.mark.hostile
ASSIGNMENT = "fashion-mlp"
ODD_NAME = os.fsdecode(b"caf\xe9.ipynb")  # a name that is not UTF-8, as Python keeps it


def code_nb(*cells: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["grader"] = {"assignment": ASSIGNMENT}
    return nb


def odd_class(root: Path) -> Path:
    """Two gradable students among entries that are nobody's submission."""
    nf.write(code_nb("x = 1"), root / "alice.ipynb")
    nf.write(code_nb("y = 2"), root / "bob" / ODD_NAME)  # graded: bob is the student's id
    nf.write(code_nb("x = 1"), root / "lms.csv.ipynb")  # OUT/lms.csv/ would be OUT/lms.csv
    nf.write(code_nb("x = 1"), root / "summary.html" / "hw.ipynb")
    (root / "notes.txt").write_text("not a notebook")
    nf.write(code_nb("x = 1"), root / "carol.IPYNB")
    (root / "dave.ipynb").symlink_to(root / "alice.ipynb")
    os.mkfifo(root / "pipe.ipynb")
    nf.write(code_nb("x = 1"), root / ODD_NAME)
    (root / ".DS_Store").write_bytes(b"\0")
    return root


def test_odd_entries_are_skipped_with_their_reason_and_the_rest_found(tmp_path):
    found = discovery.scan(odd_class(tmp_path / "subs"), ASSIGNMENT, "fashion-mlp.ipynb")
    assert [s.student for s in found.submissions] == ["alice", "bob"]
    reasons = {s.name: s.reason for s in found.skipped}
    assert sorted(reasons) == sorted(["lms.csv.ipynb", "summary.html", "notes.txt", "carol.IPYNB",
                                      "dave.ipynb", "pipe.ipynb", "caf\ufffd.ipynb"])
    assert "named like the batch's own lms.csv" in reasons["lms.csv.ipynb"]
    assert "named like the batch's own summary.html" in reasons["summary.html"]
    assert reasons["notes.txt"] == "not a notebook (.ipynb)"
    assert ".IPYNB, not .ipynb" in reasons["carol.IPYNB"]
    assert "symbolic link" in reasons["dave.ipynb"]
    assert reasons["pipe.ipynb"] == "not a regular file"
    assert "not valid UTF-8" in reasons["caf\ufffd.ipynb"]


@pytest.mark.slow
def test_a_class_with_odd_files_is_graded_and_the_odd_files_listed(tmp_path, monkeypatch, capsys,
                                                                   data_dir):
    """`grader grade` on a folder holding lms.csv.ipynb used to refuse the whole batch (exit 2).
    Now both students are graded by real workers (the set-up check, which grades the reference,
    is not what this is about) and the skipped entries are listed at the end and in
    summary.html."""
    from grader.cli import main

    monkeypatch.setattr(preflight, "check", lambda *a: None)
    subs, out = odd_class(tmp_path / "subs"), tmp_path / "out"
    code = main(["grade", str(subs), "-a", ASSIGNMENT, "--out", str(out), "--data-dir",
                 str(data_dir), "-j", "1", "--timeout", "120"])
    printed = capsys.readouterr()
    assert code == 0, printed.out + printed.err
    assert sorted(p.parent.name for p in out.glob("*/result.json")) == ["alice", "bob"]
    for student in ("alice", "bob"):
        result = json.loads((out / student / "result.json").read_text())
        assert result["execution"]["status"] == "completed", result["execution"]
        assert (out / student / "feedback" / "report.html").is_file()
    assert result["notebook"].endswith("bob/caf\ufffd.ipynb")
    with (out / "lms.csv").open(newline="") as fh:
        assert [row["submission"] for row in csv.DictReader(fh)] == ["alice", "bob"]
    listing = printed.out[printed.out.index("not graded: 7 file(s)"):]
    assert "lms.csv.ipynb: named like the batch's own lms.csv" in listing
    assert "notes.txt: not a notebook (.ipynb)" in listing
    summary = (out / "summary.html").read_text()
    assert "7 file(s) in the submissions folder were not graded" in summary
    assert "lms.csv.ipynb" in summary and "carol.IPYNB" in summary


def test_a_folder_of_odd_files_only_says_what_it_skipped(tmp_path, capsys):
    from grader.cli import main

    (tmp_path / "subs").mkdir()
    nf.write(code_nb("x = 1"), tmp_path / "subs" / "grades.csv.ipynb")
    (tmp_path / "subs" / "notes.txt").write_text("x")
    assert main(["grade", str(tmp_path / "subs"), "-a", ASSIGNMENT,
                 "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "no submissions" in err and "skipped grades.csv.ipynb: named like" in err
    assert "skipped notes.txt: not a notebook" in err


def test_naming_a_skipped_entry_with_student_says_why_it_was_skipped(tmp_path, capsys):
    from grader.cli import main

    subs = odd_class(tmp_path / "subs")
    assert main(["grade", str(subs), "-a", ASSIGNMENT, "--out", str(tmp_path / "out"),
                 "--student", "lms.csv"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "'lms.csv' (skipped lms.csv.ipynb: named like the batch's own lms.csv" in err
