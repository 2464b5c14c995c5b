"""Daily partitions of the prediction log on PostgreSQL: created ahead, dropped past retention.

At 100 requests/s the log gains 8.6 million rows a day. On PostgreSQL ``prediction_logs`` is
therefore partitioned by day of ``ts`` (UTC; migration ``0009_log_partitions``): a monitoring
window or a page of the request explorer reads the one or two partitions its time range
touches, and retention drops a whole day as one ``DROP TABLE`` (milliseconds, no ``DELETE`` of
millions of rows, no bloat left to vacuum). The hourly rollups, drift results and monitoring
results live in their own tables and are never dropped with the raw rows.

Partitions are made ahead by the worker's housekeeping (:func:`housekeep`), and on demand by
the log's writer for a day that has none yet (:func:`ensure_days`: a row outside every
partition would otherwise be refused by the database). SQLite keeps the plain table: every
function here does nothing there.

A partitioned table's unique keys must hold the partition key: the request id is unique with
its timestamp, ``(request_id, ts)``. A batch sent again carries the same timestamps, so it is
still recognised as already logged (``core.monitoring``); lookups by request id alone use the
same index (its first column) in each partition.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, text

from core.config import Settings, get_settings
from core.db import get_engine
from core.errors import BadInput

log = logging.getLogger(__name__)

TABLE = "prediction_logs"
PREFIX = f"{TABLE}_p"
NAME = re.compile(rf"^{PREFIX}(\d{{8}})$")
DAYS_AHEAD = 7  # the worker keeps this many days ahead of today partitioned
LOCK_KEY = zlib.crc32(b"planwise:prediction_logs:partitions")  # one creator/dropper at a time

_known: dict[tuple[str, str | None], set[dt.date]] = {}
_partitioned: dict[tuple[str, str | None], bool] = {}
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class Partition:
    name: str
    day: dt.date
    rows_estimate: int  # from the planner's statistics (exact counts would read the day)
    bytes: int  # table and indexes


@dataclass(frozen=True)
class Housekeeping:
    """What one pass of :func:`housekeep` did."""

    created: list[str]
    dropped: list[str]
    drop_seconds: float


def partition_name(day: dt.date) -> str:
    return f"{PREFIX}{day:%Y%m%d}"


def day_of(ts: dt.datetime) -> dt.date:
    """The UTC day a timestamp's row is stored under."""
    if ts.tzinfo is None:
        return ts.date()
    return ts.astimezone(dt.UTC).date()


def _key(settings: Settings) -> tuple[str, str | None]:
    return (settings.resolved_database_url(), settings.database_schema)


def is_partitioned(conn: Connection) -> bool:
    """Whether ``prediction_logs`` (in the connection's schema) is a partitioned table."""
    if conn.dialect.name != "postgresql":
        return False
    return bool(
        conn.execute(
            text(
                "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table p "
                "JOIN pg_class c ON c.oid = p.partrelid "
                "WHERE c.oid = to_regclass(:t))"
            ),
            {"t": TABLE},
        ).scalar()
    )


def _partitioned_here(settings: Settings) -> bool:
    key = _key(settings)
    with _cache_lock:
        known = _partitioned.get(key)
    if known is None:
        if settings.is_sqlite:
            known = False
        else:
            with get_engine(settings).connect() as conn:
                known = is_partitioned(conn)
        with _cache_lock:
            _partitioned[key] = known
    return known


def forget() -> None:
    """Drop what this process remembers of existing partitions (after a schema changed)."""
    with _cache_lock:
        _known.clear()
        _partitioned.clear()


def existing_days(conn: Connection) -> set[dt.date]:
    rows = conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(:t)"
        ),
        {"t": TABLE},
    ).scalars()
    days = set()
    for name in rows:
        m = NAME.match(name)
        if m:
            days.add(dt.datetime.strptime(m.group(1), "%Y%m%d").date())
    return days


