"""Where the prediction logger's batches go: the database, from this process or another one.

Encoding and inserting a batch holds the interpreter lock for tens of microseconds a row, and
in the API's own process every one of them was taken from the requests: the writes were about
a quarter of the API's CPU a request, and the requests waited for the lock while a batch was
written. ``WriterProcess`` therefore hands each batch to a child process as one orjson
document (about 3 µs a row to encode) and waits, without the lock, for the child's answer; the
child decodes it and calls ``core.monitoring.write_batch``, the same code the in-process writer
runs, on the other core. A failed write comes back as an exception either way, so the logger
keeps and retries the batch whichever writer it has.

An in-memory SQLite database exists in one process only, so it is written in-process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import logging
import os
import select
import struct
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import IO, Any, Protocol

import orjson

from core import monitoring
from core.config import Settings
from core.db import json_default
from core.errors import CoreError

log = logging.getLogger(__name__)

START_SECONDS = 60.0  # a child that cannot import and answer in this time is given up
# A batch waits at most SQLite's busy timeout (30 s) or Postgres's connect timeout (10 s) a
# statement; a child silent for this long is stuck, and is killed (its transaction with it).
WRITE_SECONDS = 120.0
FRAME = struct.Struct("!I")  # the length that precedes each message on the pipes


class LogWriteError(CoreError):
    """A batch was not written; the logger keeps it and retries."""


class BatchWriter(Protocol):
    starts: int  # times a writer process was started (exported in /metrics)

    def start(self) -> None: ...

    def write(self, records: Sequence[monitoring.PredictionRecord]) -> monitoring.BatchOutcome: ...

    def close(self) -> None: ...


class InProcessWriter:
    """Writes on the calling thread (the flush thread of the logger)."""

    starts = 0

    def start(self) -> None:
        pass

    def write(self, records: Sequence[monitoring.PredictionRecord]) -> monitoring.BatchOutcome:
        return monitoring.store_batch(records)

    def close(self) -> None:
        pass


def encode(records: Sequence[monitoring.PredictionRecord]) -> bytes:
    """The records as one JSON document: orjson serialises the dataclasses as they are, and
    NumPy values go through the JSON columns' own ``json_default``, so the child stores the
    very text the in-process writer would.

    A text orjson refuses (a lone surrogate is not UTF-8) must not keep the whole batch from
    the child: such a batch goes as ASCII-escaped JSON instead, and the child refuses that
    record (``core.monitoring.store_batch``) while writing the others."""
    try:
        return orjson.dumps(records, default=json_default)
    except TypeError:
        return json.dumps(
            [_plain(r) for r in records], ensure_ascii=True, default=json_default
        ).encode()


def _plain(record: monitoring.PredictionRecord) -> dict[str, Any]:
    row = {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
    row["ts"] = record.ts.isoformat()
    return row


def decode(document: bytes) -> list[monitoring.PredictionRecord]:
    try:
        rows = orjson.loads(document)
    except orjson.JSONDecodeError:
        rows = json.loads(document)  # a lone surrogate's escape (see ``encode``)
    if not isinstance(rows, list):
        raise LogWriteError("a prediction log batch must be a JSON list of records")
    out = []
    for row in rows:
        row["ts"] = dt.datetime.fromisoformat(row["ts"])
        out.append(monitoring.PredictionRecord(**row))
    return out


def serve(inbox: IO[bytes], outbox: IO[bytes]) -> None:
    """The child's loop: one batch in, one answer out, until the parent hangs up."""
    _send(outbox, {"ready": True})
    while (document := _receive(inbox)) is not None:
        try:
            outcome = monitoring.store_batch(decode(document))
            answer: dict[str, Any] = dataclasses.asdict(outcome)
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which retries
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        try:
            _send(outbox, answer)
        except OSError:  # the parent is gone
            return


def _send(stream: IO[bytes], message: dict[str, Any] | bytes) -> None:
    """One frame: a 4-byte length, then the bytes."""
    body = message if isinstance(message, bytes) else orjson.dumps(message)
    stream.write(FRAME.pack(len(body)) + body)
    stream.flush()


def _receive(stream: IO[bytes]) -> bytes | None:
    """The next frame, or None at the end of the stream."""
    head = stream.read(FRAME.size)
    if len(head) < FRAME.size:
        return None
    (size,) = FRAME.unpack(head)
    body = stream.read(size)
    if len(body) < size:
        return None
    return body


class WriterProcess:
    """A child process (``python -m api.log_writer``) that writes the batches, framed over its
    standard input and output; started ahead of the first batch, restarted after a crash.
    One batch at a time: the lock keeps a shutdown flush from interleaving with the flush
    thread's on the same pipe."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self.starts = 0

    def start(self) -> None:
        """Start the child now (its imports take a second or two)."""
        with self._lock:
            self._running()

    def write(self, records: Sequence[monitoring.PredictionRecord]) -> monitoring.BatchOutcome:
        document = encode(records)
        if not self._lock.acquire(timeout=WRITE_SECONDS):
            raise LogWriteError("the prediction log writer is busy with another batch")
        try:
            process = self._running()
            try:
                assert process.stdin is not None
                _send(process.stdin, document)
                answer = self._answer(process, WRITE_SECONDS)
            except (EOFError, OSError) as exc:
                self._discard()
                raise LogWriteError(f"the prediction log writer process stopped: {exc}") from exc
        finally:
            self._lock.release()
        if "error" in answer:
            raise LogWriteError(str(answer["error"]))
        return monitoring.BatchOutcome(**answer)

    def _running(self) -> subprocess.Popen[bytes]:
        if self._process is not None and self._process.poll() is None:
            return self._process
        self._discard()
        process = subprocess.Popen(
            [sys.executable, "-m", "api.log_writer"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            # Ctrl-C reaches the terminal's whole process group; in a group of its own the
            # child finishes its batch, and the API's last flush at shutdown still has it.
            start_new_session=True,
        )
        self._process = process
        self.starts += 1
        try:
            self._answer(process, START_SECONDS)
        except (EOFError, OSError) as exc:
            self._discard()
            raise LogWriteError(f"the prediction log writer process did not start: {exc}") from exc
        log.info("prediction log writer process %s started", process.pid)
        return process

    def _answer(self, process: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
        """Wait for the child's answer; a child that died shows as the end of its output, a
        stuck one as the timeout."""
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], timeout)
        if not ready:
            raise EOFError(f"no answer in {timeout:.0f} s")
        frame = _receive(process.stdout)
        if frame is None:
            raise EOFError(f"it exited (code {process.wait(timeout=5)})")
        return dict(orjson.loads(frame))

    def _discard(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def close(self) -> None:
        """Hang up: the child finishes the batch it has, reads the end of its input and exits."""
        with self._lock:
            self._discard()

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid


def for_database(settings: Settings) -> BatchWriter:
    """A writer process, unless the database lives in this process's memory."""
    if settings.is_sqlite and settings.sqlite_file is None:
        return InProcessWriter()
    return WriterProcess()


def main() -> None:
    """``python -m api.log_writer``: the child. Its standard output carries the answers, so
    anything else printed there (a library's warning, say) is sent to standard error."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    outbox = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    serve(sys.stdin.buffer, outbox)


if __name__ == "__main__":
    main()
