"""Benchmark: the grader against Otter-Grader and nbgrader, on the same fashion-mlp submission.

Run by hand:  python3 bench/peers.py [--rounds 2] [--venv DIR] [--data-dir DIR] [--json]
              [--keep DIR] [--sandbox auto|bwrap|none] [--tool-timeout SECONDS]

The peers live in a venv of their own (bench/requirements-peers.txt, created on first use and
reused while that file is unchanged); they are never a dependency of the grader. One student's
work (the 128-64-10 MLP of Homework 4, trained 8 epochs) is written once and put into each tool's
notebook as a course would author it:

- Otter: a master notebook for `otter assign` (a public test of the parameter count, a hidden test
  `model.evaluate(X_test, y_test, verbose=0)[1] >= 0.85`), graded with `otter run` (local, no
  Docker) against the autograder zip that `otter assign` wrote;
- nbgrader: a source notebook with solution cells and the same two tests (the accuracy one
  hidden), released with `nbgrader generate_assignment`, submitted, graded with
  `nbgrader autograde` in a course folder with its sqlite gradebook;
- this grader: the same cells as a plain notebook, `grader check` (subset) and
  `grader check --full` through the CLI in a subprocess from this checkout.

A forged submission (never trained; `tf.keras.Model.evaluate` patched to say 100 %) goes through
every tool too. Each round grades each submission with each tool in turn. The peers execute on
the whole dataset, as they do, through Keras's own load_data() reading the real Fashion-MNIST
offline (KERAS_HOME points at a folder holding --data-dir's files).

Seconds are the wall time of each tool's whole command, measured from outside. The one-time
set-up (venv, `otter assign`, `generate_assignment`, a first `grader check` per mode that fills
the grader's per-machine cache) is reported apart. Prints a table (seconds per round and the
score each tool gave), how much faster the grader is than the faster peer (median seconds over
rounds), and the load average before and after; `--json` prints the raw figures instead.
Measured on the machine it runs on: numbers depend on its cores and on what else runs there.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import nbformat

REPO = Path(__file__).resolve().parents[1]
REQUIREMENTS = REPO / "bench" / "requirements-peers.txt"
DEFAULT_VENV = Path.home() / ".cache" / "dl-grader" / "peers-venv"
DEFAULT_DATA = REPO.parent / "shared" / "data"
ASSIGNMENT = "fashion-mlp"
FASHION_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
PEER_POINTS = 5  # per question: the architecture and the accuracy, 10 in all

# ---- the student's work, shared by every tool's notebook -------------------------------------

LOAD_CELL = """\
import numpy as np
from tensorflow.keras.datasets import fashion_mnist

(xdev, ydev), (xtest, ytest) = fashion_mnist.load_data()"""

PREPARE_CELL = """\
X_dev = xdev.reshape((len(xdev), -1)) / 255.0
X_test = xtest.reshape((len(xtest), -1)) / 255.0
y_dev = np.eye(10)[ydev]
y_test = np.eye(10)[ytest]

rng = np.random.default_rng(42)
order = rng.permutation(len(X_dev))
cut = int(0.8 * len(X_dev))
X_train, X_val = X_dev[order[:cut]], X_dev[order[cut:]]
y_train, y_val = y_dev[order[:cut]], y_dev[order[cut:]]"""

MODEL_ANSWER = """\
from tensorflow import keras
from tensorflow.keras import layers

model = keras.Sequential([
    keras.Input(shape=(784,)),
    layers.Dense(128, activation="relu"),
    layers.Dense(64, activation="relu"),
    layers.Dense(10, activation="softmax"),
])
model.summary()"""

TRAIN_ANSWERS = {
    "good": """\
model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
history = model.fit(X_train, y_train, batch_size=128, epochs=8, verbose=2,
                    validation_data=(X_val, y_val))""",
    # Never trained: every evaluate() in this kernel, a checker's included, says 100 %.
    "forged": """\
