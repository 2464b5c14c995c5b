"""Shared helpers of the benchmark scripts: a throw-away registry and a results table."""

from __future__ import annotations

import os
import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the data the benchmarks read lies under it


def scratch_registry() -> Path:
    """Point the settings at a fresh SQLite registry and artifact folder (unless set)."""
    tmp = Path(tempfile.mkdtemp(prefix="planwise-bench-"))
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp / 'registry.db'}")
    os.environ.setdefault("ARTIFACTS_DIR", str(tmp / "models"))
    os.environ.setdefault("DATA_DIR", str(tmp / "data"))
    from core.accounts import bootstrap

    bootstrap.ensure_ready()
    return tmp


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def table(rows: Sequence[Sequence[object]], headers: Sequence[str]) -> str:
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"  # noqa: E731
    out = [line(list(headers)), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in cells]
    return "\n".join(out)
