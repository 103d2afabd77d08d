"""The caps on one process tree (the student's kernel, the measuring process, the clean room),
what a reached cap looks like in a report, and which mechanisms held each cap.

The values come from `[execution]` in assignment.toml; grader/execution/confine.py enforces
them with whatever this machine offers and records here what held and what did not.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any


class Limit(str, Enum):
    MEMORY = "memory"
    PROCESSES = "processes"
    DISK = "disk"
    FILES = "files"
    FILE_SIZE = "file_size"

    def __str__(self) -> str:
        return self.value


# How each cap reads in a message: "memory limit of 6,144 MB".
_NOUN = {Limit.MEMORY: "memory limit", Limit.PROCESSES: "process limit",
         Limit.DISK: "disk limit", Limit.FILES: "file-count limit",
         Limit.FILE_SIZE: "file-size limit"}
_UNIT = {Limit.MEMORY: " MB", Limit.PROCESSES: " processes", Limit.DISK: " MB",
         Limit.FILES: " files", Limit.FILE_SIZE: " MB"}


@dataclass(frozen=True)
class Limits:
    """Caps on everything one process tree does, children included."""

    memory_mb: int = 6144  # RAM including tmpfs pages (cgroup), and the address space (RLIMIT_AS)
    processes: int = 256  # processes and threads alive at once
    disk_mb: int = 1024  # everything it writes: its tmpfs folders and the host folders it may write
    files: int = 10_000  # files and folders it may create in those places
    file_mb: int = 512  # any one file (RLIMIT_FSIZE)
    cpu_seconds: int | None = None  # RLIMIT_CPU, for processes with a known budget

    @classmethod
    def of(cls, spec: Any, **overrides: Any) -> "Limits":
        """From anything with these attributes (the spec's [execution] table)."""
        names = ("memory_mb", "processes", "disk_mb", "files", "file_mb")
        values = {n: getattr(spec, n) for n in names if getattr(spec, n, None) is not None}
        return cls(**{**values, **overrides})

    def value(self, limit: Limit) -> int:
        return {Limit.MEMORY: self.memory_mb, Limit.PROCESSES: self.processes,
                Limit.DISK: self.disk_mb, Limit.FILES: self.files,
                Limit.FILE_SIZE: self.file_mb}[limit]

    def describe(self, limit: Limit) -> str:
        return f"{_NOUN[limit]} of {self.value(limit):,}{_UNIT[limit]}"

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class LimitHit:
    """A cap the process tree reached; `cell` is filled in by whoever knows what was running."""

    limit: Limit
    text: str  # "memory limit of 6,144 MB"
    stopped: bool = False  # the grader (or the kernel's OOM killer) ended the process
    detail: str = ""  # what was measured, e.g. "1,031 MB written"
    cell: int | None = None  # 0-based index among all cells
    execution_count: int | None = None

    def where(self) -> str:
        if self.cell is None:
            return ""
        count = f" (In [{self.execution_count}])" if self.execution_count else ""
        return f" in cell {self.cell + 1}{count}"

    def message(self, what: str = "the kernel") -> str:
        detail = f": {self.detail}" if self.detail else ""
        end = f"; {what} was stopped" if self.stopped else ""
        return f"{self.text} reached{self.where()}{detail}{end}"

    def as_dict(self) -> dict[str, Any]:
        return {"limit": str(self.limit), "stopped": self.stopped, "cell": self.cell,
                "execution_count": self.execution_count, "detail": self.detail,
                "message": self.message()}


@dataclass
class Missing:
    """A mechanism that is not in force here, why, and how to enable it."""

    mechanism: str
    why: str
    enable: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass
class Enforcement:
    """Which mechanisms hold each cap of one process tree, and which are missing."""

    limits: Limits
    held_by: dict[str, list[str]] = field(default_factory=dict)  # cap → mechanisms
    missing: list[Missing] = field(default_factory=list)
    hits: list[LimitHit] = field(default_factory=list)

    def hold(self, cap: str, mechanism: str) -> None:
        self.held_by.setdefault(cap, []).append(mechanism)

    def lack(self, mechanism: str, why: str, enable: str = "") -> None:
        if all(m.mechanism != mechanism for m in self.missing):
            self.missing.append(Missing(mechanism, why, enable))

    def as_dict(self) -> dict[str, Any]:
        return {"values": self.limits.as_dict(), "held_by": self.held_by,
                "missing": [m.as_dict() for m in self.missing],
                "hits": [h.as_dict() for h in self.hits]}
