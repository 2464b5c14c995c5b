"""The log writer's column-at-a-time encodings give what the value-at-a-time rules give."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from core.db import json_dumps
from core.monitoring import records
from core.monitoring.bulk_insert import _json_texts
from core.monitoring.copy_text import copy_lines


def test_copy_lines_escape_what_the_format_reserves_and_mark_nulls() -> None:
    t = dt.datetime(2026, 5, 1, 10, 0, 0, 5, tzinfo=dt.UTC)
    lines = copy_lines([["a\tb", None, "back\\slash\n"], [1.5, None, float("inf")], [t, t, t]])
    assert lines == (
        b"a\\tb\t1.5\t2026-05-01T10:00:00.000005Z\n"
        b"\\N\t\\N\t2026-05-01T10:00:00.000005Z\n"
        b"back\\\\slash\\n\tinf\t2026-05-01T10:00:00.000005Z\n"
    )


def test_copy_lines_leave_types_they_do_not_format_to_the_driver() -> None:
    assert copy_lines([[np.float64(1.5)]]) is None  # NumPy's repr is not PostgreSQL's text
    assert copy_lines([[True]]) is None
    assert copy_lines([[dt.datetime(2026, 5, 1)]]) is None  # naive: the column's type decides
    assert copy_lines([[1, 2.5]]) is None  # mixed types in one column


def test_numbers_read_back_as_the_same_values() -> None:
    rng = np.random.default_rng(3)
    floats = [
        *(rng.lognormal(1.0, 3.0, 2000) * rng.choice([-1, 1], 2000)).tolist(),
        *[0.0, -0.0, 1e-5, 1e16, 1e22, 5e-324, 1.7976931348623157e308, 0.1, 40.42, -3.7],
    ]
    texts = copy_lines([floats])
    assert texts is not None
    assert [float(t) for t in texts.decode().split()] == floats
    ints = [0, -1, 2**63 - 1, -(2**63)]
    assert copy_lines([ints]) == b"".join(f"{i}\n".encode() for i in ints)
    huge = [2**64, 1]  # beyond orjson's integers: by repr
    assert copy_lines([huge]) == f"{2**64}\n1\n".encode()
    assert copy_lines([[1.5, math.nan, -math.inf]]) == b"1.5\nnan\n-inf\n"


def test_timestamps_of_any_zone_keep_their_instant() -> None:
    zones = [dt.UTC, dt.timezone(dt.timedelta(hours=2)), dt.timezone(dt.timedelta(minutes=-90))]
    stamps = [dt.datetime(2026, 5, 1, 10, 0, 0, us, tzinfo=z) for us in (0, 7) for z in zones]
    texts = copy_lines([stamps])
    assert texts is not None
    back = [dt.datetime.fromisoformat(t.replace("Z", "+00:00")) for t in texts.decode().split()]
    assert back == stamps and [b.utcoffset() for b in back] == [s.utcoffset() for s in stamps]


def test_utc_timestamps_keep_every_microsecond() -> None:
    rng = np.random.default_rng(1)
    base = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)
    stamps = [base + dt.timedelta(microseconds=int(x)) for x in rng.integers(0, 10**12, 2000)]
    texts = copy_lines([stamps])
    assert texts is not None
    back = [dt.datetime.fromisoformat(t.replace("Z", "+00:00")) for t in texts.decode().split()]
    assert back == stamps


@pytest.mark.parametrize(
    "column",
    [
        [["a],[b"], ["c"]],  # the text the column is cut at, inside a value
        [["[[x", "y]]"], ["z"]],
        [[1, 2], [3.5, 4]],
        [[[1], [2]], [[3]]],  # nested lists: value at a time
        [[[1]], [2]],  # a nested list at a row's edge: the cut still falls between the rows
        [[1], [[2]]],
        [[[1], 2], [3, [4]], [[5]]],
        [None, [], ["p"], None],
        [None, None],
        [['quote"s', "ñandú ✓", "\\"], []],
        [[np.float32(0.1), np.float64(2)], [1]],
    ],
)
def test_column_json_is_the_value_at_a_time_json(column: list) -> None:
    assert _json_texts(column, None) == [json_dumps(v) for v in column]


def test_rounded_column_json_is_the_rounded_value_at_a_time_json() -> None:
    rng = np.random.default_rng(2)
    column = [list(rng.random(29) * 5) for _ in range(50)] + [None, []]
    expected = [json_dumps(v) for v in records.round_lists(column, 4)]
    assert _json_texts(column, 4) == expected
    ragged = [[0.123456789, 2.0], [1.0], None]
    assert _json_texts(ragged, 6) == [json_dumps(v) for v in records.round_lists(ragged, 6)]


def test_vector_hours_and_latency_bins_are_the_scalar_rules() -> None:
    edges = [*records.LATENCY_EDGES_MS, 0.0, -1.0, 1e9, 0.5000001, math.nan, math.inf]
    assert records.latency_bins(np.array(edges)).tolist() == [records.latency_bin(x) for x in edges]
    stamps = [
        dt.datetime(2026, 5, 1, 9, 59, 59, 999_999, tzinfo=dt.UTC),
        dt.datetime(2026, 5, 1, 10, tzinfo=dt.UTC),
        dt.datetime(2026, 5, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    ]
    assert records.hours_of(stamps).tolist() == [records.hour_of(t) for t in stamps]
