"""A course's own folder of assignments: --course DIR, $GRADER_COURSE, $GRADER_HOME."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from grader import cli, paths, pipeline, assignment as spec

REPO = Path(__file__).resolve().parent.parent
# Every command that reads an assignment's spec or reference material.
READS_ASSIGNMENTS = ("list", "check", "grade", "calibrate", "gradescope-bundle", "publish", "new")


@pytest.fixture(autouse=True)
def no_course_in_environment(monkeypatch):
    monkeypatch.delenv(paths.COURSE_VARIABLE, raising=False)
    monkeypatch.delenv(paths.LEGACY_COURSE_VARIABLE, raising=False)


@pytest.fixture
def course(tmp_path) -> Path:
    """A course folder with one homework: fashion-mlp, copied with its calibration files."""
    root = tmp_path / "course"
    shutil.copytree(REPO / "assignments" / "fashion-mlp", root / "assignments" / "fashion-mlp")
    (root / "reference" / "fashion-mlp").mkdir(parents=True)
    for name in ("expected.json", "thresholds.json", "designs.json"):
        shutil.copy(REPO / "reference" / "fashion-mlp" / name,
                    root / "reference" / "fashion-mlp" / name)
    return root


def run(argv, capsys):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, " ".join(out.split()), " ".join(err.split())


def test_every_command_that_reads_assignments_takes_course():
    parser = cli.build_parser()
    commands = parser._subparsers._group_actions[0].choices  # noqa: SLF001 - argparse's own
    for name in READS_ASSIGNMENTS:
        options = {o for a in commands[name]._actions for o in a.option_strings}
        assert "--course" in options, name
        action = next(a for a in commands[name]._actions if "--course" in a.option_strings)
        assert action.type is Path and action.default is None
        assert "GRADER_COURSE" in action.help and "GRADER_HOME" in action.help


def test_list_says_where_the_assignments_come_from(capsys):
    code, out, _ = run(["list"], capsys)
    assert code == 0
    assert out.startswith(f"assignments from: {REPO / 'assignments'} (the grader's own checkout")


def test_list_with_course_shows_that_course_only(course, capsys):
    code, out, _ = run(["list", "--course", course], capsys)
    assert code == 0
    assert f"assignments from: {course / 'assignments'} (--course)" in out
    assert "fashion-mlp" in out and "lenet5" not in out
    # the option is this call's: the next call reads the grader's own assignments again
    assert os.environ.get(paths.COURSE_VARIABLE) is None
    assert spec.available() == spec.available(REPO / "assignments")


@pytest.mark.parametrize("variable", ["GRADER_COURSE", "GRADER_HOME"])
def test_the_environment_chooses_the_course(course, variable, monkeypatch, capsys):
    monkeypatch.setenv(variable, str(course))
    code, out, _ = run(["list"], capsys)
    assert code == 0 and f"assignments from: {course / 'assignments'} (${variable})" in out
    assert spec.available() == ["fashion-mlp"]
    assignment = spec.load("fashion-mlp")
    assert assignment.folder == course / "assignments" / "fashion-mlp"
    assert assignment.reference_dir == course / "reference" / "fashion-mlp"
    assert assignment.expected()["objects"]


def test_course_option_wins_over_the_environment(course, tmp_path, monkeypatch, capsys):
    other = tmp_path / "other"
    (other / "assignments").mkdir(parents=True)
    monkeypatch.setenv("GRADER_COURSE", str(other))
    code, out, _ = run(["list", "--course", course], capsys)
    assert code == 0 and "fashion-mlp" in out
    assert os.environ["GRADER_COURSE"] == str(other)  # restored


def test_an_empty_course_says_how_to_add_one(tmp_path, capsys):
    code, out, _ = run(["list", "--course", tmp_path], capsys)
    assert code == 0 and "none there yet" in out and "docs/authoring.md" in out


def test_a_missing_course_folder_is_a_usage_error(tmp_path, capsys):
    code, _, err = run(["list", "--course", tmp_path / "nope"], capsys)
    assert code == 2 and f"--course {tmp_path / 'nope'}: no such folder" in err


def test_an_unknown_id_says_where_it_looked_and_how_to_add_it(course, capsys):
    code, _, err = run(["calibrate", "-a", "mnist-mlp", "--course", course], capsys)
    assert code == 2
    assert (f"unknown assignment 'mnist-mlp': no mnist-mlp/assignment.toml in "
            f"{course / 'assignments'} (from --course); known there: fashion-mlp") in err
    assert f"write {course / 'assignments' / 'mnist-mlp'}/ with its assignment.toml" in err
    assert f"grader calibrate -a mnist-mlp --course {course}" in err and "docs/authoring.md" in err
    assert f"grader new mnist-mlp --from REFERENCE.ipynb --course {course}" in err


def test_the_sandbox_hides_the_courses_reference_and_the_graders_own(course, monkeypatch):
    monkeypatch.setenv("GRADER_COURSE", str(course))
    hidden = paths.reference_dirs()
    assert course / "reference" in hidden and paths.PACKAGE_ROOT / "reference" in hidden
    prepared = pipeline.PreparedData(student_npz={}, holdout_images=None, holdout_labels=None,
                                     summary={})
    mounts = pipeline.sandbox_mounts(pipeline.Options(), prepared, course / "harvest")
    assert course / "reference" in mounts.hidden
    assert paths.PACKAGE_ROOT / "grader" in mounts.readable  # the code, not the course


def test_the_installed_grader_reads_the_course_variable(course):
    """In its own process, as a TA's shell runs it: the variable reaches batch workers too."""
    env = {**os.environ, "GRADER_COURSE": str(course), "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "grader.cli", "list"], env=env, cwd=course,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"assignments from: {course / 'assignments'} ($GRADER_COURSE)" in proc.stdout


# --- an assignment not calibrated yet ------------------------------------------------------------

@pytest.fixture
def uncalibrated(course) -> Path:
    for name in ("expected.json", "thresholds.json", "designs.json"):
        (course / "reference" / "fashion-mlp" / name).unlink()
    return course


def test_check_refuses_an_uncalibrated_assignment_naming_the_fix(uncalibrated, tmp_path, capsys):
    notebook = tmp_path / "hw.ipynb"
    shutil.copy(REPO / "assignments" / "fashion-mlp" / "fashion-mlp.ipynb", notebook)
    code, _, err = run(["check", notebook, "--course", uncalibrated, "--out", tmp_path / "r"],
                       capsys)
    assert code == 2
    assert "fashion-mlp is not calibrated yet" in err
    assert f"Run `grader calibrate -a fashion-mlp --course {uncalibrated}` first" in err
    assert str(uncalibrated / "reference" / "fashion-mlp" / "expected.json") in err
    assert not (tmp_path / "r").exists()  # nothing graded, nothing written


def test_grade_refuses_an_uncalibrated_assignment(uncalibrated, tmp_path, monkeypatch, capsys):
    (tmp_path / "subs").mkdir()
    shutil.copy(REPO / "assignments" / "fashion-mlp" / "fashion-mlp.ipynb",
                tmp_path / "subs" / "ann.ipynb")
    monkeypatch.setenv(paths.COURSE_VARIABLE, str(uncalibrated))
    code, _, err = run(["grade", tmp_path / "subs", "-a", "fashion-mlp", "--out",
                        tmp_path / "out"], capsys)
    assert code == 2 and "Run `grader calibrate -a fashion-mlp" in err
    assert not (tmp_path / "out").exists()


def test_the_bundled_assignments_are_calibrated():
    for aid in spec.available():
        assert spec.load(aid).calibration_missing() == [], aid


def test_the_calibrated_kinds_are_calibrates_own():
    from grader.instructor import calibrate

    assert set(spec.CALIBRATED_KINDS) == set(calibrate.CALIBRATED) | set(calibrate.FIXED)


def test_subset_fidelity_takes_any_assignment_of_the_course(course, monkeypatch):
    import argparse
    import importlib.util

    loaded = importlib.util.spec_from_file_location("subset_fidelity",
                                                    REPO / "bench" / "subset_fidelity.py")
    bench = importlib.util.module_from_spec(loaded)
    monkeypatch.setitem(sys.modules, "subset_fidelity", bench)  # its dataclasses look it up
    loaded.loader.exec_module(bench)
    shutil.copytree(course / "assignments" / "fashion-mlp", course / "assignments" / "mnist-mlp")
    toml = course / "assignments" / "mnist-mlp" / "assignment.toml"
    toml.write_text(toml.read_text().replace('id = "fashion-mlp"', 'id = "mnist-mlp"'))
    parser = argparse.ArgumentParser()
    with paths.course_kept():
        chosen = bench.chosen_assignments(parser, argparse.Namespace(course=course,
                                                                     assignment=["mnist-mlp"]))
        assert [a.id for a in chosen] == ["mnist-mlp"]
        every = bench.chosen_assignments(parser, argparse.Namespace(course=course,
                                                                    assignment=None))
        assert [a.id for a in every] == ["fashion-mlp", "mnist-mlp"]
