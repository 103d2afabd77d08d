"""Linux bubblewrap around a confined process: an allow-list of what it may see, no network.

Nothing of the host is visible unless listed: the system's programs and libraries (/usr and the
merged-/usr links), a few files of /etc, the interpreter's prefixes and site-packages, the part
of the grader's package the process runs (`View`), and the folders and files its caller names
(`Mounts`). Everything else — reference/ and assignments/, the datasets, the grader's home,
another checkout of the project or a copy of a dataset elsewhere on the machine — is simply not
there. Known dataset folders inside the listed trees (/usr/share/datasets) are hidden, and so
is anything the caller lists as hidden inside what is visible.

Where bwrap cannot run (no user namespaces), grading falls back to process limits only, and every
report says so. How the sandboxed tree is started and limited is grader/execution/confine.py's.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import site
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Callable

MODES = ("auto", "bwrap", "none")
GRADER_PACKAGE = Path(__file__).resolve().parents[1]
# What runs inside a student's kernel: grader/kernel/ (boot, harvest, ...), the module of input
# layouts harvest.py shares with the trusted side, and, while subclassed models are still
# described and retrained in the kernel (harvest.py), the describer and the timed fit. Without
# its __init__.py, grader.measure is a namespace package inside: the trusted side's modules
# (and what they import) are not there.
KERNEL_FILES = ("__init__.py", "kernel", "model_inputs.py", "measure/introspect.py",
                "training")
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "nsswitch.conf", "host.conf", "hosts",
       "gai.conf", "localtime", "timezone", "mime.types", "ssl/certs", "ssl/openssl.cnf",
       "ca-certificates", "fonts", "alternatives", "os-release")
SYSFS = ("/sys/devices/system/cpu",)  # CPU counts for BLAS and TensorFlow's thread pools
KNOWN_DATASETS = (Path("/usr/share/datasets"),)  # Debian's dataset-* packages: labels included


class SandboxUnavailable(Exception):
    pass


class View(str, Enum):
    """Which Python the process gets."""

    KERNEL = "kernel"  # site-packages, and of the grader only what runs in a student's kernel
    TRUSTED = "trusted"  # site-packages and the whole grader package (never reference/)
    NUMPY = "numpy"  # the standard library and numpy, nothing else of site-packages


@functools.lru_cache(maxsize=1)
def bwrap_path() -> str | None:
    """The bwrap binary, if it exists and can create the namespaces we need here."""
    path = shutil.which("bwrap")
    if not path:
        return None
    try:
        probe = subprocess.run([path, "--ro-bind", "/", "/", "--unshare-all", "--cap-drop", "ALL",
                                "--die-with-parent", "true"], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return path if probe.returncode == 0 else None


@functools.lru_cache(maxsize=None)
def bwrap_supports(option: str) -> bool:
    """Whether this bwrap knows `option` (--size came in 0.5, --disable-userns in 0.8)."""
    try:
        text = subprocess.run([bwrap_path() or "bwrap", "--help"], capture_output=True,
                              text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return f"{option} " in text.stdout + text.stderr


def resolve(mode: str) -> str:
    """'auto' → 'bwrap' when it works, else 'none'; an explicit 'bwrap' must work."""
    if mode not in MODES:
        raise ValueError(f"unknown sandbox {mode!r} (choose from {', '.join(MODES)})")
    if mode == "none":
        return "none"
    if bwrap_path():
        return "bwrap"
    if mode == "bwrap":
        raise SandboxUnavailable("bwrap is not installed or cannot create namespaces here "
                                 "(apt-get install bubblewrap; user namespaces must be enabled)")
    return "none"


@dataclass
class Mounts:
    """What a confined process may see besides the system and its `view` of Python."""

    writable: list[Path] = field(default_factory=list)  # host folders it writes, the grader reads
    readable: list[Path] = field(default_factory=list)  # files and folders it must read
    hidden: list[Path] = field(default_factory=list)  # blanked wherever they would be visible
    private: list[Path] = field(default_factory=list)  # its own folders: size-capped tmpfs inside
    view: View = View.KERNEL


@dataclass(frozen=True)
class Op:
    """One bwrap mount: bind (ro/rw), tmpfs, hide (an empty read-only tmpfs), symlink."""

    kind: str
    dest: str
    source: str = ""

    @property
    def order(self) -> tuple:
        # Parents before children; at the same place a bind comes first, so a hide wins.
        rank = {"symlink": 0, "proc": 0, "dev": 0, "ro": 1, "rw": 1, "tmpfs": 2, "hide": 3}
        return (tuple(Path(self.dest).parts), rank[self.kind])


# --- what Python needs ----------------------------------------------------------------------------

def _real(path: Path | str) -> Path:
    return Path(os.path.realpath(path))


def _site_dirs() -> list[Path]:
    dirs = [sysconfig.get_paths()[k] for k in ("purelib", "platlib")]
    try:
        dirs += site.getsitepackages()
    except AttributeError:  # an old virtualenv's site module
        pass
    if site.ENABLE_USER_SITE and os.path.isdir(site.getusersitepackages()):
        dirs.append(site.getusersitepackages())
    return [_real(d) for d in dict.fromkeys(dirs) if os.path.isdir(d)]


def _is_a_checkout(folder: Path) -> bool:
    """A copy of this project: its reference/ and assignments/ must never be bound whole."""
    return (folder / "grader").is_dir() or (folder / "reference").is_dir()


def _pth_dirs() -> list[Path]:
    """Folders .pth files add to sys.path (a `pip install -e` of another package, say)."""
    found = []
    for site_dir in _site_dirs():
        for pth in sorted(site_dir.glob("*.pth")):
            try:
                lines = pth.read_text(errors="replace").splitlines()
            except OSError:
                continue
            for line in lines:
                line = line.strip()
                if not line or line.startswith(("#", "import ", "import\t")):
                    continue
                folder = _real(site_dir / line)
                if folder.is_dir() and not _is_a_checkout(folder):
                    found.append(folder)
    return found


def _numpy_dirs() -> list[Path]:
    spec = importlib.util.find_spec("numpy")
    if spec is None or not spec.submodule_search_locations:
        return []
    folder = _real(list(spec.submodule_search_locations)[0])
    return [p for p in (folder, folder.with_name("numpy.libs")) if p.exists()]


def python_view(view: View) -> tuple[list[Path], list[Path]]:
    """(readable, hidden) for a view: the interpreter's prefixes, its site-packages and the
    grader files it runs; for NUMPY, site-packages hidden except numpy."""
    readable = [_real(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix,
                                   sys.base_exec_prefix)]
    readable.append(_real(sys.executable))
    readable += [_real(sysconfig.get_paths()[k]) for k in ("stdlib", "platstdlib")]
    # An install into site-packages (not editable) puts the whole grader there: only the
    # kernel's files are shown again inside.
    hidden: list[Path] = [] if view is View.TRUSTED else [GRADER_PACKAGE]
    if view is View.NUMPY:
        hidden += _site_dirs()
        readable += _numpy_dirs()
    else:
        readable += _site_dirs() + _pth_dirs()
        if view is View.TRUSTED:
            readable.append(GRADER_PACKAGE)
        else:
            readable += [GRADER_PACKAGE / name for name in KERNEL_FILES
                         if (GRADER_PACKAGE / name).exists()]
    return readable, hidden


# --- the mount plan -------------------------------------------------------------------------------

def _system_ops() -> list[Op]:
    ops = [Op("proc", "/proc"), Op("dev", "/dev")]
    for name in (*SYSTEM, *(f"/etc/{e}" for e in ETC), *SYSFS):
        if os.path.islink(name):
            ops.append(Op("symlink", name, os.readlink(name)))
        elif os.path.exists(name):
            ops.append(Op("ro", name, str(_real(name))))
    return ops


def _under(path: Path | str, folder: Path | str) -> bool:
    # On the strings: the plan compares every bind with every other, four plans a grading, and
    # Path.parents built thousands of Path objects each time. Both are absolute and normalised.
    path, folder = str(path), str(folder)
    return path == folder or folder == "/" or path.startswith(folder + "/")


def _bind_ops(kind: str, paths: list[Path], system: list[Path]) -> list[Op]:
    """A bind at the real path and, when a symlink leads there, at the path as given too (a
    dataset folder or KERAS_HOME reached through a link must work both ways)."""
    ops = []
    for path in paths:
        if not os.path.lexists(path):
            continue
        real = _real(path)
        ops.append(Op(kind, str(real), str(real)))
        given = Path(os.path.abspath(path))
        if given != real and not any(_under(given, s) for s in system):
            ops.append(Op(kind, str(given), str(real)))
    return ops


def _hide_ops(hidden: list[Path], binds: list[Op]) -> list[Op]:
    """Each hidden path at every place a bind would show it."""
    ops = []
    for path in hidden:
        if not os.path.lexists(path):
            continue
        real = _real(path)
        for bind in binds:
            source = Path(bind.source)
            if _under(real, source) and real != Path("/"):
                dest = Path(bind.dest) / real.relative_to(source)
                ops.append(Op("hide", str(dest), "dir" if real.is_dir() else "file"))
    return ops


def plan(mounts: Mounts, extra_readable: dict[str, Path] | None = None) -> list[Op]:
    """Every mount of the sandbox, parents before children."""
    ops = _system_ops()
    system = [Path(op.dest) for op in ops if op.kind in ("ro", "symlink")]
    view_readable, view_hidden = python_view(mounts.view)
    ops += [Op("tmpfs", "/tmp"), Op("tmpfs", "/dev/shm")]
    ops += _bind_ops("ro", [*view_readable, *mounts.readable], system)
    ops += [Op("ro", dest, str(_real(src))) for dest, src in (extra_readable or {}).items()]
    ops += _bind_ops("rw", mounts.writable, system)
    ops += [Op("tmpfs", str(Path(os.path.abspath(p)))) for p in mounts.private]
    binds = [op for op in ops if op.kind in ("ro", "rw")]
    ops += _hide_ops([*KNOWN_DATASETS, *view_hidden, *mounts.hidden], binds)
    return sorted(_prune(ops), key=lambda op: op.order)


def _prune(ops: list[Op]) -> list[Op]:
    """Drop a bind that an enclosing bind of the same kind already shows at the same place,
    unless something between them (a hidden folder, a tmpfs) covers it."""
    binds = [op for op in ops if op.kind in ("ro", "rw")]
    covers = [op.dest for op in ops if op.kind in ("hide", "tmpfs")]

    def redundant(op: Op) -> bool:
        if any(_under(op.dest, c) for c in covers):
            return False
        for outer in binds:
            if outer is op or outer.kind != op.kind or outer.dest == op.dest:
                continue
            if _under(op.source, outer.source) and \
                    op.dest == _moved(op.source, outer.source, outer.dest):
                return True
        return False

    return [op for op in dict.fromkeys(ops) if op.kind not in ("ro", "rw") or not redundant(op)]


def _moved(path: str, folder: str, dest: str) -> str:
    """Where `path`, inside `folder`, appears when `folder` is shown at `dest`."""
    return str(Path(dest) / path[len(folder):].lstrip("/"))


def wrap(command: list[str], mounts: Mounts, cwd: Path, *, tmpfs_bytes: int = 1024 * 2**20,
         source_map: Callable[[str], str] | None = None, info_fd: str | None = None,
         extra_readable: dict[str, Path] | None = None) -> list[str]:
    """The bwrap command line that runs `command` in `cwd` with this plan.

    `tmpfs_bytes` sizes every writable tmpfs (/tmp, /dev/shm, the private folders);
    `source_map` turns a host path into the one bwrap should bind from (confine.py stages
    sources where an unprivileged uid can reach them)."""
    source_map = source_map or (lambda s: s)
    args = [bwrap_path() or "bwrap", "--unshare-user", "--unshare-all", "--cap-drop", "ALL",
            "--die-with-parent", "--new-session"]
    if bwrap_supports("--disable-userns"):  # no user namespace of its own inside
        args.append("--disable-userns")
    size = (lambda n: ["--size", str(n)]) if bwrap_supports("--size") else (lambda n: [])
    if info_fd is not None:
        args += ["--info-fd", info_fd]
    read_only_at_end = ["/"]  # bwrap's own root is a tmpfs: nothing may be written there
    for op in plan(mounts, extra_readable):
        if op.kind == "proc":
            args += ["--proc", op.dest]
        elif op.kind == "dev":
            args += ["--dev", op.dest]
        elif op.kind == "symlink":
            args += ["--symlink", op.source, op.dest]
        elif op.kind in ("ro", "rw"):
            args += ["--ro-bind" if op.kind == "ro" else "--bind", source_map(op.source), op.dest]
        elif op.kind == "tmpfs":
            args += [*size(tmpfs_bytes), "--tmpfs", op.dest]
        elif op.source == "dir":  # hide a folder: an empty tmpfs, made read-only below
            args += [*size(4096), "--tmpfs", op.dest]
            read_only_at_end.append(op.dest)
        else:  # hide a file
            args += ["--ro-bind", "/dev/null", op.dest]
    for dest in read_only_at_end:
        args += ["--remount-ro", dest]
    args += ["--chdir", str(cwd), "--"]
    return args + command
