"""The prediction log and its rollups, on SQLite and Postgres: writes, hourly and daily
traffic, latency percentiles, feedback, windows, request ids, and the resource samples
bucketed the same way."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from core import monitoring
from core.data.categories import CATEGORIES
from core.db.tables import LATENCY_EDGES_MS, N_LATENCY_BINS
from core.errors import BadInput, NotFound
from tests.fixtures.predictions import T0, assert_stored_as_orm, rec

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


def test_requests_surely_over_a_limit_are_counted() -> None:
    bins = [0] * N_LATENCY_BINS
    bins[monitoring.latency_bin(3.0)] = 90  # (2, 4] ms
    bins[monitoring.latency_bin(300.0)] = 7  # (256, 512] ms: the bin 500 ms falls in, left out
    bins[monitoring.latency_bin(900.0)] = 2  # (512, 1024] ms
    bins[-1] = 1  # over 8192 ms
    assert monitoring.count_over(bins, 500) == 3
    assert monitoring.count_over(bins, 512) == 3
    assert monitoring.count_over(bins, 256) == 10
    assert monitoring.count_over(bins, 4) == 10
    assert monitoring.count_over([0] * N_LATENCY_BINS, 500) == 0


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
    assert_stored_as_orm(records, twins)


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


def test_rollup_rows_are_locked_in_one_order_whatever_the_batch_order(backend, monkeypatch) -> None:
    """Two writers whose batches touch the same hours in opposite orders must lock the rollup
    rows in the same order, or each could wait for the other's lock."""
    from sqlalchemy.orm import Session

    locked: list[tuple] = []
    get = Session.get

    def recording_get(self, entity, ident, **kwargs):  # noqa: ANN001, ANN202
        if kwargs.get("with_for_update"):
            locked.append((ident["hour"], ident["variant"]))
        return get(self, entity, ident, **kwargs)

    monkeypatch.setattr(Session, "get", recording_get)
    later = T0 + dt.timedelta(hours=3)
    monitoring.write_batch([rec(later), rec(T0, variant="canary"), rec(T0)])
    first = list(locked)
    locked.clear()
    monitoring.write_batch([rec(T0), rec(T0, variant="canary"), rec(later)])
    assert first == locked == sorted(first)
