"""One student's grading in a process of its own: `python -m grader.batch.worker REQUEST.json`.

Every engine starts one of these per student (see grader/batch/worker_process.py for why
processes and not a pool). The request names the notebook, the assignment and the grading
options; the worker writes the executed notebook to `request["executed"]` (feedback for the
student; untrusted, read back bounded and validated), then the result JSON to
`request["result"]`, and exits 0. Anything else (a
crash, a signal, the OOM killer) leaves no result file, and the batch records an error result
for that student.

`--preflight REQUEST.json` instead checks this machine's set-up (grader/batch/preflight.py) and
writes {"problem": null or why not} to `request["result"]`.

Every process tree a worker starts (the kernel, the measuring process, the numpy clean room) is
confined (grader/execution/confine.py): on SIGTERM the worker ends each one as a whole (its
cgroup, its pid namespace, its launcher's descendants, its uid) before exiting. Each also gets a
HOME inside the worker's private TMPDIR, which the batch sets; `kill_by_home_prefix` sweeps those
and whatever a worker killed before it could clean up left behind. The worker dies with the
batch (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from .procs import kill_by_home_prefix

PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
    """Linux: SIGTERM this worker when the batch process dies (even by SIGKILL)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the batch died before prctl took effect
        _terminate(signal.SIGTERM, None)


_PRIVATE_TMP: str | None = None  # this worker's own TMPDIR, set by the batch


def _terminate(signum, frame) -> None:  # noqa: ANN001 - signal handler
    from ..execution import confine

    confine.close_all()  # this worker's own trees, whatever they did to their environment
    if _PRIVATE_TMP:  # never a shared /tmp: that would reach other workers' kernels
        kill_by_home_prefix(_PRIVATE_TMP)
        shutil.rmtree(_PRIVATE_TMP, ignore_errors=True)  # the scratch copy, the holdout images
    os._exit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    preflight = argv[:1] == ["--preflight"]
    request = json.loads(Path(argv[-1]).read_text(encoding="utf-8"))
    global _PRIVATE_TMP
    private = request.get("private_tmp")
    if private and Path(tempfile.gettempdir()).resolve() == Path(private).resolve():
        _PRIVATE_TMP = private
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the batch, which stops us
    if request.get("parent_pid"):
        _die_with_parent(int(request["parent_pid"]))

    from .. import assignment as spec
    from ..pipeline import Options, grade
    from ..scoring import write_atomic

    options = Options.model_validate(request["options"])
    if preflight:
        from .preflight import on_this_machine

        problem = on_this_machine(request["assignment"], request["version"], options)
        write_atomic(Path(request["result"]), json.dumps({"problem": problem}))
        return 0
    assignment = spec.load(request["assignment"])
    executed = Path(request["executed"]) if request.get("executed") else None
    result = grade(Path(request["notebook"]), assignment, options, executed_to=executed)
    # with the trusted side's evidence for the similarity report, which the batch keeps apart
    write_atomic(Path(request["result"]), result.to_json(evidence=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
