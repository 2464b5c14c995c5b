"""Rows in PostgreSQL's ``COPY`` text format, built a column at a time.

psycopg's ``Copy.write_row`` formats each value of each row through its dumper: about 5 µs a
log row, a quarter of the log writer's time. Here each column is turned into texts by one C
loop over the column (``float.__repr__``, ``datetime.isoformat``, the texts as they are),
escaped only when the joined column holds a character the format reserves, and the rows are
joined by ``str.join``: about a microsecond a row. The texts are what psycopg itself sends for
these types (a float's shortest repr, the ISO form of an aware timestamp), so the server
stores the same values (a test compares the rows with the ORM's).

Only the types the log's columns hold are formatted here; a column holding anything else (a
NumPy scalar, say) makes :func:`copy_lines` return None and the caller falls back to
``write_row``, which knows every type psycopg does.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

NULL = "\\N"
_RESERVED = ("\\", "\t", "\n", "\r")
_FORMATS: dict[type, Callable[[Any], str]] = {
    str: str.__str__,
    float: float.__repr__,  # the shortest text that reads back as the same double
    int: int.__repr__,
    dt.datetime: dt.datetime.isoformat,
}


def copy_lines(columns: Sequence[Sequence[Any]]) -> bytes | None:
    """The rows whose columns are ``columns`` as COPY's text format (UTF-8, one line a row),
    or None when a column holds a type this module does not format."""
    texts = []
    for values in columns:
        column = _column_texts(values)
        if column is None:
            return None
        texts.append(column)
    if not texts or not texts[0]:
        return b""
    lines = "\n".join(map("\t".join, zip(*texts, strict=True)))
    return (lines + "\n").encode()


def _column_texts(values: Sequence[Any]) -> list[str] | None:
    kinds = set(map(type, values))
    nulls = type(None) in kinds
    kinds.discard(type(None))
    if len(kinds) > 1:
        return None
    if not kinds:
        return [NULL] * len(values)
    (kind,) = kinds
    present = list(filter(_is_value, values)) if nulls else values
    fmt = _FORMATS.get(kind)
    if fmt is None:
        return None
    if kind is dt.datetime:
        zones = set(map(_TZINFO, present))
        if None in zones:
            return None  # a naive timestamp: the column's type decides what it means
        if zones == {dt.UTC}:
            fmt = None
            texts = _utc_texts(present)
    elif kind is str:
        joined = "".join(present)
        if any(c in joined for c in _RESERVED):
            fmt = _escaped
    if fmt is not None:
        texts = list(map(fmt, present))
    if nulls:
        at = iter(texts)
        texts = [NULL if v is None else next(at) for v in values]
    return texts


def _utc_texts(stamps: Sequence[dt.datetime]) -> list[str]:
    """UTC timestamps in ISO form, formatted by NumPy for the whole column (``isoformat`` costs
    a microsecond or two a value). Exact: a timestamp's seconds as a double are within an
    eighth of a microsecond of the truth, so rounding the microseconds gives them back."""
    seconds = np.fromiter(map(dt.datetime.timestamp, stamps), np.float64, count=len(stamps))
    micros = np.round(seconds * 1e6).astype(np.int64).astype("datetime64[us]")
    # 2026-05-01T10:00:00.000000Z
    return list(np.datetime_as_string(micros, timezone="UTC").tolist())


def _is_value(v: Any) -> bool:
    return v is not None


_TZINFO = operator.attrgetter("tzinfo")


def _escaped(text: str) -> str:
    """A text value as the format wants it: the backslash and the separators escaped."""
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
