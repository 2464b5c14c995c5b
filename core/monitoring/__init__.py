"""The prediction log: batched writes, feedback, and aggregates by time bucket in SQL.

Every served recommendation becomes one row (what was asked, what was returned, how long it
took, whether it failed). The same transaction adds it to an hourly rollup per model, version
and variant (counts, errors, clicks, a latency histogram), which is what the dashboard reads:
a year of traffic is a few thousand rollup rows, however many millions of requests it was.
Latency percentiles come from the histogram (bins doubling from 0.5 ms), as Prometheus does.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import json
import operator
import os
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, cast

import numpy as np
import orjson
import pandas as pd
import psycopg
from sqlalchemy import JSON, String, Table, func, insert, select
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError

from core import text
from core.data.categories import CATEGORIES
from core.db import UTCDateTime, json_default, json_dumps, transaction, utcnow
from core.db.tables import (
    LATENCY_EDGES_MS,
    N_LATENCY_BINS,
    FeedbackRow,
    LogRefusalRow,
    PredictionLogRow,
    RollupRow,
)
from core.errors import BadInput, NotFound
from core.monitoring import partitions as log_partitions

VARIANTS = ("production", "canary", "preview", "simulated")


@dataclass(frozen=True)
class PredictionRecord:
    """One served request as the log keeps it; ``scores`` and ``predicted`` as computed (the
    log rounds them, see ``STORED_DECIMALS``)."""

    model: str
    version: str
    variant: str
    ratings: list[float]
    k: int
    places: list[str]
    categories: list[str]
    scores: list[float]
    latency_ms: float
    lat: float | None = None
    lng: float | None = None
    predicted: list[float] | None = None
    error: str | None = None
    user_id: str | None = None
    ts: dt.datetime = field(default_factory=utcnow)
    request_id: str = field(default_factory=lambda: time_ordered_id())

    def row(self) -> dict[str, Any]:
        """The row as stored."""
        return {name: values[0] for name, values in _stored_columns([self]).items()}


# Digits kept in the log: finer ones are noise of the models' float32 arithmetic, and they
# were most of a row's size. Rounded by the writer, a column at a time, so that the request
# path never pays for it.
STORED_DECIMALS = {"scores": 6, "predicted": 4}


def _stored_columns(
    records: Sequence[PredictionRecord], *, rounded: bool = True
) -> dict[str, list[Any]]:
    """Each field's values, as the log stores them (``rounded=False``: the lists to round not
    rounded yet). Shallow: ``dataclasses.asdict`` would deep-copy every list, at five times the
    cost of the insert; the fields are read a record at a time by one C call
    (``operator.attrgetter``) and turned into columns by ``zip``."""
    if not records:
        return {name: [] for name in _RECORD_FIELDS}
    out = {
        name: list(values)
        for name, values in zip(
            _RECORD_FIELDS, zip(*map(_FIELDS_OF, records), strict=True), strict=True
        )
    }
    if rounded:
        for name, digits in STORED_DECIMALS.items():
            out[name] = _rounded(out[name], digits)
    return out


def _rounded(lists: list[Any], digits: int) -> list[Any]:
    """Every list of a column rounded as ``np.round`` does, in one NumPy call (Python's
    ``round`` cost more than the rest of the insert)."""
    flat = list(itertools.chain.from_iterable(v for v in lists if v is not None))
    values = np.round(np.array(flat, dtype=np.float64), digits).tolist()
    out: list[Any] = []
    at = 0
    for v in lists:
        if v is None:
            out.append(None)
            continue
        out.append(values[at : at + len(v)])
        at += len(v)
    return out


def time_ordered_id() -> str:
    """A UUID whose first 48 bits are the time in milliseconds (the layout of UUIDv7).

    Random UUIDs land all over the unique index of the log, which slows inserts as the log
    grows; ids that increase with time append at the end of it, so the write rate stays flat.
    """
    value = (time.time_ns() // 1_000_000) << 80 | _random_bits.take()
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    h = f"{value:032x}"  # what str(uuid.UUID(int=value)) gives, in a tenth of the time
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class _RandomPool:
    """The operating system's random bytes, fetched a few thousand ids at a time.

    ``os.urandom`` is a system call that gives up the interpreter lock: once a request it
    cost the API several microseconds, mostly waiting to get the lock back.
    """

    def __init__(self, width: int = 10, batch: int = 4096) -> None:
        self.width, self.batch = width, batch
        self.reset()

    def reset(self) -> None:
        self.lock = threading.Lock()
        self.pool, self.at = b"", 0

    def take(self) -> int:
        with self.lock:
            if self.at >= len(self.pool):
                self.pool, self.at = os.urandom(self.width * self.batch), 0
            at = self.at
            self.at = at + self.width
            return int.from_bytes(self.pool[at : at + self.width], "big")


_random_bits = _RandomPool()
if hasattr(os, "register_at_fork"):  # a forked child must not hand out its parent's ids
    os.register_at_fork(after_in_child=_random_bits.reset)


_RECORD_FIELDS = tuple(f.name for f in fields(PredictionRecord))
_FIELDS_OF = operator.attrgetter(*_RECORD_FIELDS)


def hour_of(ts: dt.datetime) -> int:
    return int(ts.timestamp() // 3600)


def latency_bin(ms: float) -> int:
    return bisect.bisect_left(LATENCY_EDGES_MS, ms)


def _rollup_deltas(records: Iterable[PredictionRecord]) -> dict[tuple[int, str, str, str], dict]:
    deltas: dict[tuple[int, str, str, str], dict[str, Any]] = {}
    for r in records:
        key = (hour_of(r.ts), r.model, r.version, r.variant)
        d = deltas.get(key)
        if d is None:
            d = deltas[key] = {
                "requests": 0,
                "errors": 0,
                "latency": 0.0,
                "bins": [0] * N_LATENCY_BINS,
            }
        d["requests"] += 1
        d["errors"] += r.error is not None
        d["latency"] += r.latency_ms
        d["bins"][latency_bin(r.latency_ms)] += 1
    return deltas


def write_batch(records: Sequence[PredictionRecord]) -> int:
    """Insert the records and fold them into the rollups; returns the number written.

    What one record holds never blocks the others: see :func:`store_batch`, which also says
    how many were refused.
    """
    return store_batch(records).written


@dataclass(frozen=True)
class BatchOutcome:
    """What became of a batch handed to :func:`store_batch`."""

    written: int  # rows now in the log (and in the rollups)
    refused: int = 0  # rows the database cannot store, kept aside (see ``refusals``)
    already: int = 0  # rows whose request id was already logged (a batch sent again)

    def __add__(self, other: BatchOutcome) -> BatchOutcome:
        return BatchOutcome(
            self.written + other.written,
            self.refused + other.refused,
            self.already + other.already,
        )


def store_batch(records: Sequence[PredictionRecord]) -> BatchOutcome:
    """Write a batch in as few transactions as its contents allow.

    The whole batch is one transaction when every row can be stored. A row that cannot (a
    text the database refuses: see ``core.text``; a value the driver cannot bind) is put aside
    in ``prediction_log_refusals`` with the reason, and the rest of the batch is written:
    rows found unstorable up front are refused at once; a batch that still fails on what it
    holds is halved until each failing row is alone. Rows whose request id is already in the
    log (a batch sent again after its answer was lost) are counted, not written twice. An
    unreachable database is not a bad row: it raises, and the caller keeps the batch.
    """
    if not records:
        return BatchOutcome(0)
    for r in records:
        if r.variant not in VARIANTS:  # the caller's contract, not a client's input
            raise BadInput(f"unknown variant {r.variant!r}; variants are {', '.join(VARIANTS)}")
    good: list[PredictionRecord] = []
    refused: list[tuple[PredictionRecord, str]] = []
    every_row_storable = _all_storable(records)
    for r in records:
        problem = None if every_row_storable else _unstorable(r)
        if problem is None:
            good.append(r if r.error is None else _with_storable_error(r))
        else:
            refused.append((r, problem))
    return _write_isolating(good, refused, top=True)


_TEXT_LIMITS = {
    c.name: c.type.length
    for c in PredictionLogRow.__table__.columns
    if c.name in _RECORD_FIELDS and isinstance(c.type, String) and c.type.length
}
ERROR_CHARS = 2000  # an error message is cut to this many characters


def _unstorable(r: PredictionRecord) -> str | None:
    """Why the log cannot store ``r`` as it is, or None."""
    for name, limit in _TEXT_LIMITS.items():
        value = getattr(r, name)
        if value is None:
            continue
        if not isinstance(value, str):
            return f"{name} is not text"
        problem = text.unstorable(value, limit)
        if problem is not None:
            return f"{name} {problem}"
    for name in ("places", "categories"):
        try:
            joined = "".join(getattr(r, name))
        except TypeError:
            return f"{name} is not a list of texts"
        problem = text.unstorable(joined)
        if problem is not None:
            return f"{name} {problem}"
    return None


def _all_storable(records: Sequence[PredictionRecord]) -> bool:
    """Whether :func:`_unstorable` passes every record, checked a column at a time.

    The texts of a column are checked joined, in one call: what the rule looks for (a NUL, a
    lone surrogate) is in the joined text exactly when it is in one of them, and the lengths
    are compared at once. False sends the batch through the row-by-row check, which names the
    rows and reasons; a batch of well-formed records costs a tenth of it.
    """
    for name, limit in _TEXT_LIMITS.items():
        values = [v for v in map(operator.attrgetter(name), records) if v is not None]
        if not set(map(type, values)) <= {str}:
            return False
        if values and (max(map(len, values)) > limit or text.unstorable("".join(values))):
            return False
    for name in ("places", "categories"):
        try:
            joined = "".join(itertools.chain.from_iterable(map(operator.attrgetter(name), records)))
        except TypeError:
            return False
        if text.unstorable(joined) is not None:
            return False
    return True


def _with_storable_error(r: PredictionRecord) -> PredictionRecord:
    """The service's own error message may quote what it was given: neutralised, not refused."""
    assert r.error is not None
    if text.unstorable(r.error, ERROR_CHARS) is None:
        return r
    return replace(r, error=text.neutralised(r.error, ERROR_CHARS))


