"""The grader's commands: list, check, grade, report, data, calibrate, gradescope-bundle, publish.

Exit status: 0 when grading ran (whatever the score); 1 with --fail-under when the score is
below it; 2 for a usage error (unknown assignment, no such file, bad option); 3 when the
grader itself failed (sandbox, interpreter, packages, dataset): nothing was scored.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from . import __version__, environment, paths, assignment as spec
from .submission import notebook
from .data.sources import DATASETS
from .errors import GraderError
from .execution.sandbox import SandboxUnavailable
from .pipeline import Options, grade
from .progress import TerminalProgress
from .scoring import DataMode, write_atomic

if TYPE_CHECKING:  # the batch is imported only by `grader grade`
    from .batch.discovery import Skipped

EXIT_OK, EXIT_BELOW, EXIT_USAGE, EXIT_GRADER_ERROR = 0, 1, 2, 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it


DATA_DIR_VARIABLE = "GRADER_DATA_DIR"


class UsageError(Exception):
    pass


def _add_data_dir(p: argparse.ArgumentParser) -> None:
    """--data-dir, the same for every command that reads a dataset; its default comes from the
    environment (a CI job or a TA's shell sets it once)."""
    value = os.environ.get(DATA_DIR_VARIABLE)
    p.add_argument("--data-dir", type=Path, default=Path(value) if value else None,
                   help=f"folder holding fashion-mnist/ and/or mnist/ (default: "
                        f"${DATA_DIR_VARIABLE})")


def _add_course(p: argparse.ArgumentParser) -> None:
    """--course, the same for every command that reads assignments: the folder holding the
    course's assignments/<id>/ and reference/<id>/ (grader/paths.py). Its default comes from the
    environment, as --data-dir's does."""
    p.add_argument("--course", type=Path, default=None, metavar="DIR",
                   help=f"the course folder, holding assignments/<id>/ and reference/<id>/ "
                        f"(default: ${paths.COURSE_VARIABLE}, else "
                        f"${paths.LEGACY_COURSE_VARIABLE}, else the grader's own checkout, "
                        f"whose assignments are the bundled homework; `grader list` shows which)")


def _use_course(args: argparse.Namespace) -> None:
    """Apply --course before anything reads an assignment: a folder that is not there is a
    usage error, never a silent fall-back to the grader's own assignments."""
    folder = getattr(args, "course", None)
    if folder is None:
        return
    if not folder.is_dir():
        raise UsageError(f"--course {folder}: " + ("no such folder" if not folder.exists()
                                                   else "not a folder") +
                         " (a course folder holds assignments/<id>/ and reference/<id>/)")
    paths.set_course(folder)


def _seconds(text: str) -> float:
    """A time limit: a positive, finite number of seconds (argparse turns the error into exit 2)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not (0 < value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def _add_grading_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--assignment", "-a", help="assignment id (default: the notebook's "
                   "metadata.grader.assignment)")
    _add_course(p)
    _add_data_dir(p)
    p.add_argument("--full", action="store_true", help="run on the whole dataset, not the subset")
    p.add_argument("--timeout", type=_seconds, help="whole-notebook time limit in seconds")
    p.add_argument("--cell-timeout", type=_seconds, help="time limit in seconds for any one "
                   "cell (a long fit in --full mode)")
    p.add_argument("--sandbox", choices=("auto", "bwrap", "none"), default="auto",
                   help="run the kernel in bubblewrap (auto: when available)")


def _grading_options(args: argparse.Namespace, **extra: Any) -> Options:
    """The options _add_grading_options declared, as the one typed value a grading carries:
    `--full` becomes the data mode here and stays that enum down to the measuring process."""
    return Options(data_dir=args.data_dir, mode=DataMode.FULL if args.full else DataMode.SUBSET,
                   timeout=args.timeout, cell_timeout=args.cell_timeout,
                   sandbox=args.sandbox, **extra)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="grader", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"grader {__version__}")
    parser.add_argument("--python", action="version", version=sys.executable,
                        help="print the Python the grader runs in, for scripts that must use "
                             "its environment (a venv's) rather than the python3 on PATH")
    sub = parser.add_subparsers(dest="command", required=True)

    listing = sub.add_parser("list", help="assignments, their checks and points, and the "
                                          "course folder they come from")
    _add_course(listing)

    check = sub.add_parser("check", help="grade one notebook")
    check.add_argument("notebook", type=Path)
    _add_grading_options(check)
    check.add_argument("--out", type=Path, default=Path("grader-report"),
                       help="report folder (default: grader-report/)")
    check.add_argument("--json", action="store_true", help="print result JSON instead of the table")
    check.add_argument("--fail-under", type=float, metavar="POINTS",
                       help="exit 1 when the score is below POINTS")
    check.add_argument("--force", action="store_true",
                       help="grade the notebook even if its metadata names another assignment")

    grade_p = sub.add_parser("grade", help="grade a folder of submissions into a gradebook",
                             description="Grade every notebook in a folder (or one folder per "
                             "student) in parallel; writes OUT/<student>/result.json, "
                             "report.html and feedback/ (to hand back), OUT/grades.csv, "
                             "summary.html, lms.csv (and canvas.csv with --roster), and "
                             "similarity.html and similarity.csv (similar submissions, for the "
                             "TA). Resumable: "
                             "students already graded with the same notebook are skipped.",
                             epilog="A student is a notebook in SUBMISSIONS (id: its file name) "
                             "or a folder in it (id: the folder's name; notebooks at any depth). "
                             "A folder with several notebooks: the one whose "
                             "metadata.grader.assignment names the assignment; among several "
                             "such, the one named like the starter notebook; otherwise that "
                             "student gets an error result (status ambiguous) and the batch "
                             "goes on.")
    grade_p.add_argument("submissions", type=Path,
                         help="folder of notebooks, or of one folder per student")
    _add_grading_options(grade_p)
    grade_p.add_argument("--out", "-o", type=Path, default=Path("grades"),
                         help="output folder (default: grades/)")
    grade_p.add_argument("--jobs", "-j", type=int, default=None,
                         help="notebooks graded at once (default: half the cores)")
    grade_p.add_argument("--force", action="store_true",
                         help="regrade students already graded with the same notebook, and "
                              "grade notebooks whose metadata names another assignment")
    grade_p.add_argument("--manual", type=Path, metavar="CSV",
                         help="TA points for manual checks: columns student,check,points[,comment]")
    grade_p.add_argument("--student", action="append", default=[], metavar="ID",
                         dest="students",
                         help="regrade only this student (repeatable), even if the notebook is "
                              "unchanged; the others' results stay as they are")
    grade_p.add_argument("--roster", type=Path, metavar="CSV",
                         help="the course's roster (GitHub Classroom's export or the course's "
                              "own: GitHub username or folder name, student id, name): writes "
                              "canvas.csv beside grades.csv and puts ids and names in lms.csv")
    grade_p.add_argument("--canvas-assignment", metavar="ID",
                         help="Canvas's id of the assignment (from its address, "
                              ".../assignments/ID), so that canvas.csv imports into it")
    grade_p.add_argument("--worker-timeout", type=_seconds, metavar="SECONDS",
                         help="stop one student's grading after this long (default: from the "
                              "assignment's time limits)")
    grade_p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                         help="grade each student as a task on this Dask scheduler's workers "
                              "(pip install 'dl-grader[dask]'); --data-dir is then a path on "
                              "the workers, and -j is ignored (each worker's threads decide)")

    _add_similarity_options(grade_p)

    report = sub.add_parser("report", help="render a saved result.json in another format")
    report.add_argument("result", type=Path, help="a result.json written by `grader check`")
    report.add_argument("--format", "-f", dest="fmt", required=True,
                        choices=("html", "md", "gradescope", "classroom", "json", "terminal"),
                        help="html: report.html; md: job summary / PR comment; gradescope: "
                             "results.json; classroom: base64 `result` for GitHub Classroom; "
                             "terminal: the table grader check prints")
    report.add_argument("--out", type=Path, help="write here instead of standard output")

    data = sub.add_parser("data", help="show which datasets are available and where")
    _add_data_dir(data)
    data.add_argument("--fetch", nargs="*", metavar="DATASET", choices=sorted(DATASETS),
                      help="download these datasets (default: all) where not found, as Keras "
                           "does, into its cache (~/.keras/datasets), each file checked "
                           "against its published checksum")

    bundle = sub.add_parser("gradescope-bundle", help="write the autograder zip Gradescope takes",
                            description="A zip with setup.sh and run_autograder at its root and "
                            "this grader's source with one assignment, to upload as a "
                            "Gradescope programming assignment's autograder.")
    bundle.add_argument("--assignment", "-a", required=True)
    _add_course(bundle)
    bundle.add_argument("--out", "-o", type=Path, help="the zip (default: <id>-gradescope.zip)")
    bundle.add_argument("--check-args", default="", metavar="ARGS",
                        help="extra options for grader check, e.g. \"--timeout 600\"")

    cal = sub.add_parser("calibrate", help="record the reference's architecture and thresholds")
    cal.add_argument("--assignment", "-a", required=True)
    _add_course(cal)
    _add_data_dir(cal)
    cal.add_argument("--runs", type=int, default=3, help="runs with different kernel seeds")
    cal.add_argument("--designs-only", action="store_true",
                     help="only re-record the designs the grader retrains (one run)")
    cal.add_argument("--constraints-only", action="store_true",
                     help="only record this environment's Python and package versions in "
                          "reference/<id>/constraints.txt (no run): in the environment the "
                          "thresholds were calibrated in, or for an assignment with nothing "
                          "to calibrate")

    new = sub.add_parser("new", help="write an assignment from a reference solution, then "
                                     "calibrate it",
                         description="Write assignments/ID/ (assignment.toml with the checks the "
                         "reference's models call for, the starter with the solution cells "
                         "stubbed) and reference/ID/ (the reference) into the course folder, "
                         "then run grader calibrate -a ID. Edit points and titles afterwards "
                         "(docs/authoring.md).",
                         epilog="Solution cells: the lines between nbgrader's ### BEGIN SOLUTION "
                         "and ### END SOLUTION where the reference has them, otherwise each cell "
                         "that builds, compiles or trains a graded model.")
    new.add_argument("id", help="the new assignment's id (its folder's name)")
    new.add_argument("--from", dest="source", type=Path, required=True, metavar="NOTEBOOK",
                     help="the reference solution")
    new.add_argument("--title", help="the assignment's title (default: the notebook's first "
                                     "heading)")
    _add_course(new)
    _add_data_dir(new)
    new.add_argument("--runs", type=int, default=3, help="calibration runs of the reference "
                                                         "(kernel seeds)")
    new.add_argument("--no-calibrate", action="store_true",
                     help="write the files only (then run grader calibrate -a ID)")

    pub = sub.add_parser("publish", help="write the grader for a GitHub Action repository, "
                                         "without any solution",
                         description="Write an action repository into OUT: action.yml, the "
                         "grader, and each assignment's starter, assignment.toml and "
                         "calibration files (expected.json, thresholds.json, designs.json, "
                         "constraints.txt). No reference or variant notebook, so students' "
                         "workflows may read it. OUT must be empty, a checkout holding only "
                         ".git, or a folder this command wrote before.")
    pub.add_argument("--out", "-o", type=Path, required=True)
    pub.add_argument("--assignment", "-a", action="append", metavar="ID",
                     help="publish this assignment (repeatable; default: all)")
    _add_course(pub)
    return parser


def cmd_list(args: argparse.Namespace, console: Console) -> int:
    """Every valid assignment; a broken spec is reported (exit 2) without hiding the others."""
    folder = paths.assignments_dir()
    good, broken = spec.load_all()
    console.print(f"assignments from: {folder} ({paths.course_origin()})"
                  + ("" if good or broken else
                     " — none there yet (docs/authoring.md: adding a homework)"),
                  highlight=False, soft_wrap=True, markup=False)
    for a in good:
        console.print(f"[bold]{a.id}[/]  {a.title}  ({a.max_score:g} points)", highlight=False,
                      soft_wrap=True)
        for c in a.checks:
            console.print(f"  {c.id:<24} {c.points:>5g}  {c.title}", highlight=False,
                          soft_wrap=True, markup=False)
    err = Console(stderr=True)
    for exc in broken:
        err.print(f"grader: error: {exc}", highlight=False, soft_wrap=True, markup=False)
    return EXIT_USAGE if broken else EXIT_OK


def _resolve_assignment(args: argparse.Namespace) -> spec.Assignment:
    """-a, or the notebook's metadata; refuses (unless --force) when the two disagree."""
    loaded = notebook.load(args.notebook)
    hint = loaded.assignment_hint
    if args.assignment:
        assignment = spec.load(args.assignment)
        if hint and hint != assignment.id and not args.force:
            raise UsageError(
                f"{args.notebook} is a notebook of {hint!r} (its metadata.grader.assignment), "
                f"not of {assignment.id!r}: graded as {assignment.id} it would score zero. Use "
                f"-a {hint}, or --force to grade it as {assignment.id} anyway")
        return assignment
    if hint:
        if hint not in spec.available():
            raise UsageError(f"the notebook's metadata.grader.assignment names {hint!r}, which "
                             f"this grader does not have: pass --assignment ID, or "
                             + spec.unknown_message(hint, paths.assignments_dir(),
                                                    spec.available()))
        return spec.load(hint)
    why = (f"the notebook cannot be read: {loaded.error}" if loaded.node is None and loaded.error
           else "the notebook carries no metadata.grader.assignment")
    raise UsageError(f"no assignment given: pass --assignment ID ({why})")


def _refuse_uncalibrated(assignment: spec.Assignment) -> None:
    """Grading an assignment `grader calibrate` has not run for would score every notebook with
    checks erroring: refuse it, naming the command that fixes it."""
    missing = assignment.calibration_missing()
    if not missing:
        return
    # the option is this command's only: the variables reach `grader calibrate` by themselves
    course = f" --course {paths.course_root()}" if paths.course_origin() == "--course" else ""
    raise UsageError(f"{assignment.id} is not calibrated yet: no "
                     f"{' or '.join(str(p) for p in missing)}. Run `grader calibrate -a "
                     f"{assignment.id}{course}` first (it grades the reference solution "
                     f"{assignment.reference} and its variants and records the architectures "
                     "and bars the checks compare with; docs/authoring.md)")


def _check_data_dir(data_dir: Path | None, assignment: spec.Assignment | None) -> None:
    """--data-dir must exist and hold the assignment's dataset: never fall back silently."""
    if data_dir is None:
        return
    if not data_dir.is_dir():
        raise UsageError(f"--data-dir {data_dir}: no such folder"
                         if not data_dir.exists() else f"--data-dir {data_dir} is not a folder")
    if assignment is None or assignment.data is None:
        return
    from .data import sources

    name = assignment.data.dataset
    found = sources.locate(name, data_dir)
    if found is None or found.origin != "data-dir":
        info = sources.DATASETS[name]
        files = ", ".join(f"{stem}.gz" for stem in sources.IDX_FILES)
        npz = (f", or {info.npz_name} in {data_dir}/ or {data_dir / name}/" if info.npz_name
               else "")
        raise UsageError(f"--data-dir {data_dir} holds no {name} dataset ({assignment.id} "
                         f"needs it): expected the folder {data_dir / name}/ with {files}{npz}")


def cmd_check(args: argparse.Namespace, console: Console) -> int:
    if args.notebook.is_dir():
        raise UsageError(f"{args.notebook} is a folder: use `grader grade {args.notebook}` to "
                         "grade the notebooks in it (grader check grades one notebook)")
    if not args.notebook.is_file():
        raise UsageError(f"no such file: {args.notebook}")
    assignment = _resolve_assignment(args)
    _refuse_uncalibrated(assignment)
    _check_data_dir(args.data_dir, assignment)
    # Progress on stderr, on a terminal only: piped output and --json stay clean.
    progress = TerminalProgress(Console(stderr=True), enabled=not args.json)
    options = _grading_options(args, progress=progress)
    with _interruptible() as interrupted, progress.shown():
        try:
            environment.verify(assignment.packages)
            result = grade(args.notebook, assignment, options)
        except BaseException:
            # asyncio turns a Ctrl-C inside the kernel's event loop into a cancellation
            if interrupted():
                raise KeyboardInterrupt from None
            raise
    if interrupted():  # the kernel may have died of the same Ctrl-C: that result is not real
        raise KeyboardInterrupt
    if result.grader_error:
        Console(stderr=True).print(f"[bold red]GRADER ERROR[/]: {result.execution.message}",
                                   highlight=False, soft_wrap=True)
    elif result.unscored:
        Console(stderr=True).print(
            f"[bold red]GRADER ERROR[/]: the grader failed on {', '.join(result.unscored)}, not "
            "the notebook, so the notebook has no score yet (each check's reason is in the "
            "report). Grade it again once that is fixed, or a TA sets those checks' points "
            "(grader grade --manual).", highlight=False, soft_wrap=True)
    if result.sandbox == "none" and not result.grader_error:
        Console(stderr=True).print("[bold red]WARNING: no sandbox[/]: the notebook ran with "
                                   "process limits only (install bubblewrap, or see README)")
    if result.limits and result.limits.missing:  # which caps did not hold, and why
        Console(stderr=True).print("[yellow]limits not in force here[/]: " + "; ".join(
            f"{m.mechanism} ({m.why})" for m in result.limits.missing)
            + " (README: Enabling the limits)", highlight=False, soft_wrap=True)
    from .reports import write_all

    written = write_all(result, args.out)
    text = result.to_json()
    if args.json:
        sys.stdout.write(text + "\n")
    else:
        from .reports import terminal

        terminal.render(result, console)
        console.print("reports written: " + ", ".join(str(p) for p in written.values()),
                      highlight=False, soft_wrap=True)
    if result.grader_error or result.score is None:
        return EXIT_GRADER_ERROR
    if args.fail_under is not None and result.score < args.fail_under:
        return EXIT_BELOW
    return EXIT_OK


def _add_similarity_options(parser: argparse.ArgumentParser) -> None:
    """The similarity report's thresholds, each declared once in grader/similarity/OPTIONS."""
    from .similarity import OPTIONS, cli_flag

    group = parser.add_argument_group(
        "similarity report", "OUT/similarity.html and similarity.csv: pairs of submissions "
        "flagged for the TA (never a score, never in a student's report)")
    for name, (kind, default, text) in OPTIONS.items():
        group.add_argument(cli_flag(name), dest=f"similar_{name}", type=kind, default=default,
                           metavar="N" if kind is int else "X",
                           help=f"{text} (default: {default})")


def _similarity_thresholds(args: argparse.Namespace) -> Any:
    from .similarity import OPTIONS, Thresholds

    return Thresholds(**{name: getattr(args, f"similar_{name}") for name in OPTIONS})


def cmd_grade(args: argparse.Namespace, console: Console) -> int:
    from . import batch
    from .batch.discovery import assignment_hints

    if not args.submissions.is_dir():
        raise UsageError(f"not a folder: {args.submissions} (grader grade takes a folder of "
                         "notebooks or of student folders; grader check grades one notebook)")
    if args.assignment:
        assignment = spec.load(args.assignment)
        _refuse_other_assignments(args, assignment)
    else:
        hints = assignment_hints(args.submissions, exclude=args.out)
        if len(hints) != 1:
            found = ", ".join(f"{k} ({v})" for k, v in sorted(hints.items())) or "none"
            raise UsageError("no assignment given: pass --assignment ID (assignments named in "
                             f"the notebooks' metadata: {found})")
        assignment = spec.load(next(iter(hints)))
        console.print(f"assignment {assignment.id} (from the notebooks' metadata)",
                      highlight=False)
    _refuse_uncalibrated(assignment)
    if not args.scheduler:  # on a cluster --data-dir is the workers' path: they check it
        _check_data_dir(args.data_dir, assignment)
    jobs = args.jobs if args.jobs is not None else batch.default_jobs()
    if jobs < 1:
        raise UsageError("--jobs must be at least 1")
    options = batch.BatchOptions(
        out=args.out, jobs=jobs, force=args.force, manual=args.manual,
        worker_timeout=args.worker_timeout, scheduler=args.scheduler,
        students=tuple(args.students), roster=args.roster,
        canvas_assignment=args.canvas_assignment,
        similarity=_similarity_thresholds(args),
        grading=_grading_options(args))
    try:
        report = batch.run(args.submissions, assignment, options, console)
    except batch.BatchError as exc:
        raise UsageError(str(exc)) from None
    if not args.scheduler and any(o.action == "graded" for o in report.outcomes):
        from .execution import sandbox

        if sandbox.resolve(args.sandbox) == "none":
            Console(stderr=True).print("[bold red]WARNING: no sandbox[/]: the notebooks ran with "
                                       "process limits only (install bubblewrap, or see README)")
    _print_skipped(report.skipped, args.submissions, console)
    failed = sum(1 for o in report.outcomes if o.status in batch.NOT_GRADED)
    untouched = report.count("untouched")
    wrote = ", ".join(str(p) for p in [report.gradebook, report.summary, *report.exports])
    console.print(f"{len(report.outcomes)} students: {report.count('graded')} graded, "
                  f"{report.count('skipped')} skipped (already graded), "
                  + (f"{untouched} left as they were (not named by --student), " if untouched
                     else "")
                  + f"{failed} without a graded notebook. Wrote {wrote}; feedback to hand back "
                  f"in {report.out}/<student>/feedback/", highlight=False, soft_wrap=True)
    if report.similarity is not None:
        console.print(f"similar submissions: {report.similarity.flagged} pair(s) flagged for "
                      f"the TA in {report.similarity.html} and {report.similarity.csv} "
                      f"({report.similarity.seconds:.1f} s)", highlight=False, soft_wrap=True)
    if report.interrupted:
        Console(stderr=True).print("interrupted: results written so far are kept; run the same "
                                   "command again to grade the rest", highlight=False)
        return EXIT_INTERRUPTED
    return EXIT_OK


def _print_skipped(skipped: list[Skipped], root: Path, console: Console) -> None:
    """What the batch did not grade in the submissions folder, and why: at the end, where a TA
    reads, not scrolled away above a class's lines."""
    if not skipped:
        return
    console.print(f"not graded: {len(skipped)} file(s) in {root} (also listed in summary.html):",
                  highlight=False, markup=False, soft_wrap=True)
    for item in skipped:
        console.print(f"  {item.name}: {item.reason}", highlight=False, markup=False,
                      soft_wrap=True)


def _refuse_other_assignments(args: argparse.Namespace, assignment: spec.Assignment) -> None:
    """Say how many of the notebooks to grade name another assignment in their metadata, and
    refuse to grade them as this one unless --force: a wrong -a would give a class zeros."""
    from .batch.discovery import assignment_hint, discover

    subs = discover(args.submissions, assignment.id, assignment.starter.name, exclude=args.out)
    wanted = getattr(args, "students", None)
    if wanted:  # --student: only those being graded matter
        subs = [s for s in subs if s.student in wanted]
    others: dict[str, list[str]] = {}
    for sub in subs:
        hint = assignment_hint(sub.notebook) if sub.notebook else None
        if hint and hint != assignment.id:
            others.setdefault(hint, []).append(sub.student)
    if not others:
        return
    count = sum(len(students) for students in others.values())
    named = ", ".join(f"{hint} ({len(students)}: {', '.join(students[:3])}"
                      f"{', …' if len(students) > 3 else ''})"
                      for hint, students in sorted(others.items()))
    message = (f"{count} of {len(subs)} notebooks name another assignment than "
               f"{assignment.id!r} in their metadata.grader.assignment: {named}")
    if not args.force:
        raise UsageError(f"{message}. Graded as {assignment.id} they would score zero: check -a, "
                         f"or pass --force to grade them as {assignment.id} anyway")
    Console(stderr=True).print(f"warning: {message}; grading them as {assignment.id} (--force)",
                               highlight=False, soft_wrap=True, markup=False)


def cmd_report(args: argparse.Namespace, console: Console) -> int:
    from .reports import render

    from pydantic import ValidationError

    from .result import GradeResult

    try:
        text = args.result.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"no such file: {args.result}") from None
    except OSError as exc:
        raise UsageError(f"{args.result} is not a readable result.json ({exc})") from None
    try:
        result = GradeResult.from_json(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{args.result} is not a grader result.json (not JSON: {exc})") \
            from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the file"
        raise UsageError(f"{args.result} is not a grader result.json ({where}: "
                         f"{first['msg']})") from None
    if args.fmt == "terminal" and not args.out:
        from .reports import terminal

        terminal.render(result, console)
        return EXIT_OK
    text = render(result, args.fmt)
    if args.out:
        write_atomic(args.out, text)
        Console(stderr=True).print(f"wrote {args.out}", highlight=False)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return EXIT_OK


def cmd_data(args: argparse.Namespace, console: Console) -> int:
    from . import data

    _check_data_dir(args.data_dir, None)
    failed = args.fetch is not None and not _fetch(args.fetch or list(data.DATASETS), console)
    for line in data.describe(args.data_dir):
        console.print(line, highlight=False, soft_wrap=True)
    return EXIT_GRADER_ERROR if failed else EXIT_OK


def _fetch(names: list[str], console: Console) -> bool:
    """Download each dataset not found; False when one could not be had (offline, say)."""
    from . import data

    fetched = True
    for name in names:
        try:
            found = data.fetch(name)
        except data.DatasetError as exc:
            console.print(f"{name}: {exc}", highlight=False, soft_wrap=True)
            fetched = False
            continue
        console.print(f"{name}: {found.where} ({found.origin})", highlight=False, soft_wrap=True)
    return fetched


def cmd_calibrate(args: argparse.Namespace, console: Console) -> int:
    assignment = spec.load(args.assignment)
    _check_data_dir(args.data_dir, assignment)
    if args.constraints_only:
        from .instructor import constraints

        console.print(f"wrote {constraints.write(assignment)}", highlight=False)
        return EXIT_OK
    if args.designs_only:
        from .instructor.calibrate import record_designs

        designs = record_designs(assignment, Options(data_dir=args.data_dir))
        console.print(f"wrote {assignment.designs_path}: "
                      f"{', '.join(designs['objects']) or 'no retrained design'}; and "
                      f"{assignment.reference_dir / 'constraints.txt'}", highlight=False,
                      soft_wrap=True)
        return EXIT_OK
    return _calibrate(assignment, args.data_dir, args.runs, console)


def _sayer(console: Console):
    """Plain lines: paths and check ids are not rich markup."""
    def say(text: str) -> None:
        console.print(text, highlight=False, soft_wrap=True, markup=False)
    return say


def _calibrate(assignment: spec.Assignment, data_dir: Path | None, runs: int,
               console: Console) -> int:
    """Every run and variant, and a report of what was used and written (calibrate, new)."""
    from .instructor.calibrate import calibrate
    from .instructor.variants import VariantError

    try:
        done = calibrate(assignment, Options(data_dir=data_dir), runs=runs)
    except VariantError as exc:
        raise UsageError(f"{exc} (docs/authoring.md: variants and their metadata)") from None
    say = _sayer(console)
    say(f"correct runs (the bars are set by them; each got full marks): "
        f"{len(done.correct_runs)}")
    for what in done.correct_runs:
        say(f"  {what}")
    none = f"none in {assignment.reference_dir / 'variants'}"
    say(f"wrong variants (each lost the checks its metadata names, and kept the others it "
        f"names): {len(done.wrong_variants) or none}")
    for what in done.wrong_variants:
        say(f"  {what}")
    if done.left_out:
        say(f"variants left out (checks the grader cannot score yet): {len(done.left_out)}")
        for what in done.left_out:
            say(f"  {what}")
    for name, metrics in done.thresholds["objects"].items():
        for metric, bar in metrics.items():
            say(f"bar: {name} {metric} {bar['threshold']:.4f} ({bar['rule']}); worst correct "
                f"run: {bar['worst_correct']['run']} {bar['worst_correct']['value']:.4f}")
    say("wrote: " + ", ".join(str(p) for p in done.written))
    return EXIT_OK


def cmd_new(args: argparse.Namespace, console: Console) -> int:
    from .instructor import new

    try:
        written = new.create(args.id, args.source, args.title)
    except new.NewError as exc:
        raise UsageError(str(exc)) from None
    say = _sayer(console)
    say("wrote: " + ", ".join(str(p) for p in written))
    assignment = spec.load(args.id)  # a spec it wrote that does not load is a bug: say so
    for c in assignment.checks:
        say(f"  {c.id:<28} {c.points:>5g}  {c.kind}")
    say(f"{assignment.max_score:g} points; edit titles and points in {written[0]}")
    if args.no_calibrate:
        course = (f" --course {paths.course_root()}" if paths.course_origin() == "--course"
                  else "")
        say(f"next: grader calibrate -a {args.id}{course}")
        return EXIT_OK
    _check_data_dir(args.data_dir, assignment)
    code = _calibrate(assignment, args.data_dir, args.runs, console)
    retitled = new.retitle(written[0], new.measured_titles(assignment))
    for c in spec.load(args.id).checks:
        if c.id in retitled:
            say(f"title of {c.id}: {c.title}")
    return code


def cmd_gradescope_bundle(args: argparse.Namespace, console: Console) -> int:
    from .instructor import gradescope_bundle

    assignment = spec.load(args.assignment)
    target = args.out or Path(f"{assignment.id}-gradescope.zip")
    try:
        names = gradescope_bundle.write(assignment, target, args.check_args)
    except gradescope_bundle.BundleError as exc:
        raise UsageError(str(exc)) from None
    except gradescope_bundle.publish.PublishError as exc:
        raise UsageError(str(exc)) from None
    console.print(f"wrote {target} ({len(names)} files): upload it as the autograder of a "
                  "Gradescope programming assignment", highlight=False, soft_wrap=True)
    return EXIT_OK


def cmd_publish(args: argparse.Namespace, console: Console) -> int:
    from .instructor import publish

    ids = args.assignment or spec.available()
    assignments = [spec.load(aid) for aid in dict.fromkeys(ids)]
    missing = [a.id for a in assignments if not publish.has_constraints(a)]
    try:
        names = publish.publish(assignments, args.out)
    except publish.PublishError as exc:
        raise UsageError(str(exc)) from None
    console.print(f"wrote {args.out}: {len(names)} files for {', '.join(a.id for a in assignments)}"
                  " (no reference notebook). Commit it to the course's action repository and "
                  "point the workflow's uses: at a tag of it (README: GitHub Classroom).",
                  highlight=False, soft_wrap=True)
    err = Console(stderr=True)
    for warning in publish.solution_bearing(names):
        err.print(f"warning: {warning}", highlight=False, soft_wrap=True, markup=False)
    if missing:
        err.print(f"note: no constraints.txt for {', '.join(missing)}: the action installs the "
                  "newest versions its pyproject allows (grader calibrate -a ID records them)",
                  highlight=False, soft_wrap=True, markup=False)
    return EXIT_OK


COMMANDS = {"list": cmd_list, "check": cmd_check, "grade": cmd_grade, "report": cmd_report,
            "data": cmd_data, "calibrate": cmd_calibrate, "new": cmd_new,
            "gradescope-bundle": cmd_gradescope_bundle, "publish": cmd_publish}


@contextlib.contextmanager
def _interruptible():
    """Remember a Ctrl-C even when the grading code swallows the KeyboardInterrupt (the kernel
    got the same signal and died of it, say), so no result is written from a broken run. The
    runner keeps nbclient's own SIGINT handler off its event loop (execution/runner.py), so this
    handler is the one that hears it."""
    seen: list[bool] = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return

    def on_sigint(signum, frame):  # noqa: ANN001 - signal handler
        seen.append(True)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield lambda: bool(seen)
    finally:
        signal.signal(signal.SIGINT, previous)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(stderr=False)
    err = Console(stderr=True)
    try:
        with paths.course_kept():
            _use_course(args)
            return COMMANDS[args.command](args, console)
    except KeyboardInterrupt:
        err.print("grader: interrupted: nothing was written", highlight=False)
        return EXIT_INTERRUPTED
    except (UsageError, spec.SpecError) as exc:
        # markup off: spec messages name TOML tables ([environment]) that rich would eat
        err.print(f"grader: error: {exc}", highlight=False, soft_wrap=True, markup=False)
        return EXIT_USAGE
    except (GraderError, SandboxUnavailable) as exc:
        err.print(f"grader: grader error (nothing was graded): {exc}", highlight=False,
                  soft_wrap=True, markup=False)
        return EXIT_GRADER_ERROR
    except Exception as exc:
        from .data import DatasetError

        if isinstance(exc, DatasetError):
            err.print(f"grader: error: {exc}", highlight=False)
            return EXIT_USAGE
        raise


if __name__ == "__main__":
    sys.exit(main())
