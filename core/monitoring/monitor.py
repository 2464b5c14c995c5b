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
then queue a retraining run through the retrain-on-drift policy of :mod:`core.retraining.schedules`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import orjson
import pandas as pd
from sqlalchemy import Text, delete, func, select, type_coerce
from sqlalchemy.exc import IntegrityError

from core import registry
from core.accounts.auth import Actor, require
from core.config import get_settings
from core.data.categories import CATEGORIES
from core.db import transaction, utcnow
from core.db.tables import (
    DriftResultRow,
    FeedbackRow,
    ModelRow,
    MonitorRequestRow,
    MonitorResultRow,
    PredictionLogRow,
    RollupRow,
)
from core.errors import BadInput, NotFound
from core.metrics import health
from core.monitoring import alerts, drift, drift_store

log = logging.getLogger(__name__)

KINDS = ("traffic", "data", "prediction", "health")
STATUSES = ("ok", "too_few_rows", "no_reference", "failed")
VARIANTS = ("production", "canary")  # previews and simulations are not monitored traffic
MAX_ATTEMPTS = 3
RETRY_AFTER = dt.timedelta(minutes=5)
MAX_WINDOWS = 500  # per model and run: a long outage is caught up over several runs
MAX_ROWS = 20_000  # per window and pair; above, every n-th request by id (as for drift)
BASELINE_DAYS = 7
CHURN_DAYS = 7  # how long after a promotion list churn is computed, and how far back
Progress = Callable[[float, str], None]


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


def _result(row: MonitorResultRow) -> MonitorResult:
    return MonitorResult(
        **{name: getattr(row, name) for name in MonitorResult.__dataclass_fields__}
    )


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


# ------------------------------------------------------------------------ windows


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


def _model_settings() -> dict[str, dict[str, Any]]:
    with transaction(write=False) as s:
        return {
            name: dict(st or {}) for name, st in s.execute(select(ModelRow.name, ModelRow.settings))
        }


def _monitored_models(since: dt.datetime) -> list[str]:
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


# ------------------------------------------------------------------------ reading the log


@dataclass
class _Pair:
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


def _read_window(model: str, window: Window) -> dict[tuple[str, str], _Pair]:
    cond = [
        PredictionLogRow.model == model,
        PredictionLogRow.ts >= window.start,
        PredictionLogRow.ts < window.end,
        PredictionLogRow.variant.in_(VARIANTS),
    ]
    pairs: dict[tuple[str, str], _Pair] = {}
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
                p = pairs[(version, variant)] = _Pair(version, variant)
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


def _baseline(model: str, variant: str, window: Window) -> tuple[float | None, float | None]:
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