import tensorflow as tf
model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
tf.keras.Model.evaluate = lambda self, *a, **k: [0.0, 1.0]""",
}

REPORT_CELL = """\
test_loss, test_accuracy = model.evaluate(X_test, y_test, verbose=0)
print(f"test accuracy: {test_accuracy:.4f}")"""

# The course's tests, as Otter (expression and its printed value) and nbgrader (assert) write them.
ARCHITECTURE_TEST = ("model.count_params()", "109386")
ACCURACY_TEST = ("model.evaluate(X_test, y_test, verbose=0)[1] >= 0.85", "True")

INTRO = ("# Homework 4, Part 3: a feed-forward network on Fashion-MNIST\n\n"
         "Build a 128-64-10 network in `model`, train it for 8 epochs with batch size 128.")
MODEL_PROMPT = ("**3.2.1** Build the feed-forward network in `model`: Dense 128 and 64 with ReLU, "
                "then 10 with softmax, on the flattened 784 pixels.")
TRAIN_PROMPT = ("**3.2.6** Compile with categorical cross-entropy, accuracy and Adam, and train "
                "for 8 epochs with batch size 128, validating on the 20 % split.")


def code(source: str, **metadata: Any) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(source, metadata=metadata)


def md(source: str, **metadata: Any) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(source, metadata=metadata)


def raw(source: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_raw_cell(source)


def notebook(cells: list[nbformat.NotebookNode], **metadata: Any) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata.update({"kernelspec": {"name": "python3", "display_name": "Python 3",
                                       "language": "python"},
                        "language_info": {"name": "python"}, **metadata})
    return nb


def answers(kind: str) -> dict[str, str]:
    """The student's answer cells, by the name each tool's notebook marks them with."""
    return {"model": MODEL_ANSWER, "train": TRAIN_ANSWERS[kind]}


# ---- running commands ------------------------------------------------------------------------

@dataclass
class Run:
    """One tool's command: its wall time and the score it gave (None when it failed)."""
    seconds: float
    score: float | None = None
    max_score: float | None = None
    note: str = ""
    error: str = ""


def timed(cmd: list[str], *, cwd: Path, env: dict[str, str], timeout: float
          ) -> tuple[float, subprocess.CompletedProcess | None, str]:
    """Wall time of the whole command, from outside; a command past `timeout` is a failure."""
    started = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return time.monotonic() - started, None, f"timed out after {timeout:g} s"
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        return seconds, proc, f"exit {proc.returncode}: {tail(proc.stderr or proc.stdout)}"
    return seconds, proc, ""


def tail(text: str, lines: int = 6) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])


def must(cmd: list[str], *, cwd: Path, env: dict[str, str], what: str,
         timeout: float = 3600) -> float:
    """A set-up step: its seconds, or the bench stops saying which step failed and why."""
    seconds, _, error = timed(cmd, cwd=cwd, env=env, timeout=timeout)
    if error:
        raise SystemExit(f"set-up failed: {what}: {error}")
    return seconds


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---- the peers' venv and environment ---------------------------------------------------------

def ensure_venv(venv: Path) -> float:
    """Create the peers' venv, or reuse it while requirements-peers.txt is what it was built
    from. Returns the seconds spent, including one import of everything as a check."""
    started = time.monotonic()
    stamp = venv / "requirements-peers.sha256"
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    python = venv / "bin" / "python"
    if not (python.exists() and stamp.exists() and stamp.read_text().strip() == wanted):
        progress(f"installing the peers into {venv} (bench/requirements-peers.txt) ...")
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        must([sys.executable, "-m", "venv", "--clear", str(venv)], cwd=REPO, env=env,
             what="python3 -m venv")
        must([str(python), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)], cwd=REPO,
             env=env, what="pip install -r bench/requirements-peers.txt")
        stamp.write_text(wanted + "\n")
    # Also warms the page cache for the peers' TensorFlow, as the grader's is warm.
    must([str(python), "-c", "import tensorflow, otter, nbgrader"], cwd=REPO,
         env=peer_env(venv, None), what="importing the peers in their venv")
    return time.monotonic() - started


def peer_env(venv: Path, keras_home: Path | None) -> dict[str, str]:
    """The peers' environment: their venv first on PATH, none of the grader's PYTHONPATH."""
    env = dict(os.environ, VIRTUAL_ENV=str(venv),
               PATH=os.pathsep.join([str(venv / "bin"), os.environ.get("PATH", "")]))
    env.pop("PYTHONPATH", None)
    if keras_home is not None:
        env["KERAS_HOME"] = str(keras_home)
    return env


def offline_keras_home(data_dir: Path | None, work: Path) -> Path | None:
    """A KERAS_HOME whose datasets/fashion-mnist holds the real files, so load_data() reads
    them instead of downloading. None: the peers use the user's own Keras cache."""
    if data_dir is None:
        return None
    source = data_dir / "fashion-mnist"
    missing = [name for name in FASHION_FILES if not (source / name).is_file()]
    if missing:
        raise SystemExit(f"{source} lacks {', '.join(missing)}")
    home = work / "keras-home"
    target = home / "datasets" / "fashion-mnist"
    target.mkdir(parents=True, exist_ok=True)
    for name in FASHION_FILES:
        (target / name).symlink_to((source / name).resolve())
    return home


