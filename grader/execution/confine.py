"""One place that starts every untrusted or sandboxed process with its limits: the student's
kernel, the trusted measuring process (it loads student-made files) and the numpy clean room.

Callers say what the process may see (`sandbox.Mounts`) and how much it may use (`Limits`);
`Confinement` picks the mechanisms this machine offers and records which held each cap:

- memory: a cgroup's memory cap (tmpfs pages included) and RLIMIT_AS (a MemoryError in the cell);
- processes: the cgroup's pids.max, and RLIMIT_NPROC of an unprivileged uid of the tree's own
  when the grader is root (grader/execution/uids.py);
- disk and files: every tmpfs bubblewrap makes is size-capped, and a watchdog thread measures
  all the process may write (those tmpfs, seen through /proc/PID/root, and the host folders it
  writes, which the grader reads back) and stops it past the cap; RLIMIT_FSIZE per file;
- the end: the cgroup is killed, bwrap's pid namespace dies with its init, the launcher
  (grader/execution/launch.py, a child subreaper) kills every descendant, and every process of
  the tree's uid is killed, whatever the tree did to its session or environment.

`command(argv)` gives the argv to run (the launcher, which joins the cgroup, drops to the uid,
sets the rlimits and execs bwrap or the bare process); `poll()` says which caps were reached
since the last call; `close()` kills what is left and frees the cgroup and the uid.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from . import cgroups, processes, sandbox, uids
from .limits import Enforcement, Limit, LimitHit, Limits

LAUNCHER = Path(__file__).resolve().with_name("launch.py")
# The grader's own interpreter, taken once: the launcher runs before the confined process and
# must not depend on the interpreter the process itself is given.
LAUNCHER_PYTHON = os.path.realpath(sys.executable)
STAGE_BASES = (Path("/run/dl-grader/stage"), Path("/tmp/dl-grader-stage"))
WATCH_SECONDS = 0.25

ENABLE = {
    "cgroup": "run the grader as root, or in a delegated cgroup v2 scope "
              "(systemd-run --user --scope -p Delegate=yes grader ...)",
    "uid": "run the grader as root (e.g. with sudo): each process tree then gets an "
           "unprivileged uid of its own",
    "userns": "let unprivileged users create user namespaces (Ubuntu 24.04 and GitHub "
              "runners: sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0)",
    "bwrap": "install bubblewrap (apt-get install bubblewrap) and let it create user "
             "namespaces (Ubuntu 24.04 and GitHub runners: sudo sysctl -w "
             "kernel.apparmor_restrict_unprivileged_userns=0)",
}

_LIVE: set["Confinement"] = set()
_LIVE_LOCK = threading.Lock()


class Confinement:
    """The limits of one process tree, from its start to its last process."""

    def __init__(self, mounts: sandbox.Mounts, cwd: Path, limits: Limits, *, sandboxed: bool,
                 label: str, logs: tuple[Path, ...] = ()) -> None:
        self.mounts, self.cwd, self.limits = mounts, cwd, limits
        self.sandboxed, self.label, self.logs = sandboxed, label, logs
        self.enforcement = Enforcement(limits)
        self.state = Path(tempfile.mkdtemp(prefix=f"grader-{label}-limits-"))
        self.tmpfs_bytes = limits.disk_mb * 2**20
        self.cgroup: cgroups.Cgroup | None = None
        self.lease: uids.UidLease | None = None
        self.stage: Path | None = None  # where the launcher stages bind sources for the uid
        self._stage_spec: dict | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._watchdog: threading.Thread | None = None
        self._disk_lock = threading.Lock()
        self.ended = False  # the grader ended the tree for a reached cap (stop())
        self._hits: list[LimitHit] = []
        self._polled = 0
        self._events = {"oom": 0, "pids": 0}
        self._closed = False
        with _LIVE_LOCK:
            _LIVE.add(self)
        try:
            self._set_up()
        except BaseException:
            self.close()
            raise

    # --- set-up -------------------------------------------------------------------------------

    def _set_up(self) -> None:
        e, limits = self.enforcement, self.limits
        self.cgroup, why = cgroups.create(self.label, limits.memory_mb * 2**20, limits.processes)
        if self.cgroup is not None:
            v = self.cgroup.version
            if "memory" in self.cgroup.dirs:
                e.hold("memory", f"cgroup v{v} memory (tmpfs pages included)")
            if "pids" in self.cgroup.dirs:
                e.hold("processes", f"cgroup v{v} pids.max")
            e.hold("cleanup", f"cgroup v{v}")
        for controller in ("memory", "pids"):
            if self.cgroup is None or controller not in self.cgroup.dirs:
                e.lack(f"cgroup {controller}", why.get(controller, "no cgroup"), ENABLE["cgroup"])
        e.hold("memory", "address space (RLIMIT_AS)")
        e.hold("file_size", "RLIMIT_FSIZE")
        self._pick_user()
        if self.sandboxed:
            if sandbox.bwrap_supports("--size"):
                e.hold("disk", "size-capped tmpfs for /tmp, /dev/shm and its own folders")
            else:
                e.lack("size-capped tmpfs", "this bwrap has no --size (0.5 or later has); the "
                       "watchdog alone caps the tmpfs", ENABLE["bwrap"])
            e.hold("cleanup", "pid namespace")
        elif self._private_shm():
            e.hold("disk", "a private size-capped /dev/shm")
        e.hold("disk", "watchdog of everything it may write")
        e.hold("files", "watchdog of everything it may write")
        e.hold("cleanup", "subreaper (the launcher)")
        if not self.sandboxed:
            e.lack("sandbox", "without bubblewrap the process may write wherever the grader's "
                   "user may, outside the folders the watchdog measures", ENABLE["bwrap"])

    def _pick_user(self) -> None:
        e = self.enforcement
        if os.geteuid() != 0:  # the tree already runs as an unprivileged user
            e.hold("user", f"the grader's own user (uid {os.getuid()})")
            e.hold("processes", "RLIMIT_NPROC (the user's running processes + the limit)")
            return
        why_not = uids.available()
        if why_not is not None:
            e.lack("unprivileged uid", why_not, ENABLE["uid"])
            e.lack("RLIMIT_NPROC", "it does not apply to root", ENABLE["uid"])
            return
        if not self.sandboxed:
            e.lack("unprivileged uid", "without bubblewrap the process runs as root: an "
                   "unprivileged uid could not reach the interpreter, the project and the data "
                   "the grader gives it", ENABLE["bwrap"])
            e.lack("RLIMIT_NPROC", "it does not apply to root", ENABLE["bwrap"])
            return
        self.lease = uids.lease()
        problem = "no uid of the grader's range is free" if self.lease is None else \
            _bwrap_as_unprivileged(self.lease.uid)
        if problem is None:
            e.hold("user", f"unprivileged uid {self.lease.uid}")
            e.hold("processes", f"RLIMIT_NPROC of uid {self.lease.uid}")
            e.hold("cleanup", f"every process of uid {self.lease.uid}")
            return
        if self.lease is not None:
            self.lease.release()
            self.lease = None
        e.lack("unprivileged uid", problem, ENABLE["userns"])
        e.lack("RLIMIT_NPROC", "it does not apply to root", ENABLE["userns"])

    def _private_shm(self) -> bool:
        return not self.sandboxed and os.geteuid() == 0 and _can_unshare_mounts()

    # --- the command --------------------------------------------------------------------------

    def command(self, argv: list[str]) -> list[str]:
        """The argv that starts `argv` confined; call once, then run it."""
        inner = self._inner(argv)  # sets the stage, if any
        spec = {"argv": inner, "parent": os.getpid(),
                "cgroup_procs": self.cgroup.procs_files() if self.cgroup else [],
                "uid": self.lease.uid if self.lease else None,
                "gid": self.lease.gid if self.lease else None,
                "chown": [str(p) for p in self.mounts.writable] if self.lease else [],
                "rlimits": self._rlimits(), "info": str(self.state / "launched.json"),
                "bwrap_info": self.sandboxed, "stage": self._stage_spec}
        if self.lease is None and os.geteuid() != 0:
            spec["nproc_above_current"] = self.limits.processes
        if self._private_shm():
            spec["private_shm"] = {"bytes": self.tmpfs_bytes, "inodes": self.limits.files}
        path = self.state / "launch.json"
        path.write_text(json.dumps(spec))
        self._start_watchdog()
        return [LAUNCHER_PYTHON, "-I", "-S", str(LAUNCHER), str(path)]

    def _inner(self, argv: list[str]) -> list[str]:
        if not self.sandboxed:
            return argv
        extra = self._identity_files()
        source_map = None
        if self.lease is not None:  # stage every source where the uid can reach it
            source_map = self._stage(sandbox.plan(self.mounts, extra))
        return sandbox.wrap(argv, self.mounts, self.cwd, tmpfs_bytes=self.tmpfs_bytes,
                            source_map=source_map, info_fd="@INFO_FD@", extra_readable=extra)

    def _identity_files(self) -> dict[str, Path]:
        """/etc/passwd and /etc/group naming only root and the tree's own user."""
        uid = self.lease.uid if self.lease else os.getuid()
        gid = self.lease.gid if self.lease else os.getgid()
        home = next((str(p) for p in self.mounts.private), str(self.cwd))
        passwd, group = self.state / "passwd", self.state / "group"
        passwd.write_text(f"root:x:0:0:root:/root:/usr/sbin/nologin\n"
                          f"student:x:{uid}:{gid}:student:{home}:/bin/sh\n")
        group.write_text(f"root:x:0:\nstudent:x:{gid}:\n")
        for path in (passwd, group):
            path.chmod(0o644)
        return {"/etc/passwd": passwd, "/etc/group": group}

    def _stage(self, ops: list[sandbox.Op]) -> dict[str, str]:
        sources = list(dict.fromkeys(op.source for op in ops if op.kind in ("ro", "rw")))
        self.stage = _new_stage_dir()
        binds, mapping = [], {"/dev/null": "/dev/null"}
        for i, source in enumerate(sources):
            binds.append({"source": source, "name": str(i), "dir": os.path.isdir(source)})
            mapping[source] = str(self.stage / str(i))
        self._stage_spec = {"dir": str(self.stage), "binds": binds}
        return mapping.__getitem__

    def _rlimits(self) -> dict[str, int | None]:
        limits = self.limits
        return {"AS": limits.memory_mb * 2**20, "FSIZE": limits.file_mb * 2**20, "CORE": 0,
                "CPU": limits.cpu_seconds,
                "NPROC": limits.processes if self.lease is not None else None}

    # --- while it runs ------------------------------------------------------------------------

    def _launched(self) -> dict:
        try:
            return json.loads((self.state / "launched.json").read_text())
        except (OSError, ValueError):
            return {}

    def _start_watchdog(self) -> None:
        self._watchdog = threading.Thread(target=self._watch, name=f"limits-{self.label}",
                                          daemon=True)
        self._watchdog.start()

    def _watch(self) -> None:
        while not self._done.wait(WATCH_SECONDS):
            if self._enforce_disk():
                return

    def _enforce_disk(self) -> bool:
        """One look at the disk and file caps; a reached one is recorded once and ends the tree.
        The watchdog looks every WATCH_SECONDS, and poll() once more: a cell that fills a tmpfs
        gets ENOSPC and ends in milliseconds, before the next tick."""
        with self._disk_lock:
            if self.ended or self._closed:
                return self.ended
            hit = self._disk_check()
            if hit is None:
                return False
            self.stop(hit)
            return True

    def _disk_check(self) -> LimitHit | None:
        cap_bytes, cap_files = self.limits.disk_mb * 2**20, self.limits.files
        used, files = 0, 0
        hosts = [*self.mounts.writable, *self.logs]
        if not self.sandboxed:
            hosts += self.mounts.private
        for path in hosts:
            b, f = _usage(path, cap_bytes - used, cap_files - files)
            used, files = used + b, files + f
        if self.sandboxed:
            root = self._launched().get("sandbox_pid")
            for dest in ("/tmp", "/dev/shm", *map(str, self.mounts.private)):
                try:
                    b, f = _tmpfs_usage(root, dest, self.tmpfs_bytes)
                except PermissionError:  # not root, and the kernel denies us its /proc/PID/root
                    self.enforcement.lack("watchdog of the sandbox's tmpfs", "the grader may not "
                                          "look into the sandbox (/proc/PID/root): only each "
                                          "tmpfs's own size holds, no file count", ENABLE["uid"])
                    continue
                used, files = used + b, files + f
        # >=, not >: a tmpfs sized at the cap refuses the write that would pass it (ENOSPC), so
        # a full one is exactly at the cap, and that is the cap reached.
        if used >= cap_bytes:
            return LimitHit(Limit.DISK, self.limits.describe(Limit.DISK), stopped=True,
                            detail=f"{-(-used // 2**20):,} MB written")
        if files > cap_files:
            return LimitHit(Limit.FILES, self.limits.describe(Limit.FILES), stopped=True,
                            detail=f"{files:,} files and folders made")
        return None

    def stop(self, hit: LimitHit) -> None:
        """Record a reached cap and end the whole tree."""
        self.ended = True  # before the hit shows: whoever polls it knows the tree is gone
        with self._lock:
            self._hits.append(hit)
        self.kill()

    def kill(self) -> None:
        """Kill every process of the tree, by every mechanism in force."""
        if self.cgroup is not None:
            self.cgroup.kill()
        launcher = self._launched().get("launcher")
        # Only our own child: a launcher long gone may have left its pid to someone else.
        if launcher and processes.parents().get(int(launcher)) == os.getpid():
            processes.kill_tree(int(launcher))
        if self.lease is not None:
            uids.kill_uid(self.lease.uid)

    def poll(self) -> list[LimitHit]:
        """Caps reached since the last call (cgroup events, the disk caps as they are now and
        the watchdog's verdicts)."""
        self._read_events()
        if self._watchdog is not None:
            self._enforce_disk()
        with self._lock:
            new = self._hits[self._polled:]
            self._polled = len(self._hits)
        return new

    def refused_allocation(self) -> None:
        """The tree's Python raised MemoryError: RLIMIT_AS refused an allocation, and met the
        memory cap before the cgroup did (a kernel with numpy holds ~700 MB of address space
        before it allocates anything, so with a small cap either may be first). The process
        lives on; the cap is reported like the cgroup's."""
        with self._lock:
            self._hits.append(LimitHit(Limit.MEMORY, self.limits.describe(Limit.MEMORY),
                                       detail="an allocation was refused (MemoryError, "
                                              "address space)"))

    def _read_events(self) -> None:
        if self.cgroup is None:
            return
        oom, refused = self.cgroup.oom_kills(), self.cgroup.pids_refused()
        hits = []
        if oom > self._events["oom"]:
            peak = self.cgroup.memory_peak_mb()
            hits.append(LimitHit(Limit.MEMORY, self.limits.describe(Limit.MEMORY), stopped=True,
                                 detail=f"peak {peak:,} MB" if peak else ""))
        if refused > self._events["pids"]:
            hits.append(LimitHit(Limit.PROCESSES, self.limits.describe(Limit.PROCESSES),
                                 detail=f"{refused - self._events['pids']:,} refused"))
        self._events = {"oom": oom, "pids": refused}
        with self._lock:
            self._hits += hits

    @property
    def hits(self) -> list[LimitHit]:
        with self._lock:
            return list(self._hits)

    # --- the end ------------------------------------------------------------------------------

    def close(self) -> Enforcement:
        """Kill what is left, record the caps reached, free the cgroup, the uid and the stage."""
        if self._closed:
            return self.enforcement
        self._closed = True
        self._done.set()
        if self._watchdog is not None and self._watchdog is not threading.current_thread():
            self._watchdog.join(timeout=5)
        try:
            self.kill()
            self._read_events()
        finally:
            if self.cgroup is not None:
                self.cgroup.remove()
            if self.lease is not None:
                self.lease.release()
            if self.stage is not None:
                _remove_stage_dir(self.stage)
            shutil.rmtree(self.state, ignore_errors=True)
            with _LIVE_LOCK:
                _LIVE.discard(self)
        self.enforcement.hits = self.hits
        return self.enforcement