def _write_isolating(
    records: Sequence[PredictionRecord],
    refused: Sequence[tuple[PredictionRecord, str]],
    *,
    top: bool = False,
) -> BatchOutcome:
    try:
        _write(records, refused)
        return BatchOutcome(len(records), len(refused))
    except Exception as exc:  # noqa: BLE001 - sorted below: bad rows, or the database
        if not _caused_by_rows(exc):
            raise
        failure = exc
    if isinstance(failure, IntegrityError) and (top or len(records) == 1):
        # Two writers may create the same new rollup row at once: try once more first.
        try:
            _write(records, refused)
            return BatchOutcome(len(records), len(refused))
        except Exception as exc:  # noqa: BLE001
            if not _caused_by_rows(exc):
                raise
            failure = exc
    outcome = BatchOutcome(0)
    if refused:
        _write([], refused)  # the refusals alone; if even they fail, nothing can be isolated
        outcome = BatchOutcome(0, len(refused))
    if not records:
        return outcome
    if isinstance(failure, IntegrityError):
        present = _logged_ids([r.request_id for r in records])
        if present:
            rest = [r for r in records if r.request_id not in present]
            skipped = BatchOutcome(0, 0, len(records) - len(rest))
            return outcome + skipped + _write_isolating(rest, [])
    if len(records) == 1:
        return outcome + _write_isolating([], [(records[0], _reason(failure))])
    half = len(records) // 2
    return outcome + _write_isolating(records[:half], []) + _write_isolating(records[half:], [])