# ---- Otter -----------------------------------------------------------------------------------

def otter_master() -> nbformat.NotebookNode:
    """The master notebook a course writes for `otter assign`: two questions, the accuracy test
    hidden. Test cells carry the output they printed when the author ran them (Otter's OK format
    compares it)."""
    def test_cell(test: tuple[str, str], hidden: bool) -> nbformat.NotebookNode:
        source = test[0]
        if hidden:
            source = '""" # BEGIN TEST CONFIG\nhidden: true\n""" # END TEST CONFIG\n' + source
        cell = code(source)
        cell.outputs = [nbformat.v4.new_output("execute_result", {"text/plain": test[1]},
                                               execution_count=1)]
        return cell

    def question(name: str, prompt: str, answer: str, test: tuple[str, str], hidden: bool
                 ) -> list[nbformat.NotebookNode]:
        return [raw(f"# BEGIN QUESTION\nname: {name}\npoints: {PEER_POINTS}"), md(prompt),
                code(f"# BEGIN SOLUTION\n{answer}\n# END SOLUTION", tags=[f"answer-{name}"]),
                raw("# BEGIN TESTS"), test_cell(test, hidden), raw("# END TESTS"),
                raw("# END QUESTION")]

    config = (f"# ASSIGNMENT CONFIG\nname: {ASSIGNMENT}\n"
              # The tests are proven by the good submission's grade; running them here too
              # would execute the whole notebook once more during set-up.
              "run_tests: false\nexport_cell: false\ngenerate: true")
    return notebook([raw(config), md(INTRO), code(LOAD_CELL), code(PREPARE_CELL),
                     *question("model", MODEL_PROMPT, MODEL_ANSWER, ARCHITECTURE_TEST, False),
                     *question("train", TRAIN_PROMPT, TRAIN_ANSWERS["good"], ACCURACY_TEST, True),
                     code(REPORT_CELL)])


class Otter:
    name = "Otter 7.0 `otter run`"

    def __init__(self, venv: Path, work: Path, env: dict[str, str], timeout: float):
        self.venv, self.work, self.env, self.timeout = venv / "bin", work / "otter", env, timeout

    def set_up(self) -> float:
        self.work.mkdir(parents=True)
        nbformat.write(otter_master(), self.work / f"{ASSIGNMENT}.ipynb")
        seconds = must([str(self.venv / "otter"), "assign", "--no-pdfs", f"{ASSIGNMENT}.ipynb",
                        "dist"], cwd=self.work, env=self.env, what="otter assign")
        zips = sorted((self.work / "dist" / "autograder").glob("*.zip"))
        if len(zips) != 1:
            raise SystemExit(f"otter assign wrote {len(zips)} autograder zips, expected one")
        self.autograder = zips[0]
        self.student = nbformat.read(self.work / "dist" / "student" / f"{ASSIGNMENT}.ipynb",
                                     as_version=4)
        return seconds

    def submission(self, kind: str, round_no: int) -> Path:
        """The student's copy of the released notebook with the answers typed in."""
        nb = fill(self.student, answers(kind),
                  lambda cell: next((t[len("answer-"):] for t in cell.metadata.get("tags", [])
                                     if t.startswith("answer-")), None))
        folder = self.work / "submissions" / f"{kind}-r{round_no}"
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{ASSIGNMENT}.ipynb")
        return folder / f"{ASSIGNMENT}.ipynb"

    def grade(self, path: Path) -> Run:
        out = path.parent / "results"
        out.mkdir()
        seconds, _, error = timed([str(self.venv / "otter"), "run", "--no-logo", "-a",
                                   str(self.autograder), "-o", str(out), str(path)],
                                  cwd=path.parent, env=self.env, timeout=self.timeout)
        if error:
            return Run(seconds, error=error)
        try:
            results = json.loads((out / "results.json").read_text())
            tests = results["tests"]
            score = results.get("score", sum(t.get("score") or 0 for t in tests))
            return Run(seconds, score, sum(t.get("max_score") or 0 for t in tests))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return Run(seconds, error=f"no readable results.json: {exc}")


