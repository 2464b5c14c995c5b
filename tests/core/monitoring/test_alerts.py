"""Alerts, on SQLite and Postgres: raised once per open condition from drift and traffic,
per-model thresholds, resolving by operators, and the webhook."""

from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from core import monitoring, registry
from core.accounts.auth import SYSTEM
from core.config import reset_settings
from core.data import datasets
from core.data.generator import generate_users
from core.errors import BadInput, NotFound, PermissionDenied
from core.monitoring import alerts
from tests.fixtures.predictions import OPERATOR, T0, VIEWER, rec

# ------------------------------------------------------------------------ alerts


def test_drift_alerts_are_raised_once_per_open_condition(backend) -> None:
    columns = {
        "beaches": {"drifted": True, "method": "wasserstein", "score": 0.8, "threshold": 0.1},
        "museums": {"drifted": True, "method": "wasserstein", "score": 0.12, "threshold": 0.1},
        "zoo": {"drifted": False, "method": "wasserstein", "score": 0.01, "threshold": 0.1},
    }
    raised = alerts.check_drift(
        model="recsys", version="1.0.0", kind="data", drift_share=0.6, columns=columns
    )
    assert sorted((a.kind, a.subject, a.severity) for a in raised) == [
        ("drift_share", "data", "critical"),
        ("feature_drift", "data:beaches", "warning"),
    ]
    again = alerts.check_drift(
        model="recsys", version="1.0.0", kind="data", drift_share=0.7, columns=columns
    )
    assert again == []
    assert len(alerts.list_alerts("recsys")) == 2
    # Predictions move together when inputs move: one share alert, no per-column ones.
    predicted = alerts.check_drift(
        model="recsys", version=None, kind="prediction", drift_share=0.4, columns=columns
    )
    assert [(a.kind, a.subject, a.severity) for a in predicted] == [
        ("drift_share", "prediction", "warning")
    ]
    calm = alerts.check_drift(
        model="other", version=None, kind="data", drift_share=0.1, columns={"zoo": columns["zoo"]}
    )
    assert calm == [] and alerts.list_alerts("other") == []


def test_resolving_needs_an_operator_and_reopens_the_condition(backend) -> None:
    alert = alerts.raise_alert(
        model="recsys",
        version=None,
        kind="error_rate",
        subject="",
        value=0.2,
        threshold=0.05,
        message="recsys: 20% failed",
    )
    assert alert is not None and alert.status == "open"
    with pytest.raises(PermissionDenied, match="may not resolve alerts"):
        alerts.resolve(actor=VIEWER, alert_id=alert.id)
    assert alerts.list_alerts()[0].status == "open"
    done = alerts.resolve(actor=OPERATOR, alert_id=alert.id)
    assert (done.status, done.resolved_by) == ("resolved", "olga")
    assert done.resolved_at is not None
    with pytest.raises(BadInput, match="already resolved"):
        alerts.resolve(actor=OPERATOR, alert_id=alert.id)
    with pytest.raises(NotFound):
        alerts.resolve(actor=OPERATOR, alert_id=alert.id + 100)
    assert alerts.list_alerts() == []
    assert [a.id for a in alerts.list_alerts(status=None)] == [alert.id]
    # The condition comes back: a new alert, the resolved one is kept as it was.
    new = alerts.raise_alert(
        model="recsys",
        version=None,
        kind="error_rate",
        subject="",
        value=0.3,
        threshold=0.05,
        message="again",
    )
    assert new is not None and new.id != alert.id
    assert alerts.list_alerts(status="resolved")[0].resolved_by == "olga"
    with pytest.raises(BadInput, match="unknown alert kind"):
        alerts.raise_alert(
            model="recsys", version=None, kind="mood", subject="", value=1, threshold=0, message=""
        )


def _last_hour_conditions(model: str, now: dt.datetime) -> list[alerts.Condition]:
    """The traffic conditions of the last hour's figures against the model's thresholds."""
    s = monitoring.summary(model, hours=1, until=now)
    figures = alerts.TrafficFigures(s.requests, s.error_rate, s.latency_p99_ms, s.click_through)
    return alerts.traffic_conditions(
        alerts.thresholds(model), model=model, figures=figures, span="in the last 1 h"
    )


def test_traffic_alerts_and_per_model_thresholds(backend, tmp_path: Path) -> None:
    now = T0 + dt.timedelta(hours=5)
    recent = now - dt.timedelta(minutes=30)
    monitoring.write_batch(
        [rec(recent, latency=400.0) for _ in range(54)]
        + [rec(recent, error="boom") for _ in range(6)]
    )
    conditions = _last_hour_conditions("recsys", now)
    raised = alerts.raise_all(model="recsys", version=None, conditions=conditions)
    assert sorted(a.kind for a in raised) == ["error_rate", "latency_p99_ms"]
    assert alerts.raise_all(model="recsys", version=None, conditions=conditions) == []  # still open
    # Too few requests to judge a rate.
    monitoring.write_batch([rec(recent, model="tiny", error="boom") for _ in range(10)])
    tiny = _last_hour_conditions("tiny", now)
    assert alerts.raise_all(model="tiny", version=None, conditions=tiny) == []

    users = tmp_path / "users.csv"
    generate_users(60, seed=1).to_csv(users, index=False)
    datasets.ingest(users, name="madrid", actor=SYSTEM)
    registry.create_model(
        actor=SYSTEM, name="calm", family="popularity", settings={"alerts": {"drift_share": 0.9}}
    )
    assert alerts.thresholds("calm")["drift_share"] == 0.9
    share_only = {"zoo": {"drifted": True, "method": "wasserstein", "score": 0.2}}
    assert (
        alerts.check_drift(
            model="calm", version=None, kind="data", drift_share=0.6, columns=share_only
        )
        == []
    )
    registry.update_model(actor=SYSTEM, name="calm", settings={"alerts": {"typo": 1}})
    with pytest.raises(BadInput, match="unknown alert thresholds"):
        alerts.thresholds("calm")


class _Hook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_the_webhook_gets_each_new_alert_and_its_failure_keeps_the_alert(
    sqlite_backend, monkeypatch
) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("ALERT_WEBHOOK_URL", f"http://127.0.0.1:{server.server_port}/hook")
        reset_settings()
        (sent,) = alerts.check_drift(
            model="recsys", version="1.0.0", kind="prediction", drift_share=0.5, columns={}
        )
        assert sent.webhook == "sent: HTTP 204"
        assert _Hook.received[-1]["id"] == sent.id
        assert _Hook.received[-1]["kind"] == "drift_share"
    finally:
        server.shutdown()
        server.server_close()
    monkeypatch.setenv("ALERT_WEBHOOK_URL", f"http://127.0.0.1:{server.server_port}/gone")
    reset_settings()
    (failed,) = alerts.check_drift(
        model="recsys", version="1.0.0", kind="data", drift_share=0.5, columns={}
    )
    assert failed.webhook is not None and failed.webhook.startswith("failed:")
    stored = {a.id: a for a in alerts.list_alerts()}
    assert stored[failed.id].webhook == failed.webhook
