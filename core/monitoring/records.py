"""What the prediction log keeps of one served request, and the ids and hours it is keyed by.

A :class:`PredictionRecord` is built on the request path and written later by
:mod:`core.monitoring.writes`; what is done to it here (its id, its columns as stored) is kept
cheap because the API pays for it while holding the interpreter lock.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import operator
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from core.db import utcnow
from core.db.tables import (
    LATENCY_EDGES_MS,
)

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
        return {name: values[0] for name, values in stored_columns([self]).items()}


# Digits kept in the log: finer ones are noise of the models' float32 arithmetic, and they
# were most of a row's size. Rounded by the writer, a column at a time, so that the request
# path never pays for it.
STORED_DECIMALS = {"scores": 6, "predicted": 4}


def stored_columns(
    records: Sequence[PredictionRecord], *, rounded: bool = True
) -> dict[str, list[Any]]:
    """Each field's values, as the log stores them (``rounded=False``: the lists to round not
    rounded yet). Shallow: ``dataclasses.asdict`` would deep-copy every list, at five times the
    cost of the insert; the fields are read a record at a time by one C call
    (``operator.attrgetter``) and turned into columns by ``zip``."""
    if not records:
        return {name: [] for name in RECORD_FIELDS}
    out = {
        name: list(values)
        for name, values in zip(
            RECORD_FIELDS, zip(*map(_FIELDS_OF, records), strict=True), strict=True
        )
    }
    if rounded:
        for name, digits in STORED_DECIMALS.items():
            out[name] = round_lists(out[name], digits)
    return out


def round_lists(lists: list[Any], digits: int) -> list[Any]:
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


RECORD_FIELDS = tuple(f.name for f in fields(PredictionRecord))
_FIELDS_OF = operator.attrgetter(*RECORD_FIELDS)


def hour_of(ts: dt.datetime) -> int:
    return int(ts.timestamp() // 3600)


def latency_bin(ms: float) -> int:
    return bisect.bisect_left(LATENCY_EDGES_MS, ms)


def latency_bins(ms: np.ndarray) -> np.ndarray:
    """:func:`latency_bin` of every value at once (NaN, which no bin holds, in the first as
    ``bisect`` puts it)."""
    return np.where(np.isnan(ms), 0, np.searchsorted(LATENCY_EDGES_MS, ms, side="left"))


def hours_of(stamps: Sequence[dt.datetime]) -> np.ndarray:
    """:func:`hour_of` of every timestamp at once."""
    seconds = np.fromiter(map(dt.datetime.timestamp, stamps), np.float64, count=len(stamps))
    return np.floor_divide(seconds, 3600).astype(np.int64)