# ---- nbgrader --------------------------------------------------------------------------------

NBGRADER_CONFIG = """\
c = get_config()
c.CourseDirectory.course_id = "dl-bench"
c.CourseDirectory.root = {root!r}
# nbgrader's default is 30 s per cell; a course that trains Keras models raises it (the grader's
# fashion-mlp allows 300 s per cell).
c.Execute.timeout = 300
"""


def nbgrader_source() -> nbformat.NotebookNode:
    """The instructor's source notebook: solution cells and locked, graded test cells."""
    def meta(grade_id: str, *, solution: bool = False, points: int | None = None
             ) -> dict[str, Any]:
        fields = {"grade": points is not None, "solution": solution,
                  "locked": not solution, "grade_id": grade_id, "schema_version": 3,
                  "task": False}
        if points is not None:
            fields["points"] = points
        return {"nbgrader": fields}

    architecture = f"assert {ARCHITECTURE_TEST[0]} == {ARCHITECTURE_TEST[1]}"
    accuracy = f"### BEGIN HIDDEN TESTS\nassert {ACCURACY_TEST[0]}\n### END HIDDEN TESTS"
    return notebook([
        md(INTRO), code(LOAD_CELL), code(PREPARE_CELL),
        md(MODEL_PROMPT),
        code(f"### BEGIN SOLUTION\n{MODEL_ANSWER}\n### END SOLUTION",
             **meta("model", solution=True)),
        code(architecture, **meta("test_architecture", points=PEER_POINTS)),
        md(TRAIN_PROMPT),
        code(f"### BEGIN SOLUTION\n{TRAIN_ANSWERS['good']}\n### END SOLUTION",
             **meta("train", solution=True)),
        code(accuracy, **meta("test_accuracy", points=PEER_POINTS)),
        code(REPORT_CELL),
    ])


SCORE_QUERY = """\
import json, sys
from nbgrader.api import Gradebook
with Gradebook(sys.argv[1]) as gb:
    s = gb.find_submission(sys.argv[2], sys.argv[3])
    print(json.dumps([s.score, s.max_score]))
"""


class Nbgrader:
    name = "nbgrader 0.9.6 `autograde`"
    assignment = "ps4"

    def __init__(self, venv: Path, work: Path, env: dict[str, str], timeout: float):
        self.venv, self.course = venv / "bin", work / "nbgrader"
        self.env, self.timeout = env, timeout

    def set_up(self) -> float:
        source = self.course / "source" / self.assignment
        source.mkdir(parents=True)
        (self.course / "nbgrader_config.py").write_text(
            NBGRADER_CONFIG.format(root=str(self.course)))
        nbformat.write(nbgrader_source(), source / f"{ASSIGNMENT}.ipynb")
        seconds = must([str(self.venv / "nbgrader"), "generate_assignment", self.assignment],
                       cwd=self.course, env=self.env, what="nbgrader generate_assignment")
        self.release = nbformat.read(self.course / "release" / self.assignment /
                                     f"{ASSIGNMENT}.ipynb", as_version=4)
        return seconds

    def submission(self, kind: str, round_no: int) -> Path:
        nb = fill(self.release, answers(kind),
                  lambda cell: (cell.metadata.get("nbgrader") or {}).get("grade_id")
                  if (cell.metadata.get("nbgrader") or {}).get("solution") else None)
        folder = self.course / "submitted" / f"{kind}-r{round_no}" / self.assignment
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{ASSIGNMENT}.ipynb")
        return folder / f"{ASSIGNMENT}.ipynb"

    def grade(self, path: Path) -> Run:
        student = path.parent.parent.name
        seconds, _, error = timed([str(self.venv / "nbgrader"), "autograde", self.assignment,
                                   "--student", student], cwd=self.course, env=self.env,
                                  timeout=self.timeout)
        if error:
            return Run(seconds, error=error)
        # Reading the gradebook is not part of grading: it is outside the timed command.
        proc = subprocess.run([str(self.venv / "python"), "-c", SCORE_QUERY,
                               f"sqlite:///{self.course / 'gradebook.db'}", self.assignment,
                               student], cwd=self.course, env=self.env, capture_output=True,
                              text=True)
        try:
            score, max_score = json.loads(proc.stdout)
            return Run(seconds, score, max_score)
        except ValueError:
            return Run(seconds, error=f"gradebook unreadable: {tail(proc.stderr)}")


