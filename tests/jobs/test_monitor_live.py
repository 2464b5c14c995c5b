"""Monitoring on the production path: the real API over HTTP, the real worker, no simulator.

A model in production is served by ``python -m api``; ``python -m jobs.worker`` leads and
runs its monitoring job on short windows. Generated users with their usual taste raise no
drift alert; the summer shift then produces a data-drift result naming the shifted
categories, an alert, and a queued drift retraining run (the model has a schedule). A
second test kills the worker in the middle of its catch-up and checks every window was
stored exactly once.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from sqlalchemy import func, select

from core import monitoring, registry
from core.accounts.auth import SYSTEM
from core.data.categories import CATEGORIES
from core.data.generator import DriftEpisode, generate_users
from core.db import transaction
from core.db.tables import DriftResultRow, MonitorResultRow
from core.monitoring import alerts, monitor
from core.retraining import runs, schedules
from tests.conftest import PROJECT_ROOT
from tests.fixtures.api import free_port
from tests.fixtures.models import monitored_model
from tests.fixtures.traffic import served_records
from tests.fixtures.workers import Workers, wait_for

KEY = "monitor-key"
WINDOW_MIN = 0.25  # 15-second windows keep the test short; the job is the same at 60 minutes
DRIFT_KINDS = ("drift_share", "feature_drift")


class Traffic:
    """A client sending generated users to the API until stopped; the pool can be swapped."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.pool = np.zeros((1, len(CATEGORIES)))
        self.sent = 0
        self.failed: list[int] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def use(self, users: np.ndarray) -> None:
        self.pool = users

    def _run(self) -> None:
        rng = np.random.default_rng(0)
        with httpx.Client(base_url=self.base, headers={"X-API-Key": KEY}, timeout=10) as c:
            while not self.stop.is_set():
                prefs = self.pool[rng.integers(len(self.pool))]
                body = {
                    "ratings": prefs.tolist(),
                    "lat": 40.4168 + rng.normal(0, 0.01),
                    "lng": -3.7038 + rng.normal(0, 0.01),
                    "k": 10,
                    "user_id": f"u{rng.integers(1_000_000)}",
                }
                r = c.post("/recommend", json=body)
                self.sent += 1
                if r.status_code != 200:
                    self.failed.append(r.status_code)
                time.sleep(0.01)  # about 50 requests a second: hundreds a window


def _users(n: int, seed: int, *, shifted: bool) -> np.ndarray:
    frame = generate_users(n, seed=seed, drift=DriftEpisode(0) if shifted else None)
    return frame[list(CATEGORIES)].to_numpy(dtype=float)


