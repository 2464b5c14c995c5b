"""Real worker processes on SQLite and Postgres: schedules fire, runs are recorded, a killed
worker leaves nothing half-made, and of two workers only one runs the schedule."""

from __future__ import annotations

import datetime as dt
import signal
from pathlib import Path

import pytest

from core import registry
from core.accounts.auth import SYSTEM
from core.config import get_settings
from core.data.datasets import DatasetInfo
from core.monitoring import alerts, resources
from core.retraining import leader, queue, runs, schedules
from tests.fixtures.workers import Workers, wait_for

pytest.importorskip("core.training")

# Long enough to be killed in the middle of it; never finishes within a test.
ENDLESS_AUTOENCODER = {"epochs": 5000, "patience": 0, "hidden_layers": "8"}


def _succeeded(model: str, trigger: str | None = None) -> list[runs.RunInfo]:
    return [
        r
        for r in runs.list_runs(model=model, trigger=trigger, limit=1000)
        if r.status == "succeeded"
    ]


def _training(run_id: int) -> bool:
    """The run is inside the fit (its log shows epochs), not merely claimed."""
    current = runs.get_run(run_id)
    return current.status == "running" and "epoch" in current.log


def _version_dirs(family: str, model: str) -> set[str]:
    base = get_settings().artifacts_root
    return {p.relative_to(base).as_posix() for p in (base / family / model).glob("v*")}


def test_schedule_produces_candidates_and_manual_run_is_picked_up(
    workers: Workers, dataset: DatasetInfo
) -> None:
    schedules.set_schedule(
        actor=SYSTEM, model="recsys", family="popularity", every_s=2, dataset=dataset.name
    )
    worker = workers.start("--resources", "0.5")
    done = wait_for(
        lambda: len(_succeeded("recsys", "schedule")) >= 2 and _succeeded("recsys", "schedule"),
        timeout=60,
        what="two scheduled runs",
        logs=workers.logs,
    )
    for run in done:
        version = registry.get_version("recsys", run.version)
        assert version.stage == "candidate"
        assert f"(training run #{run.id})" in version.description
        assert run.dataset == dataset.label and run.metrics["ndcg@5"] > 0
        assert run.scheduled_for is not None and run.worker_id is not None
        assert "registered" in run.outcome and "100%" in runs.get_run(run.id).log
        # The worker's memory while it trained: a Python process with NumPy and scikit-learn.
        assert run.peak_rss_mb is not None and 50 < run.peak_rss_mb < 4000
        assert "memory peaked at" in runs.get_run(run.id).log
    fires = [r.scheduled_for for r in runs.list_runs(model="recsys", trigger="schedule")]
    assert len(fires) == len(set(fires))

    # The worker mirrors the schedule back: revision applied and the next fire time.
    synced = schedules.get_schedule("recsys")
    assert synced.in_sync and synced.next_run_at is not None

    # "Run now" is a queued row; the worker picks it up within seconds.
    queued = queue.queue_retrain("recsys", "manual", "a test", actor=SYSTEM)
    assert queued.created and queued.run.status == "queued"
    manual = wait_for(
        lambda: runs.get_run(queued.run.id).status == "succeeded" and runs.get_run(queued.run.id),
        timeout=30,
        what="the manual run",
        logs=workers.logs,
    )
    assert manual.version is not None and manual.reason == "a test"

    # A drift alert on the production version queues a retrain; the worker runs it.
    registry.promote(
        actor=SYSTEM,
        model="recsys",
        version=done[0].version,
        stage="production",
        reason="test promotion",
    )
    alerts.raise_alert(
        model="recsys",
        version=done[0].version,
        kind="drift_share",
        subject="data",
        value=0.6,
        threshold=0.3,
        message="data drift of recsys",
    )
    drifted = wait_for(
        lambda: _succeeded("recsys", "drift"),
        timeout=30,
        what="the drift-triggered run",
        logs=workers.logs,
    )
    assert len(drifted) == 1 and "drift alert" in drifted[0].reason

    # Pausing stops the fires.
    schedules.pause(actor=SYSTEM, model="recsys")
    wait_for(
        lambda: schedules.get_schedule("recsys").in_sync,
        timeout=15,
        what="the pause to sync",
        logs=workers.logs,
    )
    settled = len(runs.list_runs(model="recsys", limit=1000))
    assert schedules.get_schedule("recsys").next_run_at is None

    # Its CPU and memory were sampled all along, for the Monitoring page.
    samples = resources.history(since=done[0].queued_at - dt.timedelta(minutes=1), kind="worker")
    assert len(samples) >= 2 and set(samples["pid"]) == {worker.pid}
    assert (samples["rss_mb"] > 50).all() and (samples["cpu"] >= 0).all()

    worker.signal(signal.SIGTERM)
    assert worker.wait(30) == 0, worker.log()
    assert len(runs.list_runs(model="recsys", limit=1000)) <= settled + 1
    assert leader.current_worker() is None  # released on a clean stop
    assert "no longer leads" in worker.log()


