"""Browsing logged requests: filters and keyset pagination in SQL, CSV export.

Pages are fetched with ``WHERE id < last_id ORDER BY id DESC LIMIT n`` (keyset pagination),
so page 1,000 of a million-row log costs what page 1 does; a count of matching rows is only
computed when asked for, because on a large log it is the expensive part.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from core.data.categories import CATEGORIES
from core.db import transaction
from core.db.tables import FeedbackRow, PredictionLogRow
from core.errors import BadInput, NotFound
from core.text import spreadsheet_safe

MAX_PAGE = 500


@dataclass(frozen=True)
class RequestFilter:
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    model: str | None = None
    version: str | None = None
    variant: str | None = None
    status: str | None = None  # "ok" | "error"
    min_latency_ms: float | None = None
    rated: tuple[str, ...] = field(default_factory=tuple)  # categories the user rated

    def conditions(self) -> list[Any]:
        t = PredictionLogRow
        cond: list[Any] = []
        if self.start is not None:
            cond.append(t.ts >= self.start)
        if self.end is not None:
            cond.append(t.ts < self.end)
        for column, value in (
            (t.model, self.model),
            (t.version, self.version),
            (t.variant, self.variant),
        ):
            if value:
                cond.append(column == value)
        if self.status not in (None, "", "any"):
            if self.status not in ("ok", "error"):
                raise BadInput(f"status must be ok or error, got {self.status!r}")
            cond.append(t.error.is_(None) if self.status == "ok" else t.error.is_not(None))
        if self.min_latency_ms is not None:
            cond.append(t.latency_ms >= float(self.min_latency_ms))
        for category in self.rated:
            if category not in CATEGORIES:
                raise BadInput(f"unknown category {category!r}")
            cond.append(t.ratings[CATEGORIES.index(category)].as_float() > 0)
        return cond


@dataclass(frozen=True)
class LoggedRequest:
    id: int
    request_id: str
    ts: dt.datetime
    model: str
    version: str
    variant: str
    user_id: str | None
    latency_ms: float
    error: str | None
    k: int
    lat: float | None
    lng: float | None
    top_category: str | None
    n_rated: int


@dataclass(frozen=True)
class RequestPage:
    items: list[LoggedRequest]
    next_cursor: int | None  # pass as ``before_id`` for the next page


def page(flt: RequestFilter, *, before_id: int | None = None, size: int = 50) -> RequestPage:
    if not 1 <= size <= MAX_PAGE:
        raise BadInput(f"page size must be from 1 to {MAX_PAGE}, got {size}")
    t = PredictionLogRow
    q = select(
        t.id,
        t.request_id,
        t.ts,
        t.model,
        t.version,
        t.variant,
        t.user_id,
        t.latency_ms,
        t.error,
        t.k,
        t.lat,
        t.lng,
        t.categories,
        t.ratings,
    )
    cond = flt.conditions()
    if before_id is not None:
        cond.append(t.id < before_id)
    with transaction(write=False) as s:
        rows = s.execute(q.where(*cond).order_by(t.id.desc()).limit(size + 1)).all()
    items = [
        LoggedRequest(
            r.id,
            r.request_id,
            r.ts,
            r.model,
            r.version,
            r.variant,
            r.user_id,
            r.latency_ms,
            r.error,
            r.k,
            r.lat,
            r.lng,
            r.categories[0] if r.categories else None,
            sum(1 for x in r.ratings if x > 0),
        )
        for r in rows[:size]
    ]
    return RequestPage(items, items[-1].id if len(rows) > size else None)


def count(flt: RequestFilter) -> int:
    with transaction(write=False) as s:
        q = select(func.count()).select_from(PredictionLogRow).where(*flt.conditions())
        return int(s.scalar(q) or 0)


@dataclass(frozen=True)
class RequestDetail:
    request: dict[str, Any]
    feedback: list[dict[str, Any]]


def get(request_id: str) -> RequestDetail:
    with transaction(write=False) as s:
        row = s.scalar(select(PredictionLogRow).where(PredictionLogRow.request_id == request_id))
        if row is None:
            raise NotFound(f"no logged request {request_id!r}")
        clicks = s.scalars(
            select(FeedbackRow).where(FeedbackRow.request_id == request_id).order_by(FeedbackRow.ts)
        ).all()
        data = {c.name: getattr(row, c.key) for c in PredictionLogRow.__table__.columns}
        return RequestDetail(
            data, [{"place_id": f.place_id, "kind": f.kind, "ts": f.ts} for f in clicks]
        )


EXPORT_COLUMNS = (
    "request_id",
    "ts",
    "model",
    "version",
    "variant",
    "user_id",
    "latency_ms",
    "error",
    "k",
    "lat",
    "lng",
    "places",
    "categories",
    *CATEGORIES,
)


def export_csv(flt: RequestFilter, *, limit: int = 100_000, chunk: int = 5000) -> Iterator[str]:
    """The filtered rows as CSV text, produced in chunks (a download never loads them all).

    Every cell goes through ``core.text.spreadsheet_safe``: a client chooses its user id, and
    a cell such as ``=HYPERLINK(...)`` would run as a formula in the analyst's spreadsheet.
    """
    t = PredictionLogRow
    before: int | None = None
    sent = 0
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(EXPORT_COLUMNS)  # our own names: none starts with a formula character
    yield buf.getvalue()
    while sent < limit:
        cond = flt.conditions()
        if before is not None:
            cond.append(t.id < before)
        with transaction(write=False) as s:
            rows = s.scalars(
                select(t).where(*cond).order_by(t.id.desc()).limit(min(chunk, limit - sent))
            ).all()
            values = [
                [
                    spreadsheet_safe(v)
                    for v in (
                        r.request_id,
                        r.ts.isoformat(),
                        r.model,
                        r.version,
                        r.variant,
                        r.user_id or "",
                        f"{r.latency_ms:.3f}",
                        r.error or "",
                        r.k,
                        r.lat,
                        r.lng,
                        " ".join(r.places),
                        "|".join(r.categories),
                        *r.ratings,
                    )
                ]
                for r in rows
            ]
            last = rows[-1].id if rows else None
        if not values:
            break
        buf = io.StringIO()
        csv.writer(buf).writerows(values)
        yield buf.getvalue()
        sent += len(values)
        before = last
