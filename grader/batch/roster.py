"""The course's roster (`grader grade … --roster FILE`): who each submission is, for the LMS
exports (grader/batch/gradebook.py).

The file is a CSV with a header row; columns are recognised by name (case, spaces, hyphens and
underscores do not matter), so GitHub Classroom's roster export (`identifier, github_username,
github_id, name`) and a course's own sheet both work as they are:

    key         github_username, github, github_login, username, login, folder, submission:
                what the submissions are named by (a folder or notebook name). Without one,
                the student id is the key (folders named by student id, as nbgrader's are).
    student id  student_id, sis_user_id, sis_id, student_number, identifier, id (the first
                present; GitHub Classroom's `identifier` is what the course entered)
    name        name, full_name, student_name, student; or first_name and last_name
    optional    canvas_id, canvas_user_id (Canvas's own user id, the `ID` of its gradebook
                export; `id` too when another column is the student id), sis_login_id,
                login_id or email, section

Everything is checked before grading, and every problem is reported at once with its line (a
usage error): a missing column, a row without a student id, a key or a student id on two rows.
A row without a key (a student who never linked a GitHub account) is kept: that student has no
submission. Keys match submissions case-insensitively (GitHub usernames are), and also once
the class's prefix is removed (GitHub Classroom names repositories `<assignment>-<username>`:
the prefix is the one whose removal matches most submissions). Two submissions matching one
row is an error; a submission without a row is listed and exported under its own name, never
dropped.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Collection

from ..ta.csv_input import open_with_header, raise_problems

KEY = ("github_username", "github", "github_login", "username", "login", "folder", "submission")
STUDENT_ID = ("student_id", "sis_user_id", "sis_id", "student_number", "identifier", "id")
NAME = ("name", "full_name", "student_name", "student")
CANVAS_ID = ("canvas_id", "canvas_user_id")
LOGIN = ("sis_login_id", "login_id", "email")
SECTION = ("section",)


class RosterError(Exception):
    """The roster is unreadable or inconsistent (a usage error)."""


@dataclass(frozen=True)
class RosterEntry:
    key: str  # what the student's submission is named by; "" when there is none
    student_id: str
    name: str = ""
    canvas_id: str = ""
    sis_login_id: str = ""
    section: str = ""
    line: int = 0


@dataclass
class RosterMatch:
    """The roster against one batch's submissions."""

    by_student: dict[str, RosterEntry]  # submission (student folder or file) -> its row
    unmatched: list[str]  # submissions without a row
    absent: list[RosterEntry]  # rows without a submission
    prefix: str = ""  # removed from submission names to match them, if any

    def entry(self, student: str) -> RosterEntry | None:
        return self.by_student.get(student)

    def summary(self) -> list[str]:
        """What the TA is told before grading."""
        how = f" (after the shared prefix {self.prefix!r})" if self.prefix else ""
        lines = [f"roster: {len(self.by_student)} submission(s) matched{how}"]
        if self.unmatched:
            lines.append(f"roster: no row for {len(self.unmatched)} submission(s), exported "
                         f"under their own name: {_listed(self.unmatched)}")
        if self.absent:
            names = [e.name or e.student_id for e in self.absent]
            lines.append(f"roster: {len(self.absent)} student(s) without a submission, exported "
                         f"with an empty score: {_listed(names)}")
        return lines


@dataclass
class Roster:
    path: Path
    entries: list[RosterEntry] = field(default_factory=list)

    def match(self, students: list[str]) -> RosterMatch:
        """Each submission's row; two submissions on one row is a RosterError."""
        by_key = {e.key.casefold(): e for e in self.entries if e.key}
        found = {s: by_key[s.casefold()] for s in students if s.casefold() in by_key}
        prefix = common_prefix([s for s in students if s not in found], by_key)
        for student in students:
            if prefix and student not in found and student.startswith(prefix):
                entry = by_key.get(student[len(prefix):].casefold())
                if entry is not None:
                    found[student] = entry
        _refuse_shared_rows(self.path, found)
        used = {id(e) for e in found.values()}
        return RosterMatch(found, [s for s in students if s not in found],
                           [e for e in self.entries if id(e) not in used], prefix)


