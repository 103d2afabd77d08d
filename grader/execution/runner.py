"""Run a notebook's code cells in a fresh kernel with per-cell and whole-notebook time limits.

Errors in one cell do not stop the rest (`allow_errors`); each is recorded with its cell and line.
A cell or notebook stopped by a time limit names that limit and its origin (time_limits.py).
After the student's cells, the grader's harvest code runs in the same kernel.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.kernelspec import KernelSpec
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

from ..paths import PACKAGE_ROOT
from ..progress import Phase, Progress, notify
from ..scoring import RunStatus
from . import confine, processes, sandbox as sandbox_mod
from .limits import LimitHit, Limits
from .scratch import Scratch
from .time_limits import Scope, TimeLimit, TimeLimits

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# IPython's header of a notebook cell's frame: "Cell In[5], line 3".
_CELL_FRAME = re.compile(r"^\s*Cell In\[(\d+)\], line (\d+)", re.M)
# Environment variables the kernel may inherit; everything else (tokens, keys) is dropped.
_ENV_KEEP = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "SYSTEMROOT")
# Marks every process of one kernel (not a secret: a random id): a last sweep after the
# confinement's own (cgroup, pid namespace, subreaper, uid), for processes that kept it.
KERNEL_TOKEN_VAR = "GRADER_KERNEL_ID"
# Outputs kept per cell: enough to read an error, not enough to exhaust the grader's memory.
MAX_OUTPUT_CHARS = 20_000
# Plots have their own budget (a training curve is 30-90 kB of base64), so the executed notebook
# handed back to the student keeps them: per image, and for the whole notebook.
MAX_IMAGE_CHARS = 1_000_000
MAX_NOTEBOOK_IMAGE_CHARS = 8_000_000


@dataclass
class CellError:
    cell: int  # index among all cells, 0-based
    execution_count: int | None
    ename: str
    evalue: str
    line: int | None
    traceback: str

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


@dataclass
class KernelConfig:
    """What grader/kernel/boot.py sets up inside the kernel process (its limits are set
    before it starts, by grader/execution/confine.py)."""

    memory_mb: int  # the default of `Limits` when execute() is given none
    seed: int = 0
    datasets: dict[str, str] = field(default_factory=dict)
    submission: str = ""  # the submission's folder, copied into the kernel's working folder
    # where and for which names the kernel exports a design as its fit() starts
    # (grader/kernel/head_start.py)
    head_start: dict[str, Any] | None = None


@dataclass
class ExecutionRecord:
    status: RunStatus = RunStatus.COMPLETED  # or TIMEOUT, KERNEL_DIED, START_FAILED
    message: str = ""
    time_limit: TimeLimit | None = None  # the time limit that stopped a cell or the notebook
    cell_errors: list[CellError] = field(default_factory=list)
    kernel_start_seconds: float = 0.0
    execute_seconds: float = 0.0
    harvest_seconds: float = 0.0
    harvested: bool = False
    limits: dict[str, Any] | None = None  # Enforcement.as_dict(): what held, what was reached


def _is_image(output_or_content: dict[str, Any]) -> bool:
    data = output_or_content.get("data")
    return isinstance(data, dict) and any(str(k).startswith("image/") for k in data)


class _BoundedClient(NotebookClient):
    """Keeps at most MAX_OUTPUT_CHARS of output per cell while the cell runs, and images within
    their own budget: a notebook that prints or plots gigabytes must not exhaust the grader's
    memory."""

    def output(self, outs, msg, display_id, cell_index):  # noqa: ANN001 - nbclient's signature
        if msg["msg_type"] in ("display_data", "execute_result") and _is_image(msg["content"]):
            return self._image(outs, msg, display_id, cell_index)
        kept = self._kept.get(cell_index, 0) if hasattr(self, "_kept") else 0
        if kept > MAX_OUTPUT_CHARS and msg["msg_type"] != "error":
            if not self._noted.get(cell_index):
                self._noted[cell_index] = True
                outs.append(nbformat.v4.new_output(
                    "stream", name="stderr", text="[grader: further output of this cell dropped]\n"))
            return None
        out = super().output(outs, msg, display_id, cell_index)
        if out is not None:
            size = len(json.dumps(out, default=str))
            if size > MAX_OUTPUT_CHARS:  # a single huge message: keep its head only
                if out.get("output_type") == "stream":
                    out["text"] = out["text"][:MAX_OUTPUT_CHARS // 2] + "\n[grader: output cut]\n"
                else:
                    outs.remove(out)
            self._kept[cell_index] = kept + min(size, MAX_OUTPUT_CHARS)
        return out

    def _image(self, outs, msg, display_id, cell_index):  # noqa: ANN001
        size = len(json.dumps(msg["content"].get("data"), default=str))
        if size > MAX_IMAGE_CHARS or self._images + size > MAX_NOTEBOOK_IMAGE_CHARS:
            if cell_index not in self._images_noted:  # once a cell: a loop of plots is bounded
                self._images_noted.add(cell_index)
                outs.append(nbformat.v4.new_output("stream", name="stderr", text=(
                    f"[grader: an image of {size // 1000:,} kB and any after it over the "
                    "grader's limit for images were not kept]\n")))
            return None
        out = super().output(outs, msg, display_id, cell_index)
        if out is not None:
            self._images += size
        return out

    def __init__(self, *args, **kwargs):  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self._kept: dict[int, int] = {}
        self._noted: dict[int, bool] = {}
        self._images = 0  # characters of images kept in the whole notebook
        self._images_noted: set[int] = set()


class _GraderKernelManager(AsyncKernelManager):
    """Starts ipykernel through grader/kernel/boot.py, confined (limits, sandbox) before any
    student code runs."""

    boot_config: str = ""
    confinement: confine.Confinement | None = None

    @property
    def kernel_spec(self) -> KernelSpec:
        # Our own command line (format_kernel_cmd), so no kernelspec lookup: finding the
        # installed specs imports IPython into the grader at every grading (0.3 s under cProfile).
        if self._kernel_spec is None:
            self._kernel_spec = KernelSpec(argv=["python3"], display_name="Python 3 (grader)",
                                           language="python", interrupt_mode="signal", env={},
                                           metadata={})
        return self._kernel_spec

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        cmd = [sys.executable, "-m", "grader.kernel.boot", self.boot_config,
               "-f", os.path.realpath(self.connection_file), *(extra_arguments or [])]
        assert self.confinement is not None
        return self.confinement.command(cmd)


def kernel_env(scratch: Scratch) -> dict[str, str]:
    env = {k: os.environ[k] for k in _ENV_KEEP if k in os.environ}
    env.update(
        HOME=str(scratch.home),
        KERAS_HOME=str(scratch.home / ".keras"),
        IPYTHONDIR=str(scratch.home / ".ipython"),
        JUPYTER_CONFIG_DIR=str(scratch.home / ".jupyter"),
        MPLCONFIGDIR=str(scratch.home / ".matplotlib"),
        # Jupyter's own default: plots become outputs, as students see them (and get them back)
        MPLBACKEND="module://matplotlib_inline.backend_inline",
        PYTHONPATH=str(PACKAGE_ROOT),  # the grader's code, which the kernel imports
        PYTHONHASHSEED="0",
        TF_CPP_MIN_LOG_LEVEL="2",
        TF_ENABLE_ONEDNN_OPTS="0",  # oneDNN's kernels vary with load; plain ones repeat exactly
        OMP_NUM_THREADS="2",
        # OpenMP's threads (PyTorch's) sleep when they wait instead of spinning: on a busy
        # machine spinning made a LeNet-5 epoch 10x slower in wall time (60 s, not 6).
        OMP_WAIT_POLICY="PASSIVE",
        TF_NUM_INTRAOP_THREADS="2",
        TF_NUM_INTEROP_THREADS="1",
        PYTHONUNBUFFERED="1",
        # A Colab habit, `!pip install …`, fails at once instead of retrying a network the
        # sandbox does not have, and with --sandbox none installs nothing into the grader's
        # own environment: no index, no pip.conf (a machine's mirror or wheel folder), no
        # retries, no prompts. Packages the homework needs are already there (environment.py).
        PIP_NO_INDEX="1",
        PIP_CONFIG_FILE=os.devnull,
        PIP_RETRIES="0",
        PIP_DEFAULT_TIMEOUT="5",  # a URL requirement (git+https://…) on a network dropping packets
        PIP_NO_INPUT="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        TMPDIR=str(scratch.tmp),  # without bubblewrap, /tmp is the host's
    )
    return env


def execute(nb: nbformat.NotebookNode, scratch: Scratch, *, times: TimeLimits,
            kernel: KernelConfig, harvest_code: str,
            harvest_timeout: float = 300.0,
            mounts: sandbox_mod.Mounts | None = None,
            progress: Progress | None = None,
            limits: Limits | None = None) -> ExecutionRecord:
    """Execute `nb` in place and run `harvest_code` afterwards. The outputs the notebook was
    saved with are cleared first, so `nb` ends up holding only what this run produced (cells
    not run have none): it is the executed notebook a batch hands back to the student.

    With `mounts`, the kernel runs inside bubblewrap: `mounts` lists what it may write and read
    beyond the system and Python, and what it must not see. `limits` (default: Limits with the
    kernel's memory_mb) cap the kernel's whole process tree in every mode. `progress` hears of
    the kernel's start, each code cell and the harvest (grader/progress.py); it only displays.
    """
    limits = limits or Limits(memory_mb=kernel.memory_mb)
    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    return _run(_execute(nb, scratch, times, kernel, harvest_code,
                         harvest_timeout, mounts, limits, progress))


class _GraderLoop(asyncio.SelectorEventLoop):
    """nbclient registers SIGINT and SIGTERM handlers on the loop that shut the kernel down and
    let grading go on as if the kernel had died (a Ctrl-C became a student's zero). The grader's
    process decides what those signals mean (grader/cli.py, grader/batch/worker.py), so they
    are left to its own handlers."""

    def add_signal_handler(self, sig, callback, *args):  # noqa: ANN001, ANN002
        if sig in (signal.SIGINT, signal.SIGTERM):
            return
        super().add_signal_handler(sig, callback, *args)

    def remove_signal_handler(self, sig):  # noqa: ANN001
        if sig in (signal.SIGINT, signal.SIGTERM):
            return False
        return super().remove_signal_handler(sig)


def _run(coro):  # noqa: ANN001, ANN202 - a coroutine and its result
    """asyncio.run on _GraderLoop. A KeyboardInterrupt cancels the grading so that its clean-up
    (killing the kernel) runs, and then propagates."""
    loop = _GraderLoop()
    task = loop.create_task(coro)
    try:
        return loop.run_until_complete(task)
    except KeyboardInterrupt:
        loop.set_exception_handler(lambda *_: None)  # nbclient's orphaned tasks: not news
        task.cancel()
        try:
            loop.run_until_complete(task)
        except BaseException:  # noqa: BLE001 - the cancellation itself, or what clean-up raised
            pass
        raise
    finally:
        for pending in asyncio.all_tasks(loop):
            pending.cancel()
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


def _kernel_confinement(scratch: Scratch, config_path: Path, ipc: Path, log: Path,
                        mounts: sandbox_mod.Mounts | None,
                        limits: Limits) -> confine.Confinement:
    """The kernel sees its config, the submission (copied into its own working folder by
    boot.py), its private work, home and /tmp, the ipc sockets and what the caller adds."""
    extra = mounts or sandbox_mod.Mounts()
    kernel_mounts = sandbox_mod.Mounts(
        writable=[ipc, *extra.writable],
        readable=[config_path, scratch.submission, *extra.readable],
        hidden=list(extra.hidden), private=[scratch.work, scratch.home, scratch.tmp],
        view=sandbox_mod.View.KERNEL)
    return confine.Confinement(kernel_mounts, scratch.work, limits, sandboxed=mounts is not None,
                               label="kernel", logs=(log,))


async def _execute(nb, scratch, times, kernel, harvest_code,
                   harvest_timeout, mounts, limits, progress=None) -> ExecutionRecord:
    record = ExecutionRecord()
    config_path = scratch.private / "kernel.json"
    config = {**kernel.__dict__, "submission": str(scratch.submission)}
    config_path.write_text(json.dumps(config))
    ipc = scratch.private / "ipc"
    ipc.mkdir(exist_ok=True)
    log_path = scratch.private / "kernel.log"
    try:
        confinement = _kernel_confinement(scratch, config_path, ipc, log_path, mounts, limits)
    except OSError as exc:
        record.status = RunStatus.START_FAILED
        record.message = f"the kernel could not start: its limits could not be set up ({exc})"
        return record
    # Unix sockets, not TCP: nothing else on the machine can reach the kernel, and it works
    # inside a network namespace with no network at all.
    km = _GraderKernelManager(kernel_name="python3", transport="ipc", ip=str(ipc / "kernel"),
                              connection_file=str(ipc / "connection.json"))
    km.kernel_spec.interrupt_mode = "message"  # a signal to bwrap would not reach ipykernel
    km.boot_config = str(config_path)
    km.confinement = confinement
    kernel_log = log_path.open("wb")
    replies: dict[int, dict[str, Any]] = {}

    def on_cell_executed(cell, cell_index, execute_reply):  # noqa: ANN001 - nbclient hook
        replies[cell_index] = execute_reply.get("content", {})

    client = _BoundedClient(
        nb, km=km, timeout=int(times.cell.seconds), allow_errors=True,
        interrupt_on_timeout=True, error_on_timeout=_timeout_error(times.cell, 1),
        startup_timeout=120, kernel_name="python3", record_timing=False,
        resources={"metadata": {"path": str(scratch.work)}},
        on_cell_executed=on_cell_executed,
    )
    started = time.monotonic()
    token = secrets.token_hex(12)
    env = kernel_env(scratch)
    env[KERNEL_TOKEN_VAR] = token
    notify(progress, Phase.KERNEL_START, sandboxed=mounts is not None)
    try:
        async with client.async_setup_kernel(env=env, cwd=str(scratch.work),
                                             stdout=kernel_log, stderr=kernel_log):
            record.kernel_start_seconds = time.monotonic() - started
            t0 = time.monotonic()
            alive = await _run_student_cells(client, nb, record, times, confinement, replies,
                                             progress)
            record.execute_seconds = time.monotonic() - t0
            if alive:
                t1 = time.monotonic()
                notify(progress, Phase.HARVEST)
                record.harvested = await _run_harvest(client, nb, harvest_code, harvest_timeout, record)
                record.harvest_seconds = time.monotonic() - t1
                _note_hits(confinement, record, None, nb, died=False)
    except Exception as exc:  # kernel failed to start or vanished during shutdown
        if record.kernel_start_seconds == 0.0:
            record.status = RunStatus.START_FAILED
            record.message = f"the kernel could not start: {_first_line(exc)}"
            kernel_log.flush()
            said = _last_line(log_path)  # bwrap's or the launcher's words; no student code ran
            if said:
                record.message += f" ({said})"
    finally:
        confinement.kill()  # the whole tree, while the launcher still holds its orphans
        await _kill(km, token)
        await _release(km, client)
        enforcement = confinement.close()
        kernel_log.close()
        client.km = km  # nbclient's exit hook asserts a manager exists, even after a failed start
    record.limits = enforcement.as_dict()
    _collect_errors(nb, replies, record)
    return record


def _note_hits(confinement: confine.Confinement, record: ExecutionRecord, index: int | None,
               nb, died: bool) -> bool:  # noqa: ANN001
    """Caps reached while cell `index` ran (None: the grader's harvest) are that cell's; the
    first one that ended the kernel explains its death. True when the kernel is gone: it died,
    or the grader ended it for a cap the cell reached (a cell that fills its disk gets ENOSPC
    and ends before the watchdog's next look, so the cell that did it is found here)."""
    hits: list[LimitHit] = confinement.poll()
    died = died or confinement.ended
    gone = died
    for hit in hits:
        hit.cell = index
        hit.execution_count = nb.cells[index].get("execution_count") if index is not None else None
        hit.stopped = hit.stopped or died
        where = "" if index is not None else " while the grader inspected the variables"
        message = hit.message() + where
        if died and record.status in (RunStatus.COMPLETED, RunStatus.KERNEL_DIED):
            record.status = RunStatus.KERNEL_DIED
            record.message = message
            died = False  # one explanation is enough
        elif message not in record.message:
            record.message = (record.message + "; " if record.message else "") + message
    return gone


async def _run_student_cells(client, nb, record, times: TimeLimits, confinement, replies,
                             progress=None) -> bool:
    """Returns False when the kernel can no longer be used. `replies` fills with each cell's
    execute_reply as it ends."""
    deadline = time.monotonic() + times.notebook.seconds
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip()]
    next_count = 1  # the In [k] Jupyter will show: the kernel counts each cell it runs
    for index, cell in enumerate(list(nb.cells)):
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        notify(progress, Phase.CELL, cell=index, number=code.index(index) + 1, total=len(code),
               execution_count=next_count)
        remaining = deadline - time.monotonic()
        if remaining <= 1:
            _stopped(record, times.notebook, index,
                     f"; cells from cell {index + 1} on were not run")
            return True
        limit = times.binding(remaining)  # which of the two this cell is interrupted at
        client.timeout = int(max(1, min(limit.seconds, remaining)))
        client.error_on_timeout = _timeout_error(limit, next_count)
        started = time.monotonic()
        try:
            # The margin lets nbclient interrupt a slow cell itself; past it the kernel is stuck.
            await asyncio.wait_for(client.async_execute_cell(cell, index), client.timeout + 30)
        except DeadKernelError:
            record.status = RunStatus.KERNEL_DIED
            # What an earlier cell reached (a cap) stays: it may be why the kernel died now.
            earlier = f"; before that, {record.message}" if record.message else ""
            record.message = (f"the kernel died while running cell {index + 1} "
                              f"(it exited, was killed, or ran out of memory){earlier}")
            _note_hits(confinement, record, index, nb, died=True)
            return False
        except asyncio.TimeoutError:
            _stopped(record, limit, index, "; it did not stop when interrupted and the kernel "
                     "was stopped", in_cell=True)
            _note_hits(confinement, record, index, nb, died=False)
            return False
        # From the reply: a kernel out of address space may fail to send the error's output.
        if replies.get(index, {}).get("ename") == "MemoryError":
            confinement.refused_allocation()
        if _note_hits(confinement, record, index, nb, died=False):
            return False
        _trim_outputs(cell)
        count = cell.get("execution_count")
        next_count = count + 1 if isinstance(count, int) else next_count + 1
        # Timed by the grader's clock, not by the cell's outputs, which the student writes.
        if time.monotonic() - started >= client.timeout:
            record.time_limit = record.time_limit or limit
            if limit is times.notebook:
                rest = [i for i in code if i > index]
                _stopped(record, limit, index, f"; cells from cell {rest[0] + 1} on were not run"
                         if rest else "", in_cell=True)
                return True
    return True


def _timeout_error(limit: TimeLimit, count: int) -> dict[str, Any]:
    """The error nbclient records in a cell it interrupted at `limit`."""
    what = f"cell In [{count}]" if limit.scope is Scope.CELL else "the notebook"
    return {"ename": "CellTimeoutError", "evalue": f"{what} ran past {limit.describe()}",
            "traceback": []}


def _stopped(record: ExecutionRecord, limit: TimeLimit, index: int, rest: str = "",
             in_cell: bool = False) -> None:
    """The run ended at `limit`, while cell `index` ran (`in_cell`) or before it started:
    "the notebook ran past its 120 s limit (--timeout 120) in cell 3; …"."""
    record.status = RunStatus.TIMEOUT
    record.time_limit = limit
    if limit.scope is Scope.CELL:
        record.message = f"cell {index + 1} ran past {limit.describe()}{rest}"
        return
    where = f" in cell {index + 1}" if in_cell else ""
    record.message = f"the notebook ran past {limit.describe()}{where}{rest}"


async def _run_harvest(client, nb, code, timeout, record) -> bool:
    cell = nbformat.v4.new_code_cell(code)
    nb.cells.append(cell)
    index = len(nb.cells) - 1
    client.timeout = int(timeout)
    try:
        await asyncio.wait_for(client.async_execute_cell(cell, index), timeout + 30)
    except DeadKernelError:
        record.message = (record.message + "; " if record.message else "") + \
            "the kernel died while the grader inspected its variables"
        return False
    except asyncio.TimeoutError:
        return False
    finally:
        nb.cells.pop()
    return True


async def _kill(km: AsyncKernelManager, token: str) -> None:
    pgid = getattr(km.provisioner, "pgid", None) if km.provisioner else None
    try:
        if km.has_kernel:
            # The tree is already killed. jupyter_client interrupts before it kills: by message,
            # that is one more message the dead kernel never reads, and closing the sockets
            # then waits out their 100 ms linger for it. A signal to a dead group costs nothing.
            km.kernel_spec.interrupt_mode = "signal"
            await km.shutdown_kernel(now=True)
    except Exception:
        pass
    # jupyter_client signals the group only while its own child lives; the student may have
    # killed that child, or started processes in sessions of their own. Sweep both.
    if pgid:
        processes.signal_group(pgid)
    kill_tagged_processes(token)


async def _release(km: AsyncKernelManager, client: NotebookClient) -> None:
    """Close the kernel's sockets and both zmq contexts. nbclient leaves that to whoever passed
    it the manager, and jupyter_client does it only when it shuts a kernel down itself: a kernel
    already killed left ~14 descriptors per notebook, until a process grading notebook after
    notebook (a test session, a script; a batch grades each student in a process of its own)
    ran out of them."""
    try:
        await km.cleanup_resources()
    except Exception:  # noqa: BLE001 - clean-up of a kernel that is gone either way
        pass
    if client.kc is not None:
        client.kc.stop_channels()
        client.kc = None


def kill_tagged_processes(token: str) -> int:
    """SIGKILL every process whose environment carries this kernel's token; returns the count."""
    needle = f"{KERNEL_TOKEN_VAR}={token}".encode()
    return processes.kill(processes.with_environ(lambda env: needle in env))


def _trim_outputs(cell) -> None:  # noqa: ANN001
    kept = 0
    outputs = []
    for out in cell.get("outputs", []):
        if _is_image(out):  # bounded by _BoundedClient on their own budget
            outputs.append(out)
            continue
        size = len(json.dumps(out, default=str))
        if kept + size > MAX_OUTPUT_CHARS and out.get("output_type") != "error":
            continue
        kept += size
        outputs.append(out)
    cell["outputs"] = outputs


def _collect_errors(nb, replies, record: ExecutionRecord) -> None:
    for index, content in sorted(replies.items()):
        if index >= len(nb.cells) or content.get("status") != "error":
            continue
        tb = _ANSI.sub("", "\n".join(content.get("traceback") or []))
        count = nb.cells[index].get("execution_count")
        record.cell_errors.append(CellError(
            cell=index,
            execution_count=count,
            ename=str(content.get("ename", "Error"))[:200],
            evalue=str(content.get("evalue", ""))[:1000],
            line=_line_in_cell(tb, count),
            traceback=tb[-4000:],
        ))


def _line_in_cell(traceback: str, execution_count: int | None) -> int | None:
    """The line of the failing cell where the error surfaced: its own frame's, not that of a
    library the cell called (an `input()` fails inside ipykernel, at ipykernel's line 1514)."""
    frames = [(int(m.group(1)), int(m.group(2))) for m in _CELL_FRAME.finditer(traceback)]
    own = [line for count, line in frames if count == execution_count]
    if own:
        return own[0]
    return frames[0][1] if frames else None


def _last_line(path: Path) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(max(0, path.stat().st_size - 4000))
            lines = fh.read().decode(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else type(exc).__name__
