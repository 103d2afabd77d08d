"""UNTRUSTED SIDE. A graded Keras model's design, exported as its training starts.

The grader trains each graded design itself (grader/training/timed_fit.py), which took most of
what a grading costs after the notebook's last cell (a LeNet-5 homework: three designs). The
design is fixed once `fit()` starts, so the kernel saves the model then, and the trusted
measuring process trains that design while the student's own training runs
(grader/measure/head_start.py). A subclassed model cannot be saved without its class: for it
the kernel writes what the Keras clean room needs to rebuild and train it (its class, how it was
compiled, the layout fit() is fed), and the room starts on it (grader/cleanroom/rooms.py).

Nothing here is believed: the measuring process uses what it trained only for a model the final
harvest exports with the very same design (architecture, loss, optimizer, input layout), as
loaded and described by itself; the clean room's, only when the training the grader plans at
the end is the very one it ran. A student who breaks or forges this loses the head start, no
more. Failures here are silent: they must never change what the student's `fit()` does.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

from grader.kernel.export import compile_claim, is_subclassed, layers_claim
from grader.kernel.import_hooks import after_import

# Designs exported per graded name: a notebook that rebuilds its model a few times still gets
# its last one trained early; one that rebuilds it in a loop does not flood the grader.
MAX_EXPORTS_PER_NAME = 3


def _user_namespace() -> dict[str, Any]:
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return getattr(shell, "user_ns", None) or {}


class Exporter:
    """Saves a graded model as its fit() starts, once per design (architecture, optimizer and
    loss: what the grader's training depends on, besides the budget)."""

    def __init__(self, out: Path, names: tuple[str, ...],
                 namespace: Callable[[], dict[str, Any]] = _user_namespace) -> None:
        self.out, self.names, self.namespace = out, names, namespace
        self.signatures: dict[str, str] = {}
        self.counts: dict[str, int] = {}

    def before_fit(self, keras: Any, model: Any, x: Any = None) -> None:
        name = self._graded_name(model)
        if name is None or getattr(model, "optimizer", None) is None:
            return
        subclassed = is_subclassed(keras, model)
        if not subclassed and not model.built:  # a Sequential's first fit() builds it
            return
        signature = self._claim(keras, model, x) if subclassed else self._signature(keras, model)
        count = self.counts.get(name, 0)
        if signature == self.signatures.get(name) or count >= MAX_EXPORTS_PER_NAME:
            return
        self.signatures[name], self.counts[name] = signature, count + 1
        self.out.mkdir(parents=True, exist_ok=True)
        if subclassed:  # its design is its class: the clean room rebuilds it from the source
            partial = self.out / f".{name}-{count}.claim.json"
            partial.write_text(signature)
            os.replace(partial, self.out / f"{name}-{count}.claim.json")
            return
        partial = self.out / f".{name}-{count}.keras"  # Keras wants the suffix
        model.save(partial)
        os.replace(partial, self.out / f"{name}-{count}.keras")

    @staticmethod
    def _claim(keras: Any, model: Any, x: Any) -> str:
        """What the clean room needs to train a subclassed design: the final export's claim
        (grader/kernel/export.py), and the layout fit() is fed, as the likely input layout."""
        shape = tuple(int(d) for d in getattr(x, "shape", ())[1:])
        compiled = compile_claim(keras, model)
        compiled.pop("train_steps", None)  # a second fit() of the same design is no new design
        return json.dumps({"class_name": type(model).__name__[:200], "compile": compiled,
                           "layers": layers_claim(keras, model), "layout": list(shape)})

    def _graded_name(self, model: Any) -> str | None:
        namespace = self.namespace()
        return next((n for n in self.names if namespace.get(n) is model), None)

    @staticmethod
    def _signature(keras: Any, model: Any) -> str:
        return repr((model.to_json(), keras.optimizers.serialize(model.optimizer),
                     repr(getattr(model, "loss", None))))


def install(out: str, names: list[str]) -> None:
    """From now on, each `fit()` of a model bound to one of `names` first exports its design
    into `out` (once per design)."""
    exporter = Exporter(Path(out), tuple(names))
    after_import(lambda name: name == "keras", functools.partial(wrap_fit, exporter))


def wrap_fit(exporter: Exporter, keras: Any) -> None:
    """`keras.Model.fit`, calling `exporter` first; once, however often it is called."""
    original = keras.Model.fit
    if getattr(original, "_grader_head_start", False):
        return

    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True  # noqa: F841 - IPython leaves this frame out of tracebacks
        try:
            exporter.before_fit(keras, self, args[0] if args else kwargs.get("x"))
        except Exception:  # the student's fit() must run as if this were not here
            pass
        return original(self, *args, **kwargs)

    fit._grader_head_start = True  # type: ignore[attr-defined]
    keras.Model.fit = fit