@pytest.fixture
def api(backend, workers: Workers) -> Iterator[str]:
    port = free_port()
    env = {**workers.env, "API_KEYS": KEY, "API_MODEL": "recsys"}
    log = backend.root / "api.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "api", "--port", str(port)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            try:
                return httpx.get(f"{base}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, timeout=90, what="the API", logs=lambda: log.read_text(errors="replace"))
        yield base
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def served_model(backend, workers: Workers) -> str:
    ds, version = monitored_model(
        backend.root, users=2000, seed=1, window_minutes=WINDOW_MIN, min_rows=150
    )
    schedules.set_schedule(
        actor=SYSTEM, model="recsys", every_s=86_400, dataset=ds.name, policy="candidate"
    )
    workers.env["MONITOR_GRACE_SECONDS"] = "2"
    return version


def _drift_alerts() -> list[alerts.Alert]:
    return [a for a in alerts.list_alerts("recsys", status=None) if a.kind in DRIFT_KINDS]


def test_live_traffic_drift_raises_an_alert_and_queues_a_retrain(
    served_model: str, api: str, workers: Workers
) -> None:
    worker = workers.start("--monitor", "1")
    traffic = Traffic(api)
    traffic.use(_users(3000, seed=7, shifted=False))
    traffic.thread.start()
    try:
        # Usual taste: windows are judged, and none raises a drift alert.
        def judged() -> list[monitor.MonitorResult]:
            done = [
                r
                for r in monitor.results("recsys", kind="data", variant="production")
                if r.status == "ok"
            ]
            return done if len(done) >= 2 else []

        calm = wait_for(judged, timeout=120, what="two judged windows", logs=workers.logs)
        assert all(r.rows >= 150 for r in calm)
        assert not _drift_alerts(), [a.message for a in _drift_alerts()]
        assert all(max(r.figures["top_columns"].values()) < 0.3 for r in calm)

        # Summer: the shifted categories drift, an alert is raised, a retrain is queued.
        shift_at = dt.datetime.now(dt.UTC)
        traffic.use(_users(3000, seed=8, shifted=True))
        raised = wait_for(
            lambda: [a for a in _drift_alerts() if a.kind == "feature_drift"],
            timeout=120,
            what="a drift alert",
            logs=workers.logs,
        )
        assert {a.version for a in raised} == {served_model}
        drifted = [
            r
            for r in monitor.results("recsys", kind="data", variant="production")
            if r.window_end > shift_at and r.status == "ok"
        ]
        assert any(
            {"beaches", "swimming pools"} <= set(r.figures["drifted_columns"]) for r in drifted
        ), [r.figures for r in drifted]
        subjects = {a.subject for a in raised}
        assert {"data:beaches", "data:swimming pools"} & subjects
        queued = wait_for(
            lambda: runs.list_runs(model="recsys", trigger="drift"),
            timeout=30,
            what="a drift-triggered run",
            logs=workers.logs,
        )
        assert "drift alert" in queued[0].reason
    finally:
        traffic.stop.set()
        traffic.thread.join(15)
    assert not traffic.failed
    assert worker.proc.poll() is None
    # Every stored window is unique, and every drift result belongs to one of them.
    stored = monitor.results("recsys")
    keys = [(r.version, r.variant, r.kind, r.window_start) for r in stored]
    assert len(keys) == len(set(keys))
    assert monitoring.count_logs("recsys") >= traffic.sent - 50  # the log kept up


def test_killed_mid_catch_up_every_window_is_stored_once(
    served_model: str, workers: Workers
) -> None:
    """A day's worth of minute windows is caught up; the worker is killed half-way through,
    restarted, and every window ends up stored exactly once (drift results included)."""
    registry.update_model(actor=SYSTEM, name="recsys", settings={"monitor_window_minutes": 1})
    users = _users(400, seed=9, shifted=False)
    now = monitor.align(dt.datetime.now(dt.UTC), dt.timedelta(minutes=1))
    start = now - dt.timedelta(minutes=40)
    times = [start + dt.timedelta(seconds=6 * i) for i in range(400)]  # ten a minute, 40 minutes
    monitoring.write_batch(served_records(users, times, version=served_model, latency_ms=3.0))
    registry.update_model(actor=SYSTEM, name="recsys", settings={"monitor_min_rows": 5})

    def stored() -> int:
        with transaction(write=False) as s:
            return int(
                s.scalar(
                    select(func.count(func.distinct(MonitorResultRow.window_start))).where(
                        MonitorResultRow.model == "recsys"
                    )
                )
                or 0
            )

    first = workers.start("--monitor", "1", name="first")
    wait_for(lambda: stored() >= 5, timeout=90, what="some windows", logs=workers.logs)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(10)
    partial = stored()
    assert partial < 40, "the worker finished before it could be killed"
    workers.start("--monitor", "1", name="second")
    wait_for(lambda: stored() >= 40, timeout=120, what="every window", logs=workers.logs)
    with transaction(write=False) as s:
        rows = s.execute(
            select(
                MonitorResultRow.window_start,
                MonitorResultRow.kind,
                MonitorResultRow.drift_result_id,
            ).where(MonitorResultRow.model == "recsys", MonitorResultRow.window_start < now)
        ).all()
        drift_ids = set(s.scalars(select(DriftResultRow.id)).all())
    keys = [(w, k) for w, k, _ in rows]
    assert len(keys) == len(set(keys)) == 40 * 4  # every window, every kind, exactly once
    linked = {d for _, _, d in rows if d is not None}
    assert linked == drift_ids  # no drift result left behind by the killed transaction
