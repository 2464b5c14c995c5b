"""Shadow scoring off the response path: a staging version ranks a sample of live requests.

A request served by production may be handed here after its response is built
(:meth:`ShadowScorer.submit`: one ``put_nowait`` on a bounded queue, never a wait). One
background thread ranks it with the staging version, compares the two lists
(``core.shadow.compare``) and stores the scores in batches. The request path never waits for
any of it:

- a full queue drops the sample (counted in ``planwise_shadow_dropped{reason="queue_full"}``);
- the thread spends at most ``cpu_budget`` of one core (2 %: scoring and storing, measured as
  the thread's own CPU time, in a token bucket refilled at that rate): over budget, samples
  are dropped (``reason="over_budget"``) instead of taking the interpreter from the
  requests. A saturated API then still scores about 50 requests a second with the
  autoencoder, and one with idle time scores all of its sample;
- a store that fails drops that batch (``reason="store_failed"``) and is logged: shadow
  scores are evidence, never worth holding the API back.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter

from core import predict, shadow
from core.categories import CATEGORIES
from core.db import utcnow
from core.errors import CoreError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sample:
    """What the shadow version needs of a request production answered."""

    model: str
    production_version: str
    candidate: predict.LoadedVersion
    prefs: np.ndarray
    mask: np.ndarray
    lat: float
    lng: float
    k: int
    request_id: str
    places: list[str]
    categories: list[str]


class ShadowScorer:
    def __init__(
        self,
        *,
        registry: CollectorRegistry | None = None,
        capacity: int = 256,
        cpu_budget: float = 0.02,
        flush_seconds: float = 1.0,
        batch: int = 500,
    ) -> None:
        self.queue: queue.Queue[Sample] = queue.Queue(maxsize=capacity)
        self.cpu_budget = cpu_budget
        self.flush_seconds = flush_seconds
        self.batch = batch
        self.tokens = 0.2  # seconds of scoring the thread may spend now
        self.refilled = time.monotonic()
        self.pending: list[shadow.ShadowScore] = []
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None
        self.scored = 0
        self.drops: dict[str, int] = {"queue_full": 0, "over_budget": 0, "store_failed": 0}
        kwargs: dict[str, Any] = {"registry": registry} if registry is not None else {}
        self.dropped = Counter(
            "planwise_shadow_dropped", "Shadow samples not scored", ["reason"], **kwargs
        )
        self.scored_total = Counter(
            "planwise_shadow_scored", "Requests scored by a shadow version", **kwargs
        )

    def submit(self, sample: Sample) -> bool:
        """Hand a sample over without waiting; False (and counted) when the queue is full."""
        try:
            self.queue.put_nowait(sample)
            return True
        except queue.Full:
            self._drop("queue_full")
            return False

    def _drop(self, reason: str, n: int = 1) -> None:
        self.drops[reason] += n
        self.dropped.labels(reason).inc(n)

    def start(self) -> None:
        self.thread = threading.Thread(target=self.run, name="shadow-scorer", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout=10)
        self.flush()

    def run(self) -> None:
        last_flush = time.monotonic()
        while not self.stop_event.is_set():
            try:
                sample = self.queue.get(timeout=0.2)
            except queue.Empty:
                sample = None
            if sample is not None:
                self.score(sample)
            now = time.monotonic()
            if self.pending and (
                len(self.pending) >= self.batch or now - last_flush >= self.flush_seconds
            ):
                self.flush()
                last_flush = now

    def _afford(self) -> bool:
        now = time.monotonic()
        self.tokens = min(0.5, self.tokens + (now - self.refilled) * self.cpu_budget)
        self.refilled = now
        return self.tokens > 0

    def score(self, sample: Sample) -> None:
        if not self._afford():
            self._drop("over_budget")
            return
        started = time.perf_counter()
        cpu = time.thread_time()
        error = None
        places: list[str] = []
        categories: list[str] = []
        try:
            cat, ranked, _ = predict.rank_one(
                sample.candidate, sample.prefs, sample.mask, sample.lat, sample.lng, sample.k
            )
            places = cat.place_ids[ranked.indices].tolist()
            categories = [CATEGORIES[c] for c in ranked.categories.tolist()]
        except CoreError as exc:
            error = str(exc)[:2000]
        latency_ms = (time.perf_counter() - started) * 1000
        c = shadow.compare(sample.places, sample.categories, places, categories, sample.k)
        self.pending.append(
            shadow.ShadowScore(
                ts=utcnow(),
                model=sample.model,
                production_version=sample.production_version,
                shadow_version=sample.candidate.version.version,
                request_id=sample.request_id,
                k=sample.k,
                overlap=c.overlap,
                gained=c.gained,
                lost=c.lost,
                category_shift=c.category_shift,
                production_categories=list(sample.categories),
                shadow_categories=categories,
                latency_ms=latency_ms,
                error=error,
            )
        )
        self.tokens -= time.thread_time() - cpu

    def flush(self) -> None:
        batch, self.pending = self.pending, []
        if not batch:
            return
        cpu = time.thread_time()
        try:
            shadow.store(batch)
        except Exception as exc:  # noqa: BLE001 - evidence only; the API keeps serving
            self._drop("store_failed", len(batch))
            log.warning("dropped %d shadow scores: %s", len(batch), exc)
            return
        finally:
            self.tokens -= time.thread_time() - cpu
        self.scored += len(batch)
        self.scored_total.inc(len(batch))

    def state(self) -> dict[str, Any]:
        return {"queued": self.queue.qsize(), "scored": self.scored, "dropped": dict(self.drops)}
