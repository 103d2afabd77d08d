"""The trust boundary is visible in the layout: grader/kernel/ is everything that runs in a
student's process, and it and the trusted side never import each other."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

GRADER = Path(__file__).resolve().parents[1] / "grader"
KERNEL = GRADER / "kernel"
# What code in a student's process may import besides the standard library and itself.
KERNEL_MAY_IMPORT = {"numpy", "tensorflow", "keras", "ipykernel"}


def _imports(path: Path, text: str | None = None) -> list[tuple[str, int]]:
    """(module, relative level) of every import statement in a file, nested ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text() if text is None else text, str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, 0) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.module or "", node.level))
    return found


def _absolute(path: Path, module: str, level: int) -> str:
    if not level:
        return module
    package = path.relative_to(GRADER.parent).with_suffix("").parts[:-1]
    base = package[:len(package) - (level - 1)]
    return ".".join([*base, module] if module else base)


def test_kernel_code_imports_nothing_of_the_trusted_side():
    problems = []
    for path in sorted(KERNEL.rglob("*.py")):
        for module, level in _imports(path):
            name = _absolute(path, module, level)
            top = name.split(".")[0]
            allowed = (name == "grader.kernel" or name.startswith("grader.kernel.")
                       or top in KERNEL_MAY_IMPORT or top in sys.stdlib_module_names
                       or name == "__future__")
            if not allowed:
                problems.append(f"{path.relative_to(GRADER.parent)} imports {name}")
    assert not problems, problems


def test_trusted_code_never_imports_kernel_code():
    """The trusted side starts kernel code in other processes (by module name or by copying a
    harness file); importing it would run untrusted-side code with the grader's rights."""
    problems = []
    for path in sorted(GRADER.rglob("*.py")):
        if KERNEL in path.parents:
            continue
        for module, level in _imports(path):
            name = _absolute(path, module, level)
            if name == "grader.kernel" or name.startswith("grader.kernel."):
                problems.append(f"{path.relative_to(GRADER.parent)} imports {name}")
    assert not problems, problems


def test_the_checker_sees_a_violation():
    """The two tests above would notice an import across the boundary."""
    probe = KERNEL / "probe.py"
    found = _imports(probe, "from ..measure import introspect\nfrom . import datasets\n")
    assert [_absolute(probe, m, level) for m, level in found] == ["grader.measure",
                                                                  "grader.kernel"]


def _module_name(path: Path) -> str:
    parts = path.relative_to(GRADER.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """grader's modules and the grader modules each imports (nested imports included; `from
    package import name` counts the submodule when `name` is one). A package importing its
    own submodules (to expose them) is not an edge: that is how a package is made."""
    paths = {_module_name(p): p for p in GRADER.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name in paths}
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(path, node.module or "", node.level)
                subs = {f"{base}.{a.name}" for a in node.names} & set(paths)
                deps |= subs or ({base} & set(paths))
        graph[name] = {d for d in deps if d != name and not d.startswith(name + ".")}
    return graph


def _circles(graph: dict[str, set[str]]) -> list[str]:
    circles = []
    for start in sorted(graph):
        seen, stack = set(), [(start, (start,))]
        while stack:
            here, trail = stack.pop()
            for nxt in sorted(graph[here]):
                if nxt == start:
                    circles.append(" → ".join((*trail, start)))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, (*trail, nxt)))
    return circles


def _unit(module: str) -> str:
    """The part of the grader a module belongs to: its package under grader/, or itself."""
    parts = module.split(".")
    return ".".join(parts[:2])


def _package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, deps in _import_graph().items():
        unit = _unit(module)
        graph.setdefault(unit, set()).update(_unit(d) for d in deps if _unit(d) != unit)
    return graph


def test_grader_modules_import_one_way():
    """No import circle in the grader (issue 28): each module's imports lead away from it."""
    circles = _circles(_import_graph())
    assert not circles, circles[:5]


def test_grader_packages_import_one_way():
    """No circle between the grader's parts either (its packages and loose modules): a
    package that a lower stage imports never imports that stage back through a third."""
    circles = _circles(_package_graph())
    assert not circles, circles[:5]


# The grader's parts from the bottom up, in the order a grading runs (issue 28): each part
# imports only parts of lower stages. The foundation and the result model are the vocabulary
# every stage writes; the kernel is apart (it imports nothing of the grader, tests above); the
# pipeline runs the stages for one notebook; the batch, the instructor's tools and the CLI sit
# on the pipeline.
STAGES = (
    {"grader", "grader.errors", "grader.paths", "grader.scoring", "grader.progress",
     "grader.kernel"},
    {"grader.result", "grader.environment", "grader.submission"},  # submission: the notebook file
    {"grader.data"},
    {"grader.assignment", "grader.execution"},  # the assignment; the student's notebook run, confined
    {"grader.harvest", "grader.training"},  # read what the kernel exported; the grader's training
    {"grader.measure"},  # the trusted measuring process
    {"grader.cleanroom"},  # student source re-run apart from the kernel
    {"grader.checks"},
    {"grader.reports", "grader.similarity", "grader.ta"},
    {"grader.pipeline"},
    {"grader.batch", "grader.instructor"},
    {"grader.cli"},
)


def _stage(unit: str) -> int:
    return next(i for i, members in enumerate(STAGES) if unit in members)


def _imports_up(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{unit} (stage {_stage(unit)}) imports {dep} (stage {_stage(dep)})"
                  for unit, deps in graph.items() for dep in deps
                  if _stage(dep) >= _stage(unit))


def test_every_part_of_the_grader_has_a_stage():
    """A new package or loose module is placed in the pipeline on purpose, not by accident."""
    placed = set().union(*STAGES)
    assert set(_package_graph()) - placed == set(), "add it to STAGES"


def test_grader_parts_import_only_earlier_stages():
    """Imports go one way, down the pipeline: a check never imports the batch, a measurement
    never imports a check, a report never imports the TA's tools."""
    assert not _imports_up(_package_graph())


def test_the_stage_checker_sees_an_import_up():
    assert _imports_up({"grader.measure": {"grader.checks", "grader.data"},
                        "grader.data": set()}) == \
        ["grader.measure (stage 5) imports grader.checks (stage 7)"]


def test_the_layering_checker_sees_a_circle():
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == \
        ["a → b → c → a", "b → c → a → b", "c → a → b → c"]
