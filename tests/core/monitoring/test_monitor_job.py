"""The monitoring job on stored traffic, on SQLite and PostgreSQL: windows computed once each,
too-small windows recorded, canary apart, provisional windows replaced, failures isolated,
catch-up bounded, recomputation on request, and the label-free health figures."""

from __future__ import annotations

import datetime as dt
import math
import threading

import numpy as np
import pytest
from sqlalchemy import func, select

from core import monitoring, registry, training
from core.accounts.auth import SYSTEM, Actor
from core.data.categories import CATEGORIES
from core.data.generator import DriftEpisode, generate_users
from core.db import transaction
from core.db.tables import DriftResultRow, MonitorResultRow
from core.errors import NotFound, PermissionDenied
from core.metrics import health
from core.monitoring import alerts, monitor
from tests.fixtures.models import monitored_model
from tests.fixtures.traffic import served_records
from tests.fixtures.workers import ingest

MINUTE = dt.timedelta(minutes=1)


@pytest.fixture
def model(backend):
    return monitored_model(backend.root, users=600, window_minutes=1, min_rows=50).version


def _minutes(start: dt.datetime, n: int, per: int) -> list[dt.datetime]:
    return [
        start + MINUTE * (i // per) + dt.timedelta(seconds=(i % per) * 50 / per)
        for i in range(n * per)
    ]


def _users(n: int, seed: int, drift: bool = False) -> np.ndarray:
    frame = generate_users(n, seed=seed, drift=DriftEpisode(0) if drift else None)
    return frame[list(CATEGORIES)].to_numpy(dtype=float)


def test_each_window_is_computed_once_with_too_small_ones_recorded(model) -> None:
    # Windows after the promotion (an empty window is judged against what served then).
    start = monitor.align(dt.datetime.now(dt.UTC), MINUTE) + MINUTE
    now = start + 5 * MINUTE
    times = _minutes(start, 3, 120) + _minutes(start + 3 * MINUTE, 1, 10)  # 4th: 10 rows
    monitoring.write_batch(served_records(_users(len(times), 3), times, version=model))
    reports: list[monitor.RunReport] = []
    later = now + dt.timedelta(seconds=30)  # the last window has closed, grace included
    threads = [
        threading.Thread(target=lambda: reports.append(monitor.run_due(model="recsys", now=later)))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stored = monitor.results("recsys")
    keys = [(r.version, r.variant, r.kind, r.window_start) for r in stored]
    assert len(keys) == len(set(keys))  # two runs at once, one result per key
    starts = sorted({r.window_start for r in stored})
    # 3 full windows, 1 small one, 1 empty one (the model serves: its volume is judged)
    assert starts == [start + MINUTE * i for i in range(5)]
    by = {(r.kind, r.window_start): r for r in stored}
    assert by[("data", start)].status == "ok" and by[("data", start)].rows == 120
    small = by[("data", start + 3 * MINUTE)]
    assert small.status == "too_few_rows" and "10 successful requests" in small.message
    assert by[("traffic", start + 4 * MINUTE)].rows == 0
    with transaction(write=False) as s:
        drift_rows = s.scalar(select(func.count()).select_from(DriftResultRow))
    assert drift_rows == sum(r.drift_result_id is not None for r in stored) == 6
    # A third run finds nothing to do.
    again = monitor.run_due(model="recsys", now=later)
    assert again.windows == 0 and not again.results


def test_canary_is_judged_apart_and_drift_names_the_shifted_columns(model) -> None:
    now = monitor.align(dt.datetime.now(dt.UTC), MINUTE)
    start = now - 2 * MINUTE
    times = _minutes(start, 1, 300)
    records = served_records(_users(300, 4), times, version=model)
    shifted = served_records(_users(300, 5, drift=True), times, version=model, variant="canary")
    monitoring.write_batch(records + shifted)
    report = monitor.run_due(model="recsys")
    data = {r.variant: r for r in report.results if r.kind == "data"}
    assert set(data) == {"production", "canary"}
    assert {"beaches", "swimming pools"} <= set(data["canary"].figures["drifted_columns"])
    assert max(data["production"].figures["top_columns"].values()) < 0.3
    subjects = {a.subject for a in report.alerts}
    assert "canary data:beaches" in subjects
    assert not any(s.startswith("data:") for s in subjects)  # production stays quiet
    assert all(a.version == model for a in report.alerts)
    listed = [a.as_dict() for a in alerts.list_alerts("recsys")]
    beach = next(a for a in listed if a["subject"] == "canary data:beaches")
    assert beach["variant"] == "canary" and beach["columns"] == ["beaches"]
    # The column's bound: its threshold, or four times its sampling noise when that is higher.
    assert beach["figures"]["value"] >= beach["figures"]["threshold"] >= 0.3
    # Prediction drift has a reference from the first window: the version's validation users.
    prediction = next(r for r in report.results if r.kind == "prediction")
    assert prediction.status == "ok"
    health_row = next(r for r in report.results if r.kind == "health" and r.variant == "production")
    assert 0 < health_row.figures["coverage"] < 1
    assert 0 <= health_row.figures["diversity"] <= 1


def test_current_window_is_provisional_then_replaced(model) -> None:
    now = dt.datetime.now(dt.UTC)
    current = monitor.align(now, MINUTE)
    times = [current + dt.timedelta(seconds=i * 0.05) for i in range(60)]
    monitoring.write_batch(served_records(_users(60, 6), times, version=model))
    first = monitor.run_due(model="recsys", include_current=True, now=current + MINUTE / 2)
    assert {r.provisional for r in first.results} == {True}
    assert not first.alerts  # a provisional window raises nothing
    later = current + MINUTE + dt.timedelta(seconds=30)
    second = monitor.run_due(model="recsys", now=later)
    assert {r.provisional for r in second.results} == {False}
    stored = [r for r in monitor.results("recsys") if r.window_start == current]
    assert len(stored) == 4 and not any(r.provisional for r in stored)
    with transaction(write=False) as s:  # the provisional drift results went with them
        assert s.scalar(select(func.count()).select_from(DriftResultRow)) == 2


def test_a_failing_model_does_not_stop_the_others_and_is_retried(model, backend) -> None:
    ds = ingest(backend.root, name="other", users=300, seed=9)
    other = training.train(
        actor=SYSTEM, family="popularity", dataset=ds.label, model="other"
    ).version
    registry.promote(
        actor=SYSTEM,
        model="other",
        version=other.version,
        stage="production",
        reason="test promotion",
    )
    registry.update_model(
        actor=SYSTEM, name="other", settings={"monitor_window_minutes": 1, "monitor_min_rows": 50}
    )
    start = monitor.align(dt.datetime.now(dt.UTC), MINUTE) - 2 * MINUTE
    times = _minutes(start, 1, 80)
    monitoring.write_batch(served_records(_users(80, 7), times, version=model))
    monitoring.write_batch(
        served_records(_users(80, 8), times, version=other.version, model="other")
    )
    (backend.data / ds.path).write_text("tampered")  # its reference can no longer be read
    report = monitor.run_due()
    failed = [r for r in report.results if r.status == "failed"]
    assert {(r.model, r.kind) for r in failed} == {("other", "data"), ("other", "prediction")}
    assert any("other@" in f for f in report.failures)
    assert {r.kind for r in report.results if r.model == "recsys" and r.status == "ok"} == set(
        monitor.KINDS
    )
    assert monitor.failures()[0].model == "other"
    # Retried after the back-off, attempts counted, still one row per key.
    later = dt.datetime.now(dt.UTC) + monitor.RETRY_AFTER + MINUTE
    retry = monitor.run_due(model="other", now=later)
    redone = [r for r in retry.results if r.window_start == start]
    assert {r.kind for r in redone} == {"data", "prediction"}
    assert {r.attempts for r in redone} == {2}
    with transaction(write=False) as s:
        assert (
            s.scalar(
                select(func.count())
                .select_from(MonitorResultRow)
                .where(MonitorResultRow.model == "other", MonitorResultRow.window_start == start)
            )
            == 4
        )


def test_catch_up_is_bounded_and_recomputation_is_queued(model, monkeypatch) -> None:
    now = monitor.align(dt.datetime.now(dt.UTC), MINUTE)
    start = now - 30 * MINUTE
    later = now + dt.timedelta(seconds=30)  # the last window has closed, grace included
    times = _minutes(start, 30, 2)
    monitoring.write_batch(served_records(_users(60, 10), times, version=model))
    first = monitor.run_due(model="recsys", max_windows=10, now=later)
    assert first.windows == 10
    assert min(r.window_start for r in first.results) == start  # oldest first
    monitor.run_due(model="recsys", now=later)
    assert len({r.window_start for r in monitor.results("recsys")}) == 30
    monkeypatch.setenv("MONITOR_LOOKBACK_HOURS", "0.1")  # six minutes
    from core.config import reset_settings

    reset_settings()
    with transaction() as s:
        s.query(MonitorResultRow).delete()
    bounded = monitor.run_due(model="recsys", now=later)
    assert bounded.windows == 5  # only windows holding requests of the last six minutes
    with pytest.raises(PermissionDenied):
        monitor.request_recompute(actor=Actor("v", "viewer"), model="recsys", since=start)
    with pytest.raises(NotFound):
        monitor.request_recompute(actor=SYSTEM, model="nope", since=start)
    monitor.request_recompute(actor=SYSTEM, model="recsys", since=now - 3 * MINUTE)
    assert monitor.status("recsys").pending_requests == 1
    again = monitor.run_due(model="recsys", now=later)
    assert again.windows == 3 and monitor.status("recsys").pending_requests == 0


def test_health_figures() -> None:
    stats = health.item_stats(["a", "b", "c", "d"], np.array([0, 10, 10, 1000]))
    assert stats.popularity_percentile.tolist() == [0.0, 0.5, 0.5, 1.0]
    same = health.figures([["a", "b"], ["a", "b"]], [["x", "x"], ["x", "y"]], stats)
    assert same["coverage"] == 0.5 and same["personalisation"] == pytest.approx(0.0)
    assert same["diversity"] == 0.5
    apart = health.figures([["a", "b"], ["c", "d"]], [["x", "y"], ["x", "y"]], stats)
    assert apart["personalisation"] == pytest.approx(1.0) and apart["coverage"] == 1.0
    assert health.gini(np.array([1, 1, 1, 1])) == 0.0
    assert health.gini(np.array([0, 0, 0, 8])) == pytest.approx(0.75)
    assert health.churn({"u": ["a", "b"]}, {"u": ["a", "c"], "v": ["d"]}) == 0.5
    assert math.isnan(health.churn({}, {"u": ["a"]}))
    # The pairwise identity holds against the direct O(n²) computation.
    rng = np.random.default_rng(0)
    lists = [rng.choice(50, size=rng.integers(1, 10), replace=False) for _ in range(40)]
    direct = np.mean(
        [
            len(set(a) & set(b)) / math.sqrt(len(a) * len(b))
            for i, a in enumerate(lists)
            for b in lists[i + 1 :]
        ]
    )
    assert health.personalisation(lists, 50) == pytest.approx(1 - direct)


def test_health_gate_compares_the_canary_with_production(model, backend) -> None:
    from core.data import catalogue
    from core.errors import GateFailed

    ds_label = registry.get_version("recsys", model).dataset.label
    v2 = training.train(
        actor=SYSTEM, family="popularity", dataset=ds_label, model="recsys", seed=3
    ).version.version
    registry.promote(
        actor=SYSTEM, model="recsys", version=v2, stage="staging", reason="test promotion"
    )
    ids = catalogue.load().place_ids.tolist()
    start = monitor.align(dt.datetime.now(dt.UTC), MINUTE) - 2 * MINUTE
    rng = np.random.default_rng(1)
    records = []
    for i in range(200):
        canary = i % 2 == 1
        places = ids[:10] if canary else [ids[j] for j in rng.choice(len(ids), 10, replace=False)]
        records.append(
            monitoring.PredictionRecord(
                model="recsys",
                version=v2 if canary else model,
                variant="canary" if canary else "production",
                ratings=[1.0] * 29,
                k=10,
                places=places,
                categories=["museums"] * 10,
                scores=[0.5] * 10,
                latency_ms=2.0,
                predicted=[1.0] * 29,
                ts=start + dt.timedelta(seconds=i * 0.25),
            )
        )
    monitoring.write_batch(records)
    monitor.run_due(model="recsys", now=start + 2 * MINUTE)
    # Not configured: no health gate.
    assert "health" not in {g["name"] for g in registry.preview_gates("recsys", v2, "production")}
    registry.update_model(actor=SYSTEM, name="recsys", settings={"health_gates": {"coverage": 0.2}})
    gates = {g["name"]: g for g in registry.preview_gates("recsys", v2, "production")}
    assert not gates["health"]["passed"]
    assert gates["health"]["figures"]["coverage"]["candidate"] < 0.01
    with pytest.raises(GateFailed):
        registry.promote(
            actor=SYSTEM, model="recsys", version=v2, stage="production", reason="test promotion"
        )
    registry.update_model(actor=SYSTEM, name="recsys", settings={"health_gates": {"gini": 5.0}})
    gates = {g["name"]: g for g in registry.preview_gates("recsys", v2, "production")}
    assert gates["health"]["passed"], gates["health"]
