"""Cutting quality and traffic by slice, and finding the slices where something is wrong.

Quality slices (ratings given, taste segment) are computed at evaluation time and kept in each
version's metadata, so comparing a candidate with production per slice reads no data. Traffic
slices (hour of day, day of week) are sums over the hourly rollups; the area of the city is a
grid over the logged request locations, grouped in SQL.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import func, select

from core import registry
from core.db import transaction, utcnow
from core.entities import VersionInfo
from core.errors import BadInput
from core.telemetry_tables import PredictionLogRow, RollupRow

HIGHER_IS_BETTER = {"rmse": False, "mae": False}
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
GRID_DEG = 0.02  # ≈ 2.2 km north–south, 1.7 km east–west in Madrid


@dataclass(frozen=True)
class SliceDelta:
    slicing: str
    bucket: str
    users: int
    candidate: float
    reference: float
    delta: float  # candidate − reference, in the metric's own direction
    worse: bool


def compare_versions(
    candidate: VersionInfo,
    reference: VersionInfo | None = None,
    *,
    metric: str = "ndcg@5",
    margin: float = 0.02,
    min_users: int = 20,
) -> list[SliceDelta]:
    """Per-slice ``metric`` of a candidate against a reference (production by default).

    A slice is flagged when the candidate is worse by more than ``margin`` there, counting
    only slices with at least ``min_users`` test users on both sides (fewer is noise).
    """
    if reference is None:
        reference = registry.find_version(candidate.model, "production")
        if reference is None:
            return []
    ours = candidate.metadata.get("slices") or {}
    theirs = reference.metadata.get("slices") or {}
    higher = HIGHER_IS_BETTER.get(metric, True)
    rows = []
    for slicing, buckets in ours.items():
        for bucket, m in buckets.items():
            other = theirs.get(slicing, {}).get(bucket)
            if other is None or metric not in m or metric not in other:
                continue
            delta = m[metric] - other[metric]
            users = int(min(m.get("users", 0), other.get("users", 0)))
            worse = users >= min_users and (delta < -margin if higher else delta > margin)
            rows.append(SliceDelta(slicing, bucket, users, m[metric], other[metric], delta, worse))
    return rows


def flagged(rows: list[SliceDelta]) -> list[tuple[str, str]]:
    return [(r.slicing, r.bucket) for r in rows if r.worse]


def traffic_by_time_slice(
    model: str | None, slicing: str, *, since: dt.datetime, until: dt.datetime | None = None
) -> pd.DataFrame:
    """Requests, error rate, click-through and mean latency by hour of day or day of week."""
    until = until or utcnow()
    if slicing == "hour of day":
        key = RollupRow.hour % 24
    elif slicing == "day of week":
        key = (RollupRow.hour // 24 + 3) % 7  # 1970-01-01 was a Thursday
    else:
        raise BadInput(f"unknown traffic slicing {slicing!r}")
    q = select(
        key.label("bucket"),
        func.sum(RollupRow.requests),
        func.sum(RollupRow.errors),
        func.sum(RollupRow.clicks),
        func.sum(RollupRow.latency_sum_ms),
    ).where(
        RollupRow.hour >= int(since.timestamp() // 3600),
        RollupRow.hour <= int(until.timestamp() // 3600),
    )
    if model is not None:
        q = q.where(RollupRow.model == model)
    with transaction(write=False) as s:
        rows = s.execute(q.group_by("bucket").order_by("bucket")).all()
    frame = pd.DataFrame(rows, columns=["bucket", "requests", "errors", "clicks", "latency_sum"])
    frame = frame.astype({"requests": int, "errors": int, "clicks": int, "latency_sum": float})
    frame["error_rate"] = frame["errors"] / frame["requests"].clip(lower=1)
    frame["click_through"] = frame["clicks"] / frame["requests"].clip(lower=1)
    frame["latency_mean_ms"] = frame["latency_sum"] / frame["requests"].clip(lower=1)
    if slicing == "day of week":
        frame["bucket"] = [DAYS[int(b)] for b in frame["bucket"]]
    return frame.drop(columns=["latency_sum"])


def traffic_by_area(
    model: str | None, *, since: dt.datetime, until: dt.datetime | None = None
) -> pd.DataFrame:
    """Requests, errors and mean latency per grid cell of the request locations."""
    until = until or utcnow()
    t = PredictionLogRow
    cell_lat = func.round(t.lat / GRID_DEG)
    cell_lng = func.round(t.lng / GRID_DEG)
    q = select(
        cell_lat.label("cell_lat"),
        cell_lng.label("cell_lng"),
        func.count(),
        func.sum(func.coalesce(func.length(t.error), 0) > 0),
        func.avg(t.latency_ms),
    ).where(t.ts >= since, t.ts < until, t.lat.is_not(None))
    if model is not None:
        q = q.where(t.model == model)
    with transaction(write=False) as s:
        rows = s.execute(q.group_by("cell_lat", "cell_lng")).all()
    frame = pd.DataFrame(rows, columns=["cell_lat", "cell_lng", "requests", "errors", "latency"])
    frame["lat"] = frame["cell_lat"].astype(float) * GRID_DEG
    frame["lng"] = frame["cell_lng"].astype(float) * GRID_DEG
    frame["errors"] = frame["errors"].astype(int)
    frame["error_rate"] = frame["errors"] / frame["requests"].clip(lower=1)
    return frame.drop(columns=["cell_lat", "cell_lng"])


def drift_concentration(model: str, kind: str = "data", *, since: dt.datetime) -> pd.DataFrame:
    """How often each column drifted, and its mean score, over stored results."""
    from core import drift_store

    frame = drift_store.history_frame(drift_store.history(model, kind, since=since))
    if frame.empty:
        return pd.DataFrame(columns=["column", "results", "drifted", "share", "mean_score"])
    frame = frame[frame["column"] != "drift share"]
    out = frame.groupby("column").agg(
        results=("score", "size"), drifted=("drifted", "sum"), mean_score=("score", "mean")
    )
    out["share"] = out["drifted"] / out["results"]
    return out.reset_index().sort_values(["share", "mean_score"], ascending=False)
