"""Before the first student: what would fail every student, found once.

`check` runs where the grading runs: in the coordinator for the local pool (an unavailable
sandbox or dataset is a usage error, exit 2; missing packages or a reference that loses points
on this set-up, exit 3), and for a Dask cluster once per worker process, by `on_this_machine`
through `python -m grader.batch.worker --preflight`, since each worker machine has its own
sandbox, datasets, packages and timed-training bar.
"""

from __future__ import annotations

import fcntl
from pathlib import Path

from ..pipeline import Options
from ..assignment import Assignment


def check(assignment: Assignment, grading: Options) -> None:
    """Raises SandboxUnavailable, DatasetError or GraderError. Also downloads a missing dataset
    once, here, rather than in every worker at the same time."""
    from . import canary
    from .. import environment
    from ..execution import sandbox

    sandbox.resolve(grading.sandbox)
    if assignment.data is not None:
        from .. import data

        data.load(assignment.data.dataset, grading.data_dir)
    environment.verify(assignment.packages)
    canary.ensure_reference_scores_full_marks(assignment, grading)


def on_this_machine(assignment_id: str, version: str, grading: Options) -> str | None:
    """`check` on an engine's worker machine, plus what the coordinator could not see from its
    own: the same assignment version, and a --data-dir (a path on this machine) that holds the
    dataset. None when all is well, else why not. Workers of one machine take turns, so the
    reference is graded once per machine (the canary remembers it), not once per worker."""
    from .. import environment, assignment as spec

    try:
        assignment = spec.load(assignment_id)
        if assignment.version_key() != version:
            return (f"this machine's grader has another version of {assignment_id} "
                    f"({assignment.version_key()}, the coordinator's: {version}): install the "
                    "same grader on every machine")
        _check_data_dir(assignment, grading.data_dir)
        lock = environment.cache_dir() / f"preflight-{assignment_id}.lock"
        lock.parent.mkdir(parents=True, exist_ok=True)
        with lock.open("w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            check(assignment, grading)
    except Exception as exc:  # every cause is the set-up's, reported as the grader's error
        return f"{type(exc).__name__}: {exc}"
    return None


def _check_data_dir(assignment: Assignment, data_dir: Path | None) -> None:
    """--data-dir must hold the dataset here: never fall back silently to another copy."""
    if data_dir is None or assignment.data is None:
        return
    from ..data import sources

    found = sources.locate(assignment.data.dataset, data_dir)
    if found is None or found.origin != "data-dir":
        raise FileNotFoundError(f"--data-dir {data_dir} holds no {assignment.data.dataset} "
                                "dataset on this machine")