def _create(conn: Connection, days: Iterable[dt.date]) -> list[str]:
    """Create the missing partitions among ``days`` (the caller holds the lock)."""
    have = existing_days(conn)
    created = []
    for day in sorted(set(days) - have):
        start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
        end = start + dt.timedelta(days=1)
        name = partition_name(day)
        conn.execute(
            text(
                f'CREATE TABLE IF NOT EXISTS "{name}" PARTITION OF {TABLE} '
                f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
            )
        )
        created.append(name)
    return created


def ensure_days(days: Iterable[dt.date], settings: Settings | None = None) -> list[str]:
    """Make sure each of ``days`` has its partition; returns the names created.

    Cheap when they exist (remembered per process): the writer calls it for every batch.
    Creation runs in a transaction of its own under an advisory lock, so two writers never
    race to create one day, and no writer's open transaction holds it up.
    """
    settings = settings or get_settings()
    wanted = set(days)
    key = _key(settings)
    with _cache_lock:
        missing = wanted - _known.get(key, set())
    if not missing or not _partitioned_here(settings):
        return []
    with get_engine(settings).begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
        created = _create(conn, missing)
        have = existing_days(conn)
    with _cache_lock:
        _known.setdefault(key, set()).update(have)
    if created:
        log.info("created prediction log partitions %s", ", ".join(created))
    return created


def drop_expired(
    retention_days: int, *, today: dt.date | None = None, settings: Settings | None = None
) -> tuple[list[str], float]:
    """Drop the daily partitions wholly older than ``retention_days`` before ``today``.

    Returns the names dropped and the seconds the drop took. Only raw log rows go: rollups,
    drift and monitoring results are other tables. A day is kept while any part of it is
    within retention (the partition of ``today - retention_days`` stays).
    """
    if retention_days < 1:
        raise BadInput(f"the log retention must be at least 1 day, got {retention_days}")
    settings = settings or get_settings()
    if not _partitioned_here(settings):
        return [], 0.0
    today = today or dt.datetime.now(dt.UTC).date()
    cutoff = today - dt.timedelta(days=retention_days)
    started = time.perf_counter()
    with get_engine(settings).begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
        old = sorted(d for d in existing_days(conn) if d < cutoff)
        for day in old:
            conn.execute(text(f'DROP TABLE IF EXISTS "{partition_name(day)}"'))
    seconds = time.perf_counter() - started
    with _cache_lock:
        _known.get(_key(settings), set()).difference_update(old)
    if old:
        log.info(
            "dropped %d prediction log partition(s) older than %s in %.3f s",
            len(old),
            cutoff,
            seconds,
        )
    return [partition_name(d) for d in old], seconds


def housekeep(
    *, today: dt.date | None = None, settings: Settings | None = None, ahead: int = DAYS_AHEAD
) -> Housekeeping:
    """The worker's pass: partitions for yesterday to ``ahead`` days on, and retention."""
    settings = settings or get_settings()
    if not _partitioned_here(settings):
        return Housekeeping([], [], 0.0)
    today = today or dt.datetime.now(dt.UTC).date()
    created = ensure_days(
        (today + dt.timedelta(days=n) for n in range(-1, ahead + 1)), settings=settings
    )
    dropped, seconds = drop_expired(settings.log_retention_days, today=today, settings=settings)
    return Housekeeping(created, dropped, seconds)


def partitions(settings: Settings | None = None) -> list[Partition]:
    """The daily partitions, oldest first, with their estimated rows and size on disk."""
    settings = settings or get_settings()
    if not _partitioned_here(settings):
        return []
    with get_engine(settings).connect() as conn:
        rows = conn.execute(
            text(
                "SELECT c.relname, greatest(c.reltuples, 0)::bigint, "
                "pg_total_relation_size(c.oid) FROM pg_inherits i "
                "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(:t)"
            ),
            {"t": TABLE},
        ).all()
    out = []
    for name, estimate, size in rows:
        m = NAME.match(name)
        if m:
            day = dt.datetime.strptime(m.group(1), "%Y%m%d").date()
            out.append(Partition(name, day, int(estimate), int(size)))
    return sorted(out, key=lambda p: p.day)
