"""What a PyTorch answer's notebook source says about its training, read with ast (never run).

PyTorch has no compile(): the loss and the optimizer live in the notebook's code. The trusted
side reads them from the source the student handed in, not from anything the kernel reports.
Calls are recognised by what their names resolve to through the notebook's imports
(`nn.CrossEntropyLoss`, `F.cross_entropy`, `optim.Adam`, `from torch.optim import Adam`);
settings are read only where they are constants, or names bound once to a constant. Where the
source does not say (several losses, several optimizers for different models, a learning rate
computed at run time), the reader says why instead of guessing.
"""

from __future__ import annotations

import ast
from typing import Any

from .source import parsed_cells

# Calls that are cross-entropy on logits (the softmax is the loss's first step).
CROSS_ENTROPY = {"CrossEntropyLoss", "cross_entropy"}
# Other losses a notebook may build: with any of them the loss is not known to be cross-entropy.
OTHER_LOSSES = {"NLLLoss", "nll_loss", "MSELoss", "mse_loss", "L1Loss", "l1_loss", "BCELoss",
                "binary_cross_entropy", "BCEWithLogitsLoss", "binary_cross_entropy_with_logits",
                "KLDivLoss", "kl_div", "HuberLoss", "huber_loss", "SmoothL1Loss",
                "smooth_l1_loss", "MultiMarginLoss", "multi_margin_loss"}
# torch.nn.functional's losses under their module's name, so both spellings compare equal.
FUNCTIONAL_LOSSES = {"cross_entropy": "CrossEntropyLoss", "nll_loss": "NLLLoss",
                     "mse_loss": "MSELoss", "l1_loss": "L1Loss", "binary_cross_entropy": "BCELoss",
                     "binary_cross_entropy_with_logits": "BCEWithLogitsLoss",
                     "kl_div": "KLDivLoss", "huber_loss": "HuberLoss",
                     "smooth_l1_loss": "SmoothL1Loss", "multi_margin_loss": "MultiMarginLoss"}
LOSS_CLASSES = set(FUNCTIONAL_LOSSES.values())
OPTIMIZERS = {"Adam", "AdamW", "SGD", "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam",
              "RAdam", "ASGD", "LBFGS", "Rprop", "SparseAdam"}
_UNBOUND = object()  # a name bound more than once, or to something other than a constant


def called_names(nb: Any) -> set[str]:
    """The last name of every call in the notebook's code cells (`nn.CrossEntropyLoss()` gives
    CrossEntropyLoss)."""
    names = set()
    for tree in parsed_cells(nb):
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                if isinstance(func, ast.Attribute):
                    names.add(func.attr)
                elif isinstance(func, ast.Name):
                    names.add(func.id)
    return names


def cross_entropy_loss(nb: Any) -> bool:
    """The notebook trains with cross-entropy (`nn.CrossEntropyLoss()`, `F.cross_entropy`) and
    builds no other loss: only then is a last Linear layer's output a softmax's logits."""
    names = called_names(nb)
    return bool(names & CROSS_ENTROPY) and not names & OTHER_LOSSES


def training(nb: Any, model: str) -> dict[str, Any]:
    """The loss and the optimizer the notebook trains `model` with, as far as its source says.

    JSON-ready: `loss` and `optimizer` ({name, call, settings, unreadable}) or None, with
    `loss_unknown`/`optimizer_unknown` saying why the source cannot tell; `backward` and `step`:
    whether the source calls `.backward()` and the optimizer's `.step()`."""
    trees = list(parsed_cells(nb)) if nb is not None else []
    source = _Source(trees)
    loss, loss_unknown = source.loss()
    optimizer, optimizer_unknown, variable = source.optimizer(model)
    untrained = None
    if optimizer_unknown and source.only_built(model):  # as a Keras model never compiled
        untrained = f"`{model}` is never trained: {optimizer_unknown}, and `{model}` is " \
            "given to no function or optimizer"
        optimizer_unknown = None
    return {"loss": loss, "loss_unknown": loss_unknown, "optimizer": optimizer,
            "optimizer_unknown": optimizer_unknown, "untrained": untrained,
            "backward": source.calls_method("backward"),
            "step": source.calls_method("step", variable),
            "step_call": f"{variable or 'optimizer'}.step()"}