def _caused_by_rows(exc: BaseException) -> bool:
    """Whether ``exc`` is about what the rows hold (so isolating them helps), rather than the
    database being away or the schema being wrong (which every row would hit alike)."""
    if isinstance(exc, DBAPIError):
        return not exc.connection_invalidated and isinstance(exc, DataError | IntegrityError)
    if isinstance(exc, StatementError):  # a value the column's processor could not bind
        return True
    return isinstance(exc, ValueError | TypeError)  # UnicodeEncodeError, orjson's errors


def _reason(exc: BaseException) -> str:
    """One line naming what the database said about a row (not the statement's parameters)."""
    cause = exc.orig if isinstance(exc, StatementError) and exc.orig is not None else exc
    first = (str(cause).strip().splitlines() or [""])[0]
    return text.neutralised(f"{type(cause).__name__}: {first}", 500)


def _logged_ids(request_ids: list[str]) -> set[str]:
    found: set[str] = set()
    with transaction(write=False) as s:
        for start in range(0, len(request_ids), SQLITE_ROWS_PER_INSERT):
            chunk = request_ids[start : start + SQLITE_ROWS_PER_INSERT]
            found.update(
                s.scalars(
                    select(PredictionLogRow.request_id).where(
                        PredictionLogRow.request_id.in_(chunk)
                    )
                )
            )
    return found


