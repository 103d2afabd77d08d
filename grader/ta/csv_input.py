"""CSV files a TA writes (the --manual scores, the --roster): opened the same way, with the
same words when they are not a CSV at all."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Iterator


def open_with_header(path: Path, error: type[Exception], expected: str
                     ) -> tuple[list[str], Any]:
    """(header row, reader positioned after it). Raises `error` for a missing, unreadable or
    empty file, naming `expected` (the header the caller wants) for an empty one."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")  # Excel writes a BOM
    except FileNotFoundError:
        raise error(f"no such file: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path} is not a readable UTF-8 CSV file ({exc})") from None
    reader: Iterator[list[str]] = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise error(f"{path} is empty; expected a header row {expected}") from None
    except csv.Error as exc:
        raise error(f"{path}: not a CSV file ({exc})") from None
    return header, reader


MAX_PROBLEMS_SHOWN = 20


def raise_problems(path: Path | str, problems: list[str], error: type[Exception]) -> None:
    """Every problem of the file at once (the first MAX_PROBLEMS_SHOWN), so a TA fixes them in
    one pass; nothing when there are none."""
    if not problems:
        return
    shown = problems[:MAX_PROBLEMS_SHOWN]
    more = len(problems) - len(shown)
    text = "\n  ".join(shown) + (f"\n  … and {more} more" if more else "")
    raise error(f"{path}: {len(problems)} problem(s):\n  {text}")
