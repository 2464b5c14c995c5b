"""Shared output helpers of the command line: JSON to stdout, tables, progress bars."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any


def _default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def to_json(value: Any) -> str:
    return json.dumps(value, default=_default, indent=2, ensure_ascii=False)


def print_json(value: Any) -> None:
    sys.stdout.write(to_json(value) + "\n")


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    rows = [["" if v is None else str(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line)
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


def progress_bar(description: str) -> tuple[Callable[[float, str], None], Callable[[], None]]:
    """A tqdm bar on stderr driven by the core's ``progress(fraction, message)`` callbacks."""
    from tqdm import tqdm

    bar = tqdm(
        total=100,
        desc=description,
        file=sys.stderr,
        leave=False,
        # Only for a person at a terminal: a script's stderr holds just the error, if any.
        disable=not sys.stderr.isatty(),
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}",
    )

    def update(fraction: float, message: str = "") -> None:
        bar.n = round(max(0.0, min(1.0, fraction)) * 100)
        bar.set_postfix_str(message, refresh=False)
        bar.refresh()

    return update, bar.close
