"""Cron expressions of the schedules (core.retraining.cron): cron's meaning, clear refusals."""

from __future__ import annotations

import pytest

from core.errors import BadInput
from core.retraining import cron


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("0 3 * * *", ((0,), (3,), None, None, None)),
        ("*/15  *  * * *", ((0, 15, 30, 45), None, None, None, None)),
        ("0 6 * * MON-FRI", ((0,), (6,), None, None, (1, 2, 3, 4, 5))),
        ("0 0 * * 0", ((0,), (0,), None, None, (0,))),
        ("0 0 * * 7", ((0,), (0,), None, None, (0,))),
        ("0 0 * * 5-7", ((0,), (0,), None, None, (0, 5, 6))),
        ("30 2 1 */3 *", ((30,), (2,), (1,), (1, 4, 7, 10), None)),
        ("0 9-17/4 * jan,jul *", ((0,), (9, 13, 17), None, (1, 7), None)),
        ("* * * * 0-6", (None, None, None, None, None)),
    ],
)
def test_cron_fields_keep_cron_meaning(expr: str, expected: tuple) -> None:
    spec = cron.parse_cron(expr)
    assert (spec.minute, spec.hour, spec.day, spec.month, spec.day_of_week) == expected
    assert spec.expression == " ".join(expr.lower().split())


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("", "5 fields"),
        ("0 3 * *", "5 fields"),
        ("61 * * * *", "minute 61 is out of range 0-59"),
        ("0 24 * * *", "hour 24 is out of range"),
        ("0 3 * * fri-mon", "runs backwards"),
        ("0 3 * * funday", "invalid day of week"),
        ("*/0 * * * *", "invalid step"),
        ("5/15 * * * *", "as a range"),
        ("0 3 1 * mon", "both the day of month and the day of week"),
        ("0 0 30 2 *", "never fires"),
        ("0 0 ? * *", "invalid day of month"),
    ],
)
def test_bad_cron_expressions_name_the_problem(expr: str, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        cron.parse_cron(expr)
