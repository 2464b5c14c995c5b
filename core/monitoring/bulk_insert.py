"""The prediction log's rows into the database at the rate the API logs them.

On PostgreSQL through ``COPY``, on SQLite as multi-row INSERTs; each column encoded in one
pass as the ORM would bind it, so what is stored is what the ORM would store (tests compare
the two). Called inside :mod:`core.monitoring.writes`' transaction.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import orjson
import psycopg
from sqlalchemy import JSON, Table, insert
from sqlalchemy.exc import DBAPIError

from core.db import UTCDateTime, json_default, json_dumps
from core.db.tables import (
    PredictionLogRow,
)
from core.monitoring import partitions as log_partitions
from core.monitoring.records import (
    RECORD_FIELDS,
    STORED_DECIMALS,
    PredictionRecord,
    round_lists,
    stored_columns,
)

SQLITE_ROWS_PER_INSERT = 500  # × 16 columns: well under SQLite's 32,766 parameters


def insert_logs(s: Any, records: Sequence[PredictionRecord]) -> None:
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
        stored = stored_columns(records)
        rows = zip(*stored.values(), strict=True)
        s.execute(insert(table), [dict(zip(stored, row, strict=True)) for row in rows])
        return
    columns = [c for c in table.columns if c.name in RECORD_FIELDS]
    names = ", ".join(c.name for c in columns)
    group = "(" + ", ".join("?" * len(columns)) + ")"
    for start in range(0, len(records), SQLITE_ROWS_PER_INSERT):
        chunk = records[start : start + SQLITE_ROWS_PER_INSERT]
        stored = stored_columns(chunk)
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
    SQLAlchemy's, so :func:`core.monitoring.writes.store_batch` isolates the row the same way.
    """
    table = cast(Table, PredictionLogRow.__table__)
    dialect = conn.dialect
    stamps = [r.ts for r in records]
    try:
        first, last = log_partitions.day_of(min(stamps)), log_partitions.day_of(max(stamps))
    except TypeError as exc:  # naive and aware timestamps in one batch
        raise ValueError(f"timestamps of a batch cannot be compared: {exc}") from exc
    log_partitions.ensure_days(first + dt.timedelta(days=n) for n in range((last - first).days + 1))
    columns = [c for c in table.columns if c.name in RECORD_FIELDS]
    stored = stored_columns(records, rounded=False)
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
    rounded to ``digits`` first when given, as :func:`round_lists` rounds.

    A column of lists of one length (the scores of a batch, its predicted scores; None and
    empty lists aside) is rounded as one NumPy array and serialised by one ``orjson`` call,
    then cut into rows: orjson writes a float64 of an array exactly as the same Python float
    (a test compares the rows with the ORM's). Anything else goes a value at a time.
    """
    if digits is not None:
        fast = _rounded_json_rows(values, digits)
        if fast is not None:
            return fast
        values = round_lists(values, digits)
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
