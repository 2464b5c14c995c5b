"""The prediction log's daily partitions on PostgreSQL: made ahead and on demand, dropped past
retention (rollups and results kept), written through COPY as the ORM writes, bad rows isolated.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, text

from core import monitoring
from core.config import reset_settings
from core.db import transaction
from core.db.tables import DriftResultRow, MonitorResultRow, PredictionLogRow, RollupRow
from core.monitoring import partitions as log_partitions
from tests.conftest import RegistryEnv, _registry, drop_schema, make_env
from tests.fixtures.predictions import assert_stored_as_orm

T0 = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


@pytest.fixture
def pg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RegistryEnv]:
    log_partitions.forget()
    yield from _registry("postgres", tmp_path, monkeypatch)


def rec(at: dt.datetime, **kwargs) -> monitoring.PredictionRecord:
    return monitoring.PredictionRecord(
        model=kwargs.pop("model", "recsys"),
        version="1.0.0",
        variant="production",
        ratings=[0.0] * 28 + [4.0],
        k=kwargs.pop("k", 3),
        places=["p1", "p2", "p3"],
        categories=["museums", "parks", "zoo"],
        scores=[0.9, 0.8, 0.7],
        latency_ms=3.0,
        predicted=[1.0] * 29,
        ts=at,
        **kwargs,
    )


def partition_days() -> list[dt.date]:
    return [p.day for p in log_partitions.partitions()]


def test_the_log_is_partitioned_by_day_with_days_made_ahead(pg) -> None:
    today = dt.datetime.now(dt.UTC).date()
    days = partition_days()
    # the migration made yesterday to a week ahead
    assert [today + dt.timedelta(days=n) for n in range(-1, 8)] == days
    later = today + dt.timedelta(days=30)
    done = log_partitions.housekeep(today=later)
    assert done.created == [
        log_partitions.partition_name(later + dt.timedelta(days=n)) for n in range(-1, 8)
    ]
    assert log_partitions.housekeep(today=later).created == []  # nothing twice


def test_a_day_without_partition_gets_one_when_written(pg) -> None:
    assert T0.date() not in partition_days()
    records = [rec(T0 + dt.timedelta(hours=23, minutes=59)), rec(T0 + DAY)]
    assert monitoring.write_batch(records) == 2
    assert {T0.date(), (T0 + DAY).date()} <= set(partition_days())
    with transaction(write=False) as s:
        where = s.execute(
            text("SELECT tableoid::regclass::text, request_id FROM prediction_logs")
        ).all()
    assert sorted(where) == sorted(
        [
            ("prediction_logs_p20260501", records[0].request_id),
            ("prediction_logs_p20260502", records[1].request_id),
        ]
    )


def test_retention_drops_raw_days_and_keeps_rollups_and_results(pg, monkeypatch) -> None:
    for n in range(5):
        monitoring.write_batch([rec(T0 + n * DAY + dt.timedelta(hours=h)) for h in range(3)])
    with transaction() as s:
        s.add(
            DriftResultRow(
                model="recsys",
                version="1.0.0",
                kind="data",
                window_start=T0,
                window_end=T0 + DAY,
                reference="ref",
                n_reference=1,
                n_current=3,
                drift_share=0.0,
                dataset_drift=False,
                columns={},
                summaries={},
            )
        )
        s.add(
            MonitorResultRow(
                model="recsys",
                version="1.0.0",
                variant="production",
                kind="traffic",
                window_start=T0,
                window_end=T0 + DAY,
                status="ok",
                rows=3,
                figures={},
                alert_ids=[],
            )
        )
    monkeypatch.setenv("LOG_RETENTION_DAYS", "2")
    reset_settings()
    done = log_partitions.housekeep(today=(T0 + 4 * DAY).date())
    assert done.dropped == ["prediction_logs_p20260501", "prediction_logs_p20260502"]
    assert done.drop_seconds < 1.0
    assert monitoring.count_logs() == 3 * 3  # days 3, 4 and 5 are kept
    with transaction(write=False) as s:
        assert s.scalar(select(func.sum(RollupRow.requests))) == 15  # every hour still counted
        assert s.scalar(select(func.count()).select_from(DriftResultRow)) == 1
        assert s.scalar(select(func.count()).select_from(MonitorResultRow)) == 1
    assert monitoring.summary("recsys", hours=24 * 5, until=T0 + 5 * DAY).requests == 15
    # a record of a dropped day that arrives late gets its day back, not refused
    assert monitoring.store_batch([rec(T0 + dt.timedelta(hours=5))]).written == 1


def test_copy_stores_what_the_orm_stores_with_texts_copy_must_escape(pg) -> None:
    odd = ["tab\there", "new\nline", "back\\slash", 'quote"s', "\\N", "ñandú ✓", "", "cr\r"]
    records = [
        rec(T0 + dt.timedelta(seconds=i), user_id=u, lat=None if i % 2 else 40.4, lng=-3.7)
        for i, u in enumerate(odd)
    ]
    records.append(rec(T0, error="failed: \\ \t \n"))
    assert monitoring.write_batch(records) == len(records)
    twins = [
        monitoring.PredictionRecord(**{**r.row(), "request_id": str(uuid.uuid4())}) for r in records
    ]
    with transaction() as s:  # the ORM's way, one statement per row
        for t in twins:
            s.execute(insert(PredictionLogRow), [t.row()])
    assert_stored_as_orm(records, twins)


@pytest.mark.parametrize("lengths", ["one length", "mixed lengths"])
def test_copy_rounds_and_encodes_score_lists_as_the_orm_does(pg, lengths: str) -> None:
    """Score lists of one length are rounded and encoded a column at a time; None, empty
    lists, NumPy floats and, in the other batch, lists of several lengths among them."""
    import numpy as np

    rng = np.random.default_rng(3)
    records = []
    for i in range(40):
        width = 10 if lengths == "one length" or i % 3 else 4 + i % 5
        failed = i % 7 == 3
        records.append(
            monitoring.PredictionRecord(
                model="recsys",
                version="1.0.0",
                variant="production",
                ratings=[float(x) for x in rng.integers(0, 6, 29)],
                k=width,
                places=[] if failed else [f"p{j}" for j in range(width)],
                categories=[] if failed else ["museums"] * width,
                scores=[] if failed else list(rng.random(width).astype(np.float32)),
                predicted=None if failed else (rng.random(29) * 5 * 10.0 ** -(i % 9)).tolist(),
                latency_ms=float(rng.random()),
                error="boom" if failed else None,
                ts=T0 + dt.timedelta(seconds=i),
            )
        )
    assert monitoring.write_batch(records) == len(records)
    twins = [
        monitoring.PredictionRecord(**{**r.row(), "request_id": str(uuid.uuid4())}) for r in records
    ]
    with transaction() as s:
        for t in twins:
            s.execute(insert(PredictionLogRow), [t.row()])
    assert_stored_as_orm(records, twins, as_text=True)  # every column, scores and predicted too


def test_rows_copy_refuses_are_isolated_and_the_rest_written(pg) -> None:
    good = [rec(T0 + dt.timedelta(seconds=i)) for i in range(50)]
    bad_lat = rec(T0, lat="north")  # type: ignore[arg-type]
    bad_k = rec(T0, k=2**40)  # beyond the integer column
    batch = good[:20] + [bad_lat] + good[20:] + [bad_k]
    outcome = monitoring.store_batch(batch)
    assert (outcome.written, outcome.refused, outcome.already) == (50, 2, 0)
    assert monitoring.count_logs() == 50
    refused = {r.request_id: r.reason for r in monitoring.refusals().latest}
    assert set(refused) == {bad_lat.request_id, bad_k.request_id}
    assert "InvalidTextRepresentation" in refused[bad_lat.request_id]
    assert "NumericValueOutOfRange" in refused[bad_k.request_id]
    # the same batch again (its answer was lost): nothing written twice
    again = monitoring.store_batch(good)
    assert (again.written, again.already) == (0, 50)
    assert monitoring.count_logs() == 50


def test_feedback_finds_a_request_by_its_id_alone(pg) -> None:
    r = rec(T0 + dt.timedelta(hours=2))
    monitoring.write_batch([rec(T0), r, rec(T0 + DAY)])
    monitoring.record_feedback(r.request_id, "p2")
    with transaction(write=False) as s:
        assert s.scalar(select(RollupRow.clicks).where(RollupRow.hour == monitoring.hour_of(r.ts)))


def test_the_migration_moves_existing_rows_into_day_partitions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from alembic import command

    from core.db import migrate

    env, schema = make_env("postgres", tmp_path)
    assert schema is not None
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reset_settings()
    log_partitions.forget()
    try:
        cfg = migrate.alembic_config(migrate.get_settings())
        with migrate.get_engine().connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0006_monitor_windows")
            conn.commit()
        rows = [rec(T0 + n * DAY * 3 + dt.timedelta(minutes=n)).row() for n in range(4)]
        with transaction() as s:
            s.execute(insert(PredictionLogRow), rows)
            assert not log_partitions.is_partitioned(s.connection())
        migrate.upgrade()
        with transaction(write=False) as s:
            assert log_partitions.is_partitioned(s.connection())
            ids = set(s.scalars(select(PredictionLogRow.request_id)))
            next_id = s.execute(text("SELECT nextval('prediction_logs_id_seq')")).scalar()
        assert ids == {r["request_id"] for r in rows}
        assert next_id is not None and next_id > 4  # the id sequence went along
        assert {(T0 + n * DAY * 3).date() for n in range(4)} <= set(partition_days())
        assert monitoring.write_batch([rec(T0)]) == 1
    finally:
        reset_settings()
        log_partitions.forget()
        drop_schema(schema)


def test_sqlite_keeps_the_plain_table(sqlite_backend) -> None:
    assert log_partitions.housekeep().created == []
    assert log_partitions.partitions() == []
    assert monitoring.write_batch([rec(T0)]) == 1


def test_chunked_copy_of_lists_a_row_split_could_misread_stores_what_the_orm_stores(pg) -> None:
    """Each column of lists is written by one JSON call and cut into rows: values holding the
    very text it cuts at (``],[``, ``[[``, ``]]``), integer and NumPy ratings, and a batch of
    several COPY chunks over two hours and two variants; the rollups count every row."""
    import numpy as np

    from core.monitoring.bulk_insert import COPY_CHUNK_ROWS

    odd = [["a],[b"], ["[[x", "y]]"], ["back\\slash", "tab\t"], [], ["p1", "p2"]]
    records = []
    n = 2 * COPY_CHUNK_ROWS + 7
    for i in range(n):
        places = odd[i % len(odd)]
        records.append(
            monitoring.PredictionRecord(
                model="recsys",
                version="1.0.0",
                variant="canary" if i % 4 == 0 else "production",
                ratings=[i % 6] * 29 if i % 3 else list(np.full(29, 2.5, dtype=np.float32)),
                k=len(places),
                places=places,
                categories=list(reversed(places)),
                scores=[0.5] * len(places),
                latency_ms=float(0.3 * (i % 40)),
                predicted=None if i % 5 == 0 else [0.123456789] * 29,
                error="boom" if i % 11 == 5 else None,
                ts=T0 + dt.timedelta(seconds=8 * i),
            )
        )
    assert monitoring.write_batch(records) == n
    twins = [
        monitoring.PredictionRecord(**{**r.row(), "request_id": str(uuid.uuid4())}) for r in records
    ]
    with transaction() as s:
        s.execute(insert(PredictionLogRow), [t.row() for t in twins])
    assert_stored_as_orm(records, twins, as_text=True)
    with transaction(write=False) as s:
        rollups = s.execute(select(RollupRow)).scalars().all()
    assert sum(r.requests for r in rollups) == n
    assert sum(r.errors for r in rollups) == sum(r.error is not None for r in records)
    assert sum(sum(r.latency_bins) for r in rollups) == n
    assert {(r.hour, r.variant) for r in rollups} == {
        (monitoring.hour_of(x.ts), x.variant) for x in records
    }
    canary = [x for x in records if x.variant == "canary"]
    got = sum(r.latency_sum_ms for r in rollups if r.variant == "canary")
    assert got == pytest.approx(sum(x.latency_ms for x in canary))