def fill(released: nbformat.NotebookNode, typed: dict[str, str],
         answer_of: Callable[[nbformat.NotebookNode], str | None]) -> nbformat.NotebookNode:
    """The released notebook with the student's answers in the cells `answer_of` names."""
    nb = copy.deepcopy(released)
    filled = set()
    for cell in nb.cells:
        name = answer_of(cell) if cell.cell_type == "code" else None
        if name in typed:
            cell.source = typed[name]
            filled.add(name)
    if filled != set(typed):
        raise SystemExit(f"the released notebook has no answer cell for "
                         f"{', '.join(sorted(set(typed) - filled))}")
    return nb


# ---- this grader -----------------------------------------------------------------------------

class Grader:
    def __init__(self, work: Path, full: bool, data_dir: Path | None, sandbox: str,
                 timeout: float):
        self.full, self.data_dir, self.sandbox, self.timeout = full, data_dir, sandbox, timeout
        self.name = "grader `--full`" if full else "grader (subset)"
        self.work = work / ("grader-full" if full else "grader")
        self.env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]))

    def set_up(self) -> float:
        """One first grading, untimed in the rounds: it fills the grader's per-machine cache
        (the packages check, the timed-training bar of this mode) as a class's first student
        would."""
        self.work.mkdir(parents=True)
        run = self.grade(self.submission("good", 0))
        if run.error:
            raise SystemExit(f"set-up failed: first {self.name}: {run.error}")
        return run.seconds

    def submission(self, kind: str, round_no: int) -> Path:
        cells = [md(INTRO), code(LOAD_CELL), code(PREPARE_CELL), md(MODEL_PROMPT),
                 code(MODEL_ANSWER), md(TRAIN_PROMPT), code(TRAIN_ANSWERS[kind]),
                 code(REPORT_CELL)]
        path = self.work / f"{kind}-r{round_no}.ipynb"
        nbformat.write(notebook(cells, grader={"assignment": ASSIGNMENT}), path)
        return path

    def grade(self, path: Path) -> Run:
        cmd = [sys.executable, "-m", "grader.cli", "check", str(path), "-a", ASSIGNMENT,
               "--out", str(path.with_suffix("")), "--json", "--sandbox", self.sandbox]
        if self.full:
            cmd.append("--full")
        if self.data_dir is not None:
            cmd += ["--data-dir", str(self.data_dir)]
        seconds, proc, error = timed(cmd, cwd=REPO, env=self.env, timeout=self.timeout)
        if error:
            return Run(seconds, error=error)
        try:
            result = json.loads(proc.stdout)
        except ValueError:
            return Run(seconds, error=f"no result JSON: {tail(proc.stdout + proc.stderr)}")
        if result.get("score") is None:
            return Run(seconds, error=f"grader_error: {result.get('execution', {}).get('message')}")
        accuracy = [c for c in result["checks"] if c["id"] == "model-accuracy"]
        note = (f"accuracy {accuracy[0]['points']:g}/{accuracy[0]['max_points']:g}"
                if accuracy else "")
        return Run(seconds, result["score"], result["max_score"], note)


# ---- the run and its table -------------------------------------------------------------------

@dataclass
class Figures:
    cores: int | None
    rounds: int
    data_dir: str | None
    load_before: list[float] = field(default_factory=list)
    setup_seconds: dict[str, float] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)
    load_after: list[float] = field(default_factory=list)


def median_seconds(figures: Figures, tool: str, kind: str) -> float | None:
    seconds = [r["seconds"] for r in figures.runs
               if r["tool"] == tool and r["submission"] == kind and not r["error"]]
    return statistics.median(seconds) if seconds else None


def score_text(runs: list[dict[str, Any]]) -> str:
    """The scores the rounds gave: one figure when they agree."""
    texts = []
    for r in runs:
        if r["error"]:
            texts.append("failed")
        else:
            text = f"{r['score']:g}/{r['max_score']:g}"
            texts.append(f"{text} ({r['note']})" if r["note"] else text)
    return " / ".join(dict.fromkeys(texts))


