"""The kernel's environment: the packages an assignment's notebooks may import must import there.

Checked before grading, once per environment (interpreter, installed distributions, package
list): a missing package is the grader's failure (exit 3, what to install), not every student's
zero. A notebook importing a package that is neither installed nor declared gets a hint on the
cell that failed, and the rest of it is graded as usual.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterable

from .errors import GraderError

# Import names whose distribution on PyPI is called something else.
PIP_NAMES = {"sklearn": "scikit-learn", "PIL": "pillow", "cv2": "opencv-python",
             "yaml": "pyyaml", "skimage": "scikit-image"}
# Import names an installation may lack, and the grader's extra that installs them.
EXTRAS = {"torch": "torch", "onnx": "torch", "onnxruntime": "torch"}
# Import names installed by a pip command of their own. torchvision's Linux wheel on PyPI is
# built against CUDA torch and cannot load its operators beside the extra's CPU torch, so it is
# not in the extra: its CPU build comes from PyTorch's index, at the release that pairs with the
# extra's torch==2.13.0.
OWN_INSTALLS = {"torchvision": "torchvision==0.28.0 --index-url "
                               "https://download.pytorch.org/whl/cpu"}
_NO_MODULE = re.compile(r"No module named '([^']+)'")
IMPORT_TIMEOUT = 180.0  # TensorFlow imports in ~6 s warm, ~13 s cold; a hang is a grader error


def cache_dir() -> Path:
    """Where checks done once per environment are remembered (GRADER_CACHE_DIR overrides)."""
    base = os.environ.get("GRADER_CACHE_DIR") or \
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dl-grader"
    return Path(base)


def environment_key(extra: Iterable[str] = ()) -> str:
    """Changes when the interpreter or any installed distribution changes."""
    digest = hashlib.sha256(os.path.realpath(sys.executable).encode())
    for item in (*_installed(), "|", *extra):
        digest.update(item.encode() + b"\0")
    return digest.hexdigest()[:16]


DISTRIBUTION_FOLDERS = (".dist-info", ".egg-info")


@functools.cache
def _installed() -> tuple[str, ...]:
    """The metadata folder of every installed distribution on the interpreter's path, named
    after it and its version (`numpy-2.4.6.dist-info`): an install, upgrade or removal renames
    one. Listing them takes 0.4 ms where reading every distribution's metadata took
    0.09-0.17 s, paid by every `grader check` and every student of a batch (each a process);
    a grading asks for several keys, and installs do not change under it."""
    found = set()
    for entry in sys.path:
        try:
            with os.scandir(entry or ".") as folder:
                found.update(e.name for e in folder if e.name.endswith(DISTRIBUTION_FOLDERS))
        except OSError:  # a zip or a folder that is gone: no distribution folders in it
            continue
    return tuple(sorted(found))


def missing_packages(packages: Iterable[str], python: str = sys.executable) -> dict[str, str]:
    """{import name: error} for each package that does not import in `python`."""
    names = sorted(set(packages))
    if not names:
        return {}
    probe = ("import importlib, json, sys\nbad = {}\nfor name in sys.argv[1:]:\n"
             "    try:\n        importlib.import_module(name)\n"
             "    except BaseException as exc:\n        bad[name] = f'{type(exc).__name__}: {exc}'\n"
             "print(json.dumps(bad))")
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "HOME")}
    env.update(MPLBACKEND="Agg", TF_CPP_MIN_LOG_LEVEL="3")
    try:
        proc = subprocess.run([python, "-c", probe, *names], capture_output=True, text=True,
                              timeout=IMPORT_TIMEOUT, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GraderError(f"the kernel's interpreter {python} could not check its packages: "
                          f"{exc}") from None
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise GraderError(f"the kernel's interpreter {python} failed to start: {tail}") from None


def verify(packages: Iterable[str]) -> None:
    """Raise GraderError naming what to install when a declared package does not import."""
    packages = tuple(sorted(set(packages)))
    if not packages:
        return
    stamp = cache_dir() / f"packages-{environment_key(packages)}.ok"
    if stamp.exists():
        return
    bad = missing_packages(packages)
    if bad:
        install = " ".join(PIP_NAMES.get(n, n) for n in bad)
        details = "; ".join(f"{n}: {e[:160]}" for n, e in bad.items())
        raise GraderError(f"the grading environment lacks packages this assignment's notebooks "
                          f"may import ({details}). Install them into {sys.executable}: "
                          f"{sys.executable} -m pip install {install}")
    try:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(" ".join(packages) + "\n")
    except OSError:
        pass  # a read-only cache only costs the check again next time


def missing_module_hint(cell_error: dict[str, Any], declared: Iterable[str]) -> str | None:
    """For a cell that failed on an import of a package the grader does not have: say so."""
    if cell_error.get("ename") not in ("ModuleNotFoundError", "ImportError"):
        return None
    match = _NO_MODULE.search(str(cell_error.get("evalue") or ""))
    if not match:
        return None
    name = match.group(1)  # `google.colab`: the whole name, as the student wrote it
    top = name.split(".")[0]
    declared = sorted(set(declared))
    allowed = f" (it may use: {', '.join(declared)})" if declared else ""
    if top in declared:
        return (f"`{name}` is one of this assignment's packages but did not import where the "
                "grader runs: tell your TA")
    return (f"this cell imports `{name}`, which is not installed where the grader runs and is "
            f"not one of this assignment's packages{allowed}; the rest of the notebook was "
            "graded as usual")


def install_command(name: str) -> str:
    """How to install an optional package into the grader's environment: its extra, if any."""
    from .paths import PACKAGE_ROOT

    extra = EXTRAS.get(name)
    if extra:
        return f"{sys.executable} -m pip install -e '{PACKAGE_ROOT}[{extra}]'"
    return f"{sys.executable} -m pip install {OWN_INSTALLS.get(name) or PIP_NAMES.get(name, name)}"


def missing_optional(cell_errors: Iterable[Any], optional: Iterable[str],
                     python: str = sys.executable) -> str | None:
    """The grader's failure, if a cell failed importing a package the assignment allows but this
    installation lacks (an extra, such as torch): what to say, naming the install. The package
    is imported again here, so a notebook that raises the error itself gains nothing by it."""
    optional = set(optional)
    for error in cell_errors:
        ename = getattr(error, "ename", None) or (error.get("ename") if isinstance(error, dict)
                                                   else None)
        evalue = getattr(error, "evalue", None) or (error.get("evalue") if isinstance(error, dict)
                                                     else None)
        if ename not in ("ModuleNotFoundError", "ImportError"):
            continue
        match = _NO_MODULE.search(str(evalue or ""))
        top = match.group(1).split(".")[0] if match else None
        if top not in optional or not missing_packages([top], python):
            continue
        return (f"the notebook imports `{top}`, which this assignment allows but this "
                f"installation of the grader lacks; install it with: {install_command(top)}")
    return None