def test_killed_during_training_then_restarted_marks_the_run_failed(
    workers: Workers, dataset: DatasetInfo, backend
) -> None:
    schedules.set_schedule(
        actor=SYSTEM,
        model="ae",
        family="autoencoder",
        cron="0 3 1 1 *",  # yearly: only the queued runs below train
        dataset=dataset.name,
        params=ENDLESS_AUTOENCODER,
    )
    first = workers.start(name="first")
    run = queue.queue_retrain("ae", "manual", actor=SYSTEM).run

    wait_for(lambda: _training(run.id), timeout=90, what="the run to train", logs=workers.logs)
    first.signal(signal.SIGKILL)
    first.wait(10)
    assert runs.get_run(run.id).status == "running"  # nobody has noticed yet

    second = workers.start(name="second")
    failed = wait_for(
        lambda: runs.get_run(run.id).status == "failed" and runs.get_run(run.id),
        timeout=60,
        what="the killed run to be marked failed",
        logs=workers.logs,
    )
    assert "stopped during the run" in failed.error
    assert failed.version is None and failed.finished_at is not None
    assert registry.list_versions(model="ae").total == 0
    assert _version_dirs("autoencoder", "ae") == set()

    # A SIGTERM in the middle of a training stops it and records it failed, promptly.
    again = queue.queue_retrain("ae", "manual", actor=SYSTEM).run
    wait_for(
        lambda: _training(again.id),
        timeout=90,
        what="the second run to train",
        logs=workers.logs,
    )
    second.signal(signal.SIGTERM)
    assert second.wait(30) == 0, second.log()
    stopped = runs.get_run(again.id)
    assert stopped.status == "failed" and "SIGTERM" in (stopped.error or ""), stopped
    assert registry.list_versions(model="ae").total == 0
    assert _version_dirs("autoencoder", "ae") == set()
    staging = Path(backend.artifacts) / ".staging"
    assert not staging.exists() or not any(staging.iterdir())


def test_two_workers_one_leads_and_the_standby_takes_over(
    workers: Workers, dataset: DatasetInfo
) -> None:
    schedules.set_schedule(
        actor=SYSTEM, model="recsys", family="popularity", every_s=1, dataset=dataset.name
    )
    a, b = workers.start(name="a"), workers.start(name="b")
    wait_for(
        lambda: len(_succeeded("recsys")) >= 3,
        timeout=60,
        what="three scheduled runs",
        logs=workers.logs,
    )
    first_runs = runs.list_runs(model="recsys", limit=1000)
    owners = {r.worker_id for r in first_runs if r.worker_id}
    assert len(owners) == 1, owners  # one leader ran everything
    fires = [r.scheduled_for for r in first_runs]
    assert len(fires) == len(set(fires))  # no fire ran twice
    holder = leader.current_worker()
    assert holder is not None and holder.holder in owners
    leading, standby = (a, b) if f":{a.pid}:" in holder.holder else (b, a)
    assert "standing by" in standby.log()

    leading.signal(signal.SIGKILL)
    leading.wait(10)
    taken = wait_for(
        lambda: [r for r in _succeeded("recsys") if r.worker_id not in owners],
        timeout=60,
        what="the standby to take over",
        logs=workers.logs,
    )
    assert all(f":{standby.pid}:" in r.worker_id for r in taken)
    everything = runs.list_runs(model="recsys", limit=1000)
    fires = [r.scheduled_for for r in everything]
    assert len(fires) == len(set(fires))
    # Nothing is left running by the dead leader: its run, if any, was marked failed.
    assert not [r for r in everything if r.status == "running" and r.worker_id in owners]
    standby.signal(signal.SIGTERM)
    assert standby.wait(30) == 0
