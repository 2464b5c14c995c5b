"""The prediction logger's flush: bounded work per tick, nothing lost or written twice."""

from __future__ import annotations

import datetime as dt

from prometheus_client import CollectorRegistry

from api import logger as logger_module
from api.logger import PredictionLogger
from core import monitoring


def _record(i: int) -> monitoring.PredictionRecord:
    return monitoring.PredictionRecord(
        model="recsys",
        version="1.0.0",
        variant="production",
        ratings=[float(i % 6)] * 29,
        k=1,
        places=["p1"],
        categories=["museums"],
        scores=[0.5],
        latency_ms=1.0,
        ts=dt.datetime(2026, 5, 1, tzinfo=dt.UTC),
    )


def _arriving_during_writes(monkeypatch, log: PredictionLogger, arrivals: list) -> None:
    """Records that reach the buffer while a batch is being written (as requests do)."""
    real = monitoring.store_batch

    def write_then_arrive(batch):
        written = real(batch)
        while arrivals:
            log.add(arrivals.pop(0))
        return written

    monkeypatch.setattr(logger_module.monitoring, "store_batch", write_then_arrive)


def test_a_flush_writes_what_was_buffered_when_it_began(backend, monkeypatch) -> None:
    log = PredictionLogger(registry=CollectorRegistry())
    first = [_record(i) for i in range(10)]
    later = [_record(i) for i in range(5)]
    for r in first:
        log.add(r)
    _arriving_during_writes(monkeypatch, log, list(later))
    assert log.flush() == 10
    assert list(log.buffer) == later  # for the next tick, not chased in tiny batches
    assert monitoring.count_logs("recsys") == 10
    assert log.flush() == 5 and not log.buffer
    assert monitoring.count_logs("recsys") == 15


def test_a_full_buffer_during_a_write_keeps_every_later_record(backend, monkeypatch) -> None:
    log = PredictionLogger(capacity=12, registry=CollectorRegistry())
    first = [_record(i) for i in range(10)]
    later = [_record(i) for i in range(5)]
    for r in first:
        log.add(r)
    _arriving_during_writes(monkeypatch, log, list(later))
    assert log.flush() == 10
    # Three of the batch were pushed out of the buffer while it was being written: they
    # were written all the same, and none of the later records was taken for them.
    assert list(log.buffer) == later
    assert log.flush() == 5
    assert monitoring.count_logs("recsys") == 15
