"""Cron expressions of the retraining schedules: five fields, in UTC, parsed here.

``core`` does not import APScheduler: :func:`parse_cron` expands each field to the set of values
it allows, and the worker builds its trigger from those sets, so the CLI and the page accept
exactly what the worker runs, with cron's meaning (day of week 0 and 7 are Sunday;
APScheduler's own crontab parser counts from Monday). A day-of-month and a day-of-week
restriction together are refused: cron would fire when either matches, APScheduler when both
do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from core.errors import BadInput

_MONTHS = {
    m: i
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_DAYS = {d: i for i, d in enumerate(DAY_NAMES)}
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
# (label, lowest, highest, names) of the five fields, in order.
_CRON_FIELDS: tuple[tuple[str, int, int, Mapping[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
_CRON_HELP = (
    "expected 5 fields (minute hour day-of-month month day-of-week, in UTC) made of *, "
    "numbers, ranges a-b, steps */n or a-b/n and lists, e.g. '0 3 * * *' for 03:00 every day, "
    "'*/15 * * * *' for every 15 minutes, '0 6 * * mon-fri' for 06:00 on weekdays"
)


@dataclass(frozen=True)
class CronSpec:
    """A parsed cron expression: the values each field allows (None: any value).

    ``day_of_week`` counts from Sunday = 0, as cron does.
    """

    expression: str
    minute: tuple[int, ...] | None
    hour: tuple[int, ...] | None
    day: tuple[int, ...] | None
    month: tuple[int, ...] | None
    day_of_week: tuple[int, ...] | None


def _cron_value(token: str, label: str, low: int, high: int, names: Mapping[str, int]) -> int:
    if token in names:
        return names[token]
    if not token.isdigit():
        raise BadInput(f"invalid {label} {token!r} in the cron expression; {_CRON_HELP}")
    value = int(token)
    if not low <= value <= high:
        raise BadInput(f"{label} {value} is out of range {low}-{high} in the cron expression")
    return value


def _cron_field(
    part: str, label: str, low: int, high: int, names: Mapping[str, int]
) -> tuple[int, ...] | None:
    top = 6 if label == "day of week" else high  # 7 is another name for Sunday
    allowed: set[int] = set()
    for item in part.split(","):
        span, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) < 1:
                raise BadInput(f"invalid step {step_text!r} in the {label} field; {_CRON_HELP}")
            step = int(step_text)
        if span == "*":
            first, last = low, top
        elif "-" in span:
            a, _, b = span.partition("-")
            first = _cron_value(a, label, low, high, names)
            last = _cron_value(b, label, low, high, names)
            if first > last:
                raise BadInput(f"the {label} range {span!r} runs backwards; write it low-high")
        elif step_text:
            raise BadInput(f"write the {label} step {item!r} as a range: a-b/{step_text}")
        else:
            first = last = _cron_value(span, label, low, high, names)
        allowed.update(range(first, last + 1, step))
    if label == "day of week":
        allowed = {d % 7 for d in allowed}
    return None if allowed >= set(range(low, top + 1)) else tuple(sorted(allowed))


def parse_cron(expr: str) -> CronSpec:
    """Parse a five-field cron expression (UTC); BadInput names the field at fault."""
    text_ = " ".join((expr or "").lower().split())
    parts = text_.split(" ") if text_ else []
    if len(parts) != 5:
        raise BadInput(f"invalid cron expression {expr!r}: {_CRON_HELP}")
    minute, hour, day, month, dow = (
        _cron_field(part, *spec) for part, spec in zip(parts, _CRON_FIELDS, strict=True)
    )
    if day is not None and dow is not None:
        raise BadInput(
            f"cron expression {text_!r} restricts both the day of month and the day of week; "
            "restrict one of them (cron runs when either matches, which is rarely what is meant)"
        )
    if day is not None and min(day) > max(_DAYS_IN_MONTH[m - 1] for m in (month or range(1, 13))):
        raise BadInput(f"cron expression {text_!r} never fires: no such day in those months")
    return CronSpec(text_, minute, hour, day, month, dow)


def validate_cron(expr: str) -> str:
    """The expression, normalised (lower case, single spaces), if valid; else BadInput."""
    return parse_cron(expr).expression
