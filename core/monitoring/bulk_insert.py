"""The prediction log's rows into the database at the rate the API logs them.

On PostgreSQL through ``COPY``, on SQLite as multi-row INSERTs; each column encoded in one
pass as the ORM would bind it, so what is stored is what the ORM would store (tests compare
the two). Called inside :mod:`core.monitoring.writes`' transaction.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Sequence
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
from core.monitoring.copy_text import copy_lines
from core.monitoring.records import (
    RECORD_FIELDS,
    STORED_DECIMALS,
    PredictionRecord,
    round_lists,
    stored_columns,
)

SQLITE_ROWS_PER_INSERT = 500  # × 16 columns: well under SQLite's 32,766 parameters
# Rows encoded at a time while a COPY streams: the server stores one chunk while the next is
# encoded, instead of waiting for the whole batch's encoding (see ``_copy_logs``).
COPY_CHUNK_ROWS = 250


def insert_logs(
    s: Any,
    records: Sequence[PredictionRecord],
    each_chunk: Callable[[Sequence[PredictionRecord]], object] | None = None,
) -> None:
    """The log rows: on PostgreSQL through ``COPY`` (:func:`_copy_logs`), on SQLite as
    multi-row INSERTs with the values encoded column by column.

    The API logs from a thread of its own, and every microsecond that thread spends in Python
    holds the GIL its requests are waiting for. An ``executemany`` steps SQLite once per row,
    and the driver hands the GIL over around each step; one statement per 500 rows hands it
    over once per 500. Each column is then encoded in one pass: JSON columns by the very
    serializer their bind processor calls, UTC timestamps straight into SQLite's storage
    format, anything else by the column's own bind processor, so what is stored is what the
    ORM would store (a test compares the two), at a third of the processors' cost.

    ``each_chunk`` is called with each chunk of the records once it is sent: work the caller
    has to do for the rows anyway is done while the database stores them.
    """
    chunk_done = each_chunk or (lambda chunk: None)
    table = cast(Table, PredictionLogRow.__table__)
    conn = s.connection()
    dialect = conn.dialect
    if dialect.name == "postgresql":
        _copy_logs(conn, records, chunk_done)
        return
    if dialect.name != "sqlite":
        stored = stored_columns(records)
        rows = zip(*stored.values(), strict=True)
        s.execute(insert(table), [dict(zip(stored, row, strict=True)) for row in rows])
        chunk_done(records)
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
        chunk_done(chunk)


def _copy_logs(
    conn: Any,
    records: Sequence[PredictionRecord],
    chunk_done: Callable[[Sequence[PredictionRecord]], object],
) -> None:
    """The log rows through PostgreSQL's ``COPY … FROM STDIN``, in the caller's transaction.

    ``COPY`` streams the rows in one command: several times the rate of a multi-row
    ``INSERT`` (see bench/bench_log_scale.py), and no statement to parse per batch. Each value
    is encoded as the ORM would bind it (JSON by the same serializer, timestamps through the
    column's type), so the stored rows are the ORM's (a test compares the two). The day
    partitions the batch falls in are made first if missing (``core.monitoring.partitions``). A row
    the server refuses fails the whole command, as an INSERT would: the error is raised as
    SQLAlchemy's, so :func:`core.monitoring.writes.store_batch` isolates the row the same way.

    The rows are encoded and sent ``COPY_CHUNK_ROWS`` at a time, in COPY's text format when
    :mod:`core.monitoring.copy_text` formats every column: the server stores a chunk on one
    core while this process encodes the next on the other. Encoding the whole batch first
    left the server idle for half of each batch (25,800 rows/s before, see
    docs/operations.md).
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
    statement = f"COPY {table.name} ({', '.join(c.name for c in columns)}) FROM STDIN"
    raw = conn.connection.driver_connection
    try:
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            for start in range(0, len(records), COPY_CHUNK_ROWS):
                chunk = records[start : start + COPY_CHUNK_ROWS]
                encoded = _encoded_columns(chunk, columns, dialect)
                lines = copy_lines(encoded)
                if lines is not None:
                    copy.write(lines)
                else:
                    for row in zip(*encoded, strict=True):
                        copy.write_row(row)
                chunk_done(chunk)
    except psycopg.Error as exc:
        gone = dialect.is_disconnect(exc, raw, None)
        if gone:
            conn.invalidate(exc)
        raise DBAPIError.instance(
            statement, None, exc, psycopg.Error, connection_invalidated=gone, dialect=dialect
        ) from exc


def _encoded_columns(
    records: Sequence[PredictionRecord], columns: list[Any], dialect: Any
) -> list[list[Any]]:
    """The columns of ``records`` as the ORM would bind them, for COPY."""
    stored = stored_columns(records, rounded=False)
    return [
        _json_texts(stored[c.name], STORED_DECIMALS.get(c.name))
        if isinstance(c.type, JSON)
        else _encode_column(c, stored[c.name], dialect)
        for c in columns
    ]


def _json_texts(values: list[Any], digits: int | None) -> list[str]:
    """A JSON column's values as the ORM stores them (``json_dumps``; None as ``null``),
    rounded to ``digits`` first when given, as :func:`round_lists` rounds.

    A column of lists is serialised by one ``orjson`` call and cut into rows
    (:func:`_column_json_rows`); anything else goes a value at a time.
    """
    fast = _column_json_rows(values, digits)
    if fast is not None:
        return fast
    if digits is not None:
        values = round_lists(values, digits)
    dumps, default = orjson.dumps, json_default
    return [dumps(v, default=default).decode() for v in values]  # json_dumps, inlined


def _column_json_rows(values: list[Any], digits: int | None) -> list[str] | None:
    """The rows of a column of flat lists (None and empty lists aside) from one ``orjson``
    call over the whole column, or None when the column is not such a column.

    A call a row cost a microsecond a row. The column's JSON is ``[[row],[row],…]``: every
    boundary between two rows is ``],[``, so cutting there gives at least one piece a row, and
    exactly one (the rows themselves) when no row holds ``],[`` inside it (in a text, or
    between nested lists). A count of the pieces is therefore the whole proof.
    Lists to round (``digits``) must be numbers of one length: they are rounded as one NumPy
    array, whose float64 orjson writes exactly as the same Python float (tests compare the
    rows with the ORM's).
    """
    if not set(map(type, values)) <= _LIST_OR_NONE:
        return None
    present = list(filter(None, values))
    if not present:
        return ["[]" if v is not None else "null" for v in values]
    try:
        if digits is None:
            whole = orjson.dumps(present, default=json_default).decode()
        else:
            widths = set(map(len, present))
            if len(widths) != 1:
                return None
            (width,) = widths
            flat = itertools.chain.from_iterable(present)
            array = np.fromiter(flat, np.float64, count=len(present) * width)
            array = np.round(array.reshape(len(present), width), digits)
            whole = orjson.dumps(array, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    except (TypeError, ValueError):  # orjson's JSONEncodeError is a TypeError
        return None
    body = whole[1:-1]
    # orjson escapes every control character inside a string, so NUL marks only the cuts
    pieces = body.replace("],[", "]\x00[").split("\x00")
    if len(pieces) != len(present):
        return None
    if len(present) == len(values):
        return pieces
    rows = iter(pieces)
    return ["null" if v is None else next(rows) if v else "[]" for v in values]


_LIST_OR_NONE = {list, type(None)}


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
