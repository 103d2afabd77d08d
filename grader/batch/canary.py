"""Before a batch: the assignment's reference, graded here, must get full marks.

If it does not, every student would be graded by a broken set-up (missing data, a sandbox that
hides the grader, thresholds from another machine): refuse to start and say why. The verdict is
remembered per assignment version, environment and grading options, so it costs one grading
per set-up, not per batch.
"""

from __future__ import annotations

import json

from .. import environment
from ..errors import GraderError
from ..pipeline import Options, grade
from ..scoring import CheckStatus
from ..assignment import Assignment


def _stamp(assignment: Assignment, options: Options):
    mode = f"{options.sandbox}|{options.mode}|data={options.data_dir}"
    key = environment.environment_key([assignment.id, assignment.version_key(), mode])
    return environment.cache_dir() / f"canary-{assignment.id}-{key}.json"


def ensure_reference_scores_full_marks(assignment: Assignment, options: Options) -> None:
    stamp = _stamp(assignment, options)
    if stamp.exists():
        return
    if not assignment.reference.is_file():
        return  # an installation without solutions (students' copies): nothing to compare
    result = grade(assignment.reference, assignment, Options(
        data_dir=options.data_dir, mode=options.mode, sandbox=options.sandbox))
    if result.grader_error:
        raise GraderError(f"the reference solution could not be graded: "
                          f"{result.execution.message}")
    automatic = [c for c in result.checks if c.status != CheckStatus.MANUAL]  # a TA grades the rest
    lost = [c for c in automatic if c.points < c.max_points - 1e-9]
    if lost:
        got = sum(c.points for c in automatic)
        most = sum(c.max_points for c in automatic)
        raise GraderError(f"the reference solution scores {got:g}/{most:g} here, so this set-up "
                          "would grade students wrongly (" + "; ".join(
                              f"{c.id} {c.points:g}/{c.max_points:g}: {c.message[:160]}"
                              for c in lost) + ")")
    try:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(json.dumps({"score": result.score, "max_score": result.max_score}))
    except OSError:
        pass