def close_all() -> None:
    """Every live confinement of this process: for a grader told to stop (SIGTERM)."""
    with _LIVE_LOCK:
        live = list(_LIVE)
    for confinement in live:
        confinement.close()


def sweep_leftovers() -> int:
    """Trees of graders that died without closing them: cgroups whose owner is gone, and
    processes of uids whose lock nobody holds. Returns how many were swept."""
    return cgroups.sweep_stale() + uids.sweep_unowned()


# --- measuring ------------------------------------------------------------------------------------

def _usage(path: Path, bytes_left: int, files_left: int) -> tuple[int, int]:
    """Disk blocks and entries under `path`, counting no further than the caps."""
    used, files = 0, 0
    stack = [str(path)]
    try:
        st = os.lstat(path)
    except OSError:
        return 0, 0
    if not os.path.isdir(path) or os.path.islink(path):
        return st.st_blocks * 512, 1
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            files += 1
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    used += entry.stat(follow_symlinks=False).st_blocks * 512
            except OSError:
                continue
            if used > bytes_left or files > files_left:
                return used, files
    return used, files


def _tmpfs_usage(root_pid: int | None, dest: str, size: int) -> tuple[int, int]:
    """Bytes and inodes used in one of the sandbox's tmpfs, seen from outside. Only a tmpfs of
    exactly the size bwrap was given counts: before bwrap has mounted it, that path is the
    host's."""
    if not root_pid:
        return 0, 0
    try:
        st = os.statvfs(f"/proc/{root_pid}/root{dest}")
    except PermissionError:
        raise
    except OSError:  # the sandbox has ended
        return 0, 0
    page = os.sysconf("SC_PAGE_SIZE")
    if sandbox.bwrap_supports("--size"):
        if st.f_blocks * st.f_frsize != -(-size // page) * page:
            return 0, 0
    elif not _tmpfs_mounted(root_pid, dest):
        return 0, 0
    return (st.f_blocks - st.f_bfree) * st.f_frsize, max(0, st.f_files - st.f_ffree - 1)


def _tmpfs_mounted(pid: int, dest: str) -> bool:
    """A tmpfs at `dest` as the sandbox's own processes see it (after bwrap's pivot_root)."""
    try:
        lines = Path(f"/proc/{pid}/mountinfo").read_text().splitlines()
    except OSError:
        return False
    for line in lines:
        left, _, right = line.partition(" - ")
        fields = left.split()
        if len(fields) > 4 and fields[4] == dest and right.startswith("tmpfs "):
            return True
    return False


# --- what this machine offers, probed once --------------------------------------------------------

_UNPRIVILEGED_BWRAP: list[str | None] = []  # the probe's answer, once per grader process


def _bwrap_as_unprivileged(uid: int) -> str | None:
    """None when bwrap starts as an unprivileged uid here, else bwrap's words."""
    if not _UNPRIVILEGED_BWRAP:
        _UNPRIVILEGED_BWRAP.append(_probe_bwrap(uid))
    return _UNPRIVILEGED_BWRAP[0]


def _probe_bwrap(uid: int) -> str | None:
    bwrap = sandbox.bwrap_path() or "bwrap"
    args = [bwrap, "--unshare-user", "--unshare-all", "--ro-bind", "/usr", "/usr",
            "--proc", "/proc", "--dev", "/dev", "--", "/usr/bin/true"]
    for name in ("/bin", "/lib", "/lib64"):
        if os.path.islink(name):
            args[-2:-2] = ["--symlink", os.readlink(name), name]
        elif os.path.isdir(name):
            args[-2:-2] = ["--ro-bind", name, name]
    try:
        probe = subprocess.run(args, capture_output=True, timeout=20, user=uid, group=uid,
                               extra_groups=[], cwd="/")
    except (OSError, subprocess.SubprocessError) as exc:
        return f"bwrap could not run as uid {uid}: {exc}"
    if probe.returncode == 0:
        return None
    words = probe.stderr.decode(errors="replace").strip().splitlines()
    return ("bwrap cannot create a user namespace as an unprivileged user here ("
            + (words[-1] if words else f"exit {probe.returncode}") + ")")


@functools.lru_cache(maxsize=1)
def _can_unshare_mounts() -> bool:
    code = ("import ctypes,sys;l=ctypes.CDLL(None,use_errno=True);"
            "sys.exit(0 if l.unshare(0x00020000)==0 else 1)")
    try:
        return subprocess.run([LAUNCHER_PYTHON, "-I", "-S", "-c", code], timeout=20,
                              capture_output=True).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _new_stage_dir() -> Path:
    """An empty folder the launcher mounts its staging tmpfs on, reachable by any uid."""
    for base in STAGE_BASES:
        try:
            base.mkdir(parents=True, exist_ok=True)
            for folder in (base, *base.parents):
                if folder.stat().st_mode & 0o001 == 0:
                    raise PermissionError(f"{folder} is not reachable by other users")
            _remove_stale_stages(base)
            stage = base / f"{os.getpid()}-{secrets.token_hex(8)}"
            stage.mkdir(mode=0o755)
            stage.chmod(0o755)
            return stage
        except OSError:
            continue
    raise OSError("no folder for staging the sandbox's sources (/run/dl-grader or /tmp)")


def _remove_stale_stages(base: Path) -> None:
    """The empty folders of graders that died before removing theirs."""
    for folder in base.iterdir():
        owner = folder.name.split("-", 1)[0]
        if owner.isdigit() and not processes.alive(int(owner)):
            _remove_stage_dir(folder)


def _remove_stage_dir(stage: Path) -> None:
    try:
        stage.rmdir()
    except OSError:
        pass
