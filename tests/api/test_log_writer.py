"""The prediction log's writer process: the same rows as in-process, failures kept for retry,
a crashed child replaced, nothing written twice."""

from __future__ import annotations

import datetime as dt
import io
import os
import signal
import time
from dataclasses import replace

import numpy as np
import orjson
import pytest
from prometheus_client import CollectorRegistry

from api import log_writer
from api.logger import PredictionLogger
from core import monitoring
from core.config import Settings
from core.db import transaction
from core.db.tables import PredictionLogRow
from tests.fixtures.predictions import T0, rec

MADRID = dt.timezone(dt.timedelta(hours=2))


def _varied(model: str) -> list[monitoring.PredictionRecord]:
    """What the log meets: zones, whole seconds, NumPy values, errors, float32 predictions."""
    predicted = (np.arange(29, dtype=np.float32) / np.float32(7)).tolist()
    return [
        rec(T0 + dt.timedelta(microseconds=123_456), model=model, lat=40.4, lng=-3.7, user_id="u"),
        rec(T0, model=model, error="boom"),
        rec(T0, model=model, ratings=[np.float64(1.5)] + [0.0] * 28, lat=np.float64(40.5)),
        rec(T0.astimezone(MADRID) + dt.timedelta(microseconds=5), model=model),
        replace(rec(T0, model=model), predicted=predicted, scores=[0.123456789, 2 / 3, 1.0]),
        replace(rec(T0, model=model), predicted=[np.float32(0.1)] * 29),
    ]


def _stored(model: str) -> list[tuple]:
    names = [c.name for c in PredictionLogRow.__table__.columns if c.name not in ("id", "model")]
    with transaction(write=False) as s:  # the driver's values: what is in the table
        rows = s.connection().exec_driver_sql(
            f"SELECT {', '.join(names)} FROM prediction_logs WHERE model = '{model}' ORDER BY id"
        )
        skip = names.index("request_id")
        return [tuple(v for i, v in enumerate(row) if i != skip) for row in rows]


@pytest.fixture
def writer():
    w = log_writer.WriterProcess()
    yield w
    w.close()


def test_the_child_stores_what_the_in_process_writer_stores(backend, writer) -> None:
    assert writer.write(_varied("child")).written == 6
    assert log_writer.InProcessWriter().write(_varied("here")).written == 6
    assert _stored("child") == _stored("here")
    assert len(_stored("child")) == 6
    rollup = monitoring.summary("child", until=T0 + dt.timedelta(hours=1))
    assert rollup.requests == 6 and rollup.error_rate == pytest.approx(1 / 6)  # rollups too


def test_a_batch_survives_the_trip_as_it_was() -> None:
    records = [
        r
        for r in _varied("m")
        if not any(isinstance(x, np.generic) for x in [*r.ratings, *(r.predicted or []), r.lat])
    ]
    decoded = log_writer.decode(log_writer.encode(records))
    assert decoded == records
    assert [r.ts.utcoffset() for r in decoded] == [r.ts.utcoffset() for r in records]


def test_the_log_keeps_rounded_scores_and_predictions(backend, writer) -> None:
    writer.write([replace(rec(T0, model="m"), scores=[0.123456789, 2 / 3], predicted=[1 / 3] * 29)])
    with transaction(write=False) as s:
        row = s.query(PredictionLogRow).one()
        assert row.scores == [0.123457, 0.666667]
        assert row.predicted == [0.3333] * 29


def test_a_failed_write_is_reported_and_the_records_stay(backend, writer) -> None:
    log = PredictionLogger(registry=CollectorRegistry(), writer=writer)
    for r in (rec(T0, model="m"), rec(T0, model="m", variant="shadow")):
        log.add(r)
    with pytest.raises(log_writer.LogWriteError, match="unknown variant 'shadow'"):
        log.flush()
    assert len(log.buffer) == 2 and monitoring.count_logs("m") == 0  # nothing half-written
    log.buffer.pop()
    assert log.flush() == 1 and monitoring.count_logs("m") == 1
    assert writer.starts == 1  # a refused batch does not cost the child


def test_a_killed_child_is_replaced_and_nothing_is_lost(backend, writer) -> None:
    metrics = CollectorRegistry()
    log = PredictionLogger(registry=metrics, writer=writer)
    log.start()
    try:
        for i in range(20):
            log.add(rec(T0 + dt.timedelta(seconds=i), model="m"))
        _wait(lambda: not log.buffer)
        assert writer.pid is not None
        os.kill(writer.pid, signal.SIGKILL)
        for i in range(20, 50):
            log.add(rec(T0 + dt.timedelta(seconds=i), model="m"))
        _wait(lambda: not log.buffer)
    finally:
        log.stop()
    assert monitoring.count_logs("m") == 50
    assert writer.starts == 2
    assert metrics.get_sample_value("planwise_prediction_log_writer_starts") == 2  # for ops


def test_stopping_writes_the_buffer_and_ends_the_child(backend, writer) -> None:
    log = PredictionLogger(registry=CollectorRegistry(), writer=writer)
    log.start()
    _wait(lambda: writer.pid is not None)
    pid = writer.pid
    for i in range(30):
        log.add(rec(T0 + dt.timedelta(seconds=i), model="m"))
    log.stop()
    assert monitoring.count_logs("m") == 30
    assert writer.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # exited and reaped


def test_the_child_answers_bad_documents_and_keeps_serving(backend) -> None:
    """The child's loop, driven through its framed streams."""
    good = log_writer.encode([rec(T0, model="m")])
    frames = b"".join(
        log_writer.FRAME.pack(len(d)) + d for d in (b"not json", b'{"a": 1}', b"[{}]", good)
    )
    inbox, outbox = io.BytesIO(frames + log_writer.FRAME.pack(10) + b"cut"), io.BytesIO()
    log_writer.serve(inbox, outbox)  # returns at the truncated last frame
    out = io.BytesIO(outbox.getvalue())
    answers = []
    while (frame := log_writer._receive(out)) is not None:
        answers.append(orjson.loads(frame))
    assert answers[0] == {"ready": True}
    assert "JSONDecodeError" in answers[1]["error"]
    assert "JSON list of records" in answers[2]["error"]
    assert "ts" in answers[3]["error"]
    assert answers[4] == {"written": 1, "refused": 0, "already": 0}
    assert monitoring.count_logs("m") == 1


def test_an_in_memory_database_is_written_in_process(tmp_path) -> None:
    for url in ("sqlite://", "sqlite:///:memory:", "sqlite:///file:x?mode=memory&uri=true"):
        settings = Settings(database_url=url)
        assert settings.sqlite_file is None
        assert isinstance(log_writer.for_database(settings), log_writer.InProcessWriter)
    on_disk = Settings(database_url=f"sqlite:///{tmp_path / 'r.db'}")
    assert on_disk.sqlite_file == tmp_path / "r.db"
    assert isinstance(log_writer.for_database(on_disk), log_writer.WriterProcess)
    relative = Settings(database_url="sqlite:///data/registry.db")
    assert relative.sqlite_file is not None and relative.sqlite_file.is_absolute()
    postgres = Settings(database_url="postgresql+psycopg://u@h/db")
    assert postgres.sqlite_file is None
    assert isinstance(log_writer.for_database(postgres), log_writer.WriterProcess)


def _wait(predicate, timeout: float = 30.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)
