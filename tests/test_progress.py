"""Progress during `grader check`: the phases the pipeline reports, drawn on a terminal only.

The numpy-backprop starter runs in a few seconds (no TensorFlow), in a real kernel: the phases
are the real ones, and `grader check` is run under a pseudo-terminal as a person would, and
piped as CI does.
"""

from __future__ import annotations

import io
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from grader import pipeline, assignment as spec
from grader.progress import Phase, TerminalProgress, describe, notify

REPO = Path(__file__).resolve().parents[1]
STARTER = REPO / "assignments" / "numpy-backprop" / "numpy-backprop.ipynb"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def code_cells(path: Path) -> int:
    nb = json.loads(path.read_text())
    return sum(1 for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip())


@pytest.fixture(scope="module")
def graded():
    heard: list[tuple[Phase, dict]] = []
    result = pipeline.grade(STARTER, spec.load("numpy-backprop"),
                            pipeline.Options(progress=lambda p, info: heard.append((p, info))))
    assert not result.grader_error, result.execution
    return heard, result


@pytest.mark.slow
def test_the_pipeline_reports_each_phase_in_order(graded):
    phases, _ = graded
    order = [p for p, _ in phases]
    assert order[0] is Phase.KERNEL_START
    cells = [info for p, info in phases if p is Phase.CELL]
    total = code_cells(STARTER)
    assert [c["number"] for c in cells] == list(range(1, total + 1))
    assert {c["total"] for c in cells} == {total}
    # In [k] as Jupyter labels the cells: the kernel counts each cell it runs.
    assert [c["execution_count"] for c in cells] == list(range(1, total + 1))
    after = order[order.index(Phase.CELL) + total:]
    assert after[:3] == [Phase.HARVEST, Phase.CLEANROOM, Phase.SCORE]


@pytest.mark.slow
def test_cell_labels_match_the_counts_the_kernel_gave(graded):
    """The predicted In [k] is the one the executed notebook carries (errors included)."""
    heard, result = graded
    predicted = {info["cell"]: info["execution_count"] for p, info in heard if p is Phase.CELL}
    for error in result.cell_errors:  # the starter raises NotImplementedError, then NameError
        assert predicted[error.cell] == error.execution_count
    assert result.cell_errors


def test_a_failing_display_never_stops_grading():
    def broken(phase, info):
        raise RuntimeError("display gone")

    notify(broken, Phase.SCORE)  # swallowed
    notify(None, Phase.SCORE)


def test_describe_says_what_runs():
    assert describe(Phase.CELL, {"number": 3, "total": 12, "execution_count": 3}) == \
        "running cell 3 of 12 (In [3])"
    assert "in the sandbox" in describe(Phase.KERNEL_START, {"sandboxed": True})
    assert describe(Phase.TRAINING, {"objects": ["cnn"], "max_cpu_seconds": 120}) == \
        "measuring, and training the grader's copy of cnn, up to 120 CPU s each"


def test_terminal_progress_draws_only_on_a_terminal():
    tty_out = io.StringIO()
    tty = TerminalProgress(Console(file=tty_out, force_terminal=True, width=80))
    with tty.shown():
        tty(Phase.CELL, {"number": 2, "total": 5, "execution_count": 2})
        time.sleep(0.3)  # rich redraws its status line a few times a second
    assert "running cell 2 of 5 (In [2])" in _ANSI.sub("", tty_out.getvalue())

    piped_out = io.StringIO()
    piped = TerminalProgress(Console(file=piped_out, force_terminal=False, width=80))
    with piped.shown():
        piped(Phase.CELL, {"number": 2, "total": 5, "execution_count": 2})
    assert piped_out.getvalue() == ""
    quiet_out = io.StringIO()
    quiet = TerminalProgress(Console(file=quiet_out, force_terminal=True), enabled=False)  # --json
    with quiet.shown():
        quiet(Phase.SCORE, {})
    assert quiet_out.getvalue() == ""


