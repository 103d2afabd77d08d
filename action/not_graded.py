"""The action's result when `grader check` wrote none: every check at 0 points with the reason.

Run by action/grade.sh with the grader's Python (`grader --python`):

    python3 action/not_graded.py --out DIR --notebook PATH [--assignment ID]
                                 --exit-status N --stderr FILE

Exit 2 (a usage error: the notebook is missing or renamed, of another assignment, ...) is the
student's to fix: the result scores 0 of the assignment's points with the grader's words, so
GitHub Classroom records a 0 and the student reads why. Any other exit without a result (the
grader crashed, or could not check its own set-up) is the grader's failure: a `grader_error`
result, which Classroom does not record as a grade. Writes result.json, report.md and
report.html into DIR, as `grader check` does.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from the action's checkout
    sys.path.insert(0, str(ROOT))

from grader import __version__, assignment as spec  # noqa: E402
from grader.submission import notebook as notebook_mod  # noqa: E402
from grader.reports import write_all  # noqa: E402
from grader.result import CheckResult, Execution, GradeResult  # noqa: E402
from grader.scoring import CheckStatus, RunStatus  # noqa: E402

MAX_LISTED = 8
EXIT_USAGE = 2


def notebooks_beside(where: Path) -> list[str]:
    """The notebooks a student did commit, to say what the expected one may have become."""
    found = sorted(p.relative_to(where).as_posix() for p in where.rglob("*.ipynb")
                   if ".ipynb_checkpoints" not in p.parts and ".git" not in p.parts)
    return found[:MAX_LISTED] + (["…"] if len(found) > MAX_LISTED else [])


def reason_for(notebook: Path, stderr: str, exit_status: int, workspace: Path) -> tuple[str, str]:
    """(execution status, what the student reads)."""
    said = [line.removeprefix("grader: error: ").removeprefix(
            "grader: grader error (nothing was graded): ")
            for line in stderr.strip().splitlines() if line.strip()]
    words = " ".join(said[-12:])[:1500] or f"the grader stopped with exit status {exit_status}"
    if exit_status != EXIT_USAGE:
        return RunStatus.GRADER_ERROR, (f"the grader failed, not the notebook: {words}. Nothing "
                                        "was scored; it is graded again on the next push.")
    if not notebook.exists():
        others = notebooks_beside(workspace)
        found = f" (notebooks in the repository: {', '.join(others)})" if others else \
            " (the repository holds no notebook)"
        return RunStatus.NO_NOTEBOOK, (f"{notebook} is not in the repository{found}: commit your "
                                       f"notebook as {notebook} (same name and folder) and push "
                                       "again")
    return RunStatus.INVALID_NOTEBOOK, f"{notebook} was not graded: {words}"


def not_graded_result(assignment: spec.Assignment | None, assignment_id: str, notebook: Path,
                      status: RunStatus, message: str) -> GradeResult:
    grader_error = status == RunStatus.GRADER_ERROR
    checks = [] if grader_error or assignment is None else [
        CheckResult(id=c.id, title=c.title, points=0.0, max_points=c.points,
                    status=CheckStatus.MANUAL if c.kind == "manual" else CheckStatus.FAILED,
                    message=message) for c in assignment.checks]
    sha = notebook_mod.file_sha256(notebook) if notebook.is_file() else ""
    return GradeResult(
        assignment=assignment.id if assignment else assignment_id,
        assignment_title=assignment.title if assignment else assignment_id,
        assignment_version=assignment.version_key() if assignment else "",
        notebook=str(notebook), notebook_sha256=sha,
        score=None if grader_error else 0.0,
        max_score=assignment.max_score if assignment else 0.0,
        checks=checks, execution=Execution(status=status, message=message, harvested=False),
        grader_version=__version__)


def _assignment(assignment_id: str, notebook: Path) -> tuple[spec.Assignment | None, str]:
    if not assignment_id and notebook.is_file():
        assignment_id = notebook_mod.load(notebook).assignment_hint or ""
    try:
        return (spec.load(assignment_id) if assignment_id else None), assignment_id
    except spec.SpecError:
        return None, assignment_id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--notebook", type=Path, required=True)
    parser.add_argument("--assignment", default="")
    parser.add_argument("--exit-status", type=int, required=True)
    parser.add_argument("--stderr", type=Path, help="what the grader printed on stderr")
    parser.add_argument("--workspace", type=Path, default=Path.cwd())
    args = parser.parse_args(argv)
    stderr = args.stderr.read_text(errors="replace") if args.stderr and args.stderr.is_file() \
        else ""
    status, message = reason_for(args.notebook, stderr, args.exit_status, args.workspace)
    assignment, assignment_id = _assignment(args.assignment, args.notebook)
    result = not_graded_result(assignment, assignment_id, args.notebook, status, message)
    write_all(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
