"""The monitoring job's stored results, read back for the pages and the command line.

One :class:`MonitorResult` per (model, version, variant, kind, window) of ``monitor_results``;
a model's results over time, its health figures per version (a feedback loop that narrows the
catalogue shows as a falling line), when its windows were last computed, and the failures.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from core import registry
from core.config import get_settings
from core.db import transaction, utcnow
from core.db.tables import (
    MonitorRequestRow,
    MonitorResultRow,
)
from core.errors import NotFound
from core.metrics import health
from core.monitoring.windows import align, window_length

KINDS = ("traffic", "data", "prediction", "health")
STATUSES = ("ok", "too_few_rows", "no_reference", "failed")


@dataclass(frozen=True)
class MonitorResult:
    """One stored figure set of a window (see ``monitor_results``)."""

    id: int
    model: str
    version: str
    variant: str
    kind: str
    window_start: dt.datetime
    window_end: dt.datetime
    status: str
    provisional: bool
    rows: int
    figures: dict[str, Any]
    message: str
    drift_result_id: int | None
    alert_ids: list[int]
    attempts: int
    computed_at: dt.datetime
    cpu_s: float

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        for key in ("window_start", "window_end", "computed_at"):
            out[key] = out[key].isoformat()
        return out


def result_of(row: MonitorResultRow) -> MonitorResult:
    return MonitorResult(
        **{name: getattr(row, name) for name in MonitorResult.__dataclass_fields__}
    )


def summarise(r: MonitorResult) -> str:
    """A result's figures in a few words (the command line and the pages say the same)."""
    f = r.figures
    if r.status != "ok":
        return r.message
    if r.kind == "traffic":
        p99 = f.get("latency_p99_ms")
        return (
            f"{f['requests']} requests, {f['error_rate']:.1%} errors, "
            f"p99 {'—' if p99 is None else f'{p99:.1f} ms'}, click-through {f['click_through']:.1%}"
        )
    if r.kind in ("data", "prediction"):
        drifted = f.get("drifted_columns") or []
        top = ", ".join(f"{c} {v:.2f}" for c, v in list(f.get("top_columns", {}).items())[:3])
        return f"{len(drifted)} of {29 if r.kind == 'data' else 30} columns drifted; top: {top}"
    parts = []
    for name in ("coverage", "diversity", "personalisation", "gini"):
        if f.get(name) is not None:
            parts.append(f"{name} {f[name]:.3f}")
    if f.get("churn") is not None:
        parts.append(f"churn {f['churn']:.2f} ({f.get('churn_users', 0)} users)")
    return ", ".join(parts)


def results(
    model: str,
    *,
    kind: str | None = None,
    variant: str | None = None,
    since: dt.datetime | None = None,
    limit: int = 5000,
) -> list[MonitorResult]:
    """Stored results of a model, oldest first."""
    with transaction(write=False) as s:
        q = select(MonitorResultRow).where(MonitorResultRow.model == model)
        if kind is not None:
            q = q.where(MonitorResultRow.kind == kind)
        if variant is not None:
            q = q.where(MonitorResultRow.variant == variant)
        if since is not None:
            q = q.where(MonitorResultRow.window_start >= since)
        rows = s.scalars(
            q.order_by(MonitorResultRow.window_start.desc(), MonitorResultRow.id.desc()).limit(
                limit
            )
        ).all()
        return [result_of(r) for r in reversed(rows)]


def health_frame(records: Sequence[MonitorResult]) -> pd.DataFrame:
    """Long format for charts: one row per result and health figure."""
    rows = [
        {
            "window_start": r.window_start,
            "version": r.version,
            "variant": r.variant,
            "metric": name,
            "label": health.METRICS[name][0],
            "value": r.figures.get(name),
        }
        for r in records
        if r.kind == "health" and r.status == "ok"
        for name in health.METRICS
        if r.figures.get(name) is not None
    ]
    return pd.DataFrame(
        rows, columns=["window_start", "version", "variant", "metric", "label", "value"]
    )


def health_by_version(model: str) -> pd.DataFrame:
    """Each version's mean health figures over its production windows, in the order the
    versions were created, with how each was trained: a feedback loop that narrows the
    catalogue retrain after retrain shows as a falling coverage line."""
    with transaction(write=False) as s:
        rows = s.execute(
            select(MonitorResultRow.version, MonitorResultRow.figures).where(
                MonitorResultRow.model == model,
                MonitorResultRow.kind == "health",
                MonitorResultRow.status == "ok",
                MonitorResultRow.variant == "production",
            )
        ).all()
    by_version: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for version, figures in rows:
        by_version[version].append(figures)
    if not by_version:
        return pd.DataFrame(
            columns=["version", "created_at", "trigger", "windows", *health.METRICS]
        )
    versions = {}
    for version in by_version:
        with contextlib.suppress(NotFound):  # a version deleted since it served
            versions[version] = registry.get_version(model, version)
    out = []
    for version, figs in by_version.items():
        info = versions.get(version)
        entry: dict[str, Any] = {
            "version": version,
            "created_at": info.created_at if info else None,
            "trigger": _trigger(info.description) if info else "",
            "windows": len(figs),
        }
        for name in health.METRICS:
            values = [f[name] for f in figs if f.get(name) is not None]
            entry[name] = float(np.mean(values)) if values else None
        out.append(entry)
    return pd.DataFrame(out).sort_values("created_at", na_position="first").reset_index(drop=True)


def _trigger(description: str) -> str:
    """How a version came to be, from the description a retraining run gives it."""
    for prefix, name in (
        ("scheduled retraining", "scheduled"),
        ("drift-triggered retraining", "drift"),
        ("manual retraining", "manual"),
    ):
        if description.startswith(prefix):
            return name
    return "by hand"


@dataclass(frozen=True)
class JobStatus:
    """When a model's windows were last computed and when the next one is due."""

    model: str
    window: dt.timedelta
    last_window_end: dt.datetime | None
    last_computed_at: dt.datetime | None
    next_due_at: dt.datetime
    failed: int
    pending_requests: int


def status(model: str, *, now: dt.datetime | None = None) -> JobStatus:
    now = now or utcnow()
    settings = registry.get_model(model).settings
    length = window_length(settings)
    grace = dt.timedelta(seconds=get_settings().monitor_grace_seconds)
    with transaction(write=False) as s:
        last_end, last_at = s.execute(
            select(
                func.max(MonitorResultRow.window_end), func.max(MonitorResultRow.computed_at)
            ).where(MonitorResultRow.model == model, MonitorResultRow.provisional.is_(False))
        ).one()
        failed = s.scalar(
            select(func.count())
            .select_from(MonitorResultRow)
            .where(MonitorResultRow.model == model, MonitorResultRow.status == "failed")
        )
        pending = s.scalar(
            select(func.count())
            .select_from(MonitorRequestRow)
            .where(MonitorRequestRow.model == model, MonitorRequestRow.done_at.is_(None))
        )
    next_due = align(now, length) + length + grace
    return JobStatus(
        model, length, last_end, last_at, next_due, int(failed or 0), int(pending or 0)
    )


def failures(limit: int = 50) -> list[MonitorResult]:
    """The newest failed results of every model (the Jobs page lists them)."""
    with transaction(write=False) as s:
        rows = s.scalars(
            select(MonitorResultRow)
            .where(MonitorResultRow.status == "failed")
            .order_by(MonitorResultRow.computed_at.desc())
            .limit(limit)
        ).all()
        return [result_of(r) for r in rows]
