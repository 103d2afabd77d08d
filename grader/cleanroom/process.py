"""What both clean rooms (numpy_run.py, keras_run.py) do with the process they start: read its
protocol lines with a deadline, stop it whole. Its JSON reports are read as any file an untrusted
process wrote (grader/harvest/untrusted_file.py)."""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import time

from ..execution import processes
from ..execution.confine import Confinement


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