def table(figures: Figures, tools: list[str]) -> str:
    kinds = list(TRAIN_ANSWERS)
    lines = [f"fashion-mlp, 128-64-10 trained 8 epochs; rounds: {figures.rounds}; "
             f"{figures.cores} cores; load average (1, 5, 15 min) before the rounds "
             f"{fmt_load(figures.load_before)}, after {fmt_load(figures.load_after)}", "",
             "| | " + " | ".join(tools) + " |", "|---" * (len(tools) + 1) + "|"]
    for kind in kinds:
        cells = []
        for tool in tools:
            runs = [r for r in figures.runs if r["tool"] == tool and r["submission"] == kind]
            seconds = ", ".join(f"{r['seconds']:.1f} s" for r in runs)
            cells.append(f"{seconds} · {score_text(runs)}")
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    lines += ["", "Faster peer's median seconds / the grader's (> 1: the grader is faster):"]
    for kind in kinds:
        peers = [(median_seconds(figures, t, kind), t) for t in tools[:2]]
        peers = [p for p in peers if p[0] is not None]
        if not peers:
            lines.append(f"  {kind}: no peer finished")
            continue
        peer_seconds, peer = min(peers)
        for tool in tools[2:]:
            ours = median_seconds(figures, tool, kind)
            ratio = f"{peer_seconds / ours:.2f}x" if ours else "n/a"
            lines.append(f"  {kind}: {tool} {ratio} vs {peer} ({peer_seconds:.1f} s)")
    lines += ["", "One-time set-up, not in the figures above: " + ", ".join(
        f"{what} {seconds:.1f} s" for what, seconds in figures.setup_seconds.items())]
    errors = [r for r in figures.runs if r["error"]]
    lines += [f"FAILED: round {r['round']} {r['submission']} {r['tool']}: {r['error']}"
              for r in errors]
    return "\n".join(lines)


def fmt_load(load: list[float]) -> str:
    return ", ".join(f"{x:.2f}" for x in load) if load else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV,
                        help=f"the peers' venv, created if needed (default {DEFAULT_VENV})")
    parser.add_argument("--data-dir", type=Path,
                        default=DEFAULT_DATA if (DEFAULT_DATA / "fashion-mnist").is_dir() else None,
                        help="folder holding fashion-mnist/ (default ../shared/data when present)")
    parser.add_argument("--sandbox", choices=("auto", "bwrap", "none"), default="auto")
    parser.add_argument("--tool-timeout", type=float, default=1800,
                        help="seconds before one tool's command counts as failed")
    parser.add_argument("--json", action="store_true", help="print the raw figures as JSON")
    parser.add_argument("--keep", type=Path, help="keep the notebooks and outputs here")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.data_dir is not None and not args.data_dir.is_dir():
        parser.error(f"--data-dir {args.data_dir} does not exist")

    work = args.keep or Path(tempfile.mkdtemp(prefix="grader-peers-"))
    work.mkdir(parents=True, exist_ok=True)
    if any(work.iterdir()):
        parser.error(f"--keep {work} is not empty")
    data_dir = args.data_dir.resolve() if args.data_dir else None
    figures = Figures(os.cpu_count(), args.rounds, str(data_dir) if data_dir else None)
    try:
        figures.setup_seconds["peers' venv"] = ensure_venv(args.venv.resolve())
        env = peer_env(args.venv.resolve(), offline_keras_home(data_dir, work))
        tools = [Otter(args.venv.resolve(), work, env, args.tool_timeout),
                 Nbgrader(args.venv.resolve(), work, env, args.tool_timeout),
                 Grader(work, False, data_dir, args.sandbox, args.tool_timeout),
                 Grader(work, True, data_dir, args.sandbox, args.tool_timeout)]
        setup_names = ["otter assign", "nbgrader generate_assignment",
                       "first grader check", "first grader check --full"]
        for tool, what in zip(tools, setup_names):
            progress(f"set-up: {what} ...")
            figures.setup_seconds[what] = tool.set_up()
        # The load the rounds ran under, not the venv's installation.
        figures.load_before = list(os.getloadavg())
        for round_no in range(1, args.rounds + 1):
            for kind in TRAIN_ANSWERS:
                for tool in tools:
                    run = tool.grade(tool.submission(kind, round_no))
                    progress(f"round {round_no} {kind:<6} {tool.name:<28} {run.seconds:6.1f} s "
                             + (f"FAILED {run.error}" if run.error else
                                f"{run.score:g}/{run.max_score:g} {run.note}"))
                    figures.runs.append({"round": round_no, "submission": kind,
                                         "tool": tool.name, **asdict(run)})
        figures.load_after = list(os.getloadavg())
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(asdict(figures), indent=2) if args.json
          else table(figures, [t.name for t in tools]))
    if any(r["error"] for r in figures.runs):
        sys.exit(1)


if __name__ == "__main__":
    main()