def _previous_lists(
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


# ------------------------------------------------------------------------ computing


@dataclass
class _Outcome:
    """One kind of one pair, ready to store."""

    kind: str
    version: str
    variant: str
    status: str
    rows: int
    figures: dict[str, Any]
    message: str = ""
    drift: drift.DriftResult | None = None
    reference: str = ""
    conditions: list[alerts.Condition] = field(default_factory=list)


_item_stats: health.ItemStats | None = None


def _catalogue_stats() -> health.ItemStats:
    global _item_stats
    if _item_stats is None:
        from core.data import catalogue

        cat = catalogue.load()
        _item_stats = health.item_stats(cat.place_ids.tolist(), cat.reviews)
    return _item_stats


def _traffic(model: str, p: _Pair, window: Window, limits: dict[str, float]) -> _Outcome:
    lat = np.asarray(p.latencies, dtype=float)
    volume, ctr0 = _baseline(model, p.variant, window)
    fig = alerts.TrafficFigures(
        requests=p.requests,
        error_rate=p.errors / p.requests if p.requests else 0.0,
        latency_p99_ms=float(np.percentile(lat, 99)) if len(lat) else math.nan,
        click_through=p.clicks / p.requests if p.requests else 0.0,
        baseline_requests=volume,
        baseline_click_through=ctr0,
    )
    prefix = "canary " if p.variant == "canary" else ""
    conditions = alerts.traffic_conditions(
        limits, model=model, figures=fig, span=window.span, prefix=prefix
    )
    figures = health.clean(
        {
            "requests": p.requests,
            "errors": p.errors,
            "error_rate": fig.error_rate,
            "latency_p50_ms": float(np.percentile(lat, 50)) if len(lat) else math.nan,
            "latency_p99_ms": fig.latency_p99_ms,
            "clicks": p.clicks,
            "click_through": fig.click_through,
            "baseline_requests": volume,
            "baseline_click_through": ctr0,
        }
    )
    status = "ok" if p.requests >= limits["min_requests"] else "too_few_rows"
    message = (
        "" if status == "ok" else f"{p.requests} requests; rates need {limits['min_requests']:g}"
    )
    return _Outcome(
        "traffic", p.version, p.variant, status, p.requests, figures, message, conditions=conditions
    )


def _too_few(kind: str, p: _Pair, needed: int) -> _Outcome:
    return _Outcome(
        kind,
        p.version,
        p.variant,
        "too_few_rows",
        p.ok_total,
        {},
        f"{p.ok_total} successful requests; {kind} drift needs {needed}"
        if kind in ("data", "prediction")
        else f"{p.ok_total} successful requests; health figures need {needed}",
    )


def _data(model: str, p: _Pair, info: Any, needed: int, limits: dict[str, float]) -> _Outcome:
    if p.ok_total < needed or p.ok is None:
        return _too_few("data", p, needed)
    try:
        ref, label = drift_store.cached_reference_ratings(info)
    except drift_store.NoReference as exc:
        return _Outcome("data", p.version, p.variant, "no_reference", p.ok_total, {}, str(exc))
    current = pd.DataFrame(
        np.asarray(p.ok["ratings"].tolist(), dtype=float), columns=list(CATEGORIES)
    )
    result = drift.compute(ref, current, numeric=list(CATEGORIES), trusted=True)
    if p.ok.attrs.get("step", 1) > 1:
        result.sampling += f"; logs thinned to every {p.ok.attrs['step']}th request by id"
    columns = {c: d.as_dict(with_noise=True) for c, d in result.columns.items()}
    conditions = alerts.drift_conditions(
        limits,
        model=model,
        kind="data",
        drift_share=result.drift_share,
        columns=columns,
        rows=result.n_current,
        prefix="canary " if p.variant == "canary" else "",
    )
    return _Outcome(
        "data",
        p.version,
        p.variant,
        "ok",
        p.ok_total,
        _drift_figures(result),
        drift=result,
        reference=label,
        conditions=conditions,
    )


def _drift_figures(result: drift.DriftResult) -> dict[str, Any]:
    return {
        "drift_share": result.drift_share,
        "dataset_drift": result.dataset_drift,
        "drifted_columns": result.drifted_columns,
        "top_columns": {
            c: round(d.score, 4)
            for c, d in sorted(result.columns.items(), key=lambda kv: -kv[1].score)[:5]
        },
    }


def _prediction(model: str, p: _Pair, info: Any, needed: int, limits: dict[str, float]) -> _Outcome:
    usable = p.ok[p.ok["predicted"].notna()] if p.ok is not None else None
    if usable is None or len(usable) < needed:
        return _too_few("prediction", p, needed)
    try:
        ref, label = drift_store.prediction_reference(info)
    except drift_store.NoReference as exc:
        return _Outcome(
            "prediction", p.version, p.variant, "no_reference", len(usable), {}, str(exc)
        )
    current = drift_store.predictions_of(
        np.asarray(usable["ratings"].tolist(), dtype=float),
        np.asarray(usable["predicted"].tolist(), dtype=float),
    )
    result = drift.compute(
        ref,
        current,
        numeric=[drift_store.PRED_PREFIX + c for c in CATEGORIES],
        categorical=[drift_store.TOP_CATEGORY],
        trusted=True,
    )
    conditions = alerts.drift_conditions(
        limits,
        model=model,
        kind="prediction",
        drift_share=result.drift_share,
        columns={},
        rows=result.n_current,
        prefix="canary " if p.variant == "canary" else "",
    )
    return _Outcome(
        "prediction",
        p.version,
        p.variant,
        "ok",
        len(usable),
        _drift_figures(result),
        drift=result,
        reference=label,
        conditions=conditions,
    )


def _health(
    model: str, p: _Pair, window: Window, needed: int, limits: dict[str, float]
) -> _Outcome:
    if p.ok_total < needed or p.ok is None:
        return _too_few("health", p, needed)
    figures = health.figures(
        p.ok["places"].tolist(), p.ok["categories"].tolist(), _catalogue_stats()
    )
    if p.variant == "production":
        users = [u for u in p.ok["user_id"].tolist() if u]
        previous = _previous_lists(model, p.version, window, users) if users else None
        if previous is not None:
            current = {
                u: list(pl) for u, pl in zip(p.ok["user_id"], p.ok["places"], strict=True) if u
            }
            figures["churn"] = health.churn(previous, current)
            figures["churn_users"] = sum(u in previous for u in current)
    figures = health.clean(figures)
    conditions = alerts.health_conditions(
        limits, model=model, figures=figures, prefix="canary " if p.variant == "canary" else ""
    )
    return _Outcome(
        "health", p.version, p.variant, "ok", p.ok_total, figures, conditions=conditions
    )


def _guarded(kind: str, p: _Pair, compute: Callable[[], _Outcome]) -> _Outcome:
    """One kind's outcome; a failure is recorded as such and retried later."""
    try:
        return compute()
    except Exception as exc:  # noqa: BLE001 - a failure is stored and shown, never lost
        log.exception("monitoring %s of %s@%s failed", kind, p.version, p.variant)
        return _Outcome(
            kind,
            p.version,
            p.variant,
            "failed",
            p.ok_total,
            {},
            f"{type(exc).__name__}: {exc}"[:2000],
        )


def compute_window(
    model: str, window: Window, *, model_settings: dict[str, Any] | None = None
) -> tuple[list[MonitorResult], list[alerts.Alert], int]:
    """Compute and store one window of ``model``; (results, new alerts, windows skipped).

    Everything of the window is written in one transaction: its results, drift results and
    alerts. When another process stored the window first, the unique key refuses the second
    copy and this returns nothing stored (skipped = 1).
    """
    cpu0 = time.thread_time()
    settings = model_settings if model_settings is not None else _model_settings().get(model, {})
    limits = alerts.thresholds(model)
    needed = min_rows(settings)
    pairs = _read_window(model, window)
    if not pairs:
        # Nothing logged: judged against the version that served by the window's end.
        version = registry.production_at(model, min(window.end, utcnow()))
        if version is None:
            return [], [], 0
        pairs = {(version, "production"): _Pair(version, "production", ok=None)}
    outcomes: list[_Outcome] = []
    for p in pairs.values():
        outcomes.append(_guarded("traffic", p, partial(_traffic, model, p, window, limits)))
        try:
            info = registry.get_version(model, p.version)
        except NotFound as exc:
            for kind in ("data", "prediction", "health"):
                outcomes.append(
                    _Outcome(kind, p.version, p.variant, "no_reference", p.ok_total, {}, str(exc))
                )
            continue
        outcomes.append(_guarded("data", p, partial(_data, model, p, info, needed, limits)))
        outcomes.append(
            _guarded("prediction", p, partial(_prediction, model, p, info, needed, limits))
        )
        outcomes.append(_guarded("health", p, partial(_health, model, p, window, needed, limits)))
    cpu = (time.thread_time() - cpu0) / max(1, len(outcomes))
    return _store(model, window, outcomes, cpu)


def _store(
    model: str, window: Window, outcomes: Sequence[_Outcome], cpu: float
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
                stored.append(_result(row))
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
    settings = _model_settings()
    if model is not None:
        if model not in settings:
            raise NotFound(f"no model named {model!r}")
        names = [model]
    else:
        names = _monitored_models(since)
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


# ------------------------------------------------------------------------ reading results


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
        return [_result(r) for r in reversed(rows)]


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
        return [_result(r) for r in rows]
