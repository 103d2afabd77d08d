"""The source a clean room runs: the notebook's definitions that the graded names need.

Read with `ast` from the code cells, in notebook order: the functions asked for, the helpers
they call, and the imports and assignments (constants) they read, transitively. Nothing else of
the notebook runs (no prints, plots, data loading or training), and nothing comes from the live
session. A name bound more than once keeps its last binding, as the session would.
"""

from __future__ import annotations

import ast
import builtins
import symtable
from dataclasses import dataclass, field
from typing import Any

_BUILTINS = frozenset(dir(builtins))


@dataclass
class Extracted:
    chunks: list[tuple[int, str]]  # (cell, statement) in notebook order: what the clean room runs
    found: dict[str, int]  # graded name → 1-based cell that defines it
    missing: list[str]  # graded names no cell binds
    imports: list[tuple[int, str, str]] = field(default_factory=list)  # (cell, module, line)
    skipped_cells: list[int] = field(default_factory=list)  # cells that are not valid Python


    @property
    def source(self) -> str:
        return "\n\n".join(f"# cell {cell}\n{text}" for cell, text in self.chunks) + "\n"


@dataclass
class _Statement:
    cell: int
    node: ast.stmt
    text: str
    binds: set[str]
    reads: set[str]


def code_cells(nb: Any) -> list[tuple[int, str]]:
    """(1-based cell number, source with IPython lines blanked) for each code cell."""
    out = []
    for number, cell in enumerate(getattr(nb, "cells", None) or [], start=1):
        if cell.get("cell_type") != "code":
            continue
        source = str(cell.get("source", "")).replace("\r\n", "\n")
        # %magics and !shell lines are not Python; blank them to keep line numbers.
        lines = ["" if line.lstrip().startswith(("%", "!")) else line for line in source.split("\n")]
        out.append((number, "\n".join(lines)))
    return out


def parsed_cells(nb: Any) -> list[ast.Module]:
    """Each code cell's syntax tree; a cell Python cannot parse is left out."""
    trees = []
    for _, text in code_cells(nb):
        try:
            trees.append(ast.parse(text))
        except (SyntaxError, ValueError):
            continue
    return trees


def extract(nb: Any, names: list[str]) -> Extracted:
    statements, skipped = _statements(nb)
    bindings: dict[str, list[int]] = {}  # name → indexes of the statements binding it, in order
    for i, st in enumerate(statements):
        for name in st.binds:
            bindings.setdefault(name, []).append(i)
    last = {name: where[-1] for name, where in bindings.items()}
    chosen: set[int] = set()
    pending = [last[n] for n in names if n in last]
    while pending:
        index = pending.pop()
        if index in chosen:
            continue
        chosen.add(index)
        pending += [b for r in statements[index].reads
                    if (b := _binding_read(statements, bindings, index, r)) is not None]
    # Star imports bind names ast cannot see: keep them when something is left unresolved.
    unresolved = {r for i in chosen for r in statements[i].reads} - set(last) - _BUILTINS
    if unresolved:
        chosen |= {i for i, st in enumerate(statements) if "*" in st.binds}
    ordered = sorted(chosen)
    imports = [(statements[i].cell, module, line) for i in ordered
               for module, line in _imported_modules(statements[i])]
    return Extracted([(statements[i].cell, statements[i].text) for i in ordered],
                     {n: statements[last[n]].cell for n in names if n in last},
                     [n for n in names if n not in last], imports, skipped)


def _binding_read(statements: list[_Statement], bindings: dict[str, list[int]], index: int,
                  name: str) -> int | None:
    """The statement whose binding of `name` statement `index` reads. A def or class reads it
    when called, after every cell ran: the last binding. Any other statement reads it as it
    runs: the binding before it (`x = x / 255.0` needs the `x` before, not itself)."""
    where = bindings.get(name)
    if not where:
        return None
    if isinstance(statements[index].node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return where[-1]
    before = [i for i in where if i < index]
    return before[-1] if before else None


def _statements(nb: Any) -> tuple[list[_Statement], list[int]]:
    out, skipped = [], []
    for number, source in code_cells(nb):
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError):
            skipped.append(number)
            continue
        for node in tree.body:
            text = ast.get_source_segment(source, node) or ast.unparse(node)
            binds, reads = _names(node)
            if binds:
                out.append(_Statement(number, node, _dedent_safe(text, node), binds, reads))
    return out, skipped


def _dedent_safe(text: str, node: ast.stmt) -> str:
    """A decorated def's segment starts at `def`; keep its decorators."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.decorator_list:
        return ast.unparse(node)
    return text


def _names(node: ast.stmt) -> tuple[set[str], set[str]]:
    """Names a top-level statement binds, and the names it (or any function in it) reads."""
    binds: set[str] = set()
    reads: set[str] = set()
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        binds.add(node.name)
    elif isinstance(node, (ast.Import, ast.ImportFrom)):
        for alias in node.names:
            binds.add(alias.asname or alias.name.split(".")[0])
    elif isinstance(node, ast.For):
        return set(), set()  # a loop is not a definition the graded functions can rely on
    elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.If, ast.Try, ast.With)):
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                binds.add(sub.id)
            elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                binds.add(sub.name)
            elif isinstance(sub, (ast.Import, ast.ImportFrom)):
                binds |= {a.asname or a.name.split(".")[0] for a in sub.names}
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        reads = _free_names(node)
    else:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load):
                reads.add(sub.id)
    return binds, reads - _BUILTINS


def _free_names(node: ast.stmt) -> set[str]:
    """The module-level names a def or class reads, by Python's own scoping (symtable): a local
    of a method (`x = self.conv(x)`) is not the notebook's `x`, whose value would drag the
    notebook's data loading into the clean room."""
    try:
        table = symtable.symtable(ast.unparse(node), "<cell>", "exec")
    except SyntaxError:
        return {sub.id for sub in ast.walk(node) if isinstance(sub, ast.Name)}
    free: set[str] = set()
    pending = list(table.get_children())
    while pending:
        scope = pending.pop()
        pending += scope.get_children()
        for symbol in scope.get_symbols():
            if symbol.is_referenced() and (symbol.is_global() or
                                           (scope.get_type() == "class" and not symbol.is_local())):
                free.add(symbol.get_name())
    # Decorators, base classes and default values run at the top: symtable puts them there.
    free |= {sym.get_name() for sym in table.get_symbols() if sym.is_referenced()}
    return free


def _imported_modules(st: _Statement) -> list[tuple[str, str]]:
    found = []
    lines = st.text.splitlines() or [""]

    def line(sub: ast.AST) -> str:
        index = getattr(sub, "lineno", st.node.lineno) - st.node.lineno
        return lines[index].strip() if 0 <= index < len(lines) else lines[0].strip()

    for sub in ast.walk(st.node):
        if isinstance(sub, ast.Import):
            found += [(a.name.split(".")[0], line(sub)) for a in sub.names]
        elif isinstance(sub, ast.ImportFrom) and sub.module and not sub.level:
            found.append((sub.module.split(".")[0], line(sub)))
        elif isinstance(sub, ast.Call) and sub.args and isinstance(sub.args[0], ast.Constant) \
                and isinstance(sub.args[0].value, str) and _is_import_call(sub.func):
            found.append((sub.args[0].value.split(".")[0], line(sub)))
    return found


def _is_import_call(func: ast.expr) -> bool:
    return (isinstance(func, ast.Name) and func.id == "__import__") or \
        (isinstance(func, ast.Attribute) and func.attr == "import_module")