def _write(
    records: Sequence[PredictionRecord], refused: Sequence[tuple[PredictionRecord, str]]
) -> None:
    """One transaction: the rows, their rollups, and the refusals."""
    with transaction() as s:
        if records:
            _insert_logs(s, records)
            _apply_rollups(s, _rollup_deltas(records))
        if refused:
            now = utcnow()
            s.execute(
                insert(cast(Table, LogRefusalRow.__table__)),
                [_refusal_row(r, reason, now) for r, reason in refused],
            )


def _ascii(value: Any) -> str:
    """Any value as printable ASCII (JSON's escapes), which every database stores."""
    return json.dumps(value if isinstance(value, str) else str(value), ensure_ascii=True)[1:-1]


def _refusal_row(r: PredictionRecord, reason: str, now: dt.datetime) -> dict[str, Any]:
    fields = {name: getattr(r, name) for name in _RECORD_FIELDS}
    return {
        "refused_at": now,
        "request_id": _ascii(r.request_id)[:64],
        "model": _ascii(r.model)[:128],
        "reason": _ascii(reason),
        "record": json.dumps(fields, ensure_ascii=True, default=str),
    }


@dataclass(frozen=True)
class Refusal:
    """A log record the database could not store (its fields as ASCII-escaped JSON)."""

    refused_at: dt.datetime
    request_id: str
    model: str
    reason: str
    record: str


@dataclass(frozen=True)
class Refusals:
    """How many log records were refused (in all, and since ``since``) and the latest ones."""

    total: int
    recent: int
    since: dt.datetime
    latest: list[Refusal]


def refusals(*, since: dt.datetime | None = None, limit: int = 20) -> Refusals:
    """Refused log records, for the Monitoring page and alerts: a figure that is not zero
    means some clients' requests are missing from the log (each one kept here, with why)."""
    since = since or utcnow() - dt.timedelta(hours=24)
    t = LogRefusalRow
    with transaction(write=False) as s:
        total = int(s.scalar(select(func.count()).select_from(t)) or 0)
        recent = int(
            s.scalar(select(func.count()).select_from(t).where(t.refused_at >= since)) or 0
        )
        rows = s.execute(
            select(t.refused_at, t.request_id, t.model, t.reason, t.record)
            .order_by(t.id.desc())
            .limit(limit)
        ).all()
    return Refusals(total, recent, since, [Refusal(*row) for row in rows])


SQLITE_ROWS_PER_INSERT = 500  # × 16 columns: well under SQLite's 32,766 parameters


def _insert_logs(s: Any, records: Sequence[PredictionRecord]) -> None:
    """The log rows: on PostgreSQL through ``COPY`` (:func:`_copy_logs`), on SQLite as
    multi-row INSERTs with the values encoded column by column.

    The API logs from a thread of its own, and every microsecond that thread spends in Python
    holds the GIL its requests are waiting for. An ``executemany`` steps SQLite once per row,
    and the driver hands the GIL over around each step; one statement per 500 rows hands it
    over once per 500. Each column is then encoded in one pass: JSON columns by the very
    serializer their bind processor calls, UTC timestamps straight into SQLite's storage
    format, anything else by the column's own bind processor, so what is stored is what the
    ORM would store (a test compares the two), at a third of the processors' cost.
    """
    table = cast(Table, PredictionLogRow.__table__)
    conn = s.connection()
    dialect = conn.dialect
    if dialect.name == "postgresql":
        _copy_logs(conn, records)
        return
    if dialect.name != "sqlite":
        stored = _stored_columns(records)
        rows = zip(*stored.values(), strict=True)
        s.execute(insert(table), [dict(zip(stored, row, strict=True)) for row in rows])
        return
    columns = [c for c in table.columns if c.name in _RECORD_FIELDS]
    names = ", ".join(c.name for c in columns)
    group = "(" + ", ".join("?" * len(columns)) + ")"
    for start in range(0, len(records), SQLITE_ROWS_PER_INSERT):
        chunk = records[start : start + SQLITE_ROWS_PER_INSERT]
        stored = _stored_columns(chunk)
        encoded = [_encode_column(c, stored[c.name], dialect) for c in columns]
        conn.exec_driver_sql(
            f"INSERT INTO {table.name} ({names}) VALUES {', '.join([group] * len(chunk))}",
            tuple(itertools.chain.from_iterable(zip(*encoded, strict=True))),
        )


