"""What both clean rooms (numpy_run.py, keras_run.py) do with the process they start: read its
protocol lines with a deadline, read its small JSON reports, stop it whole."""

from __future__ import annotations

import json
import os
import selectors
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..execution import processes
from ..execution.confine import Confinement

MAX_REPORT_BYTES = 2**20


def interpreter() -> str:
    """The grader's interpreter as it was started, never the binary a venv's `bin/python` links
    to: Python finds its environment (pyvenv.cfg, and so the venv's site-packages, where
    TensorFlow is) beside the path it was started by. The sandbox shows the environment's
    prefix, so the link resolves inside it too."""
    return sys.executable


def stop(proc: subprocess.Popen, confinement: Confinement | None = None) -> None:
    """Kill the clean room's whole tree, whatever it did to its session: its confinement's
    cgroup, pid namespace and uid, else its process group."""
    if confinement is not None:
        confinement.kill()
    if proc.poll() is None and not processes.signal_group(proc.pid):
        proc.kill()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    if confinement is not None:
        confinement.close()


class LineReader:
    """Protocol lines from the clean room's stdout, with a deadline; stderr kept, bounded."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.selector = selectors.DefaultSelector()
        self.selector.register(proc.stdout, selectors.EVENT_READ, "out")
        self.selector.register(proc.stderr, selectors.EVENT_READ, "err")
        self.buffer = b""
        self.err = b""

    def wait_for(self, word: str, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while True:
            if b"\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\n", 1)
                if line.strip() == word.encode():
                    return True
                continue  # anything else on the pipe is not the harness's word
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.selector.get_map():
                return False
            for key, _ in self.selector.select(remaining):
                chunk = os.read(key.fileobj.fileno(), 65536)
                if not chunk:
                    self.selector.unregister(key.fileobj)
                elif key.data == "out":
                    self.buffer = (self.buffer + chunk)[-65536:]
                else:
                    self.err = (self.err + chunk)[-8192:]

    def stderr(self) -> str:
        """What is left on stderr, without blocking: a process that escaped the kill may still
        hold the pipe open."""
        try:
            os.set_blocking(self.proc.stderr.fileno(), False)
            self.err += os.read(self.proc.stderr.fileno(), 8192) or b""
        except (OSError, ValueError):
            pass
        return self.err.decode(errors="replace")[-2000:]


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object an untrusted process wrote, perhaps still running: None unless `path` is a
    small regular file. No link is followed, and a pipe swapped in never blocks the read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_REPORT_BYTES:
            return None
        loaded = json.loads(os.read(fd, MAX_REPORT_BYTES + 1))
    except (OSError, ValueError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return None
    finally:
        os.close(fd)
    return loaded if isinstance(loaded, dict) else None
