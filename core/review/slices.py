"""Cutting quality and traffic by slice, and finding the slices where something is wrong.

Quality slices (ratings given, taste segment) are computed at evaluation time and kept in each
version's metadata, so comparing a candidate with production per slice reads no data. Traffic
slices (hour of day, day of week) are sums over the hourly rollups; the area of the city is a
grid over the logged request locations, grouped in SQL.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import func, select

from core import registry
from core.db import transaction, utcnow
from core.db.tables import PredictionLogRow, RollupRow
from core.errors import BadInput
from core.metrics.direction import higher_is_better
from core.registry.entities import VersionInfo

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


STAT_KEYS = {"users", "rank_users", "ndcg@5_sum", "sse", "n_ratings"}
CELL_METRICS = ("ndcg@5", "rmse")


def _aggregate(cells: list[dict], metric: str) -> tuple[float, int]:
    """(value, users it rests on) of ``metric`` over a set of cells."""
    if metric == "ndcg@5":
        users = sum(c["rank_users"] for c in cells)
        return (sum(c["ndcg@5_sum"] for c in cells) / users if users else float("nan")), users
    ratings = sum(c["n_ratings"] for c in cells)
    users = sum(c["users"] for c in cells)
    return (math.sqrt(sum(c["sse"] for c in cells) / ratings) if ratings else float("nan")), users


def compare_versions(
    candidate: VersionInfo,
    reference: VersionInfo | None = None,
    *,
    metric: str = "ndcg@5",
    margin: float = 0.02,
    min_users: int = 20,
) -> list[SliceDelta]:
    """Per-slice ``metric`` of a candidate against a reference (production by default).

    Slices are flagged one at a time, worst total loss (users × drop) first; after each,
    its users are set aside and the other slices are judged on the users left. A regression
    among cold-start users therefore flags that slice, not also every taste segment that
    happens to contain cold-start users. Slices with fewer than ``min_users`` test users on
    either side are never flagged.
    """
    if metric not in CELL_METRICS:
        raise BadInput(f"slices compare {' or '.join(CELL_METRICS)}, not {metric!r}")
    if reference is None:
        reference = registry.find_version(candidate.model, "production")
        if reference is None or reference.version == candidate.version:
            return []
    ours = candidate.metadata.get("slice_cells") or []
    theirs = reference.metadata.get("slice_cells") or []
    if not ours or not theirs:
        return []
    higher = higher_is_better(metric)
    slicings = [k for k in ours[0] if k not in STAT_KEYS]

    def judge(
        slicing: str, bucket: str, skip: list[tuple[str, str]]
    ) -> tuple[float, float, int] | None:
        def keep(c: dict) -> bool:
            return c.get(slicing) == bucket and not any(c.get(a) == b for a, b in skip)

        a, na = _aggregate([c for c in ours if keep(c)], metric)
        b, nb = _aggregate([c for c in theirs if keep(c)], metric)
        if math.isnan(a) or math.isnan(b):
            return None
        return a, b, min(na, nb)

    buckets = sorted({(k, str(c[k])) for c in ours for k in slicings})
    flagged_buckets: list[tuple[str, str]] = []
    while True:
        worst: tuple[float, tuple[str, str]] | None = None
        for slicing, bucket in buckets:
            if (slicing, bucket) in flagged_buckets:
                continue
            got = judge(slicing, bucket, flagged_buckets)
            if got is None or got[2] < min_users:
                continue
            delta = got[0] - got[1]
            loss = -delta if higher else delta
            if loss > margin and (worst is None or loss * got[2] > worst[0]):
                worst = (loss * got[2], (slicing, bucket))
        if worst is None:
            break
        flagged_buckets.append(worst[1])
    rows = []
    for slicing, bucket in buckets:
        got = judge(slicing, bucket, [])
        if got is None:
            continue
        rows.append(
            SliceDelta(
                slicing,
                bucket,
                got[2],
                got[0],
                got[1],
                got[0] - got[1],
                (slicing, bucket) in flagged_buckets,
            )
        )
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
        func.count(t.error),
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
    from core.monitoring import drift_store

    frame = drift_store.history_frame(drift_store.history(model, kind, since=since))
    if frame.empty:
        return pd.DataFrame(columns=["column", "results", "drifted", "share", "mean_score"])
    frame = frame[frame["column"] != "drift share"]
    out = frame.groupby("column").agg(
        results=("score", "size"), drifted=("drifted", "sum"), mean_score=("score", "mean")
    )
    out["share"] = out["drifted"] / out["results"]
    return out.reset_index().sort_values(["share", "mean_score"], ascending=False)
