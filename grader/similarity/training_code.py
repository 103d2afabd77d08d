"""The code that made a model: of a notebook's code, the top-level statements its graded object
depends on, in cell order (a backward slice: the data it was trained on and how that was
prepared, the seeds, the model, compile() and fit(), or a PyTorch loop stepping an optimizer
that holds its parameters), without the plots, prints and evaluation.

The grader runs every notebook from the same seed, and a homework's starter may fix one too, so
two notebooks whose slices are the same code (names aside) train the same weights honestly,
however different the rest of their code; two that hold the same weights though their slices
differ did not each train their own. The slice over-approximates (a statement that may change a
needed name is kept), which only makes two slices less alike, never hides a difference.
"""

from __future__ import annotations

import ast
import functools
import re

# Methods that read a model or an array without changing it: calling them is no training.
READ_ONLY = frozenset({
    "summary", "evaluate", "predict", "predict_on_batch", "test_on_batch", "count_params",
    "get_weights", "get_config", "get_layer", "save", "save_weights", "to_json", "numpy",
    "plot", "show", "head", "tail", "describe", "copy", "mean", "std", "sum", "argmax",
})
# What hands a model's weights to an optimizer (PyTorch's, or a custom Keras loop's).
PARAMETERS = frozenset({"parameters", "named_parameters", "trainable_variables",
                        "trainable_weights", "weights"})
CELL_HEADER = re.compile(r"^# In \[\d+\] \(cell \d+\)$", re.MULTILINE)  # code.code_text's
IPYTHON_LINE = re.compile(r"^\s*[%!].*$", re.MULTILINE)


def statements(text: str) -> list[ast.stmt]:
    """The top-level statements of a notebook's code text, cell by cell; IPython's magics and
    shell lines are dropped, and a cell Python cannot parse is left out (it runs nothing)."""
    found: list[ast.stmt] = []
    for cell in CELL_HEADER.split(text):
        try:
            found.extend(ast.parse(IPYTHON_LINE.sub("", cell)).body)
        except (SyntaxError, ValueError):
            continue
    return found


def _base(node: ast.AST) -> str | None:
    """`x` of x, x.a.b, x[i].c (the object an attribute or item belongs to)."""
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _imported(stmt: ast.stmt) -> set[str]:
    return {(a.asname or a.name).split(".")[0] for node in ast.walk(stmt)
            if isinstance(node, (ast.Import, ast.ImportFrom)) for a in node.names}


def changed(stmt: ast.stmt, modules: frozenset[str] = frozenset()) -> set[str]:
    """Names a statement may bind or change: assigned (an item or attribute of it too), defined,
    imported, or the object of a method call that is not read-only (model.fit, xs.append), not
    one of `modules` (np.eye makes an array, it does not change numpy), and the array
    np.random.shuffle shuffles."""
    names: set[str] = set()
    for node in ast.walk(stmt):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= _imported(node)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.Attribute, ast.Subscript)) and \
                isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(_base(node) or "")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            base = _base(node.func.value)
            if node.func.attr not in READ_ONLY and base not in modules:
                names.add(base or "")
            if node.func.attr == "shuffle" and node.args:
                names.add(_base(node.args[0]) or "")
    names.discard("")
    return names


def _read(stmt: ast.stmt) -> set[str]:
    return {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and
            isinstance(n.ctx, ast.Load)}


def _holders(body: list[ast.stmt], obj: str, modules: frozenset[str]) -> set[str]:
    """`obj` and the names that hold its weights: an optimizer made from model.parameters()
    changes the model when it steps, as apply_gradients(zip(grads, model.trainable_variables))
    does."""
    holders = {obj}
    for stmt in body:
        touches = any(isinstance(n, ast.Attribute) and n.attr in PARAMETERS and
                      _base(n.value) in holders for n in ast.walk(stmt))
        if touches:
            holders |= changed(stmt, modules) - modules
    return holders


def _seeds(stmt: ast.stmt) -> bool:
    """A call that sets a random generator's seed (random.seed, np.random.seed,
    keras.utils.set_random_seed, tf.random.set_seed, torch.manual_seed): training starts
    from it."""
    for node in ast.walk(stmt):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else \
                func.id if isinstance(func, ast.Name) else ""
            if "seed" in name.lower():
                return True
    return False


@functools.lru_cache(maxsize=1024)  # a class that handed in one notebook slices it once
def training_slice(text: str, obj: str) -> str | None:
    """The statements `obj` (a graded variable, e.g. `model`) depends on, as normalised code
    (ast.unparse: no comments, one layout), or None when no top-level statement makes it."""
    body = statements(text)
    modules = frozenset().union(*(_imported(s) for s in body))
    holders = _holders(body, obj, modules)
    needed: set[str] = set()
    kept: list[ast.stmt] = []
    for stmt in reversed(body):
        made = changed(stmt, modules)
        if made & holders or made & needed or (kept and _seeds(stmt)):
            kept.append(stmt)
            needed |= _read(stmt)
    if not any(obj in changed(s, modules) for s in kept):
        return None
    return "\n".join(ast.unparse(s) for s in reversed(kept)) + "\n"
