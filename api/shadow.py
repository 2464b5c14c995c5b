"""Shadow scoring off the response path: a staging version ranks a sample of live requests.

A request served by production may be handed here after its response is built
(:meth:`ShadowScorer.submit`): one JSON line written to a non-blocking pipe, a few
microseconds, never a wait. A child process (``python -m api.shadow``, at a lower CPU
priority) reads the lines, ranks each request with the staging version, compares the two
lists (``core.rollout.shadow.compare``) and stores the scores in batches.

The scoring runs in another process rather than on a thread of the API: a thread shares the
API's interpreter lock, and on the bench (``bench/bench_api.py --shadow``) a thread held to
2 % of a core still raised the API's CPU a request from 206 to 240 µs (docs/rollout.md).
Nothing is ever waited for:

- a sample larger than the pipe writes atomically (``PIPE_BUF``) is dropped
  (``planwise_shadow_dropped{reason="too_large"}``), as is one that finds the pipe full
  (``reason="pipe_full"``: the child is behind) or the child gone (``reason="no_scorer"``; it
  is started again at the next sample, at most every few seconds);
- a store that fails in the child drops that batch and is logged: shadow scores are evidence,
  never worth holding the API back.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import orjson
from prometheus_client import CollectorRegistry, Counter

from core.data.categories import CATEGORIES
from core.db import utcnow
from core.errors import CoreError
from core.rollout import shadow
from core.serving import predict

log = logging.getLogger(__name__)

PIPE_BUF = getattr(select, "PIPE_BUF", 4096)  # writes up to this size are atomic
RESTART_SECONDS = 5.0
FLUSH_SECONDS = 1.0
BATCH = 500


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

    def encode(self) -> bytes:
        return (
            orjson.dumps(
                {
                    "model": self.model,
                    "production_version": self.production_version,
                    "shadow_version": self.candidate.version.version,
                    "prefs": self.prefs.tolist(),
                    "mask": self.mask.tolist(),
                    "lat": self.lat,
                    "lng": self.lng,
                    "k": self.k,
                    "request_id": self.request_id,
                    "places": self.places,
                    "categories": self.categories,
                }
            )
            + b"\n"
        )


class ShadowScorer:
    """The API's end: a non-blocking pipe to the scoring child, and what was dropped."""

    def __init__(self, *, registry: CollectorRegistry | None = None) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.fd: int | None = None
        self.last_start = -RESTART_SECONDS
        self.sent = 0
        self.drops: dict[str, int] = {"too_large": 0, "pipe_full": 0, "no_scorer": 0}
        kwargs: dict[str, Any] = {"registry": registry} if registry is not None else {}
        self.dropped = Counter(
            "planwise_shadow_dropped", "Shadow samples not scored", ["reason"], **kwargs
        )
        self.sent_total = Counter(
            "planwise_shadow_sent", "Requests handed to the shadow scorer", **kwargs
        )

    def _drop(self, reason: str) -> bool:
        self.drops[reason] += 1
        self.dropped.labels(reason).inc()
        return False

    def submit(self, sample: Sample) -> bool:
        """Hand a sample over without waiting; False (and counted) when it was dropped."""
        line = sample.encode()
        if len(line) > PIPE_BUF:
            return self._drop("too_large")
        fd = self._pipe()
        if fd is None:
            return self._drop("no_scorer")
        try:
            os.write(fd, line)
        except BlockingIOError:
            return self._drop("pipe_full")
        except OSError as exc:
            if exc.errno not in (errno.EPIPE, errno.EBADF):
                raise
            self._discard()
            return self._drop("no_scorer")
        self.sent += 1
        self.sent_total.inc()
        return True

    def _pipe(self) -> int | None:
        if self.process is not None and self.process.poll() is None:
            return self.fd
        now = time.monotonic()
        if now - self.last_start < RESTART_SECONDS:
            return None
        self.last_start = now
        self._discard()
        self.start()
        return self.fd

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "api.shadow"],
            stdin=subprocess.PIPE,
            start_new_session=True,
        )
        assert self.process.stdin is not None
        self.fd = self.process.stdin.fileno()
        os.set_blocking(self.fd, False)
        self.last_start = time.monotonic()
        log.info("shadow scorer process %s started", self.process.pid)

    def _discard(self) -> None:
        process, self.process, self.fd = self.process, None, None
        if process is None:
            return
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def stop(self) -> None:
        """Hang up: the child scores what it has, stores it and exits."""
        self._discard()

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def state(self) -> dict[str, Any]:
        running = self.process is not None and self.process.poll() is None
        return {"running": running, "sent": self.sent, "dropped": dict(self.drops)}


# ----------------------------------------------------------------------------- the child


def score(item: dict[str, Any], candidate: predict.LoadedVersion) -> shadow.ShadowScore:
    """Rank one request with the shadow version and compare it with what production showed."""
    started = time.perf_counter()
    error = None
    places: list[str] = []
    categories: list[str] = []
    try:
        prefs = np.asarray(item["prefs"], dtype=np.float64)
        mask = np.asarray(item["mask"], dtype=bool)
        cat, ranked, _ = predict.rank_one(
            candidate, prefs, mask, item["lat"], item["lng"], item["k"]
        )
        places = cat.place_ids[ranked.indices].tolist()
        categories = [CATEGORIES[c] for c in ranked.categories.tolist()]
    except CoreError as exc:
        error = str(exc)[:2000]
    latency_ms = (time.perf_counter() - started) * 1000
    c = shadow.compare(item["places"], item["categories"], places, categories, item["k"])
    return shadow.ShadowScore(
        ts=utcnow(),
        model=item["model"],
        production_version=item["production_version"],
        shadow_version=candidate.version.version,
        request_id=item["request_id"],
        k=item["k"],
        overlap=c.overlap,
        gained=c.gained,
        lost=c.lost,
        category_shift=c.category_shift,
        production_categories=list(item["categories"]),
        shadow_categories=categories,
        latency_ms=latency_ms,
        error=error,
    )


def _lines(stream: IO[bytes]) -> Iterator[bytes | None]:
    """Lines as they come; None every second without one (time to store what is pending)."""
    fd = stream.fileno()
    buffer = b""
    while True:
        ready, _, _ = select.select([fd], [], [], FLUSH_SECONDS)
        if not ready:
            yield None
            continue
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        yield from lines


def serve(stream: IO[bytes]) -> None:
    """Score every line until the API hangs up, storing in batches."""
    versions: dict[tuple[str, str], predict.LoadedVersion] = {}
    pending: list[shadow.ShadowScore] = []
    last = time.monotonic()

    def flush() -> None:
        nonlocal pending, last
        batch, pending, last = pending, [], time.monotonic()
        if batch:
            try:
                shadow.store(batch)
            except Exception as exc:  # noqa: BLE001 - evidence only
                log.warning("dropped %d shadow scores: %s", len(batch), exc)

    for line in _lines(stream):
        if line:
            item = orjson.loads(line)
            key = (item["model"], item["shadow_version"])
            try:
                if key not in versions:
                    versions[key] = predict.load(*key)
                pending.append(score(item, versions[key]))
            except CoreError as exc:
                log.warning("cannot shadow-score %s@%s: %s", *key, exc)
        if len(pending) >= BATCH or time.monotonic() - last >= FLUSH_SECONDS:
            flush()
    flush()


def main() -> None:
    """``python -m api.shadow``: the child, at a lower CPU priority than the API."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with contextlib.suppress(OSError):
        os.nice(10)
    predict.warm_up()
    serve(sys.stdin.buffer)


if __name__ == "__main__":
    main()
