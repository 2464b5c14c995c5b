"""Cached reads of the request explorer and the model report pages.

Explorer pages are cached briefly (the log grows while one looks); slices and reports are
keyed by version, whose figures never change.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from core import registry
from core.monitoring import explorer, resources
from core.review import report, slices
from dashboard.cache.cached import cached

TTL = 15


@cached(ttl=TTL, max_entries=64)
def request_page(
    flt: explorer.RequestFilter, before_id: int | None, size: int
) -> explorer.RequestPage:
    return explorer.page(flt, before_id=before_id, size=size)


@cached(ttl=TTL, max_entries=64)
def request_count(flt: explorer.RequestFilter) -> int:
    return explorer.count(flt)


@cached(ttl=TTL, max_entries=64)
def request_detail(request_id: str) -> explorer.RequestDetail:
    return explorer.get(request_id)


def export_csv(flt: explorer.RequestFilter, limit: int) -> bytes:
    return "".join(explorer.export_csv(flt, limit=limit)).encode()


@cached(ttl=300, max_entries=64)
def slice_deltas(model: str, version: str, metric: str) -> list[slices.SliceDelta]:
    return slices.compare_versions(registry.get_version(model, version), metric=metric)


@cached(ttl=60, max_entries=32)
def traffic_slices(model: str, slicing: str, days: int) -> pd.DataFrame:
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    if slicing == "area of the city":
        return slices.traffic_by_area(model, since=since)
    return slices.traffic_by_time_slice(model, slicing, since=since)


@cached(ttl=60, max_entries=32)
def drift_concentration(model: str, days: int) -> pd.DataFrame:
    return slices.drift_concentration(
        model, since=dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    )


@cached(ttl=600, max_entries=8)
def model_report(model: str, version: str) -> tuple[str, dict]:
    return report.build(model, version)


# Bucket sizes to draw resource samples in (processes sample every 15 s), coarsest first.
RESOURCE_BUCKETS = (("1h", 3600), ("15min", 900), ("5min", 300), ("1min", 60), ("15s", 15))
RESOURCE_POINTS = 30  # the fewest points a line should have when the samples allow it


@cached(ttl=30, max_entries=8)
def resource_usage(days: int) -> pd.DataFrame:
    """CPU and memory of the API and worker processes, in buckets fit for the samples.

    The bucket follows the time the samples actually cover, not the period asked for: an
    hour of samples in hour buckets over a 30-day period was one point per process, a line
    that draws nothing on an axis whose ticks were a millisecond apart.
    """
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    raw = resources.history(since=since)
    if raw.empty:
        return resources.usage(since=since)
    ts = pd.to_datetime(raw["ts"], utc=True)
    span = (ts.max() - ts.min()).total_seconds()
    bucket = next(
        (name for name, size in RESOURCE_BUCKETS if span / size >= RESOURCE_POINTS),
        RESOURCE_BUCKETS[-1][0],
    )
    return resources.usage(since=since, bucket=bucket)
