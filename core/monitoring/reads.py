"""Reading the prediction log: traffic by time bucket, summaries, and windows of requests.

Traffic figures come from the hourly rollups (a year of traffic is a few thousand rollup rows,
however many millions of requests it was). Latency percentiles come from the rollups'
histogram (bins doubling from 0.5 ms), as Prometheus does.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from core.data.categories import CATEGORIES
from core.db import transaction, utcnow
from core.db.tables import (
    LATENCY_EDGES_MS,
    N_LATENCY_BINS,
    PredictionLogRow,
    RollupRow,
)
from core.errors import BadInput
from core.monitoring.records import hour_of


@dataclass(frozen=True)
class Bucket:
    start: dt.datetime
    requests: int
    errors: int
    clicks: int
    latency_mean_ms: float
    latency_p50_ms: float
    latency_p95_ms: float
    latency_p99_ms: float

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def click_through(self) -> float:
        return self.clicks / self.requests if self.requests else 0.0


def percentile_from_bins(bins: Sequence[int], q: float) -> float:
    """Linear interpolation inside the histogram bin holding the q-th quantile."""
    total = sum(bins)
    if total == 0:
        return float("nan")
    target = q * total
    seen = 0
    for i, count in enumerate(bins):
        if count and seen + count >= target:
            low = 0.0 if i == 0 else LATENCY_EDGES_MS[i - 1]
            high = LATENCY_EDGES_MS[i] if i < len(LATENCY_EDGES_MS) else LATENCY_EDGES_MS[-1] * 2
            return low + (high - low) * (target - seen) / count
        seen += count
    return LATENCY_EDGES_MS[-1] * 2


def count_over(bins: Sequence[int], limit_ms: float) -> int:
    """Requests of a latency histogram surely slower than ``limit_ms``: those of the bins lying
    wholly above it. The bin the limit falls inside is left out, as the histogram cannot tell
    on which side of the limit its requests were.
    """
    return sum(
        count
        for i, count in enumerate(bins)
        if i > 0 and LATENCY_EDGES_MS[i - 1] >= limit_ms  # bin i starts at edge i - 1
    )


def traffic(
    model: str | None = None,
    *,
    since: dt.datetime,
    until: dt.datetime | None = None,
    bucket_hours: int = 1,
    version: str | None = None,
    variant: str | None = None,
) -> list[Bucket]:
    """Traffic per bucket of ``bucket_hours`` between ``since`` and ``until``."""
    if bucket_hours < 1:
        raise BadInput(f"bucket_hours must be at least 1, got {bucket_hours}")
    until = until or utcnow()
    bucket = RollupRow.hour // bucket_hours  # integer division on both backends
    query = select(
        bucket.label("b"),
        RollupRow.requests,
        RollupRow.errors,
        RollupRow.clicks,
        RollupRow.latency_sum_ms,
        RollupRow.latency_bins,
    ).where(RollupRow.hour >= hour_of(since), RollupRow.hour <= hour_of(until))
    if model is not None:
        query = query.where(RollupRow.model == model)
    if version is not None:
        query = query.where(RollupRow.version == version)
    if variant is not None:
        query = query.where(RollupRow.variant == variant)
    merged: dict[int, dict[str, Any]] = defaultdict(
        lambda: {
            "requests": 0,
            "errors": 0,
            "clicks": 0,
            "latency": 0.0,
            "bins": np.zeros(N_LATENCY_BINS, np.int64),
        }
    )
    with transaction(write=False) as s:
        for b, requests, errors, clicks, latency, bins in s.execute(query):
            m = merged[int(b)]
            m["requests"] += requests
            m["errors"] += errors
            m["clicks"] += clicks
            m["latency"] += latency
            m["bins"] += np.asarray(bins, dtype=np.int64)
    out = []
    for b in sorted(merged):
        m = merged[b]
        bins = m["bins"].tolist()
        out.append(
            Bucket(
                start=dt.datetime.fromtimestamp(b * bucket_hours * 3600, tz=dt.UTC),
                requests=m["requests"],
                errors=m["errors"],
                clicks=m["clicks"],
                latency_mean_ms=m["latency"] / m["requests"] if m["requests"] else float("nan"),
                latency_p50_ms=percentile_from_bins(bins, 0.50),
                latency_p95_ms=percentile_from_bins(bins, 0.95),
                latency_p99_ms=percentile_from_bins(bins, 0.99),
            )
        )
    return out


def traffic_frame(buckets: Sequence[Bucket]) -> pd.DataFrame:
    rows = [
        {**asdict(b), "error_rate": b.error_rate, "click_through": b.click_through} for b in buckets
    ]
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Summary:
    requests: int
    error_rate: float
    click_through: float
    latency_p50_ms: float
    latency_p99_ms: float


def summary(model: str | None, *, hours: int = 24, until: dt.datetime | None = None) -> Summary:
    """One figure per measure over the last ``hours`` (for Overview and alerts)."""
    until = until or utcnow()
    cond = [
        RollupRow.hour >= hour_of(until - dt.timedelta(hours=hours)),
        RollupRow.hour <= hour_of(until),
    ]
    if model is not None:
        cond.append(RollupRow.model == model)
    with transaction(write=False) as s:
        requests, errors, clicks = s.execute(
            select(
                func.coalesce(func.sum(RollupRow.requests), 0),
                func.coalesce(func.sum(RollupRow.errors), 0),
                func.coalesce(func.sum(RollupRow.clicks), 0),
            ).where(*cond)
        ).one()
        bins = np.zeros(N_LATENCY_BINS, np.int64)
        for (b,) in s.execute(select(RollupRow.latency_bins).where(*cond)):
            bins += np.asarray(b, dtype=np.int64)
    if not requests:
        return Summary(0, 0.0, 0.0, float("nan"), float("nan"))
    return Summary(
        int(requests),
        errors / requests,
        clicks / requests,
        percentile_from_bins(bins.tolist(), 0.5),
        percentile_from_bins(bins.tolist(), 0.99),
    )


def count_logs(model: str | None = None) -> int:
    with transaction(write=False) as s:
        q = select(func.count()).select_from(PredictionLogRow)
        if model is not None:
            q = q.where(PredictionLogRow.model == model)
        return int(s.scalar(q) or 0)


def window(
    model: str,
    start: dt.datetime,
    end: dt.datetime,
    *,
    version: str | None = None,
    max_rows: int = 20_000,
) -> pd.DataFrame:
    """Logged successful requests of a window, at most ``max_rows`` of them.

    Sampling rule (documented for drift): when the window holds more rows, every n-th row by
    id is taken, with n = ceil(rows / max_rows), which keeps the sample spread over the window
    and the same every time it is computed.
    """
    cond = [
        PredictionLogRow.model == model,
        PredictionLogRow.ts >= start,
        PredictionLogRow.ts < end,
        PredictionLogRow.error.is_(None),
    ]
    if version is not None:
        cond.append(PredictionLogRow.version == version)
    with transaction(write=False) as s:
        total = int(s.scalar(select(func.count()).select_from(PredictionLogRow).where(*cond)) or 0)
        step = max(1, -(-total // max_rows))
        q = select(
            PredictionLogRow.ts,
            PredictionLogRow.version,
            PredictionLogRow.ratings,
            PredictionLogRow.categories,
            PredictionLogRow.predicted,
        ).where(*cond)
        if step > 1:
            q = q.where(PredictionLogRow.id % step == 0)
        rows = s.execute(q.order_by(PredictionLogRow.id)).all()
    frame = pd.DataFrame(rows, columns=["ts", "version", "ratings", "categories", "predicted"])
    frame.attrs["total"] = total
    frame.attrs["step"] = step
    return frame


def ratings_of(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return pd.DataFrame(columns=list(CATEGORIES))
    return pd.DataFrame(
        np.asarray(frame["ratings"].tolist(), dtype=float), columns=list(CATEGORIES)
    )
