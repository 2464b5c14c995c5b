"""The monitoring job: drift, service health and recommendation health of live traffic.

The worker's leader runs :func:`run_due` every minute (``python -m core monitor run`` runs the
same function). For every model with logged traffic it cuts time into windows of
``MONITOR_WINDOW_MINUTES`` (a model may set its own, ``settings["monitor_window_minutes"]``),
aligned to the epoch, and computes each window that has ended (plus a grace period for the
API's last log batch) and has no result yet, oldest first, at most ``MONITOR_LOOKBACK_HOURS``
back. Per window and per served (version, variant) pair, production and canary apart:

- ``traffic``: requests, errors, latency percentiles and click-through, with the volume and
  click-through of the same time of day on the previous seven days as the baseline;
- ``data``: drift of the requests' ratings against the version's training dataset;
- ``prediction``: drift of the predicted scores against the version's own predictions on its
  validation users (:func:`core.monitoring.drift_store.prediction_reference`);
- ``health``: the label-free figures of :mod:`core.metrics.health`.

Each kind is one row of ``monitor_results``, unique per (model, version, variant, kind,
window): a window's rows, its drift results and the alerts they raise are written in one
transaction, so a window is stored once whatever two processes do, and a process killed
mid-window leaves nothing behind to skip. A window with fewer than ``MONITOR_MIN_ROWS``
requests is recorded as ``too_few_rows``; a kind that fails is recorded ``failed`` and
retried; a model that fails does not stop the others. New drift alerts on a production version
then queue a retraining run through the retrain-on-drift policy of :mod:`core.retraining.queue`.

This module runs the job and keeps its queue of recomputation requests; its parts are
:mod:`~core.monitoring.windows` (which windows are due), :mod:`~core.monitoring.window_log`
(what a window's traffic is), :mod:`~core.monitoring.checks` (the figures and alert conditions
of each kind) and :mod:`~core.monitoring.history` (stored results read back, re-exported here
for the pages and the command line).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from core import registry
from core.accounts.auth import Actor, require
from core.config import get_settings
from core.db import transaction, utcnow
from core.db.tables import (
    DriftResultRow,
    MonitorRequestRow,
    MonitorResultRow,
)
from core.errors import BadInput, NotFound
from core.monitoring import alerts, drift_store
from core.monitoring.checks import Outcome, drift_outcome, guarded, health_outcome, traffic_outcome
from core.monitoring.history import (
    KINDS,
    STATUSES,
    JobStatus,
    MonitorResult,
    failures,
    health_by_version,
    health_frame,
    result_of,
    results,
    status,
    summarise,
)
from core.monitoring.window_log import Pair, read_window
from core.monitoring.windows import (
    MAX_ATTEMPTS,
    MAX_WINDOWS,
    RETRY_AFTER,
    VARIANTS,
    Window,
    align,
    all_model_settings,
    due_windows,
    min_rows,
    monitored_models,
    window_length,
)

__all__ = [  # the job's own names, and those of its parts that callers reach through it
    "KINDS",
    "MAX_ATTEMPTS",
    "MAX_WINDOWS",
    "RETRY_AFTER",
    "STATUSES",
    "VARIANTS",
    "JobStatus",
    "MonitorResult",
    "Progress",
    "RunReport",
    "Window",
    "align",
    "compute_window",
    "due_windows",
    "failures",
    "health_by_version",
    "health_frame",
    "min_rows",
    "pending_requests",
    "request_recompute",
    "results",
    "run_due",
    "status",
    "summarise",
    "window_length",
]


log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]


@dataclass
class RunReport:
    """What one run of the job did."""

    windows: int = 0
    results: list[MonitorResult] = field(default_factory=list)
    alerts: list[alerts.Alert] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    skipped: int = 0  # windows another process stored first
    retrains: list[int] = field(default_factory=list)
    cpu_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "windows": self.windows,
            "results": [r.as_dict() for r in self.results],
            "alerts": [a.as_dict() for a in self.alerts],
            "failures": self.failures,
            "skipped": self.skipped,
            "retrain_runs": self.retrains,
            "cpu_s": round(self.cpu_s, 3),
        }


def compute_window(
    model: str, window: Window, *, model_settings: dict[str, Any] | None = None
) -> tuple[list[MonitorResult], list[alerts.Alert], int]:
    """Compute and store one window of ``model``; (results, new alerts, windows skipped).

    Everything of the window is written in one transaction: its results, drift results and
    alerts. When another process stored the window first, the unique key refuses the second
    copy and this returns nothing stored (skipped = 1).
    """
    cpu0 = time.thread_time()
    settings = model_settings if model_settings is not None else all_model_settings().get(model, {})
    limits = alerts.thresholds(model)
    needed = min_rows(settings)
    pairs = read_window(model, window)
    if not pairs:
        # Nothing logged: judged against the version that served by the window's end.
        version = registry.production_at(model, min(window.end, utcnow()))
        if version is None:
            return [], [], 0
        pairs = {(version, "production"): Pair(version, "production", ok=None)}
    outcomes: list[Outcome] = []
    for p in pairs.values():
        outcomes.append(guarded("traffic", p, partial(traffic_outcome, model, p, window, limits)))
        try:
            info = registry.get_version(model, p.version)
        except NotFound as exc:
            for kind in ("data", "prediction", "health"):
                outcomes.append(
                    Outcome(kind, p.version, p.variant, "no_reference", p.ok_total, {}, str(exc))
                )
            continue
        for kind in ("data", "prediction"):
            outcomes.append(
                guarded(kind, p, partial(drift_outcome, kind, model, p, info, needed, limits))
            )
        outcomes.append(
            guarded("health", p, partial(health_outcome, model, p, window, needed, limits))
        )
    cpu = (time.thread_time() - cpu0) / max(1, len(outcomes))
    return _store(model, window, outcomes, cpu)


def _store(
    model: str, window: Window, outcomes: Sequence[Outcome], cpu: float
) -> tuple[list[MonitorResult], list[alerts.Alert], int]:
    now = utcnow()
    raised: list[alerts.Alert] = []
    try:
        with transaction() as s:
            existing = {
                (r.version, r.variant, r.kind): r
                for r in s.scalars(
                    select(MonitorResultRow).where(
                        MonitorResultRow.model == model,
                        MonitorResultRow.window_start == window.start,
                    )
                )
            }
            stored = []
            for o in outcomes:
                old = existing.get((o.version, o.variant, o.kind))
                attempts = 1
                if old is not None:
                    if not old.provisional and old.status != "failed":
                        continue  # final and good: a concurrent run got here first
                    attempts = old.attempts + 1 if old.status == "failed" else 1
                    if old.drift_result_id is not None:
                        s.execute(
                            delete(DriftResultRow).where(DriftResultRow.id == old.drift_result_id)
                        )
                    s.delete(old)
                    s.flush()
                drift_id = None
                if o.drift is not None:
                    drift_id = drift_store.insert(
                        s,
                        model=model,
                        version=o.version,
                        kind=o.kind,
                        window_start=window.start,
                        window_end=window.end,
                        reference=o.reference,
                        result=o.drift,
                        variant=o.variant,
                    ).id
                new_alerts = []
                if not window.provisional:  # alerts wait for the window to close
                    for c in o.conditions:
                        a = alerts.raise_in(s, model=model, version=o.version, condition=c)
                        if a is not None:
                            new_alerts.append(a)
                row = MonitorResultRow(
                    model=model,
                    version=o.version,
                    variant=o.variant,
                    kind=o.kind,
                    window_start=window.start,
                    window_end=window.end,
                    status=o.status,
                    provisional=window.provisional,
                    rows=int(o.rows),
                    figures=o.figures,
                    message=o.message,
                    drift_result_id=drift_id,
                    alert_ids=[a.id for a in new_alerts],
                    attempts=attempts,
                    computed_at=now,
                    cpu_s=cpu,
                )
                s.add(row)
                s.flush()
                stored.append(result_of(row))
                raised += new_alerts
    except IntegrityError:
        log.info("window %s of %s was stored by another process", window.start, model)
        return [], [], 1
    return stored, [alerts.notify(a) for a in raised], 0


# ------------------------------------------------------------------------ the job


def run_due(
    *,
    model: str | None = None,
    now: dt.datetime | None = None,
    include_current: bool = False,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    max_windows: int = MAX_WINDOWS,
    on_drift: Callable[[], list[int]] | None = None,
    progress: Progress | None = None,
) -> RunReport:
    """Compute every due window of every model with traffic (or of ``model``); see the
    module's docstring. ``since`` reaches further back than ``MONITOR_LOOKBACK_HOURS``
    (the simulator's past days); ``until`` stops at a time before now. ``on_drift`` is called
    once when the windows raised a drift alert and returns the retraining runs it queued: the
    retraining side passes its drift policy in, so monitoring never depends on retraining."""
    cpu0 = time.process_time()
    now = now or utcnow()
    report = RunReport()
    _apply_requests(report)
    lookback = now - dt.timedelta(hours=get_settings().monitor_lookback_hours)
    since = since or lookback
    settings = all_model_settings()
    if model is not None:
        if model not in settings:
            raise NotFound(f"no model named {model!r}")
        names = [model]
    else:
        names = monitored_models(since)
    for i, name in enumerate(names):
        try:
            length = window_length(settings.get(name))
            windows = due_windows(
                name,
                now=now,
                length=length,
                since=since,
                until=until,
                include_current=include_current,
                limit=max_windows,
            )
            for j, window in enumerate(windows):
                results, raised, skipped = compute_window(
                    name, window, model_settings=settings.get(name, {})
                )
                report.windows += 1 - skipped
                report.skipped += skipped
                report.results += results
                report.alerts += raised
                report.failures += [
                    f"{name}@{r.version} {r.variant} {r.kind} {r.window_start:%Y-%m-%d %H:%M}: "
                    f"{r.message}"
                    for r in results
                    if r.status == "failed"
                ]
                if progress:
                    progress(
                        (i + (j + 1) / len(windows)) / len(names),
                        f"{name}: window {j + 1}/{len(windows)}",
                    )
        except Exception as exc:  # noqa: BLE001 - one model's failure never stops the others
            log.exception("monitoring %s failed", name)
            report.failures.append(f"{name}: {type(exc).__name__}: {exc}")
    if on_drift is not None and any(a.kind in alerts.DRIFT_ALERT_KINDS for a in report.alerts):
        report.retrains = on_drift()
    report.cpu_s = time.process_time() - cpu0
    return report


# ------------------------------------------------------------------------ recomputation


def request_recompute(*, actor: Actor, model: str, since: dt.datetime) -> int:
    """Queue a recomputation of ``model``'s windows from ``since`` for the worker."""
    require(actor, "operate", "recompute monitoring")
    registry.get_model(model)
    if since.tzinfo is None:
        raise BadInput("give the time with a time zone")
    with transaction() as s:
        row = MonitorRequestRow(
            model=model, since=since, requested_by=actor.username, requested_at=utcnow(), outcome=""
        )
        s.add(row)
        s.flush()
        return int(row.id)


def pending_requests(
    model: str | None = None,
) -> list[tuple[int, str, dt.datetime, str, dt.datetime]]:
    """(id, model, since, requested_by, requested_at) of requests not carried out yet."""
    with transaction(write=False) as s:
        q = select(
            MonitorRequestRow.id,
            MonitorRequestRow.model,
            MonitorRequestRow.since,
            MonitorRequestRow.requested_by,
            MonitorRequestRow.requested_at,
        ).where(MonitorRequestRow.done_at.is_(None))
        if model is not None:
            q = q.where(MonitorRequestRow.model == model)
        return [tuple(r) for r in s.execute(q.order_by(MonitorRequestRow.id))]  # type: ignore[misc]


def _apply_requests(report: RunReport) -> None:
    """Drop the results a request asks to recompute; this run then computes them again."""
    for request_id, model, since, who, _at in pending_requests():
        with transaction() as s:
            row = s.get(MonitorRequestRow, request_id, with_for_update=True)
            if row is None or row.done_at is not None:
                continue
            old = s.scalars(
                select(MonitorResultRow).where(
                    MonitorResultRow.model == model, MonitorResultRow.window_start >= since
                )
            ).all()
            drift_ids = [r.drift_result_id for r in old if r.drift_result_id is not None]
            if drift_ids:
                s.execute(delete(DriftResultRow).where(DriftResultRow.id.in_(drift_ids)))
            for r in old:
                s.delete(r)
            row.done_at = utcnow()
            row.outcome = (
                f"{len(old)} results from {since:%Y-%m-%d %H:%M} dropped for recomputation"
            )
        log.info("recomputing %s from %s (asked by %s)", model, since, who)
