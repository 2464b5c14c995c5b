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

from core.accounts.auth import Actor, require
from core.config import get_settings
from core.db import transaction, utcnow
from core.db.tables import AlertRow, ModelRow
from core.errors import BadInput, NotFound
from core.monitoring import drift

log = logging.getLogger(__name__)

DEFAULT_THRESHOLDS: dict[str, float] = {
    "drift_share": 0.3,  # share of drifted columns of one result
    "feature_drift": drift.THRESHOLD,  # one column's drift score: the column has drifted
    "error_rate": 0.05,  # over the checked window
    "latency_p99_ms": 250.0,
    "min_requests": 50,  # below this a window's rates are noise
    # Below this many rows a distance of 0.1 is within sampling noise for many columns, so
    # the share of drifted columns says little; per-feature alerts (0.3) still fire.
    "min_rows_for_share": 1000,
    "volume_drop": 0.5,  # a window with less than half its usual requests
    "ctr_drop": 0.5,  # click-through below half of the previous days'
    # Label-free recommendation health (core.metrics.health); 0 or 1 leaves a check off.
    "health_coverage_min": 0.0,
    "health_mean_popularity_max": 1.0,
    "health_gini_max": 1.0,
    "health_diversity_min": 0.0,
    "health_personalisation_min": 0.0,
    "health_churn_max": 1.0,
}
NOISE_FACTOR = 4.0  # a column's score must reach this many times its sampling noise to alert
KINDS = (
    "drift_share",
    "feature_drift",
    "error_rate",
    "latency_p99_ms",
    "volume_drop",
    "ctr_drop",
    "health",
    "rollout",  # a rollout plan rolled back: a guardrail broke (core.rollout)
)
# The kinds that mean the traffic no longer looks like the training data: they queue a retrain.
DRIFT_ALERT_KINDS = ("drift_share", "feature_drift")


@dataclass(frozen=True)
class Condition:
    """A threshold crossed, before it is recorded: checks return these, so that the
    monitoring job can record a window's figures and its alerts in one transaction."""

    kind: str
    subject: str
    value: float
    threshold: float
    message: str
    severity: str = "warning"


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

    def as_dict(self) -> dict[str, Any]:
        """For scripts: every field, plus the variant, the column a drift alert names and
        the figures (value against threshold)."""
        out: dict[str, Any] = dict(self.__dict__)
        out["created_at"] = self.created_at.isoformat()
        out["resolved_at"] = None if self.resolved_at is None else self.resolved_at.isoformat()
        column = self.subject.split(":", 1)[1] if ":" in self.subject else None
        out["variant"] = "canary" if self.subject.startswith("canary") else "production"
        out["columns"] = [column] if column else []
        out["figures"] = {"value": self.value, "threshold": self.threshold}
        return out


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
    condition = Condition(kind, subject, value, threshold, message, severity)
    with transaction() as s:
        alert = raise_in(s, model=model, version=version, condition=condition)
    return None if alert is None else notify(alert)


def raise_all(*, model: str, version: str | None, conditions: list[Condition]) -> list[Alert]:
    """Record each condition that is not open already, in one transaction; the new alerts
    (webhooks sent after the commit)."""
    with transaction() as s:
        raised = [raise_in(s, model=model, version=version, condition=c) for c in conditions]
    return [notify(a) for a in raised if a is not None]


def raise_in(s: Any, *, model: str, version: str | None, condition: Condition) -> Alert | None:
    """Record an alert inside the caller's transaction unless the same condition is open.

    The webhook is not called here (the transaction may still roll back): call
    :func:`notify` with what this returned once the transaction has committed.
    """
    kind, subject = condition.kind, condition.subject
    if kind not in KINDS:
        raise BadInput(f"unknown alert kind {kind!r}")
    value, threshold = condition.value, condition.threshold
    message, severity = condition.message, condition.severity
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
    return _alert(row)


def notify(alert: Alert) -> Alert:
    """Log a committed alert and send it to the webhook, if one is configured."""
    url = get_settings().alert_webhook_url
    if url:
        outcome = _send_webhook(url, alert)
        with transaction() as s:
            stored = s.get(AlertRow, alert.id)
            if stored is not None:
                stored.webhook = outcome
        alert = Alert(**{**alert.__dict__, "webhook": outcome})
    log.warning("alert: %s", alert.message)
    return alert


