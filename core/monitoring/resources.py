"""CPU and memory of the long-running processes (API, worker), sampled into the database.

Each process runs a sampler thread that every ``interval`` seconds records its CPU share
(process CPU time over wall time since the last sample, so 2.0 means two cores busy) and
its resident memory, read from ``/proc`` — no extra dependency. The Monitoring page plots them
beside latency; ``/metrics`` exposes the same figures through prometheus_client's process
collector.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import resource as _resource
import socket
import threading
import time
from dataclasses import dataclass
from typing import cast

import pandas as pd
from sqlalchemy import Table, delete, insert, select

from core.db import transaction, utcnow
from core.db.tables import ResourceSampleRow

log = logging.getLogger(__name__)
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_mb() -> float:
    """Current resident memory of this process in MB."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * PAGE / 2**20
    except OSError:
        return peak_rss_mb()


def peak_rss_mb() -> float:
    return _resource.getrusage(_resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


@dataclass(frozen=True)
class Sample:
    ts: dt.datetime
    cpu: float
    rss_mb: float
    peak_rss_mb: float


class Sampler:
    """Records samples of this process until stopped; a failed write is skipped, not fatal."""

    def __init__(self, kind: str, interval: float = 15.0) -> None:
        self.kind, self.interval = kind, interval
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None
        self._last = (time.monotonic(), cpu_seconds())

    def sample(self) -> Sample:
        now, cpu = time.monotonic(), cpu_seconds()
        wall = max(now - self._last[0], 1e-6)
        share = (cpu - self._last[1]) / wall
        self._last = (now, cpu)
        return Sample(utcnow(), share, rss_mb(), peak_rss_mb())

    def record(self) -> Sample:
        s = self.sample()
        with transaction() as session:
            session.execute(
                insert(cast(Table, ResourceSampleRow.__table__)),
                [
                    {
                        "ts": s.ts,
                        "kind": self.kind,
                        "host": socket.gethostname()[:128],
                        "pid": os.getpid(),
                        "cpu": s.cpu,
                        "rss_mb": s.rss_mb,
                        "peak_rss_mb": s.peak_rss_mb,
                    }
                ],
            )
        return s

    def _run(self) -> None:
        while not self.stop_event.wait(self.interval):
            try:
                self.record()
            except Exception as exc:  # noqa: BLE001 - monitoring must not stop the service
                log.warning("resource sample not recorded: %s", exc)

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name=f"{self.kind}-resources", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout=5)


class PeakMemory:
    """The highest resident memory of this process while the block runs, polled in a thread.

    ``ru_maxrss`` only ever grows over the process's life, so it cannot tell one training run
    from the next; polling ``/proc`` every ``interval`` seconds can, at the cost of missing
    spikes shorter than the interval.
    """

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _poll(self) -> None:
        while True:
            self.peak_mb = max(self.peak_mb, rss_mb())
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> PeakMemory:
        self.peak_mb = rss_mb()
        self._thread = threading.Thread(target=self._poll, name="peak-memory", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.peak_mb = max(self.peak_mb, rss_mb())


def history(
    *, since: dt.datetime, until: dt.datetime | None = None, kind: str | None = None
) -> pd.DataFrame:
    q = select(
        ResourceSampleRow.ts,
        ResourceSampleRow.kind,
        ResourceSampleRow.host,
        ResourceSampleRow.pid,
        ResourceSampleRow.cpu,
        ResourceSampleRow.rss_mb,
        ResourceSampleRow.peak_rss_mb,
    ).where(ResourceSampleRow.ts >= since)
    if until is not None:
        q = q.where(ResourceSampleRow.ts < until)
    if kind is not None:
        q = q.where(ResourceSampleRow.kind == kind)
    with transaction(write=False) as s:
        rows = s.execute(q.order_by(ResourceSampleRow.ts)).all()
    return pd.DataFrame(rows, columns=["ts", "kind", "host", "pid", "cpu", "rss_mb", "peak_rss_mb"])


def usage(*, since: dt.datetime, bucket: str = "5min") -> pd.DataFrame:
    """Samples averaged per process and time bucket: mean CPU, highest memory.

    One row per sample is too many points to draw over days (a process samples every 15 s);
    a bucket keeps the shape and the memory peaks.
    """
    frame = history(since=since)
    if frame.empty:
        return pd.DataFrame(columns=["ts", "process", "kind", "cpu", "rss_mb"])
    frame["process"] = frame["kind"] + " " + frame["host"] + ":" + frame["pid"].astype(str)
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True).dt.floor(bucket)
    out = frame.groupby(["process", "kind", "ts"], as_index=False).agg(
        cpu=("cpu", "mean"), rss_mb=("rss_mb", "max")
    )
    return out.sort_values(["process", "ts"], ignore_index=True)


def prune(*, before: dt.datetime) -> int:
    """Delete samples older than ``before``; the number deleted."""
    with transaction() as s:
        result = s.execute(delete(ResourceSampleRow).where(ResourceSampleRow.ts < before))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
