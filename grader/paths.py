"""Where things live: the grader's own code, and the course whose assignments it grades.

Two different roots, kept apart:

- PACKAGE_ROOT, this grader's checkout (its `grader/` package, pyproject.toml, action files):
  what the kernel imports and what `grader publish` copies. Fixed by where the code is.
- The course (`course_root()`): a folder holding `assignments/<id>/` (what students get) and
  `reference/<id>/` (the instructor's side). Chosen, first that is set, by `--course DIR`,
  `$GRADER_COURSE`, `$GRADER_HOME` (its former name, still honoured), otherwise the grader's
  own checkout, whose `assignments/` hold the bundled homework.

Every lookup of an assignment or its reference material goes through the functions here and
reads the choice when it is made, so `--course` (which sets $GRADER_COURSE for this process and
the processes it starts: batch workers, the measuring process) takes effect everywhere.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent

COURSE_VARIABLE = "GRADER_COURSE"
LEGACY_COURSE_VARIABLE = "GRADER_HOME"  # the variable's name before --course existed
ASSIGNMENTS = "assignments"
REFERENCE = "reference"

_from_option = False  # whether $GRADER_COURSE was set by --course (for `course_origin`)


def set_course(folder: Path) -> Path:
    """`--course DIR`: this process and every process it starts read the course from DIR."""
    global _from_option
    resolved = Path(folder).expanduser().resolve()
    os.environ[COURSE_VARIABLE] = str(resolved)
    _from_option = True
    return resolved


@contextlib.contextmanager
def course_kept():
    """Undo `set_course` on leaving: `grader.cli.main` called in-process (tests, scripts) must
    not leave the next call reading its --course."""
    global _from_option
    before, option = os.environ.get(COURSE_VARIABLE), _from_option
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(COURSE_VARIABLE, None)
        else:
            os.environ[COURSE_VARIABLE] = before
        _from_option = option


def course_root() -> Path:
    value = os.environ.get(COURSE_VARIABLE) or os.environ.get(LEGACY_COURSE_VARIABLE)
    return Path(value).expanduser().resolve() if value else PACKAGE_ROOT


def course_origin() -> str:
    """What chose the course folder, in the words of the option or variable that did."""
    if os.environ.get(COURSE_VARIABLE):
        return "--course" if _from_option else f"${COURSE_VARIABLE}"
    if os.environ.get(LEGACY_COURSE_VARIABLE):
        return f"${LEGACY_COURSE_VARIABLE}"
    return "the grader's own checkout; --course DIR or $GRADER_COURSE to choose another"


def assignments_dir() -> Path:
    return course_root() / ASSIGNMENTS


def reference_dir() -> Path:
    return course_root() / REFERENCE


def reference_dirs() -> list[Path]:
    """Every reference/ folder a sandbox must hide: the course's and the grader's own."""
    return list(dict.fromkeys([reference_dir(), PACKAGE_ROOT / REFERENCE]))
