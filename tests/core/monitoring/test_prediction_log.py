"""The prediction log, its rollups, alerts and the traffic simulator, on SQLite and Postgres."""

from __future__ import annotations

import datetime as dt
import json
import math
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import numpy as np
import pytest

from core import monitoring, registry, training
from core.accounts.auth import SYSTEM, Actor
from core.config import reset_settings
from core.data import datasets
from core.data.categories import CATEGORIES
from core.data.generator import DriftEpisode, generate_users
from core.db.tables import LATENCY_EDGES_MS, N_LATENCY_BINS
from core.demo import simulate
from core.errors import BadInput, NotFound, PermissionDenied
from core.monitoring import alerts, drift_store
from tests.fixtures.predictions import T0, rec

OPERATOR = Actor("olga", "operator")
VIEWER = Actor("victor", "viewer")




# ------------------------------------------------------------------------ the log and rollups


def test_writes_are_aggregated_by_hour_day_and_variant(backend) -> None:
    hour = dt.timedelta(hours=1)
    first = [rec(T0 + dt.timedelta(minutes=i)) for i in range(9)]
    first.append(rec(T0 + dt.timedelta(minutes=30), error="ratings must be finite"))
    assert monitoring.write_batch(first) == 10
    # A second batch into the same hour adds to the same rollup row.
    monitoring.write_batch(
        [rec(T0 + dt.timedelta(minutes=50), latency=20.0, variant="canary") for _ in range(5)]
        + [rec(T0 + hour + dt.timedelta(minutes=1), latency=100.0) for _ in range(4)]
        + [rec(T0 + dt.timedelta(days=1, hours=5), latency=1.5) for _ in range(6)]
        + [rec(T0, model="other")]
    )
    assert monitoring.count_logs() == 26 and monitoring.count_logs("recsys") == 25

    until = T0 + dt.timedelta(days=3)
    hourly = monitoring.traffic("recsys", since=T0, until=until)
    assert [(b.start, b.requests, b.errors) for b in hourly] == [
        (T0, 15, 1),
        (T0 + hour, 4, 0),
        (T0 + dt.timedelta(days=1, hours=5), 6, 0),
    ]
    assert hourly[0].error_rate == pytest.approx(1 / 15)
    assert hourly[0].latency_mean_ms == pytest.approx((10 * 3.0 + 5 * 20.0) / 15)
    daily = monitoring.traffic("recsys", since=T0, until=until, bucket_hours=24)
    assert [(b.start, b.requests) for b in daily] == [(T0, 19), (T0 + dt.timedelta(days=1), 6)]
    canary = monitoring.traffic("recsys", since=T0, until=until, variant="canary")
    assert [(b.requests, b.latency_p50_ms) for b in canary] == [(5, pytest.approx(16 + 16 * 0.5))]
    assert monitoring.traffic("recsys", since=T0 + dt.timedelta(days=2), until=until) == []

    frame = monitoring.traffic_frame(daily)
    assert {"start", "requests", "latency_p95_ms", "error_rate", "click_through"} <= set(frame)


def test_percentiles_come_from_the_latency_histogram(backend) -> None:
    rng = np.random.default_rng(3)
    latencies = rng.lognormal(mean=1.5, sigma=0.8, size=2000)
    monitoring.write_batch([rec(T0, latency=float(x)) for x in latencies])
    (bucket,) = monitoring.traffic("recsys", since=T0, until=T0)
    edges = np.asarray(LATENCY_EDGES_MS)
    for q, estimate in ((50, bucket.latency_p50_ms), (95, bucket.latency_p95_ms)):
        true = float(np.percentile(latencies, q))
        # The estimate lies in the histogram bin of the true percentile.
        assert np.searchsorted(edges, estimate) == np.searchsorted(edges, true), (q, estimate)
    p99 = float(np.percentile(latencies, 99))
    assert abs(bucket.latency_p99_ms - p99) / p99 < 0.5
    assert bucket.latency_p50_ms <= bucket.latency_p95_ms <= bucket.latency_p99_ms
    assert bucket.latency_mean_ms == pytest.approx(latencies.mean())


def test_percentile_from_bins_interpolates_inside_the_bin() -> None:
    bins = [0] * N_LATENCY_BINS
    bins[2] = 100  # all requests took (1, 2] ms
    assert monitoring.percentile_from_bins(bins, 0.5) == pytest.approx(1.5)
    assert monitoring.percentile_from_bins(bins, 0.99) == pytest.approx(1.99)
    bins[5] = 100  # and as many (8, 16] ms
    assert monitoring.percentile_from_bins(bins, 0.5) == pytest.approx(2.0)
    assert monitoring.percentile_from_bins(bins, 0.75) == pytest.approx(12.0)
    assert math.isnan(monitoring.percentile_from_bins([0] * N_LATENCY_BINS, 0.5))
    assert monitoring.latency_bin(0.2) == 0 and monitoring.latency_bin(1e6) == N_LATENCY_BINS - 1


