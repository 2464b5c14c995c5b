"""Prediction logging off the request path: a bounded buffer flushed in batches.

Requests only append to a deque; a background thread hands batches to a writer
(``api.log_writer``: a child process that calls ``core.monitoring.write_batch``). If the
database is away, the batch stays in the buffer and is retried with back-off; only when the
buffer is full are the oldest records dropped, and every dropped record is counted (exported
in ``/metrics``). A record the database cannot store is refused by the writer (kept aside in
the database with the reason, counted here) and never holds back the records after it.
Feedback waits for the flush of the request it refers to, so a fast click never races its own
log row.

:meth:`PredictionLogger.state` says whether the log is draining: ``/health`` reports a log
whose oldest waiting record is older than ``LOG_STALL_SECONDS`` (30 s by default; a healthy log
is written every quarter second, and retried at most every 5 s while the database is away), or
whose backlog passed half of the buffer, as not draining.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque

from prometheus_client import Counter, Gauge

from api.log_writer import BatchWriter, InProcessWriter
from core import monitoring
from core.config import get_settings, redact
from core.db import utcnow
from core.errors import CoreError

log = logging.getLogger(__name__)

# The most records one write hands the database. A batch's fixed costs (its transaction, the
# rollup rows, the start of a COPY) are paid once per batch: at tens of thousands of requests
# a second a quarter second's backlog is one batch of this size rather than five of 2,000,
# which the writer stores a third faster (bench/bench_log_scale.py). At ordinary rates a flush
# holds far fewer records and this cap is never reached.
BATCH = 10_000
FLUSH_SECONDS = 0.25


class PredictionLogger:
    def __init__(
        self,
        capacity: int = 200_000,
        registry=None,  # noqa: ANN001
        writer: BatchWriter | None = None,
    ) -> None:
        self.capacity = capacity
        self.writer = writer or InProcessWriter()
        self.buffer: deque[monitoring.PredictionRecord] = deque()
        self.feedback: deque[tuple[str, str, int]] = deque()
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None
        self.written = 0
        self.refused_total = 0
        self.stall_seconds = get_settings().log_stall_seconds
        self.last_error: str | None = None
        kwargs = {"registry": registry} if registry is not None else {}
        self.dropped = Counter(
            "planwise_prediction_log_dropped",
            "Prediction log records lost to a full buffer",
            **kwargs,
        )
        self.failures = Counter(
            "planwise_prediction_log_write_failures",
            "Failed prediction log batch writes",
            **kwargs,
        )
        self.pending = Gauge(
            "planwise_prediction_log_pending",
            "Prediction log records waiting to be written",
            **kwargs,
        )
        self.pending.set_function(lambda: len(self.buffer))
        self.writer_starts = Gauge(
            "planwise_prediction_log_writer_starts",
            "Times the prediction log's writer process was started (more than once: it died "
            "and was replaced)",
            **kwargs,
        )
        self.writer_starts.set_function(lambda: self.writer.starts)
        self.refused = Counter(
            "planwise_prediction_log_refused",
            "Prediction log records the database could not store: kept aside with the reason "
            "(core.monitoring.refusals), not in the log",
            **kwargs,
        )
        self.oldest = Gauge(
            "planwise_prediction_log_oldest_seconds",
            "Age of the oldest record waiting to be written (0 when none waits)",
            **kwargs,
        )
        self.oldest.set_function(self.oldest_age)

    def oldest_age(self) -> float:
        """Seconds the oldest buffered record has waited (0 when the buffer is empty)."""
        try:
            first = self.buffer[0]
        except IndexError:
            return 0.0
        return max(0.0, (utcnow() - first.ts).total_seconds())

    def state(self) -> dict[str, object]:
        """The log's health, for ``/health``: ``draining`` is False when its oldest record
        waited more than ``LOG_STALL_SECONDS`` or the backlog passed half of the buffer."""
        pending, age = len(self.buffer), self.oldest_age()
        return {
            "draining": age <= self.stall_seconds and pending <= self.capacity // 2,
            "pending": pending,
            "oldest_pending_seconds": round(age, 3),
            "refused": self.refused_total,
            "last_error": self.last_error,
        }

    def add(self, record: monitoring.PredictionRecord) -> None:
        with self.lock:
            if len(self.buffer) >= self.capacity:
                self.buffer.popleft()
                self.dropped.inc()
            self.buffer.append(record)

    def add_feedback(self, request_id: str, place_id: str) -> None:
        with self.lock:
            self.feedback.append((request_id, place_id, 0))

    def flush(self) -> int:
        """Write what was buffered when the flush began; returns the number written.

        Records that arrive meanwhile wait for the next tick: chasing them turned one flush
        into hundreds of eight-row transactions, each with the fixed cost of a commit and the
        rollup update, and the writer then took more CPU than the requests it logged.
        """
        with self.lock:
            todo = len(self.buffer)
        written = 0
        while written < todo:
            with self.lock:
                batch = list(itertools.islice(self.buffer, min(BATCH, todo - written)))
            if not batch:
                break
            outcome = self.writer.write(batch)
            if outcome.refused:
                self.refused_total += outcome.refused
                self.refused.inc(outcome.refused)
                log.warning(
                    "%d prediction log record(s) refused by the database, kept aside",
                    outcome.refused,
                )
            done = {id(r) for r in batch}
            with self.lock:  # a full buffer may have dropped some of them meanwhile
                while self.buffer and id(self.buffer[0]) in done:
                    self.buffer.popleft()
            written += len(batch)
        self.written += written
        self._flush_feedback()
        return written

    def _flush_feedback(self) -> None:
        with self.lock:
            items = list(self.feedback)
            self.feedback.clear()
        for request_id, place_id, tries in items:
            try:
                monitoring.record_feedback(request_id, place_id)
            except CoreError as exc:
                if tries < 20:
                    with self.lock:
                        self.feedback.append((request_id, place_id, tries + 1))
                else:
                    log.warning("feedback for %s dropped: %s", request_id, exc)

    def run(self) -> None:
        try:
            self.writer.start()
        except Exception as exc:  # noqa: BLE001 - the first flush tries again
            log.warning("prediction log writer did not start: %s", exc)
        backoff = FLUSH_SECONDS
        while not self.stop_event.wait(backoff):
            try:
                self.flush()
                backoff = FLUSH_SECONDS
                self.last_error = None
            except Exception as exc:  # noqa: BLE001 - keep the records, retry later
                self.last_error = redact(f"{type(exc).__name__}: {exc}")
                self.failures.inc()
                backoff = min(backoff * 2, 5.0)
                log.warning(
                    "prediction log write failed (retrying in %.1f s): %s", backoff, self.last_error
                )

    def start(self) -> None:
        self.thread = threading.Thread(target=self.run, name="prediction-logger", daemon=True)
        self.thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout=timeout)
        deadline = time.monotonic() + timeout
        while self.buffer and time.monotonic() < deadline:
            try:
                self.flush()
            except Exception as exc:  # noqa: BLE001
                log.error(
                    "could not write %d buffered predictions: %s",
                    len(self.buffer),
                    redact(str(exc)),
                )
                time.sleep(0.5)
        self.writer.close()
