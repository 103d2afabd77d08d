"""Benchmark: where the CPU of a grading goes, process by process.

Run by hand:  python3 bench/grader_cpu.py [--runs 1] -- COMMAND ...
e.g.          python3 bench/grader_cpu.py -- python3 -m grader.cli check NOTEBOOK -a fashion-mlp
              python3 bench/grader_cpu.py -- python3 bench/batch_throughput.py --count 12 --jobs 2

Runs COMMAND and, every 50 ms while it runs, reads the CPU time (user + system) of every process
on the machine that was not there before it started. Each process is put in a role by its
command line: the student's kernel, the trusted measuring process, a Keras or numpy clean room,
a batch's per-student worker, the CLI, the confinement's launcher and bubblewrap. It prints each
role's CPU seconds (per run with --runs), the wall time, and the CPU the whole machine spent
meanwhile (/proc/stat) with its share of the cores: the difference from the roles' sum is
what ran between two samples or outside the command. The sampling itself costs CPU (its own
line says how much), which slows the command a little: compare runs of this bench with each
other, and take wall times from the benchmark tool. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import collections
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
SAMPLE_SECONDS = 0.05
# First match wins: a command line holds the module or script each role runs.
ROLES = (("kernel", "grader.kernel.boot"), ("measuring process", "grader.measure.worker"),
         ("keras clean room", "keras_harness"), ("numpy clean room", "numpy_harness"),
         ("batch worker", "grader.batch.worker"), ("cli", "grader.cli"),
         ("launcher", "execution/launch.py"), ("bubblewrap", "bwrap"))


def role(command: str) -> str:
    for name, marker in ROLES:
        if marker in command:
            return name
    return "other: " + (Path(command.split(" ", 1)[0]).name or "?")


def _processes() -> dict[int, tuple[float, str, int]]:
    """pid → (CPU seconds, command line, start time in ticks) of every process readable now."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            command = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        found[int(entry)] = ((int(fields[11]) + int(fields[12])) / TICKS,
                             command.decode(errors="replace").strip(), int(fields[19]))
    return found


def machine_cpu() -> tuple[float, float]:
    """Busy and total CPU seconds of every core since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    busy = values[0] + values[1] + values[2] + values[5] + values[6]
    return busy / TICKS, sum(values[:8]) / TICKS


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(command: list[str]) -> tuple[float, dict[str, float], float, float]:
    """Wall seconds, CPU seconds per role (this sampling's own included), and the machine's busy
    and total CPU seconds."""
    before = {pid: started for pid, (_, _, started) in _processes().items()}
    busy0, total0 = machine_cpu()
    seen: dict[int, tuple[float, str]] = {}
    own, started = _own_cpu(), time.monotonic()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while proc.poll() is None:
        for pid, (cpu, line, start) in _processes().items():
            if before.get(pid) == start:
                continue  # there before the command: not its
            # An exiting process's command line reads empty: keep the one seen before.
            seen[pid] = (cpu, line or seen.get(pid, (0.0, ""))[1])
        time.sleep(SAMPLE_SECONDS)
    wall = time.monotonic() - started
    busy1, total1 = machine_cpu()
    roles: dict[str, float] = collections.defaultdict(float)
    for cpu, line in seen.values():
        roles[role(line)] += cpu
    roles["(this sampling)"] = _own_cpu() - own
    return wall, dict(roles), busy1 - busy0, total1 - total0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND ...")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to measure after --")
    runs = [measure(command) for _ in range(args.runs)]
    names = sorted({name for _, roles, _, _ in runs for name in roles},
                   key=lambda n: -statistics.median(r[1].get(n, 0.0) for r in runs))
    print(f"{' '.join(command)}\n{args.runs} run(s); CPU seconds by role, per run:")
    for name in names:
        values = [r[1].get(name, 0.0) for r in runs]
        if max(values) >= 0.01:
            print(f"  {name:<20} " + "  ".join(f"{v:7.2f}" for v in values))
    print(f"  {'sum of the roles':<20} " + "  ".join(f"{sum(r[1].values()):7.2f}" for r in runs))
    print(f"  {'wall seconds':<20} " + "  ".join(f"{r[0]:7.2f}" for r in runs))
    print(f"  {'machine busy':<20} " + "  ".join(f"{r[2]:7.2f}" for r in runs)
          + "   (share of the cores: " + ", ".join(f"{r[2] / r[3]:.0%}" for r in runs) + ")")


if __name__ == "__main__":
    sys.exit(main())
