"""A record the database cannot store reaches the prediction log's writer.

Invariant: one record never blocks the others. The rest of its batch is written, the record
is kept aside with the reason (not dropped silently), counted in /metrics and readable
through ``core.monitoring.refusals``; the log keeps draining. PostgreSQL refuses a NUL in a
text column: before the writer isolated bad rows, such a batch failed on every retry and every
later record queued behind it.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from api.log_writer import InProcessWriter, WriterProcess
from api.logger import PredictionLogger
from core import monitoring
from tests.fixtures.predictions import T0, rec

BAD = {
    "user_id": "evil\x00",
    "surrogate": "\ud800",
    "long": "u" * 129,
}


def _normal(n: int, model: str = "m") -> list[monitoring.PredictionRecord]:
    return [rec(T0 + dt.timedelta(seconds=i), model=model) for i in range(n)]


@pytest.mark.parametrize("writer", [InProcessWriter, WriterProcess])
def test_a_refused_record_does_not_block_its_batch_or_the_next(backend, writer) -> None:
    metrics = CollectorRegistry()
    log = PredictionLogger(registry=metrics, writer=writer())
    bad = [replace(rec(T0, model="m"), user_id=v) for v in BAD.values()]
    before, after = _normal(5), _normal(5)
    try:
        for r in [*before, *bad, *after]:
            log.add(r)
        assert log.flush() == 13  # one batch: nothing left behind to retry
        assert not log.buffer
        later = _normal(4)
        for r in later:
            log.add(r)
        log.flush()
    finally:
        log.stop()
    assert monitoring.count_logs("m") == 14  # every storable record, the later ones too
    kept = monitoring.refusals()
    assert kept.total == kept.recent == 3
    by_id = {r.request_id: r for r in kept.latest}
    assert "NUL" in by_id[bad[0].request_id].reason
    assert "surrogate" in by_id[bad[1].request_id].reason
    assert "129 characters" in by_id[bad[2].request_id].reason
    assert json.loads(by_id[bad[0].request_id].record)["user_id"] == "evil\x00"  # as sent
    assert log.refused_total == 3 and log.state()["draining"]
    assert b"planwise_prediction_log_refused_total 3.0" in generate_latest(metrics)


def test_a_row_that_fails_only_in_the_database_is_isolated(backend) -> None:
    """A row that passes every check up front and still fails its INSERT (here a naive
    timestamp, which the column refuses) is found by halving the batch."""
    good = _normal(40)
    naive = replace(good[17], ts=T0.replace(tzinfo=None), request_id="naive-ts-row")
    batch = [*good[:17], naive, *good[18:]]
    outcome = monitoring.store_batch(batch)
    assert (outcome.written, outcome.refused) == (39, 1)
    assert monitoring.count_logs("m") == 39
    assert monitoring.summary("m", until=T0 + dt.timedelta(hours=1)).requests == 39  # rollups
    [kept] = monitoring.refusals().latest
    assert kept.request_id == "naive-ts-row" and "naive datetime" in kept.reason


def test_a_batch_sent_again_is_written_once(backend) -> None:
    """A batch whose answer was lost (the writer died after its commit) comes again: its
    rows are counted as already there, and the new rows with it are written."""
    first = _normal(10)
    monitoring.store_batch(first)
    outcome = monitoring.store_batch([*first, *_normal(3, model="n")])
    assert (outcome.written, outcome.refused, outcome.already) == (3, 0, 10)
    assert monitoring.count_logs("m") == 10 and monitoring.count_logs("n") == 3
    assert monitoring.refusals().total == 0


def test_an_error_message_the_database_cannot_store_is_neutralised(backend) -> None:
    r = replace(rec(T0, model="m"), error="failed on 'a\x00b'")
    assert monitoring.store_batch([r]).written == 1
    from core.monitoring import explorer

    assert explorer.get(r.request_id).request["error"] == "failed on 'a\ufffdb'"