# Methods of torch.nn.Module that only switch modes, move, copy or show the module: a model
# whose only uses are these (and calls and prints) is built and never trained.
_INERT_METHODS = frozenset({"eval", "train", "to", "cpu", "cuda", "float", "double", "half",
                            "forward", "state_dict", "modules", "named_modules", "children",
                            "named_children", "requires_grad_", "zero_grad", "extra_repr"})


class _Source:
    def __init__(self, trees: list[ast.AST]) -> None:
        self.nodes = [node for tree in trees for node in ast.walk(tree)]
        self.parent = {id(child): node for node in self.nodes
                       for child in ast.iter_child_nodes(node)}
        self.aliases, self.star = _imports(self.nodes)
        self.constants = _constants(self.nodes)

    def _resolved(self, func: ast.AST) -> list[str]:
        """Full dotted names a call's function may be, through the notebook's imports."""
        dotted = _dotted(func)
        if dotted is None:
            return []
        head, _, rest = dotted.partition(".")
        if head in self.aliases:
            return [self.aliases[head] + (f".{rest}" if rest else "")]
        if not rest:  # a bare name: from a star import, if any
            return [f"{module}.{head}" for module in self.star]
        return [dotted]

    def _calls(self, wanted: Any) -> list[tuple[str, ast.Call]]:
        found = []
        for node in self.nodes:
            if isinstance(node, ast.Call):
                name = next((n for n in map(wanted, self._resolved(node.func)) if n), None)
                if name:
                    found.append((name, node))
        return found

    def loss(self) -> tuple[dict[str, Any] | None, str | None]:
        calls = self._calls(_loss_name)
        kinds = sorted({name for name, _ in calls})
        if not kinds:
            return None, None
        if len(kinds) > 1:
            return None, (f"the notebook builds several losses ({', '.join(kinds)}), so its "
                          "source does not say which one trained the model")
        functional = [call for _, call in calls if _dotted(call.func).split(".")[-1]
                      in FUNCTIONAL_LOSSES]
        settings, unreadable = {}, []
        for _, call in calls:
            skip = 2 if call in functional else 0  # F.cross_entropy(input, target, ...)
            self._settings(call, skip, settings, unreadable, positional=())
        return {"name": kinds[0], "call": _text(calls[0][1]), "settings": settings,
                "unreadable": sorted(set(unreadable))}, None

    def optimizer(self, model: str) -> tuple[dict[str, Any] | None, str | None, str | None]:
        calls = self._calls(_optimizer_name)
        if not calls:
            return None, None, None
        names = _linked_names(self.nodes, model)
        trained = {id(call): _parameters_of(call) for _, call in calls}
        tied = [(n, c) for n, c in calls if trained[id(c)] in names
                or self._passed_in(c, trained[id(c)], names)]
        if tied:
            chosen, how = tied, f"{trained[id(tied[0][1])]}.parameters()"
        elif len(calls) == 1 and trained[id(calls[0][1])] is None:
            chosen, how = calls, "the notebook's only optimizer"
        elif len(calls) == 1:
            return None, (f"the notebook's only optimizer, {_text(calls[0][1])}, trains "
                          f"`{trained[id(calls[0][1])]}`, not `{model}`"), None
        else:
            return None, (f"the notebook builds {len(calls)} optimizers and none is given "
                          f"`{model}.parameters()`, so its source does not say which trained "
                          f"`{model}`"), None
        read = []
        for name, call in chosen:
            settings, unreadable = {}, []
            self._settings(call, 1, settings, unreadable, positional=("lr",))
            if "lr" in unreadable:
                return None, (f"the learning rate in {_text(call)} is not a constant the source "
                              "fixes (it is computed or rebound as the notebook runs), and the "
                              "grader does not run it"), None
            read.append((name, settings, unreadable, call))
        distinct = {(name, repr(sorted(s.items()))) for name, s, _, _ in read}
        if len(distinct) > 1:
            return None, (f"`{model}` is given to {len(distinct)} different optimizers ("
                          + "; ".join(_text(c) for *_, c in read[:3])
                          + "), so its source does not say which trained it"), None
        name, settings, unreadable, call = read[0]
        return {"name": name, "call": _text(call), "settings": settings,
                "unreadable": sorted(set(unreadable)), "tied": how}, None, _target(self.nodes,
                                                                                     call)

    def _passed_in(self, call: ast.Call, owner: str | None, names: set[str]) -> bool:
        """`def train(net, ...): optim.Adam(net.parameters())`, called as `train(model, ...)`:
        the function's parameter is the graded model wherever the notebook calls it."""
        node = self.parent.get(id(call))
        while node is not None and not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            node = self.parent.get(id(node))
        params = [a.arg for a in node.args.posonlyargs + node.args.args] if node else []
        if owner is None or owner not in params:
            return False
        index = params.index(owner)
        for other in self.nodes:
            if isinstance(other, ast.Call) and \
                    _dotted(other.func) in (node.name, f"self.{node.name}"):
                given = other.args[index] if index < len(other.args) else next(
                    (k.value for k in other.keywords if k.arg == owner), None)
                if isinstance(given, ast.Name) and given.id in names:
                    return True
        return False

    def _settings(self, call: ast.Call, skip: int, settings: dict[str, Any],
                  unreadable: list[str], positional: tuple[str, ...]) -> None:
        """Constant arguments into `settings` (positional ones by `positional`'s names after
        the first `skip`); the names of the others into `unreadable`."""
        pairs = []
        for i, arg in enumerate(call.args[skip:]):
            pairs.append((positional[i] if i < len(positional) else f"argument {skip + i + 1}",
                          arg))
        pairs += [(k.arg or "**kwargs", k.value) for k in call.keywords if k.arg != "params"]
        for key, node in pairs:
            value = self._constant(node)
            if value is _UNBOUND or key.startswith(("argument", "**")) or \
                    (key in settings and settings[key] != value):
                unreadable.append(key)
            else:
                settings[key] = value

    def _constant(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Name):
            return self.constants.get(node.id, _UNBOUND)
        try:
            value = ast.literal_eval(node)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return _UNBOUND
        return list(value) if isinstance(value, tuple) else value

    def only_built(self, model: str) -> bool:
        """`model` is only built, printed and run: assigned, printed, called, or the receiver of
        a method that trains nothing, never handed to anything else that could train it (its
        own `fit()` or `train_model()` could: a Keras habit that a module class may keep)."""
        names, built = _linked_names(self.nodes, model), False
        for node in self.nodes:
            if not (isinstance(node, ast.Name) and node.id in names):
                continue
            parent = self.parent.get(id(node))
            if isinstance(node.ctx, ast.Store):
                built = built or isinstance(parent, ast.Assign)
                continue
            if isinstance(parent, ast.Call) and parent.func is node:
                continue  # model(x)
            if isinstance(parent, ast.Attribute) and parent.attr in _INERT_METHODS:
                continue  # model.eval(), model.to(device): they train nothing
            if isinstance(parent, ast.Call) and _dotted(parent.func) == "print":
                continue
            if isinstance(parent, ast.Assign) and all(isinstance(t, ast.Name)
                                                      for t in parent.targets):
                continue  # other = model: a linked name, itself checked
            return False
        return built  # a model the source never assigns is made some way it cannot follow

    def calls_method(self, method: str, receiver: str | None = None) -> bool:
        """The source calls `<anything>.method()` (or `<receiver>.method()`)."""
        for node in self.nodes:
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                    node.func.attr == method:
                if receiver is None or _dotted(node.func.value) == receiver:
                    return True
        return False


