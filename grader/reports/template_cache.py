"""Report templates compiled once per machine, not on every run.

Compiling the HTML and Markdown templates took 0.3 s of every `grader check`. Jinja's own
bytecode cache keeps them in the grader's cache folder (grader/environment.py), keyed by each
template's source, so an edited template is compiled again. That folder is the trusted side's:
the student's sandbox never sees it.
"""

from __future__ import annotations

import functools

from jinja2 import BytecodeCache, FileSystemBytecodeCache

from ..environment import cache_dir


@functools.cache
def bytecode_cache() -> BytecodeCache | None:
    """None where the folder cannot be made (a read-only home): templates compile each time."""
    folder = cache_dir() / "templates"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return FileSystemBytecodeCache(str(folder))
