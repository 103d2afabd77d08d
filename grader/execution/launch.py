"""The launcher of every confined process: `python -I -S launch.py SPEC.json`.

Standard library only, run as a script (not `-m`): it runs before anything of the confined
process and must not import from folders that process could write (it loads processes.py, the
grader's one module for finding and killing processes, from beside itself). grader/execution/confine.py
writes SPEC.json (the command, the cgroups, the uid, the rlimits, the folders to stage). In order:

1. write its own pid into each cgroup's `cgroup.procs`: everything it starts inherits them;
2. become a child subreaper: orphans of the tree (double fork, setsid, nohup, an emptied
   environment) are re-parented here, never to init, so the tree can be found by parent links;
3. fork; the child, still privileged, stages bind sources in a private mount namespace (so an
   unprivileged uid can reach a Python under /root 0700), chowns the folders the tree may write,
   sets the rlimits, drops to the tree's uid and execs the command (bwrap, or the bare process);
4. supervise: reap orphans, and when the command ends (or the grader dies) kill every process
   left below this one before exiting with the command's status.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import os
import resource
import select
import signal
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
CLONE_NEWNS = 0x00020000
MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_PRIVATE = 2, 4, 4096, 16384, 1 << 18
INFO_FD = "@INFO_FD@"  # in the command: replaced by the descriptor bwrap writes --info-fd to

_libc = ctypes.CDLL(None, use_errno=True)


def _load_processes():  # noqa: ANN202 - a module
    """processes.py, the grader's one module for finding and killing processes, loaded from
    beside this file: `-I` keeps this folder off sys.path, and the grader's package must not
    be imported here."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "processes.py")
    spec = importlib.util.spec_from_file_location("grader_launch_processes", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


processes = _load_processes()


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _prctl(option: int, value: int) -> None:
    _check(_libc.prctl(option, value, 0, 0, 0), f"prctl({option})")


def _mount(source: str | None, target: str, fstype: str | None, flags: int,
           data: str | None = None) -> None:
    enc = (lambda s: s.encode() if s is not None else None)
    _check(_libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)),
           f"mount {source or fstype} on {target}")


# --- the child: set up, drop privileges, exec --------------------------------------------------

def _private_mounts(spec: dict) -> None:
    """A mount namespace of the launcher's child only; nothing here is seen by the host."""
    _check(_libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    stage = spec.get("stage")
    if stage:
        _mount("tmpfs", stage["dir"], "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m")
        for bind in stage["binds"]:
            target = os.path.join(stage["dir"], bind["name"])
            if bind["dir"]:
                os.mkdir(target, 0o755)
            else:
                os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o644))
            _mount(bind["source"], target, None, MS_BIND | MS_REC)
    shm = spec.get("private_shm")
    if shm:
        _mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV,
               f"mode=1777,size={shm['bytes']},nr_inodes={shm['inodes']}")


def _chown_tree(top: str, uid: int, gid: int) -> None:
    os.lchown(top, uid, gid)
    for folder, dirs, files in os.walk(top):
        for name in dirs + files:
            os.lchown(os.path.join(folder, name), uid, gid)


def _rlimits(spec: dict) -> None:
    for name, value in spec["rlimits"].items():
        if value is not None:
            resource.setrlimit(getattr(resource, f"RLIMIT_{name}"), (value, value))
    above = spec.get("nproc_above_current")
    if above is not None:  # same user as the grader: "what runs now + N" is the best we can say
        count = processes.count_with_real_uid(os.getuid()) + above
        resource.setrlimit(resource.RLIMIT_NPROC, (count, count))


def _executable(name: str) -> str:
    """The command's path, found while the interpreter's own files are still reachable (a
    PATH search after the uid drop would import a module from a folder it cannot read)."""
    if "/" in name:
        return name
    for folder in os.environ.get("PATH", os.defpath).split(os.pathsep):
        path = os.path.join(folder or ".", name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return name


def _child(spec: dict, launcher: int, info_w: int) -> None:
    try:
        argv = [a.replace(INFO_FD, str(info_w)) for a in spec["argv"]]
        argv[0] = _executable(argv[0])
        if spec.get("stage") or spec.get("private_shm"):
            _private_mounts(spec)
        uid, gid = spec.get("uid"), spec.get("gid")
        if uid is not None:
            for path in spec.get("chown", []):
                _chown_tree(path, uid, gid)
        _rlimits(spec)
        if uid is not None:
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # after setuid, which clears it
        if os.getppid() != launcher:
            os._exit(1)
        if info_w >= 0:
            os.set_inheritable(info_w, True)
        os.execv(argv[0], argv)
    except BaseException as exc:  # noqa: BLE001 - nothing may escape a forked child
        os.write(2, f"grader launcher: {exc}\n".encode(errors="replace"))
    os._exit(127)


# --- the launcher: supervise, then kill what is left -------------------------------------------

def _kill_everything_below() -> None:
    processes.kill_tree(os.getpid(), include_root=False, reap=True)


def _read_info(fd: int, timeout: float = 60.0) -> dict:
    data, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    try:
        return json.loads(data)
    except ValueError:
        return {}


def _write_info(path: str, info: dict) -> None:
    tmp = f"{path}.part"
    with open(tmp, "w") as fh:
        json.dump(info, fh)
    os.replace(tmp, path)


def main(argv: list[str]) -> int:
    with open(argv[0]) as fh:
        spec = json.load(fh)
    for procs in spec.get("cgroup_procs", []):
        with open(procs, "w") as fh:
            fh.write(str(os.getpid()))
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)  # the grader died: clean up below, then go
    if spec.get("parent") and os.getppid() != spec["parent"]:
        return 1
    info_r, info_w = os.pipe() if spec.get("bwrap_info") else (-1, -1)
    launcher = os.getpid()
    child = os.fork()
    if child == 0:
        if info_r >= 0:
            os.close(info_r)
        _child(spec, launcher, info_w)

    def stop(signum, frame) -> None:  # noqa: ANN001 - signal handler
        _kill_everything_below()
        os._exit(128 + signum)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # interrupts reach the kernel as messages
    info = {"launcher": launcher, "child": child, "sandbox_pid": child}
    if info_w >= 0:
        os.close(info_w)
        info["sandbox_pid"] = _read_info(info_r).get("child-pid", child)
        os.close(info_r)
    if spec.get("info"):
        _write_info(spec["info"], info)
    status = 0
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if pid == child:
            break
    _kill_everything_below()
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