def common_prefix(students: list[str], keys: dict[str, RosterEntry]) -> str:
    """The prefix (up to a '-' or '_') that, removed, turns the most submissions into roster
    keys: GitHub Classroom's `hw4-alice` → `alice`. One prefix for the whole class, so
    `hw4-alice-b` is alice-b's even when the roster also has a `b`; on a tie the shorter
    prefix (the longer username) wins. "" when none does."""
    votes: dict[str, int] = {}
    for student in students:
        for i, char in enumerate(student[:-1]):
            if char in "-_" and student[i + 1:].casefold() in keys:
                votes[student[:i + 1]] = votes.get(student[:i + 1], 0) + 1
    if not votes:
        return ""
    return max(votes, key=lambda prefix: (votes[prefix], -len(prefix)))


def _refuse_shared_rows(path: Path, found: dict[str, RosterEntry]) -> None:
    rows: dict[int, list[str]] = {}
    for student, entry in found.items():
        rows.setdefault(id(entry), []).append(student)
    problems = [f"line {found[names[0]].line}: {len(names)} submissions match "
                f"{found[names[0]].key!r}: {', '.join(sorted(names))}; keep one"
                for names in rows.values() if len(names) > 1]
    _raise(path, problems)


def _listed(names: list[str], shown: int = 10) -> str:
    return ", ".join(names[:shown]) + (f", … ({len(names) - shown} more)"
                                       if len(names) > shown else "")


def _normal(header: str) -> str:
    return re.sub(r"[\s\-]+", "_", header.strip().lower())


def _first(names: list[str], candidates: tuple[str, ...], taken: Collection[int] = ()
           ) -> int | None:
    for candidate in candidates:
        if candidate in names and names.index(candidate) not in taken:
            return names.index(candidate)
    return None


def _columns(path: Path, header: list[str]) -> dict[str, int]:
    names = [_normal(h) for h in header]
    col: dict[str, int | None] = {"student_id": _first(names, STUDENT_ID)}
    if col["student_id"] is None:
        raise RosterError(f"{path}: the header row has no student id column (one of "
                          f"{', '.join(STUDENT_ID)}; found: "
                          f"{', '.join(h for h in header if h.strip()) or 'none'})")
    taken = {col["student_id"]}
    col["key"] = _first(names, KEY, taken)
    col["name"] = _first(names, NAME, taken)
    col["canvas_id"] = _first(names, CANVAS_ID) if _first(names, CANVAS_ID) is not None \
        else _first(names, ("id",), taken)
    col["sis_login_id"] = _first(names, LOGIN, taken)
    col["section"] = _first(names, SECTION)
    col["first_name"] = _first(names, ("first_name", "given_name"))
    col["last_name"] = _first(names, ("last_name", "surname", "family_name"))
    return {k: v for k, v in col.items() if v is not None}


def load(path: Path) -> Roster:
    """Read and validate the roster; every problem at once, with its line."""
    header, reader = open_with_header(path, RosterError,
                                      "such as github_username,student_id,name")
    col = _columns(path, header)
    entries: list[RosterEntry] = []
    errors: list[str] = []
    try:
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            entry = _entry(row, col, reader.line_num)
            if not entry.student_id:
                errors.append(f"line {entry.line}: no student id"
                              + (f" for {entry.key!r}" if entry.key else ""))
                continue
            entries.append(entry)
    except csv.Error as exc:
        errors.append(f"line {reader.line_num}: {exc}")
    if "key" in col:
        errors += _duplicates(entries, "key", "a second row for the submission")
    errors += _duplicates(entries, "student_id", "a second row for student id")
    errors.sort(key=lambda e: int(e.split(":")[0][5:]) if e[5:].split(":")[0].isdigit() else 0)
    _raise(path, errors)
    if not entries:
        raise RosterError(f"{path} lists no student")
    return Roster(Path(path), entries)


def _entry(row: list[str], col: dict[str, int], line: int) -> RosterEntry:
    def cell(name: str) -> str:
        i = col.get(name)
        return " ".join(row[i].split()) if i is not None and i < len(row) else ""

    name = cell("name") or " ".join(filter(None, (cell("first_name"), cell("last_name"))))
    key = cell("key") if "key" in col else cell("student_id")
    return RosterEntry(key, cell("student_id"), name, cell("canvas_id"), cell("sis_login_id"),
                       cell("section"), line)


def _duplicates(entries: list[RosterEntry], attr: str, what: str) -> list[str]:
    seen: dict[str, RosterEntry] = {}
    errors = []
    for entry in entries:
        value = getattr(entry, attr)
        if not value:
            continue
        first = seen.setdefault(value.casefold(), entry)
        if first is not entry:
            errors.append(f"line {entry.line}: {what} {value!r} (first on line {first.line})")
    return errors


def _raise(path: Path | str, errors: list[str]) -> None:
    raise_problems(path, errors, RosterError)
