"""Entry point of the student's kernel process: its working folder, data, seeds, then ipykernel.

Runs as `python -m grader.kernel.boot CONFIG.json -f CONNECTION_FILE`, already confined: the
grader's launcher (grader/execution/launch.py) set its memory, process and file limits, its
cgroup and its uid before this interpreter started. Nothing here imports TensorFlow:
numpy-only notebooks must start fast.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from pathlib import Path

from grader.kernel.import_hooks import after_import


def copy_submission(source: Path, work: Path) -> None:
    """The submission's files into the working folder (a size-capped tmpfs in the sandbox):
    whatever does not fit is left out, the notebook still runs."""
    if not source.is_dir() or source.resolve() == work.resolve():
        return
    for item in sorted(source.iterdir()):
        try:
            if item.is_dir() and not item.is_symlink():
                shutil.copytree(item, work / item.name, symlinks=True, dirs_exist_ok=True)
            else:
                shutil.copy2(item, work / item.name, follow_symlinks=False)
        except OSError as exc:
            print(f"grader: {item.name} was not copied into the working folder ({exc})",
                  file=sys.stderr)


def _seed_framework(seed: int):
    def seed_it(module) -> None:  # noqa: ANN001
        if module.__name__ == "keras":
            module.utils.set_random_seed(seed)
        elif module.__name__ == "torch":  # a PyTorch answer's weights and DataLoader order
            module.manual_seed(seed)
        else:
            module.random.set_seed(seed)

    return seed_it


def seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    try:
        import numpy

        numpy.random.seed(seed)
    except ImportError:
        pass
    after_import(lambda name: name in ("keras", "tensorflow", "torch"), _seed_framework(seed))


def main(argv: list[str]) -> None:
    config = json.loads(Path(argv[0]).read_text())
    if config.get("submission"):
        copy_submission(Path(config["submission"]), Path.cwd())
    seed_everything(config.get("seed", 0))
    served = config.get("datasets") or {}
    if served:
        from grader.kernel import datasets

        datasets.install({name: Path(p) for name, p in served.items()})
    if config.get("head_start"):
        from grader.kernel import head_start

        head_start.install(**config["head_start"])
    # In bubblewrap's pid namespace our parent is its init, not the grader: ipykernel would take
    # that for the grader's death and quit. bwrap --die-with-parent covers that case instead.
    parent = os.environ.get("JPY_PARENT_PID", "")
    if parent and str(os.getppid()) != parent:
        os.environ.pop("JPY_PARENT_PID")
    # Drop our own arguments: ipykernel parses sys.argv.
    sys.argv = [sys.argv[0], *argv[1:]]
    _shield_parent()
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()


def _shield_parent() -> None:
    """Run the kernel in a child, so `os.kill(os.getppid(), 9)` hits this stub, not the grader.

    The stub waits for the kernel and exits with it; the grader kills both as one process group.
    """
    pid = os.fork()
    if pid == 0:
        return  # the child goes on to become the kernel
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # interrupts are for the kernel, not the stub
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except ChildProcessError:
            status = 0
            break
        except InterruptedError:
            continue
    code = os.waitstatus_to_exitcode(status)
    os._exit(code if code >= 0 else 128 - code)


if __name__ == "__main__":
    main(sys.argv[1:])