def _run_in_pty(argv: list[str], cwd: Path, interrupt_on: bytes | None = None
                ) -> tuple[int, str]:
    """stderr on a pseudo-terminal (80×24), as in a person's shell; stdout discarded. With
    `interrupt_on`, Ctrl-C (SIGINT) once that text has been shown."""
    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "80", "LINES": "24", "TERM": "xterm"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(argv, stdin=slave, stdout=subprocess.DEVNULL, stderr=slave, cwd=cwd,
                            env=env, start_new_session=True)
    os.close(slave)
    poller = select.poll()  # not select(): it fails on a descriptor numbered past 1,023
    poller.register(master, select.POLLIN)
    out = b""
    while True:
        if interrupt_on is not None and interrupt_on in out:
            time.sleep(2)  # well inside the cell
            os.kill(proc.pid, signal.SIGINT)
            interrupt_on = None
        if poller.poll(1000):
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    proc.wait(timeout=300)
    os.close(master)
    return proc.returncode, out.decode(errors="replace")


@pytest.mark.slow
def test_check_on_a_terminal_shows_the_phases(tmp_path):
    code, err = _run_in_pty([sys.executable, "-m", "grader.cli", "check", str(STARTER),
                             "--out", str(tmp_path / "report")], REPO)
    assert code == 0, err[-2000:]
    text = _ANSI.sub("", err)
    assert "starting the notebook's kernel" in text
    assert re.search(r"running cell \d+ of \d+ \(In \[\d+\]\)", text)
    assert "scoring the checks" in text


@pytest.mark.slow
def test_piped_and_json_output_stay_clean(tmp_path):
    piped = subprocess.run([sys.executable, "-m", "grader.cli", "check", str(STARTER),
                            "--out", str(tmp_path / "a"), "--json"], cwd=REPO,
                           capture_output=True, text=True, timeout=300)
    assert piped.returncode == 0, piped.stderr[-2000:]
    json.loads(piped.stdout)  # only the result on stdout
    assert "running cell" not in piped.stderr and "\x1b[" not in piped.stderr
    table = subprocess.run([sys.executable, "-m", "grader.cli", "check", str(STARTER),
                            "--out", str(tmp_path / "b")], cwd=REPO, capture_output=True,
                           text=True, timeout=300)
    assert table.returncode == 0
    assert "running cell" not in table.stderr + table.stdout
    assert "\x1b[" not in table.stdout and "numpy-backprop" in table.stdout


def test_the_graders_own_training_is_announced_with_its_budget():
    heard = []
    assignment = spec.load("fashion-mlp")
    pipeline._announce_measuring(lambda p, info: heard.append((p, info)), assignment, ["model"])
    assert heard == [(Phase.TRAINING, {"objects": ["model"], "max_cpu_seconds":
                                       assignment.training.max_cpu_seconds})]
    heard.clear()
    pipeline._announce_measuring(lambda p, info: heard.append((p, info)),
                                 spec.load("autoassociator"), ["aanetwork"])
    assert heard[0][0] in (Phase.MEASURE, Phase.TRAINING)


@pytest.mark.slow
def test_ctrl_c_while_a_cell_runs_exits_130_and_writes_nothing(tmp_path):
    """nbclient swaps in a SIGINT handler of its own while the kernel runs; Ctrl-C must still
    stop `grader check`, not grade the kernel it killed."""
    nb = json.loads(STARTER.read_text())
    first = next(i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code")
    nb["cells"].insert(first, {"cell_type": "code", "metadata": {}, "outputs": [],
                               "execution_count": None, "source": "import time\ntime.sleep(50)"})
    folder = tmp_path / "student"
    folder.mkdir()
    path = folder / "numpy-backprop.ipynb"
    path.write_text(json.dumps(nb))
    out = tmp_path / "report"
    code, err = _run_in_pty([sys.executable, "-m", "grader.cli", "check", str(path), "--out",
                             str(out)], REPO, interrupt_on=b"running cell 1 of")
    assert code == 130, _ANSI.sub("", err)[-2000:]
    assert "interrupted: nothing was written" in err
    assert not (out / "result.json").exists()