def drift_conditions(
    limits: Mapping[str, float],
    *,
    model: str,
    kind: str,
    drift_share: float,
    columns: Mapping[str, Any],
    rows: int | None = None,
    prefix: str = "",
) -> list[Condition]:
    """The drift thresholds a result crosses. ``prefix`` names a canary's subjects apart
    ("canary data:museums"), so its conditions never merge with production's."""
    out = []
    enough = rows is None or rows >= limits["min_rows_for_share"]
    if enough and drift_share >= limits["drift_share"]:
        out.append(
            Condition(
                "drift_share",
                f"{prefix}{kind}",
                drift_share,
                limits["drift_share"],
                f"{prefix}{kind} drift of {model}: {drift_share:.0%} of the columns drifted "
                f"(alert at {limits['drift_share']:.0%})",
                "critical" if drift_share >= 0.5 else "warning",
            )
        )
    # Per-feature alerts are for inputs; predictions move together when inputs move, and the
    # share alert already says so.
    # A column alerts at its threshold, or at NOISE_FACTOR times the score sampling alone
    # gives windows of that size, whichever is higher: small windows no longer cry wolf.
    for column, d in columns.items() if kind == "data" else ():
        noise = float(d.get("noise") or 0.0)
        bound = max(limits["feature_drift"], NOISE_FACTOR * noise)
        if float(d["score"]) >= bound:
            why = "" if bound == limits["feature_drift"] else f", {NOISE_FACTOR:g}× its noise"
            out.append(
                Condition(
                    "feature_drift",
                    f"{prefix}{kind}:{column}",
                    float(d["score"]),
                    bound,
                    f"{column!r} drifted for {model}{' (canary)' if prefix else ''} "
                    f"({d['method']} {float(d['score']):.3f} ≥ {bound:.3g}{why})",
                )
            )
    return out


def check_drift(
    *,
    model: str,
    version: str | None,
    kind: str,
    drift_share: float,
    columns: Mapping[str, Any],
    rows: int | None = None,
) -> list[Alert]:
    conditions = drift_conditions(
        thresholds(model),
        model=model,
        kind=kind,
        drift_share=drift_share,
        columns=columns,
        rows=rows,
    )
    return raise_all(model=model, version=version, conditions=conditions)


@dataclass(frozen=True)
class TrafficFigures:
    """A window's service figures and, where the previous days give one, their baseline."""

    requests: int
    error_rate: float
    latency_p99_ms: float
    click_through: float
    baseline_requests: float | None = None
    baseline_click_through: float | None = None


def traffic_conditions(
    limits: Mapping[str, float],
    *,
    model: str,
    figures: TrafficFigures,
    span: str,
    prefix: str = "",
) -> list[Condition]:
    """Error rate, p99 latency, volume drop and click-through drop of one window."""
    f, out = figures, []
    who = f"{model}{' (canary)' if prefix else ''}"
    baseline = f.baseline_requests
    if baseline is not None and baseline >= limits["min_requests"]:
        floor = (1 - limits["volume_drop"]) * baseline
        if f.requests < floor:
            out.append(
                Condition(
                    "volume_drop",
                    prefix.strip(),
                    f.requests / baseline,
                    1 - limits["volume_drop"],
                    f"{who}: {f.requests} requests {span}, {f.requests / baseline:.0%} of the "
                    f"{baseline:.0f} usual at this time on the previous days "
                    f"(alert below {1 - limits['volume_drop']:.0%})",
                    "critical" if f.requests == 0 else "warning",
                )
            )
    if f.requests < limits["min_requests"]:
        return out
    if f.error_rate >= limits["error_rate"]:
        out.append(
            Condition(
                "error_rate",
                prefix.strip(),
                f.error_rate,
                limits["error_rate"],
                f"{who}: {f.error_rate:.1%} of {f.requests} requests failed {span} "
                f"(alert at {limits['error_rate']:.1%})",
                "critical",
            )
        )
    if not math.isnan(f.latency_p99_ms) and f.latency_p99_ms >= limits["latency_p99_ms"]:
        out.append(
            Condition(
                "latency_p99_ms",
                prefix.strip(),
                f.latency_p99_ms,
                limits["latency_p99_ms"],
                f"{who}: p99 latency {f.latency_p99_ms:.0f} ms {span} "
                f"(alert at {limits['latency_p99_ms']:.0f} ms)",
            )
        )
    ctr0 = f.baseline_click_through
    if ctr0 is not None and ctr0 > 0:
        ratio = f.click_through / ctr0
        if ratio < 1 - limits["ctr_drop"]:
            out.append(
                Condition(
                    "ctr_drop",
                    prefix.strip(),
                    ratio,
                    1 - limits["ctr_drop"],
                    f"{who}: click-through {f.click_through:.1%} {span}, {ratio:.0%} of the "
                    f"previous days' {ctr0:.1%} (alert below {1 - limits['ctr_drop']:.0%})",
                )
            )
    return out


def health_conditions(
    limits: Mapping[str, float], *, model: str, figures: Mapping[str, Any], prefix: str = ""
) -> list[Condition]:
    """Label-free health figures (core.metrics.health) past their configured bounds."""
    from core.metrics.health import METRICS

    out = []
    for name, (label, higher_better) in METRICS.items():
        value = figures.get(name)
        key = f"health_{name}_{'min' if higher_better else 'max'}"
        if value is None or key not in limits:
            continue
        bound = limits[key]
        crossed = value < bound if higher_better else value > bound
        if crossed:
            side = "below" if higher_better else "above"
            out.append(
                Condition(
                    "health",
                    f"{prefix}{name}",
                    float(value),
                    bound,
                    f"{model}{' (canary)' if prefix else ''}: {label.lower()} {value:.3f} is "
                    f"{side} its bound {bound:g}",
                )
            )
    return out


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
