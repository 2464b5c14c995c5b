"""How much traffic each arm of the A/B readout served, and clicked, over a period.

Whole hours come from the hourly rollups (``core.monitoring``), the partial hours at either
end from the prediction log, so a period is exact to the second at the cost of at most two
hours of log rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import func, select

from core import monitoring
from core.db import transaction
from core.db.tables import N_LATENCY_BINS, FeedbackRow, PredictionLogRow, RollupRow


@dataclass(frozen=True)
class Totals:
    """An arm's served requests, errors and clicks, and its latency histogram."""

    requests: int
    errors: int
    clicks: int
    bins: np.ndarray


def totals(
    model: str, version: str, variant: str, since: dt.datetime, until: dt.datetime, delay_s: float
) -> Totals:
    """An arm's requests, errors and clicks served in [since, until − delay_s), its latency
    histogram over the hours touched.

    Clicks arrive after their request: counting the newest requests would under-count the
    click-through of whichever arm received more of the recent traffic (the canary after each
    step up), so requests younger than ``delay_s`` wait. Whole hours come from the rollups;
    the partial hours at either end from the prediction log (indexed by model and time), so
    the period is exact to the second and the cost stays at most two hours of log rows.
    """
    cutoff = until - dt.timedelta(seconds=delay_s)
    t = RollupRow
    first_full = -(-int(since.timestamp()) // 3600)  # the first hour starting at or after since
    end_full = int(cutoff.timestamp()) // 3600  # hours before this one ended before the cutoff
    bins = np.zeros(N_LATENCY_BINS, np.int64)
    requests = errors = clicks = 0
    with transaction(write=False) as s:
        arm = [t.model == model, t.version == version, t.variant == variant]
        for b in s.scalars(
            select(t.latency_bins).where(
                *arm, t.hour >= monitoring.hour_of(since), t.hour <= monitoring.hour_of(until)
            )
        ):
            bins += np.asarray(b, dtype=np.int64)
        if cutoff <= since:
            return Totals(0, 0, 0, bins)
        pieces: list[tuple[dt.datetime, dt.datetime]] = []
        if first_full < end_full:
            r, e, c = s.execute(
                select(
                    func.coalesce(func.sum(t.requests), 0),
                    func.coalesce(func.sum(t.errors), 0),
                    func.coalesce(func.sum(t.clicks), 0),
                ).where(*arm, t.hour >= first_full, t.hour < end_full)
            ).one()
            requests, errors, clicks = int(r), int(e), int(c)
            pieces = [(since, _hour_start(first_full)), (_hour_start(end_full), cutoff)]
        else:
            pieces = [(since, cutoff)]
        for start, end in pieces:
            if end <= start:
                continue
            r, e, c = _logged(s, model, version, variant, start, end)
            requests, errors, clicks = requests + r, errors + e, clicks + c
    return Totals(requests, errors, clicks, bins)


def _hour_start(hour: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(hour * 3600, tz=dt.UTC)


def _logged(
    s: Any, model: str, version: str, variant: str, start: dt.datetime, end: dt.datetime
) -> tuple[int, int, int]:
    """(requests, errors, clicked requests) of the prediction log in [start, end)."""
    log = PredictionLogRow
    cond = [
        log.model == model,
        log.ts >= start,
        log.ts < end,
        log.version == version,
        log.variant == variant,
    ]
    requests, errors = s.execute(select(func.count(), func.count(log.error)).where(*cond)).one()
    clicked = s.scalar(
        select(func.count(func.distinct(FeedbackRow.request_id)))
        .join(log, log.request_id == FeedbackRow.request_id)
        .where(*cond)
    )
    return int(requests or 0), int(errors or 0), int(clicked or 0)


def canary_start(model: str, version: str) -> dt.datetime | None:
    """The first hour in which ``version`` served canary traffic (None: never)."""
    with transaction(write=False) as s:
        hour = s.scalar(
            select(func.min(RollupRow.hour)).where(
                RollupRow.model == model,
                RollupRow.version == version,
                RollupRow.variant == "canary",
            )
        )
    return None if hour is None else dt.datetime.fromtimestamp(int(hour) * 3600, tz=dt.UTC)


def canary_requests(model: str, version: str) -> int:
    """Every canary request ``version`` has served (the rollout's per-step counter)."""
    with transaction(write=False) as s:
        total = s.scalar(
            select(func.coalesce(func.sum(RollupRow.requests), 0)).where(
                RollupRow.model == model,
                RollupRow.version == version,
                RollupRow.variant == "canary",
            )
        )
    return int(total or 0)
