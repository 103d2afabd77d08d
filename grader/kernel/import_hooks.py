"""Run a callback on a module right after the student's code imports it.

The kernel uses this to seed Keras/TensorFlow and to serve datasets without importing
TensorFlow itself (numpy-only notebooks must start fast).
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from types import ModuleType
from typing import Callable


class _AfterImport(importlib.abc.MetaPathFinder):
    def __init__(self, matches: Callable[[str], bool], callback: Callable[[ModuleType], None]):
        self.matches = matches
        self.callback = callback

    def find_spec(self, fullname, path, target=None):  # noqa: ANN001 - importlib protocol
        if not self.matches(fullname):
            return None
        sys.meta_path.remove(self)  # let the real finders answer
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        original_exec = spec.loader.exec_module
        callback = self.callback

        def exec_then_callback(module: ModuleType) -> None:
            original_exec(module)
            try:
                callback(module)
            except Exception:  # the grader's hook must never break the student's import
                pass

        spec.loader.exec_module = exec_then_callback
        return spec


def after_import(matches: Callable[[str], bool], callback: Callable[[ModuleType], None]) -> None:
    """Call `callback(module)` once each matching module is imported (now, if it already is)."""
    for name, module in list(sys.modules.items()):
        if module is not None and matches(name):
            callback(module)
    sys.meta_path.insert(0, _AfterImport(matches, callback))
