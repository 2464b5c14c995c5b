"""The traffic simulator end to end: the logs, drift results and alerts of a simulated
week with a drift episode, on SQLite and Postgres."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from core import monitoring
from core.data.generator import DriftEpisode
from core.demo import simulate
from core.errors import BadInput, PermissionDenied
from core.monitoring import alerts, drift_store
from tests.fixtures.models import monitored_model
from tests.fixtures.predictions import OPERATOR, VIEWER

# ------------------------------------------------------------------------ the simulator


def test_simulated_traffic_leaves_logs_drift_results_and_alerts(backend, tmp_path: Path) -> None:
    ds, version = monitored_model(tmp_path, users=300, window_minutes=1440, min_rows=50)
    with pytest.raises(PermissionDenied):
        simulate.simulate(actor=VIEWER, model="recsys", days=1)
    with pytest.raises(BadInput, match="at least 1"):
        simulate.simulate(actor=OPERATOR, model="recsys", days=0)

    start = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    steps: list[float] = []
    report = simulate.simulate(
        actor=OPERATOR,
        model="recsys",
        days=5,
        users_per_day=300,
        start=start,
        drift=DriftEpisode(3),
        progress=lambda share, _: steps.append(share),
    )
    assert steps[-1] == 1.0
    assert report.requests == 1500 == monitoring.count_logs("recsys")
    assert 0 < report.errors < 60 and report.clicks > 0
    end = start + dt.timedelta(days=5)
    daily = monitoring.traffic("recsys", since=start, until=end, bucket_hours=24)
    assert [b.requests for b in daily] == [300] * 5
    assert sum(b.errors for b in daily) == report.errors
    assert sum(b.clicks for b in daily) == report.clicks

    data = drift_store.history("recsys", "data")
    prediction = drift_store.history("recsys", "prediction")
    # Computed by the monitoring job from the log, by day (the model's window), with a
    # prediction reference from the first day (the version's validation users).
    assert report.drift_results == len(data) + len(prediction) == 5 + 5
    assert [r.window_start for r in data] == [start + dt.timedelta(days=d) for d in range(5)]
    assert [r.window_start for r in prediction] == [r.window_start for r in data]
    assert all(r.version == version and r.reference == ds.label for r in data)
    for r in data[3:]:  # the summer episode
        assert {"beaches", "swimming pools"} <= set(r.drifted_columns)
        assert r.columns["beaches"]["score"] > 0.3
    assert all(r.columns["beaches"]["score"] < 0.3 for r in data[:3])
    assert all(r.reference.startswith(f"recsys@{version} on ") for r in prediction)
    assert len(report.drifted_days) == 2
    # The episode's onset: the first window of the latest unbroken run of drifted windows.
    limits = alerts.thresholds("recsys")
    assert drift_store.onset(data, limits) == start + dt.timedelta(days=3)
    assert drift_store.onset(data[:3], limits) is None

    opened = alerts.list_alerts("recsys")
    assert report.alerts == len(opened)
    subjects = {(a.kind, a.subject) for a in opened}
    assert {("feature_drift", "data:beaches"), ("feature_drift", "data:swimming pools")} <= subjects
