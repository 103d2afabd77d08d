"""The kernel's copy of the submission's folder: the notebook's own files, never other
notebooks, never the grader's scratch folder itself, and never an unbounded walk."""

from __future__ import annotations

import tempfile

from grader.execution import scratch as scratch_mod


def test_a_notebook_saved_straight_in_tmp_does_not_copy_the_scratch_into_itself(tmp_path,
                                                                                  monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # tmp_path plays /tmp
    notebook = tmp_path / "hw.ipynb"
    notebook.write_text("{}")
    (tmp_path / "other-student.ipynb").write_text("{}")
    (tmp_path / "helpers.py").write_text("X = 1\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "table.csv").write_text("a,b\n")
    work = scratch_mod.create(notebook)
    try:
        copied = sorted(p.relative_to(work.submission).as_posix()
                        for p in work.submission.rglob("*"))
        assert copied == ["data", "data/table.csv", "helpers.py"]
    finally:
        work.cleanup()


def test_a_sibling_folder_over_the_budget_is_left_out_without_walking_it_all(tmp_path,
                                                                              monkeypatch):
    monkeypatch.setattr(scratch_mod, "MAX_COPIED_FILES", 50)
    folder = tmp_path / "class"
    folder.mkdir()
    notebook = folder / "hw.ipynb"
    notebook.write_text("{}")
    many = folder / "downloads"
    many.mkdir()
    for i in range(200):
        (many / f"{i}.txt").write_text("x")
    (folder / "small").mkdir()
    (folder / "small" / "a.txt").write_text("a")
    assert scratch_mod._size_within(many, 10**9, 49) is None
    work = scratch_mod.create(notebook)
    try:
        assert sorted(p.name for p in work.submission.iterdir()) == ["small"]
    finally:
        work.cleanup()
