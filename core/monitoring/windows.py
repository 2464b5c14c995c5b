"""Which windows of a model's traffic the monitoring job computes, and when.

Time is cut into windows of ``MONITOR_WINDOW_MINUTES`` (a model may set its own,
``settings["monitor_window_minutes"]``), aligned to the epoch. A window is due once it has
ended plus a grace period for the API's last log batch, and the ledger of stored results
(``monitor_results``) says it has no final result yet, or only a failed one to retry.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from core.config import get_settings
from core.db import transaction
from core.db.tables import (
    ModelRow,
    MonitorResultRow,
    PredictionLogRow,
    RollupRow,
)
from core.errors import BadInput

VARIANTS = ("production", "canary")  # previews and simulations are not monitored traffic
MAX_ATTEMPTS = 3
RETRY_AFTER = dt.timedelta(minutes=5)
MAX_WINDOWS = 500  # per model and run: a long outage is caught up over several runs


@dataclass(frozen=True)
class Window:
    start: dt.datetime
    end: dt.datetime
    provisional: bool = False

    @property
    def span(self) -> str:
        return f"in {self.start:%Y-%m-%d %H:%M}–{self.end:%H:%M} UTC"


def window_length(model_settings: dict[str, Any] | None) -> dt.timedelta:
    """The model's window (its own setting, else ``MONITOR_WINDOW_MINUTES``)."""
    minutes = (model_settings or {}).get("monitor_window_minutes")
    if minutes is None:
        minutes = get_settings().monitor_window_minutes
    try:
        value = float(minutes)
    except (TypeError, ValueError) as exc:
        raise BadInput(f"monitor_window_minutes must be a number, got {minutes!r}") from exc
    if not 1 / 60 <= value <= 7 * 24 * 60:
        raise BadInput(f"monitor_window_minutes must be between 1 s and 7 days, got {value}")
    return dt.timedelta(minutes=value)


def min_rows(model_settings: dict[str, Any] | None) -> int:
    value = (model_settings or {}).get("monitor_min_rows")
    return int(value) if value is not None else get_settings().monitor_min_rows


def align(ts: dt.datetime, length: dt.timedelta) -> dt.datetime:
    """The start of the window holding ``ts`` (windows are aligned to the epoch)."""
    seconds = length.total_seconds()
    return dt.datetime.fromtimestamp(math.floor(ts.timestamp() / seconds) * seconds, tz=dt.UTC)


def all_model_settings() -> dict[str, dict[str, Any]]:
    with transaction(write=False) as s:
        return {
            name: dict(st or {}) for name, st in s.execute(select(ModelRow.name, ModelRow.settings))
        }


def monitored_models(since: dt.datetime) -> list[str]:
    """Models with traffic since ``since``, from the hourly rollups (a small table)."""
    hour = int(since.timestamp() // 3600)
    with transaction(write=False) as s:
        return sorted(
            s.scalars(
                select(RollupRow.model)
                .where(RollupRow.hour >= hour, RollupRow.variant.in_(VARIANTS))
                .distinct()
            ).all()
        )


def due_windows(
    model: str,
    *,
    now: dt.datetime,
    length: dt.timedelta,
    since: dt.datetime,
    until: dt.datetime | None = None,
    include_current: bool = False,
    limit: int = MAX_WINDOWS,
) -> list[Window]:
    """Windows of ``model`` to compute now, oldest first.

    A window is due when it has ended (plus the grace period), starts at or after ``since``
    and after the model's first logged request, and has no stored result, or only failed
    ones that may be retried, or only provisional ones.
    """
    grace = dt.timedelta(seconds=get_settings().monitor_grace_seconds)
    closed_until = align(now - grace, length)  # windows ending by here are closed
    if until is not None:
        closed_until = min(closed_until, align(until, length))
    with transaction(write=False) as s:
        first = s.scalar(
            select(func.min(PredictionLogRow.ts)).where(
                PredictionLogRow.model == model,
                PredictionLogRow.ts >= since,
                PredictionLogRow.variant.in_(VARIANTS),
            )
        )
        if first is None:
            return []
        begin = max(align(since, length), align(first, length))
        stored = s.execute(
            select(
                MonitorResultRow.window_start,
                MonitorResultRow.status,
                MonitorResultRow.provisional,
                MonitorResultRow.attempts,
                MonitorResultRow.computed_at,
            ).where(MonitorResultRow.model == model, MonitorResultRow.window_start >= begin)
        ).all()
    final: set[dt.datetime] = set()
    retry: set[dt.datetime] = set()
    provisional: set[dt.datetime] = set()
    for start, status, is_provisional, attempts, computed_at in stored:
        if is_provisional:
            provisional.add(start)
        else:
            final.add(start)
            if status == "failed" and attempts < MAX_ATTEMPTS and computed_at <= now - RETRY_AFTER:
                retry.add(start)
    due: list[Window] = []
    start = begin
    while start + length <= closed_until and len(due) < limit:
        if start not in final or start in retry:
            due.append(Window(start, start + length))
        start += length
    if include_current and len(due) < limit:
        current = align(now, length)
        if current >= begin and current not in final:
            due.append(Window(current, current + length, provisional=True))
    return due
