"""Alerts: thresholds on drift and service health that turn figures into something to act on.

An alert is raised once per open condition (same model, kind and subject), so a drift episode
is one alert, not one per day; it stays open until an operator resolves it. Thresholds have
defaults and may be set per model in ``settings["alerts"]``. A webhook, when configured
(``ALERT_WEBHOOK_URL``), receives each new alert as JSON; its outcome is stored with the alert
and a failing webhook never loses the alert.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from core import monitoring
from core.auth import Actor, require
from core.config import get_settings
from core.db import ModelRow, transaction, utcnow
from core.errors import BadInput, NotFound
from core.telemetry_tables import AlertRow

log = logging.getLogger(__name__)

DEFAULT_THRESHOLDS: dict[str, float] = {
    "drift_share": 0.3,  # share of drifted columns of one result
    "feature_drift": 0.3,  # one column's drift score (three times the test threshold)
    "error_rate": 0.05,  # over the checked window
    "latency_p99_ms": 250.0,
    "min_requests": 50,  # below this a window's rates are noise
    # Below this many rows a distance of 0.1 is within sampling noise for many columns, so
    # the share of drifted columns says little; per-feature alerts (0.3) still fire.
    "min_rows_for_share": 1000,
}
KINDS = ("drift_share", "feature_drift", "error_rate", "latency_p99_ms")


@dataclass(frozen=True)
class Alert:
    id: int
    created_at: dt.datetime
    model: str
    version: str | None
    kind: str
    subject: str
    severity: str
    message: str
    value: float
    threshold: float
    status: str
    resolved_at: dt.datetime | None
    resolved_by: str | None
    webhook: str | None


def _alert(row: AlertRow) -> Alert:
    return Alert(
        row.id,
        row.created_at,
        row.model,
        row.version,
        row.kind,
        row.subject,
        row.severity,
        row.message,
        row.value,
        row.threshold,
        row.status,
        row.resolved_at,
        row.resolved_by,
        row.webhook,
    )


def thresholds(model: str) -> dict[str, float]:
    with transaction(write=False) as s:
        settings = s.scalar(select(ModelRow.settings).where(ModelRow.name == model)) or {}
    configured: Mapping[str, Any] = settings.get("alerts") or {}
    unknown = set(configured) - set(DEFAULT_THRESHOLDS)
    if unknown:
        raise BadInput(f"unknown alert thresholds for {model!r}: {sorted(unknown)}")
    return {**DEFAULT_THRESHOLDS, **{k: float(v) for k, v in configured.items()}}


def _send_webhook(url: str, alert: Alert) -> str:
    body = json.dumps(
        {
            "id": alert.id,
            "model": alert.model,
            "version": alert.version,
            "kind": alert.kind,
            "subject": alert.subject,
            "severity": alert.severity,
            "message": alert.message,
            "value": alert.value,
            "threshold": alert.threshold,
            "created_at": alert.created_at.isoformat(),
        }
    ).encode()
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - operator URL
            return f"sent: HTTP {response.status}"
    except Exception as exc:  # noqa: BLE001 - the alert is kept whatever the webhook does
        log.warning("alert webhook failed: %s", exc)
        return f"failed: {type(exc).__name__}: {exc}"[:255]


def raise_alert(
    *,
    model: str,
    version: str | None,
    kind: str,
    subject: str,
    value: float,
    threshold: float,
    message: str,
    severity: str = "warning",
) -> Alert | None:
    """Record an alert unless the same condition is already open; returns the new one."""
    if kind not in KINDS:
        raise BadInput(f"unknown alert kind {kind!r}")
    with transaction() as s:
        existing = s.scalar(
            select(AlertRow.id).where(
                AlertRow.model == model,
                AlertRow.kind == kind,
                AlertRow.subject == subject,
                AlertRow.status == "open",
            )
        )
        if existing is not None:
            return None
        row = AlertRow(
            created_at=utcnow(),
            model=model,
            version=version,
            kind=kind,
            subject=subject,
            severity=severity,
            message=message,
            value=float(value),
            threshold=float(threshold),
            status="open",
        )
        s.add(row)
        s.flush()
        alert = _alert(row)
    url = get_settings().alert_webhook_url
    if url:
        outcome = _send_webhook(url, alert)
        with transaction() as s:
            stored = s.get(AlertRow, alert.id)
            if stored is not None:
                stored.webhook = outcome
        alert = Alert(**{**alert.__dict__, "webhook": outcome})
    log.warning("alert: %s", message)
    return alert


def check_drift(
    *,
    model: str,
    version: str | None,
    kind: str,
    drift_share: float,
    columns: Mapping[str, Any],
    rows: int | None = None,
) -> list[Alert]:
    limits = thresholds(model)
    raised = []
    enough = rows is None or rows >= limits["min_rows_for_share"]
    if enough and drift_share >= limits["drift_share"]:
        a = raise_alert(
            model=model,
            version=version,
            kind="drift_share",
            subject=kind,
            value=drift_share,
            threshold=limits["drift_share"],
            message=f"{kind} drift of {model}: {drift_share:.0%} of the columns drifted "
            f"(alert at {limits['drift_share']:.0%})",
            severity="critical" if drift_share >= 0.5 else "warning",
        )
        raised.append(a)
    # Per-feature alerts are for inputs; predictions move together when inputs move, and the
    # share alert already says so.
    for column, d in columns.items() if kind == "data" else ():
        if float(d["score"]) >= limits["feature_drift"]:
            raised.append(
                raise_alert(
                    model=model,
                    version=version,
                    kind="feature_drift",
                    subject=f"{kind}:{column}",
                    value=float(d["score"]),
                    threshold=limits["feature_drift"],
                    message=f"{column!r} drifted for {model} ({d['method']} "
                    f"{float(d['score']):.3f} ≥ {limits['feature_drift']})",
                )
            )
    return [a for a in raised if a is not None]


def check_traffic(model: str, *, hours: int = 1, until: dt.datetime | None = None) -> list[Alert]:
    """Error rate and p99 latency of the last ``hours`` against the thresholds."""
    limits = thresholds(model)
    s = monitoring.summary(model, hours=hours, until=until)
    if s.requests < limits["min_requests"]:
        return []
    raised = []
    if s.error_rate >= limits["error_rate"]:
        raised.append(
            raise_alert(
                model=model,
                version=None,
                kind="error_rate",
                subject="",
                value=s.error_rate,
                threshold=limits["error_rate"],
                message=f"{model}: {s.error_rate:.1%} of {s.requests} requests failed in the "
                f"last {hours} h (alert at {limits['error_rate']:.1%})",
                severity="critical",
            )
        )
    if not math.isnan(s.latency_p99_ms) and s.latency_p99_ms >= limits["latency_p99_ms"]:
        raised.append(
            raise_alert(
                model=model,
                version=None,
                kind="latency_p99_ms",
                subject="",
                value=s.latency_p99_ms,
                threshold=limits["latency_p99_ms"],
                message=f"{model}: p99 latency {s.latency_p99_ms:.0f} ms in the last {hours} h "
                f"(alert at {limits['latency_p99_ms']:.0f} ms)",
            )
        )
    return [a for a in raised if a is not None]


def list_alerts(
    model: str | None = None, *, status: str | None = "open", limit: int = 200
) -> list[Alert]:
    with transaction(write=False) as s:
        q = select(AlertRow).order_by(AlertRow.created_at.desc(), AlertRow.id.desc()).limit(limit)
        if model is not None:
            q = q.where(AlertRow.model == model)
        if status is not None:
            q = q.where(AlertRow.status == status)
        return [_alert(r) for r in s.scalars(q)]


def resolve(*, actor: Actor, alert_id: int) -> Alert:
    require(actor, "operate", "resolve alerts")
    with transaction() as s:
        row = s.get(AlertRow, alert_id, with_for_update=True)
        if row is None:
            raise NotFound(f"no alert #{alert_id}")
        if row.status != "open":
            raise BadInput(f"alert #{alert_id} is already {row.status}")
        row.status, row.resolved_at, row.resolved_by = "resolved", utcnow(), actor.username
        return _alert(row)