def _imports(nodes: list[ast.AST]) -> tuple[dict[str, str], list[str]]:
    """Names bound by imports to the dotted names they stand for; modules star-imported."""
    aliases, star = {}, []
    for node in nodes:
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    aliases[a.asname] = a.name
                else:
                    head = a.name.split(".")[0]
                    aliases[head] = head
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                if a.name == "*":
                    star.append(node.module)
                else:
                    aliases[a.asname or a.name] = f"{node.module}.{a.name}"
    return aliases, star


def _constants(nodes: list[ast.AST]) -> dict[str, Any]:
    """Names the notebook binds exactly once, to a literal constant (`lr = 1e-3`)."""
    bound: dict[str, Any] = {}
    for node in nodes:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and \
                isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            try:
                value = ast.literal_eval(node.value)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                value = _UNBOUND
            bound[name] = value if name not in bound else _UNBOUND
    for node in nodes:  # any other binding (a loop, a tuple target, +=) makes it unknowable
        if isinstance(node, (ast.For, ast.AugAssign, ast.AnnAssign, ast.NamedExpr,
                             ast.comprehension)) or (isinstance(node, ast.Assign) and (
                len(node.targets) > 1 or not isinstance(node.targets[0], ast.Name))):
            targets = [node.target] if hasattr(node, "target") else node.targets
            for target in targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        bound[name.id] = _UNBOUND
        elif isinstance(node, (ast.FunctionDef, ast.Lambda)):
            for arg in node.args.args + node.args.kwonlyargs:
                bound[arg.arg] = _UNBOUND
    return {k: v for k, v in bound.items() if v is not _UNBOUND}


