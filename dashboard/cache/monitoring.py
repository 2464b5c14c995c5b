"""Cached reads of the Data drift, Prediction drift and Monitoring pages.

The pages read only what ``core`` stores for them: drift results (one row per computed window,
without the raw logs) and hourly traffic rollups, never the prediction log itself, so a year of
history renders in well under a second. New results arrive when the worker or the simulator
computes them, so these reads live for :data:`MONITOR_TTL` seconds; alerts live briefly and
are cleared after a resolve, so the operator sees the change at once. A stored drift result
never changes apart from its report path, so it is kept long.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from core import monitoring
from core.monitoring import Summary, alerts, drift_store, monitor
from core.monitoring.alerts import Alert
from core.monitoring.drift_store import DriftRecord
from dashboard.cache.cached import RESULT_TTL, cached

MONITOR_TTL = 60  # seconds
ALERTS_TTL = 15
# Variants shown apart on the Monitoring page; other variants (previews) count in the summary.
VARIANTS = ("production", "canary")
TRAFFIC_COLUMNS = [
    "start",
    "variant",
    "requests",
    "errors",
    "clicks",
    "latency_mean_ms",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "error_rate",
    "click_through",
]


# ------------------------------------------------------------------------ drift


@cached(ttl=MONITOR_TTL, max_entries=32)
def drift_history(model: str, kind: str) -> tuple[list[DriftRecord], pd.DataFrame]:
    """A model's results of one kind, oldest first, and the long frame the chart draws.

    The records come without their histograms (only one result's are drawn at a time: see
    :func:`drift_result`).
    """
    records = drift_store.history(model, kind)
    return records, drift_store.history_frame(records)


@cached(ttl=RESULT_TTL, max_entries=64)
def drift_result(result_id: int) -> DriftRecord:
    """One stored result with the per-column histograms of both sides."""
    return drift_store.get(result_id)


def drift_report(result_id: int) -> Path:
    """The Evidently report of a result: the stored file, computed and stored when first asked.

    Not cached: the first call computes for seconds and writes the file; later calls only
    find it.
    """
    path = drift_store.report_html(result_id)
    drift_result.clear()  # the stored result now names its report
    return path


@cached(ttl=MONITOR_TTL)
def alert_thresholds(model: str) -> dict[str, float]:
    return alerts.thresholds(model)


# ------------------------------------------------------------------------ traffic


@cached(ttl=MONITOR_TTL, max_entries=64)
def traffic(model: str, *, days: int, bucket_hours: int) -> pd.DataFrame:
    """Traffic of the last ``days`` per bucket and variant (:data:`TRAFFIC_COLUMNS`).

    Buckets are whole UTC hours or days; a variant without requests in the period has no rows.
    """
    until = dt.datetime.now(dt.UTC)
    since = until - dt.timedelta(days=days)
    frames = []
    for variant in VARIANTS:
        buckets = monitoring.traffic(
            model, since=since, until=until, bucket_hours=bucket_hours, variant=variant
        )
        if buckets:
            frame = monitoring.traffic_frame(buckets)
            frame.insert(1, "variant", variant)
            frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=TRAFFIC_COLUMNS)
    return pd.concat(frames, ignore_index=True)[TRAFFIC_COLUMNS]


@cached(ttl=MONITOR_TTL)
def summary(model: str, *, hours: int = 24) -> Summary:
    """Requests, error rate, click-through and latency of the last ``hours`` (all variants)."""
    return monitoring.summary(model, hours=hours)


# ------------------------------------------------------------------------ alerts


@cached(ttl=ALERTS_TTL)
def open_alerts(model: str) -> list[Alert]:
    return alerts.list_alerts(model, status="open")


def alerts_changed() -> None:
    """Forget alert reads after a resolve, so the page shows the new state at once."""
    open_alerts.clear()


# ------------------------------------------------------------------------ the monitoring job


@cached(ttl=ALERTS_TTL, max_entries=32)
def job_status(model: str) -> monitor.JobStatus:
    """When the worker last computed this model's windows and when the next is due."""
    return monitor.status(model)


@cached(ttl=MONITOR_TTL, max_entries=32)
def health(model: str, *, days: int) -> pd.DataFrame:
    """Label-free health figures per window (long format), for the period."""
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    return monitor.health_frame(monitor.results(model, kind="health", since=since))


@cached(ttl=MONITOR_TTL, max_entries=32)
def health_by_version(model: str) -> pd.DataFrame:
    return monitor.health_by_version(model)


@cached(ttl=MONITOR_TTL, max_entries=32)
def production_changes(model: str) -> list[tuple[str, dt.datetime]]:
    """(version, since) of each production version: the marks on the health chart."""
    from core import registry

    return [(v, since) for v, since, _ in registry.production_history(model)]


@cached(ttl=ALERTS_TTL, max_entries=32)
def latest_results(model: str, *, limit: int = 40) -> list[monitor.MonitorResult]:
    return list(reversed(monitor.results(model, limit=limit)))


def monitor_changed() -> None:
    """A recomputation was queued: show it at once."""
    job_status.clear()
    latest_results.clear()