def test_feedback_counts_clicks_on_returned_places_only(backend) -> None:
    served = [rec(T0) for _ in range(4)]
    monitoring.write_batch(served)
    monitoring.record_feedback(served[0].request_id, "p2")
    monitoring.record_feedback(served[1].request_id, "p1")
    (bucket,) = monitoring.traffic("recsys", since=T0, until=T0)
    assert (bucket.clicks, bucket.click_through) == (2, 0.5)
    with pytest.raises(NotFound, match="no logged request"):
        monitoring.record_feedback("no-such-request", "p1")
    with pytest.raises(BadInput, match="'p9' was not in the response"):
        monitoring.record_feedback(served[2].request_id, "p9")
    assert monitoring.traffic("recsys", since=T0, until=T0)[0].clicks == 2


def test_summary_covers_the_last_hours(backend) -> None:
    now = T0 + dt.timedelta(days=2)
    monitoring.write_batch(
        [rec(now - dt.timedelta(hours=30)) for _ in range(10)]
        + [rec(now - dt.timedelta(hours=2), latency=50.0) for _ in range(8)]
        + [rec(now - dt.timedelta(hours=1), error="boom") for _ in range(2)]
    )
    last_day = monitoring.summary("recsys", hours=24, until=now)
    assert (last_day.requests, last_day.error_rate) == (10, 0.2)
    assert 32 < last_day.latency_p50_ms <= 64
    assert monitoring.summary("recsys", hours=48, until=now).requests == 20
    assert monitoring.summary(None, hours=24, until=now).requests == 10
    nothing = monitoring.summary("recsys", hours=24, until=now - dt.timedelta(days=5))
    assert nothing.requests == 0 and math.isnan(nothing.latency_p99_ms)


def test_a_large_batch_reads_back_exactly_as_written(backend) -> None:
    """More rows than one multi-row INSERT holds (SQLite), errors and None among them."""
    from sqlalchemy import select

    from core.db import transaction
    from core.db.tables import PredictionLogRow

    n = monitoring.SQLITE_ROWS_PER_INSERT * 2 + 7
    records = [
        rec(
            T0 + dt.timedelta(microseconds=137 * i),
            error="boom" if i % 97 == 5 else None,
            ratings=[float(i % 6)] * 29,
            user_id=None if i % 2 else f"u{i}",
            lat=None if i % 3 == 0 else 40.0 + i / 1e4,
            lng=-3.7,
        )
        for i in range(n)
    ]
    assert monitoring.write_batch(records) == n
    with transaction(write=False) as s:
        rows = {r.request_id: r for r in s.scalars(select(PredictionLogRow))}
    assert len(rows) == n
    for r in records:
        row = rows[r.request_id]
        for name, value in r.row().items():
            assert getattr(row, name) == value, (name, getattr(row, name), value)
    assert monitoring.summary("recsys", hours=1, until=T0).requests == n
    # timestamps compare as the queries' bounds do (the first one is exactly T0)
    window = monitoring.window("recsys", T0, T0 + dt.timedelta(hours=1), max_rows=10 * n)
    assert len(window) == sum(r.error is None for r in records)


def test_batch_writes_store_what_the_orm_stores(backend) -> None:
    """The batch writer encodes columns itself (SQLite); the stored text is the ORM's, for
    UTC and other zones, whole seconds, NumPy numbers and missing values."""
    from core.db import transaction
    from core.db.tables import PredictionLogRow

    madrid = dt.timezone(dt.timedelta(hours=2))
    records = [
        rec(T0 + dt.timedelta(microseconds=123_456), lat=40.4, lng=-3.7, user_id="u1"),
        rec(T0, error="boom"),  # whole second: no fraction in its ISO form
        rec(T0, ratings=[np.float64(1.5)] + [0.0] * 28, lat=np.float64(40.5), lng=-3.6),
        rec(T0.astimezone(madrid) + dt.timedelta(microseconds=5)),  # not in datetime.UTC
    ]
    monitoring.write_batch(records[:3])
    monitoring.write_batch(records[3:])
    twins = [
        monitoring.PredictionRecord(**{**r.row(), "request_id": r.request_id[:-4] + "beef"})
        for r in records
    ]
    with transaction() as s:
        s.add_all(PredictionLogRow(**t.row()) for t in twins)
    names = [c.name for c in PredictionLogRow.__table__.columns if c.name not in ("id",)]
    with transaction(write=False) as s:  # the driver's values: what is in the table
        raw = s.connection().exec_driver_sql(f"SELECT {', '.join(names)} FROM prediction_logs")
        stored = {row[names.index("request_id")]: row for row in raw}
    skip = names.index("request_id")
    for r, t in zip(records, twins, strict=True):
        ours, orm = stored[r.request_id], stored[t.request_id]
        assert [v for i, v in enumerate(ours) if i != skip] == [
            v for i, v in enumerate(orm) if i != skip
        ], r


