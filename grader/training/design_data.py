"""Data a design's config carries, found before the grader rebuilds the design to train it.

A Keras config is meant to say how a model is built, but some of its values are arrays: a
Constant initializer can hold trained weights, Normalization its statistics, a lookup layer its
vocabulary. An array-valued initializer is replaced (the grader starts every weight from its
own values anyway, grader/training/initial.py); any other array is refused, since the grader
cannot tell statistics of data from weights learned elsewhere.
"""

from __future__ import annotations

import copy
from typing import Any

SMALL = 16  # numbers: kernel sizes, strides, shapes and scalar settings are fewer
DATA_KEYS = ("vocabulary", "idf_weights")  # lookup layers' tables, whatever their size
ARRAY_CLASSES = ("__numpy__", "__tensor__")


class CarriesData(ValueError):
    """The config holds data the grader will not train from; the message says where."""


def strip(config: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A copy of `config` without array-valued initializers, and a note for each one replaced.
    Raises CarriesData for any other array or table."""
    notes: list[str] = []
    clean = _walk(copy.deepcopy(config), "model", notes)
    return clean, notes


def _walk(node: Any, where: str, notes: list[str]) -> Any:
    if isinstance(node, dict):
        if node.get("class_name") in ARRAY_CLASSES:  # a serialised numpy array or tensor
            _refuse_if_large(node, where)
            return node
        inner = node.get("config")
        name = inner.get("name") if isinstance(inner, dict) else None
        here = f"{where}/{name}" if isinstance(name, str) else where
        for key, value in list(node.items()):
            if key.endswith("_initializer") and _size(value) > SMALL:
                node[key] = "zeros"  # never used: every weight is re-initialised
                notes.append(f"`{here}` {key} held {_size(value):,} values, which the grader "
                             "does not use: it starts every weight from its own values")
            elif key in DATA_KEYS and value not in (None, [], ""):
                raise CarriesData(f"`{here}` carries a {key} in its configuration; the grader "
                                  "trains only designs whose configuration holds no data")
            else:
                node[key] = _walk(value, here, notes)
        return node
    if isinstance(node, list):
        _refuse_if_large(node, where)
        return [_walk(item, where, notes) for item in node]
    return node


def _refuse_if_large(node: Any, where: str) -> None:
    if _size(node) > SMALL:
        raise CarriesData(f"`{where}` carries {_size(node):,} numbers in its configuration "
                          "(e.g. normalisation statistics or a constraint's array); the grader "
                          "trains only designs whose configuration holds no data")


def _size(node: Any) -> int:
    """How many numbers a value holds as an array: nested lists, or a serialised array or
    initializer (a dict whose values hold them). Layer lists are not arrays: dicts in a list
    are not counted."""
    if isinstance(node, bool):
        return 0
    if isinstance(node, (int, float)):
        return 1
    if isinstance(node, list):
        return sum(_size(item) for item in node if not isinstance(item, dict))
    if isinstance(node, dict):
        return sum(_size(v) for v in node.values())
    return 0
