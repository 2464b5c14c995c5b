"""The worker's own ``/metrics`` for Prometheus (``python -m jobs.worker --metrics-port P``).

Figures are read from the database when Prometheus scrapes, not kept in the process, so a
standby reports the same queue and monitoring lag as the leader and a restarted worker loses
nothing. Exported:

- ``planwise_worker_runs{status}``: training runs in each status (queued, running, …);
- ``planwise_worker_queue_length``: runs waiting for a worker;
- ``planwise_worker_leader``: 1 while this process holds the scheduler lock;
- ``planwise_worker_leader_present``: 1 while any worker holds a live lock;
- ``planwise_worker_monitor_lag_seconds{model}``: time since the end of the model's last
  computed monitoring window, and ``planwise_worker_monitor_window_seconds{model}`` its
  window length (the alert compares the two);
- ``planwise_worker_database_up``: 0 when the figures could not be read.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from core import registry
from core.db import utcnow
from core.monitoring import monitor
from core.retraining import leader, runs

log = logging.getLogger(__name__)


class WorkerCollector(Collector):
    """Reads the worker's figures from ``core`` at each scrape."""

    def __init__(self, worker_id: str) -> None:
        self.worker_id = worker_id

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily(
            "planwise_worker_database_up", "1 when the worker could read its figures"
        )
        try:
            families = list(self._figures())
        except Exception as exc:  # noqa: BLE001 - a scrape must answer even when the DB is down
            log.warning("worker metrics could not be read: %s", exc)
            up.add_metric([], 0.0)
            yield up
            return
        up.add_metric([], 1.0)
        yield up
        yield from families

    def _figures(self) -> Iterator[GaugeMetricFamily]:
        counts = runs.count_by_status()
        by_status = GaugeMetricFamily(
            "planwise_worker_runs", "Training runs in each status", labels=["status"]
        )
        for status, n in counts.items():
            by_status.add_metric([status], float(n))
        yield by_status
        yield GaugeMetricFamily(
            "planwise_worker_queue_length", "Runs waiting for a worker", value=counts["queued"]
        )
        now = utcnow()
        holder = leader.current_worker()
        alive = holder is not None and holder.alive(now)
        yield GaugeMetricFamily(
            "planwise_worker_leader",
            "1 while this worker holds the scheduler lock",
            value=1.0 if alive and holder is not None and holder.holder == self.worker_id else 0.0,
        )
        yield GaugeMetricFamily(
            "planwise_worker_leader_present",
            "1 while some worker holds a live scheduler lock",
            value=1.0 if alive else 0.0,
        )
        lag = GaugeMetricFamily(
            "planwise_worker_monitor_lag_seconds",
            "Seconds since the end of the model's last computed monitoring window",
            labels=["model"],
        )
        window = GaugeMetricFamily(
            "planwise_worker_monitor_window_seconds",
            "The model's monitoring window length",
            labels=["model"],
        )
        for m in registry.list_models():
            if m.production is None:
                continue  # nothing served, nothing monitored
            job = monitor.status(m.name, now=now)
            window.add_metric([m.name], job.window.total_seconds())
            if job.last_window_end is not None:
                lag.add_metric([m.name], (now - job.last_window_end).total_seconds())
        yield lag
        yield window


def serve(worker_id: str, port: int, host: str = "127.0.0.1") -> Any:
    """Start the ``/metrics`` endpoint in a daemon thread; returns the HTTP server."""
    reg = CollectorRegistry()
    ProcessCollector(registry=reg)
    reg.register(WorkerCollector(worker_id))
    server, _thread = start_http_server(port, addr=host, registry=reg)
    log.info("worker metrics on http://%s:%s/metrics", host, port)
    return server