def test_bad_writes_change_nothing(backend) -> None:
    with pytest.raises(BadInput, match="unknown variant 'shadow'"):
        monitoring.write_batch([rec(T0), rec(T0, variant="shadow")])
    assert monitoring.count_logs() == 0
    assert monitoring.traffic("recsys", since=T0, until=T0) == []
    assert monitoring.write_batch([]) == 0
    with pytest.raises(BadInput, match="bucket_hours"):
        monitoring.traffic("recsys", since=T0, bucket_hours=0)


def test_windows_skip_errors_and_thin_large_windows_by_id(backend) -> None:
    records = [rec(T0 + dt.timedelta(seconds=i), ratings=[float(i % 6)] * 29) for i in range(45)]
    records.append(rec(T0 + dt.timedelta(seconds=50), error="bad"))
    monitoring.write_batch(records)
    end = T0 + dt.timedelta(hours=1)
    everything = monitoring.window("recsys", T0, end)
    assert len(everything) == 45 and everything.attrs["step"] == 1
    thinned = monitoring.window("recsys", T0, end, max_rows=10)
    assert thinned.attrs == {"total": 45, "step": 5}
    assert 8 <= len(thinned) <= 10
    ratings = monitoring.ratings_of(thinned)
    assert list(ratings.columns) == list(CATEGORIES) and len(ratings) == len(thinned)
    assert monitoring.window("recsys", end, end + dt.timedelta(hours=1)).empty


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


# ------------------------------------------------------------------------ the simulator


def test_simulated_traffic_leaves_logs_drift_results_and_alerts(backend, tmp_path: Path) -> None:
    users = tmp_path / "users.csv"
    generate_users(300, seed=1).to_csv(users, index=False)
    ds = datasets.ingest(users, name="madrid", actor=SYSTEM)
    version = training.train(
        actor=SYSTEM, family="popularity", dataset=ds.label, model="recsys"
    ).version.version
    registry.promote(actor=SYSTEM, model="recsys", version=version, stage="production")
    registry.update_model(
        actor=SYSTEM,
        name="recsys",
        settings={"monitor_window_minutes": 1440, "monitor_min_rows": 50},
    )
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


def test_resource_usage_buckets_per_process_and_prune_keeps_the_recent(backend) -> None:
    from sqlalchemy import insert

    from core.db import transaction, utcnow
    from core.monitoring import resources

    now = utcnow().replace(second=0, microsecond=0)
    rows = [
        {
            "ts": now - dt.timedelta(seconds=s),
            "kind": kind,
            "host": "h",
            "pid": pid,
            "cpu": cpu,
            "rss_mb": rss,
            "peak_rss_mb": rss,
        }
        for kind, pid, s, cpu, rss in (
            ("api", 1, 10, 0.5, 100.0),
            ("api", 1, 20, 1.5, 300.0),
            ("worker", 2, 10, 1.0, 900.0),
            ("worker", 2, 40 * 86400, 1.0, 50.0),  # older than the retention
        )
    ]
    with transaction() as s:
        s.execute(insert(resources.ResourceSampleRow.__table__), rows)
    usage = resources.usage(since=now - dt.timedelta(days=1), bucket="1h")
    by_process = usage.set_index("process")
    assert set(by_process.index) == {"api h:1", "worker h:2"}
    assert by_process.loc["api h:1", "cpu"] == pytest.approx(1.0)  # mean of the bucket
    assert by_process.loc["api h:1", "rss_mb"] == 300.0  # its peak
    assert resources.prune(before=now - dt.timedelta(days=30)) == 1
    assert len(resources.history(since=now - dt.timedelta(days=365))) == 3
    assert resources.usage(since=now + dt.timedelta(days=1)).empty


def test_request_ids_are_time_ordered_uuid7() -> None:
    import uuid

    ids = [monitoring.time_ordered_id() for _ in range(200)]
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    stamps = [uuid.UUID(t).int >> 80 for t in ids]
    assert stamps == sorted(stamps) and len(set(ids)) == len(ids)


def test_request_ids_stay_unique_across_refills_and_forks() -> None:
    """The random part comes from a pool of the system's random bytes, refilled as it runs
    out; a forked child starts a pool of its own instead of repeating its parent's ids."""
    import os
    import uuid

    ids = [monitoring.time_ordered_id() for _ in range(3 * 4096)]
    assert len(set(ids)) == len(ids)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, then out without pytest's clean-up
        os.write(write, monitoring.time_ordered_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    theirs = os.read(read, 64).decode()
    os.close(read)
    ours = monitoring.time_ordered_id()
    random_part = lambda text: uuid.UUID(text).int & ((1 << 62) - 1)  # noqa: E731
    assert random_part(theirs) != random_part(ours)
