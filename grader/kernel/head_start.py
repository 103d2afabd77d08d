"""UNTRUSTED SIDE. A graded Keras model's design, exported as its training starts.

The grader trains each graded design itself (grader/training/timed_fit.py), which took most of
what a grading costs after the notebook's last cell (a LeNet-5 homework: three designs). The
design is fixed once `fit()` starts, so the kernel saves the model then, and the trusted
measuring process trains that design while the student's own training runs
(grader/measure/head_start.py).

Nothing here is believed: the measuring process uses what it trained only for a model the final
harvest exports with the very same design (architecture, loss, optimizer, input layout), as
loaded and described by itself. A student who breaks or forges this loses the head start, no
more. Failures here are silent: they must never change what the student's `fit()` does.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Any, Callable

from grader.kernel.export import is_subclassed
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

    def before_fit(self, keras: Any, model: Any) -> None:
        name = self._graded_name(model)
        if name is None or not model.built or getattr(model, "optimizer", None) is None:
            return
        if is_subclassed(keras, model):
            return  # its design is its class: the clean room rebuilds it from the source
        signature = self._signature(keras, model)
        count = self.counts.get(name, 0)
        if signature == self.signatures.get(name) or count >= MAX_EXPORTS_PER_NAME:
            return
        self.signatures[name], self.counts[name] = signature, count + 1
        self.out.mkdir(parents=True, exist_ok=True)
        partial = self.out / f".{name}-{count}.keras"  # Keras wants the suffix
        model.save(partial)
        os.replace(partial, self.out / f"{name}-{count}.keras")

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
            exporter.before_fit(keras, self)
        except Exception:  # the student's fit() must run as if this were not here
            pass
        return original(self, *args, **kwargs)

    fit._grader_head_start = True  # type: ignore[attr-defined]
    keras.Model.fit = fit
