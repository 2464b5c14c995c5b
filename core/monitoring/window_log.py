"""What the monitoring job reads of the prediction log for one window.

Per served (version, variant) pair: request and error counts, latencies and clicks, and the
successful requests themselves (sampled to ``MAX_ROWS``); the same time of day on the previous
days as the traffic baseline (from the hourly rollups); and, just after a promotion, each
user's last list from the version before, for list churn.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pandas as pd
from sqlalchemy import Text, func, select, type_coerce

from core import registry
from core.db import transaction
from core.db.tables import (
    FeedbackRow,
    PredictionLogRow,
    RollupRow,
)
from core.monitoring.windows import VARIANTS, Window

MAX_ROWS = 20_000  # per window and pair; above, every n-th request by id (as for drift)
BASELINE_DAYS = 7
CHURN_DAYS = 7  # how long after a promotion list churn is computed, and how far back


@dataclass
class Pair:
    """A window's traffic of one (version, variant)."""

    version: str
    variant: str
    requests: int = 0
    errors: int = 0
    clicks: int = 0
    latencies: list[float] = field(default_factory=list)
    ok: pd.DataFrame | None = None  # successful requests, sampled to MAX_ROWS
    ok_total: int = 0


_JSON_READ = (
    PredictionLogRow.ratings,
    PredictionLogRow.places,
    PredictionLogRow.categories,
    PredictionLogRow.predicted,
)


def _raw_json(column: Any) -> Any:
    """A JSON column as its stored text: decoded by orjson in one call per value instead of
    SQLAlchemy's processor chain, a third of a window's reading time on SQLite."""
    return type_coerce(column, Text)


def _loads(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


def read_window(model: str, window: Window) -> dict[tuple[str, str], Pair]:
    cond = [
        PredictionLogRow.model == model,
        PredictionLogRow.ts >= window.start,
        PredictionLogRow.ts < window.end,
        PredictionLogRow.variant.in_(VARIANTS),
    ]
    pairs: dict[tuple[str, str], Pair] = {}
    with transaction(write=False) as s:
        for version, variant, latency, failed in s.execute(
            select(
                PredictionLogRow.version,
                PredictionLogRow.variant,
                PredictionLogRow.latency_ms,
                PredictionLogRow.error.is_not(None),
            ).where(*cond)
        ):
            p = pairs.get((version, variant))
            if p is None:
                p = pairs[(version, variant)] = Pair(version, variant)
            p.requests += 1
            p.errors += bool(failed)
            p.latencies.append(float(latency))
        for version, variant, clicks in s.execute(
            select(PredictionLogRow.version, PredictionLogRow.variant, func.count(FeedbackRow.id))
            .join(FeedbackRow, FeedbackRow.request_id == PredictionLogRow.request_id)
            .where(*cond)
            .group_by(PredictionLogRow.version, PredictionLogRow.variant)
        ):
            if (version, variant) in pairs:
                pairs[(version, variant)].clicks = int(clicks)
        raw = s.get_bind().dialect.name == "sqlite"
        for p in pairs.values():
            p.ok_total = p.requests - p.errors
            step = max(1, -(-p.ok_total // MAX_ROWS))
            q = select(
                PredictionLogRow.user_id, *(_raw_json(c) if raw else c for c in _JSON_READ)
            ).where(
                *cond,
                PredictionLogRow.version == p.version,
                PredictionLogRow.variant == p.variant,
                PredictionLogRow.error.is_(None),
            )
            if step > 1:
                q = q.where(PredictionLogRow.id % step == 0)
            rows = s.execute(q.order_by(PredictionLogRow.id)).all()
            columns = list(zip(*rows, strict=True)) if rows else [()] * 5
            data = {"user_id": list(columns[0])}
            for i, name in enumerate(("ratings", "places", "categories", "predicted"), start=1):
                data[name] = [_loads(v) for v in columns[i]] if raw else list(columns[i])
            p.ok = pd.DataFrame(data)
            p.ok.attrs["step"] = step
    return pairs


def baseline(model: str, variant: str, window: Window) -> tuple[float | None, float | None]:
    """Requests usual for this time of day, and click-through, over the previous days.

    From the hourly rollups: for each of the previous seven days with traffic of this
    variant, the requests of the hours the window covers (a share of the hour for a window
    shorter than one), averaged; click-through over those seven whole days.
    """
    length_h = (window.end - window.start).total_seconds() / 3600
    first_hour = int(window.start.timestamp() // 3600)
    lo = first_hour - BASELINE_DAYS * 24
    with transaction(write=False) as s:
        rows = s.execute(
            select(RollupRow.hour, RollupRow.requests, RollupRow.clicks).where(
                RollupRow.model == model,
                RollupRow.variant == variant,
                RollupRow.hour >= lo,
                RollupRow.hour < first_hour - 24 + max(1, math.ceil(length_h)),
            )
        ).all()
    if not rows:
        return None, None
    by_hour: dict[int, int] = defaultdict(int)
    requests = clicks = 0
    for hour, r, c in rows:
        by_hour[hour] += r
        if hour < first_hour:
            requests, clicks = requests + r, clicks + c
    hours = max(1, math.ceil(length_h))
    days_seen = []
    for d in range(1, BASELINE_DAYS + 1):
        start = first_hour - 24 * d
        if not any(start - 12 <= h < start + 12 for h in by_hour):
            continue  # the variant did not run that day: no evidence either way
        total = sum(by_hour.get(start + i, 0) for i in range(hours))
        days_seen.append(total * min(1.0, length_h))
    volume = float(np.mean(days_seen)) if days_seen else None
    ctr = clicks / requests if requests >= 100 else None
    return volume, ctr


def previous_lists(
    model: str, version: str, window: Window, users: Iterable[str]
) -> dict[str, list[str]] | None:
    """Each user's last list from the production version before ``version``, when
    ``version`` became production less than CHURN_DAYS before the window."""
    spans = registry.production_history(model)
    for i, (v, since, _until) in enumerate(spans):
        if v != version or i == 0:
            continue
        if not since <= window.start < since + dt.timedelta(days=CHURN_DAYS):
            continue
        previous = spans[i - 1][0]
        if previous == version:
            continue
        wanted = sorted({u for u in users if u})
        out: dict[str, list[str]] = {}
        with transaction(write=False) as s:
            for at in range(0, len(wanted), 500):
                for user, places in s.execute(
                    select(PredictionLogRow.user_id, PredictionLogRow.places)
                    .where(
                        PredictionLogRow.model == model,
                        PredictionLogRow.version == previous,
                        PredictionLogRow.variant == "production",
                        PredictionLogRow.ts >= since - dt.timedelta(days=CHURN_DAYS),
                        PredictionLogRow.ts < since,
                        PredictionLogRow.error.is_(None),
                        PredictionLogRow.user_id.in_(wanted[at : at + 500]),
                    )
                    .order_by(PredictionLogRow.id)
                ):
                    if user:
                        out[user] = list(places)
        return out
    return None
