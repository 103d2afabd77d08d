"""`grader grade SUBMISSIONS --assignment ID --out grades/ -j 2 [--scheduler tcp://HOST:PORT]`:
a class's notebooks, graded in parallel, resumably, into a gradebook.

What it writes into `--out`:

    <student>/result.json   the result (schema of `grader check`, plus a `batch` field: student,
                            status, complete, seconds, graded_at, full, source)
    <student>/report.html   the student's report (when grader.reports.html is available)
    <student>/worker.log    only when the grading process itself failed: its output
    <student>/feedback/     to hand back: report.html and the executed notebook, annotated
    <student>/similarity.json  the trusted side's weight fingerprints and holdout labels, for
                            the similarity report only (never in result.json or feedback/)
    grades.csv              student, total, max, one column per check id, status, message
    summary.html            the class at a glance (grader/reports/summary.py)
    lms.csv                 student_id, name, score, max, percent, status, submission
    canvas.csv              with --roster: Canvas's gradebook import format
    similarity.html, .csv   pairs of similar submissions flagged for the TA (grader/similarity/)

Run status (the gradebook's `status` column, also `execution.status` in result.json): what the
engine reports (`completed`, `timeout`, `kernel_died`, `start_failed`, `invalid_notebook`), or
one of the batch's own: `no_notebook`, `ambiguous` (see discovery), `worker_failed` (the grading
process crashed or was killed, e.g. by the OOM killer, or on Dask killed its workers) and
`worker_timeout` (it ran past the batch's own limit, beyond the notebook's time limits). Those
four give every check 0 points and a message saying why; the two worker statuses are not cached,
so the next run retries them. `grader_error`: not graded, no score, retried.

The modules, around one executor interface:

    discovery.py       which notebook is each student's, and what is skipped and why
    run.py             the coordinator: discover, skip current ones, preflight, feed the engine,
                       progress, early stop, Ctrl-C
    executor.py        the engine interface: a GradingRequest in, an Outcome out
    local.py           the embedded engine: a subprocess per student on this machine
    dask_executor.py   a task per student on a Dask distributed cluster (`--scheduler`)
    worker_process.py  one `python -m grader.batch.worker` process with a deadline (both engines)
    worker.py          that process: grades one notebook (or checks the machine: --preflight)
    preflight.py       what would fail every student, checked once where the grading runs
    store.py           OUT/<student>/: written atomically, current or not, error results,
                       TA points carried over
    feedback.py        OUT/<student>/feedback/: the executed notebook, validated and annotated
    roster.py          --roster: which student each submission is
    gradebook.py       grades.csv, summary.html, lms.csv and canvas.csv rebuilt from the store
    progress.py        the progress bar and the line per student
"""

from __future__ import annotations

from ..scoring import NOT_GRADED, RETRIED
from .gradebook import gradebook_csv, rebuild
from .run import (EARLY_STOP_AFTER, BatchError, BatchGraderError, BatchOptions, BatchReport,
                  StudentOutcome, default_jobs, run, worker_timeout)
from .store import error_result, is_current, read_result, result_path

__all__ = ["EARLY_STOP_AFTER", "NOT_GRADED", "RETRIED", "BatchError", "BatchGraderError",
           "BatchOptions", "BatchReport", "StudentOutcome", "default_jobs", "error_result",
           "gradebook_csv", "is_current", "read_result", "rebuild", "result_path", "run",
           "worker_timeout"]