def _copy_logs(conn: Any, records: Sequence[PredictionRecord]) -> None:
    """The log rows through PostgreSQL's ``COPY … FROM STDIN``, in the caller's transaction.

    ``COPY`` streams the rows in one command: several times the rate of a multi-row
    ``INSERT`` (see bench/bench_log_scale.py), and no statement to parse per batch. Each value
    is encoded as the ORM would bind it (JSON by the same serializer, timestamps through the
    column's type), so the stored rows are the ORM's (a test compares the two). The day
    partitions the batch falls in are made first if missing (``core.monitoring.partitions``). A row
    the server refuses fails the whole command, as an INSERT would: the error is raised as
    SQLAlchemy's, so :func:`store_batch` isolates the row the same way.
    """
    table = cast(Table, PredictionLogRow.__table__)
    dialect = conn.dialect
    stamps = [r.ts for r in records]
    try:
        first, last = log_partitions.day_of(min(stamps)), log_partitions.day_of(max(stamps))
    except TypeError as exc:  # naive and aware timestamps in one batch
        raise ValueError(f"timestamps of a batch cannot be compared: {exc}") from exc
    log_partitions.ensure_days(first + dt.timedelta(days=n) for n in range((last - first).days + 1))
    columns = [c for c in table.columns if c.name in _RECORD_FIELDS]
    stored = _stored_columns(records, rounded=False)
    encoded = [
        _json_texts(stored[c.name], STORED_DECIMALS.get(c.name))
        if isinstance(c.type, JSON)
        else _encode_column(c, stored[c.name], dialect)
        for c in columns
    ]
    statement = f"COPY {table.name} ({', '.join(c.name for c in columns)}) FROM STDIN"
    raw = conn.connection.driver_connection
    try:
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            for row in zip(*encoded, strict=True):
                copy.write_row(row)
    except psycopg.Error as exc:
        gone = dialect.is_disconnect(exc, raw, None)
        if gone:
            conn.invalidate(exc)
        raise DBAPIError.instance(
            statement, None, exc, psycopg.Error, connection_invalidated=gone, dialect=dialect
        ) from exc


def _json_texts(values: list[Any], digits: int | None) -> list[str]:
    """A JSON column's values as the ORM stores them (``json_dumps``; None as ``null``),
    rounded to ``digits`` first when given, as :func:`_rounded` rounds.

    A column of lists of one length (the scores of a batch, its predicted scores; None and
    empty lists aside) is rounded as one NumPy array and serialised by one ``orjson`` call,
    then cut into rows: orjson writes a float64 of an array exactly as the same Python float
    (a test compares the rows with the ORM's). Anything else goes a value at a time.
    """
    if digits is not None:
        fast = _rounded_json_rows(values, digits)
        if fast is not None:
            return fast
        values = _rounded(values, digits)
    dumps, default = orjson.dumps, json_default
    return [dumps(v, default=default).decode() for v in values]  # json_dumps, inlined


