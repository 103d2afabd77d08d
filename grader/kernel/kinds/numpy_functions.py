"""A numpy forward/backward pass (seed 004, Part 1), as the student's live kernel saw it.

Only the student's claim, never scored: whether the session had a function by that name. The
grader does not call the student's functions here any more (code in the session could replace
anything the export uses); it runs their definitions, from the notebook's source, in its numpy
clean room (grader/cleanroom/numpy_run.py), and scores only what that produced.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def export(value: Any, obj: dict[str, Any], namespace: dict[str, Any], out: Path) -> dict[str, Any]:
    cls = type(value)
    type_name = f"{cls.__module__}.{cls.__qualname__}"[:200]
    if not callable(value):
        return {"status": "wrong_type", "type": type_name,
                "message": f"`{obj['name']}` is a {type_name}, not a function"}
    return {"status": "found", "type": type_name, "claim_only": True}
