"""Writing the prediction log: batches, their hourly rollups, refused rows and feedback.

Every served recommendation becomes one row (what was asked, what was returned, how long it
took, whether it failed). The same transaction adds it to an hourly rollup per model, version
and variant (counts, errors, clicks, a latency histogram), which is what the dashboard reads
(:mod:`core.monitoring.reads`). A row the database cannot store is kept aside with the reason
instead of failing its batch. The rows themselves are inserted by
:mod:`core.monitoring.bulk_insert`.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import operator
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

import numpy as np
from sqlalchemy import String, Table, func, insert, select
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError

from core import text
from core.db import transaction, utcnow
from core.db.tables import (
    N_LATENCY_BINS,
    FeedbackRow,
    LogRefusalRow,
    PredictionLogRow,
    RollupRow,
)
from core.errors import BadInput, NotFound
from core.monitoring.bulk_insert import SQLITE_ROWS_PER_INSERT, insert_logs
from core.monitoring.records import (
    RECORD_FIELDS,
    VARIANTS,
    PredictionRecord,
    hour_of,
    hours_of,
    latency_bins,
)

RollupKey = tuple[int, str, str, str]  # hour, model, version, variant


def _add_rollup_deltas(
    deltas: dict[RollupKey, dict[str, Any]], records: Sequence[PredictionRecord]
) -> None:
    """Add what ``records`` bring to each hourly rollup into ``deltas``: counted with NumPy a
    column at a time, since a Python loop over the records cost the writer as much as
    encoding them."""
    if not records:
        return
    keys = list(
        zip(
            hours_of([r.ts for r in records]).tolist(),
            [r.model for r in records],
            [r.version for r in records],
            [r.variant for r in records],
            strict=True,
        )
    )
    index = {key: i for i, key in enumerate(dict.fromkeys(keys))}
    codes = np.fromiter(map(index.__getitem__, keys), np.int64, count=len(keys))
    latency = np.fromiter((r.latency_ms for r in records), np.float64, count=len(records))
    failed = np.fromiter((r.error is not None for r in records), np.int64, count=len(records))
    groups = len(index)
    requests = np.bincount(codes, minlength=groups)
    errors = np.bincount(codes, weights=failed, minlength=groups)
    latency_sums = np.bincount(codes, weights=latency, minlength=groups)
    bins = np.zeros((groups, N_LATENCY_BINS), np.int64)
    np.add.at(bins, (codes, latency_bins(latency)), 1)
    for key, i in index.items():
        d = deltas.get(key)
        if d is None:
            d = deltas[key] = {
                "requests": 0,
                "errors": 0,
                "latency": 0.0,
                "bins": [0] * N_LATENCY_BINS,
            }
        d["requests"] += int(requests[i])
        d["errors"] += int(errors[i])
        d["latency"] += float(latency_sums[i])
        d["bins"] = [a + b for a, b in zip(d["bins"], bins[i].tolist(), strict=True)]


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
    if c.name in RECORD_FIELDS and isinstance(c.type, String) and c.type.length
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
            deltas: dict[RollupKey, dict[str, Any]] = {}
            # counted chunk by chunk while the database stores the chunk just sent
            insert_logs(s, records, each_chunk=lambda chunk: _add_rollup_deltas(deltas, chunk))
            apply_rollups(s, deltas)
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
    fields = {name: getattr(r, name) for name in RECORD_FIELDS}
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


def apply_rollups(s: Any, deltas: dict[RollupKey, dict[str, Any]]) -> None:
    """Read-modify-write of the touched rollup rows, locked for the transaction. Always in
    the keys' order, so two writers whose batches touch the same hours lock them in the same
    order and never wait for each other in a cycle."""
    for (hour, model, version, variant), d in sorted(deltas.items()):
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
        apply_rollups(s, {(hour_of(log.ts), log.model, log.version, log.variant): {"clicks": 1}})