def _rounded_json_rows(values: list[Any], digits: int) -> list[str] | None:
    try:
        present = [v for v in values if v is not None and len(v)]
        width = len(present[0]) if present else 0
        if not width or any(len(v) != width for v in present):
            return None
        array = np.round(np.array(present, dtype=np.float64), digits)
    except (TypeError, ValueError):
        return None
    if array.shape != (len(present), width):
        return None
    whole = orjson.dumps(array, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    rows = iter(whole[2:-2].split("],["))
    return ["null" if v is None else f"[{next(rows)}]" if len(v) else "[]" for v in values]


def _encode_column(column: Any, values: list[Any], dialect: Any) -> list[Any]:
    if isinstance(column.type, JSON):
        return [json_dumps(v) for v in values]  # what the JSON type's processor returns
    if isinstance(column.type, UTCDateTime) and all(v.tzinfo is dt.UTC for v in values):
        if dialect.name != "sqlite":
            return values  # already what the type's processor returns
        # SQLAlchemy's SQLite format, 2026-05-01 10:00:00.000000: the ISO form without zone
        return [v.isoformat(" ", "microseconds")[:26] for v in values]
    process = column.type.dialect_impl(dialect).bind_processor(dialect)
    return values if process is None else [process(v) for v in values]


def _apply_rollups(s: Any, deltas: dict[tuple[int, str, str, str], dict[str, Any]]) -> None:
    """Read-modify-write of the touched rollup rows, locked for the transaction."""
    for (hour, model, version, variant), d in deltas.items():
        key = {"hour": hour, "model": model, "version": version, "variant": variant}
        row = s.get(RollupRow, key, with_for_update=True)
        if row is None:
            row = RollupRow(
                **key,
                requests=0,
                errors=0,
                clicks=0,
                latency_sum_ms=0.0,
                latency_bins=[0] * N_LATENCY_BINS,
            )
            s.add(row)
        row.requests += d.get("requests", 0)
        row.errors += d.get("errors", 0)
        row.clicks += d.get("clicks", 0)
        row.latency_sum_ms += d.get("latency", 0.0)
        if "bins" in d:
            row.latency_bins = [a + b for a, b in zip(row.latency_bins, d["bins"], strict=True)]
        s.flush()


def record_feedback(request_id: str, place_id: str, *, kind: str = "click") -> None:
    """A click on a returned place; refused unless the place was in that response."""
    with transaction() as s:
        log = s.scalar(select(PredictionLogRow).where(PredictionLogRow.request_id == request_id))
        if log is None:
            raise NotFound(f"no logged request {request_id!r}")
        if place_id not in log.places:
            raise BadInput(f"place {place_id!r} was not in the response to request {request_id}")
        s.add(FeedbackRow(request_id=request_id, place_id=place_id, kind=kind, ts=utcnow()))
        _apply_rollups(s, {(hour_of(log.ts), log.model, log.version, log.variant): {"clicks": 1}})


# ------------------------------------------------------------------------ aggregates


@dataclass(frozen=True)
class Bucket:
    start: dt.datetime
    requests: int
    errors: int
    clicks: int
    latency_mean_ms: float
    latency_p50_ms: float
    latency_p95_ms: float
    latency_p99_ms: float

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def click_through(self) -> float:
        return self.clicks / self.requests if self.requests else 0.0


def percentile_from_bins(bins: Sequence[int], q: float) -> float:
    """Linear interpolation inside the histogram bin holding the q-th quantile."""
    total = sum(bins)
    if total == 0:
        return float("nan")
    target = q * total
    seen = 0
    for i, count in enumerate(bins):
        if count and seen + count >= target:
            low = 0.0 if i == 0 else LATENCY_EDGES_MS[i - 1]
            high = LATENCY_EDGES_MS[i] if i < len(LATENCY_EDGES_MS) else LATENCY_EDGES_MS[-1] * 2
            return low + (high - low) * (target - seen) / count
        seen += count
    return LATENCY_EDGES_MS[-1] * 2


def traffic(
    model: str | None = None,
    *,
    since: dt.datetime,
    until: dt.datetime | None = None,
    bucket_hours: int = 1,
    version: str | None = None,
    variant: str | None = None,
) -> list[Bucket]:
    """Traffic per bucket of ``bucket_hours`` between ``since`` and ``until``."""
    if bucket_hours < 1:
        raise BadInput(f"bucket_hours must be at least 1, got {bucket_hours}")
    until = until or utcnow()
    bucket = RollupRow.hour // bucket_hours  # integer division on both backends
    query = select(
        bucket.label("b"),
        RollupRow.requests,
        RollupRow.errors,
        RollupRow.clicks,
        RollupRow.latency_sum_ms,
        RollupRow.latency_bins,
    ).where(RollupRow.hour >= hour_of(since), RollupRow.hour <= hour_of(until))
    if model is not None:
        query = query.where(RollupRow.model == model)
    if version is not None:
        query = query.where(RollupRow.version == version)
    if variant is not None:
        query = query.where(RollupRow.variant == variant)
    merged: dict[int, dict[str, Any]] = defaultdict(
        lambda: {
            "requests": 0,
            "errors": 0,
            "clicks": 0,
            "latency": 0.0,
            "bins": np.zeros(N_LATENCY_BINS, np.int64),
        }
    )
    with transaction(write=False) as s:
        for b, requests, errors, clicks, latency, bins in s.execute(query):
            m = merged[int(b)]
            m["requests"] += requests
            m["errors"] += errors
            m["clicks"] += clicks
            m["latency"] += latency
            m["bins"] += np.asarray(bins, dtype=np.int64)
    out = []
    for b in sorted(merged):
        m = merged[b]
        bins = m["bins"].tolist()
        out.append(
            Bucket(
                start=dt.datetime.fromtimestamp(b * bucket_hours * 3600, tz=dt.UTC),
                requests=m["requests"],
                errors=m["errors"],
                clicks=m["clicks"],
                latency_mean_ms=m["latency"] / m["requests"] if m["requests"] else float("nan"),
                latency_p50_ms=percentile_from_bins(bins, 0.50),
                latency_p95_ms=percentile_from_bins(bins, 0.95),
                latency_p99_ms=percentile_from_bins(bins, 0.99),
            )
        )
    return out


def traffic_frame(buckets: Sequence[Bucket]) -> pd.DataFrame:
    rows = [
        {**asdict(b), "error_rate": b.error_rate, "click_through": b.click_through} for b in buckets
    ]
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Summary:
    requests: int
    error_rate: float
    click_through: float
    latency_p50_ms: float
    latency_p99_ms: float


def summary(model: str | None, *, hours: int = 24, until: dt.datetime | None = None) -> Summary:
    """One figure per measure over the last ``hours`` (for Overview and alerts)."""
    until = until or utcnow()
    cond = [
        RollupRow.hour >= hour_of(until - dt.timedelta(hours=hours)),
        RollupRow.hour <= hour_of(until),
    ]
    if model is not None:
        cond.append(RollupRow.model == model)
    with transaction(write=False) as s:
        requests, errors, clicks = s.execute(
            select(
                func.coalesce(func.sum(RollupRow.requests), 0),
                func.coalesce(func.sum(RollupRow.errors), 0),
                func.coalesce(func.sum(RollupRow.clicks), 0),
            ).where(*cond)
        ).one()
        bins = np.zeros(N_LATENCY_BINS, np.int64)
        for (b,) in s.execute(select(RollupRow.latency_bins).where(*cond)):
            bins += np.asarray(b, dtype=np.int64)
    if not requests:
        return Summary(0, 0.0, 0.0, float("nan"), float("nan"))
    return Summary(
        int(requests),
        errors / requests,
        clicks / requests,
        percentile_from_bins(bins.tolist(), 0.5),
        percentile_from_bins(bins.tolist(), 0.99),
    )


def count_logs(model: str | None = None) -> int:
    with transaction(write=False) as s:
        q = select(func.count()).select_from(PredictionLogRow)
        if model is not None:
            q = q.where(PredictionLogRow.model == model)
        return int(s.scalar(q) or 0)


def window(
    model: str,
    start: dt.datetime,
    end: dt.datetime,
    *,
    version: str | None = None,
    max_rows: int = 20_000,
) -> pd.DataFrame:
    """Logged successful requests of a window, at most ``max_rows`` of them.

    Sampling rule (documented for drift): when the window holds more rows, every n-th row by
    id is taken, with n = ceil(rows / max_rows), which keeps the sample spread over the window
    and the same every time it is computed.
    """
    cond = [
        PredictionLogRow.model == model,
        PredictionLogRow.ts >= start,
        PredictionLogRow.ts < end,
        PredictionLogRow.error.is_(None),
    ]
    if version is not None:
        cond.append(PredictionLogRow.version == version)
    with transaction(write=False) as s:
        total = int(s.scalar(select(func.count()).select_from(PredictionLogRow).where(*cond)) or 0)
        step = max(1, -(-total // max_rows))
        q = select(
            PredictionLogRow.ts,
            PredictionLogRow.version,
            PredictionLogRow.ratings,
            PredictionLogRow.categories,
            PredictionLogRow.predicted,
        ).where(*cond)
        if step > 1:
            q = q.where(PredictionLogRow.id % step == 0)
        rows = s.execute(q.order_by(PredictionLogRow.id)).all()
    frame = pd.DataFrame(rows, columns=["ts", "version", "ratings", "categories", "predicted"])
    frame.attrs["total"] = total
    frame.attrs["step"] = step
    return frame


def ratings_of(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return pd.DataFrame(columns=list(CATEGORIES))
    return pd.DataFrame(
        np.asarray(frame["ratings"].tolist(), dtype=float), columns=list(CATEGORIES)
    )