def _linked_names(nodes: list[ast.AST], model: str) -> set[str]:
    """`model` and the names plain assignments make the same object (`model = net`)."""
    edges = [(n.targets[0].id, n.value.id) for n in nodes if isinstance(n, ast.Assign)
             and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name)
             and isinstance(n.value, ast.Name)]
    linked, grew = {model}, True
    while grew:
        grew = False
        for a, b in edges:
            if (a in linked) != (b in linked):
                linked |= {a, b}
                grew = True
    return linked


def _parameters_of(call: ast.Call) -> str | None:
    """`x` when the optimizer is given `x.parameters()`; None when the source does not say."""
    params = call.args[0] if call.args else next(
        (k.value for k in call.keywords if k.arg == "params"), None)
    if isinstance(params, ast.Call) and isinstance(params.func, ast.Attribute) and \
            params.func.attr == "parameters" and isinstance(params.func.value, ast.Name):
        return params.func.value.id
    return None


def _target(nodes: list[ast.AST], call: ast.Call) -> str | None:
    """The name the optimizer is assigned to (`optimizer = optim.Adam(...)`)."""
    for node in nodes:
        if isinstance(node, ast.Assign) and node.value is call and len(node.targets) == 1:
            return _dotted(node.targets[0])
    return None


def _loss_name(path: str) -> str | None:
    module, _, last = path.rpartition(".")
    if not module.startswith("torch.nn"):
        return None
    if last in LOSS_CLASSES:
        return last
    return FUNCTIONAL_LOSSES.get(last) if module == "torch.nn.functional" else None


def _optimizer_name(path: str) -> str | None:
    module, _, last = path.rpartition(".")
    if module.startswith("torch.optim") and "lr_scheduler" not in module and last in OPTIMIZERS:
        return last
    return None


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return f"{inner}.{node.attr}" if inner else None
    return None


def _text(call: ast.Call) -> str:
    text = ast.unparse(call)
    return text if len(text) <= 120 else text[:117] + "..."
