"""The retraining queue (core.retraining.queue): manual runs, fires, drift and its cooldown."""

from __future__ import annotations

import datetime as dt

import pytest

from core import registry
from core.accounts.auth import SYSTEM, Actor
from core.data.datasets import DatasetInfo
from core.db import utcnow
from core.errors import BadInput, NotFound, PermissionDenied
from core.retraining import queue, runs, schedules
from tests.fixtures.registry import register_dummy

VIEWER = Actor("victor", "viewer")


def test_manual_retrain_queues_once_per_click(backend, dataset: DatasetInfo) -> None:
    with pytest.raises(NotFound, match="unknown model"):
        queue.queue_retrain("recsys", "manual", actor=SYSTEM)
    schedules.set_schedule(
        actor=SYSTEM,
        model="recsys",
        family="popularity",
        every_s=60,
        dataset=f"{dataset.name}@{dataset.version}",
        params={"shrinkage": 1.0},
    )
    first = queue.queue_retrain("recsys", "manual", "because", actor=SYSTEM)
    assert first.created and first.run.status == "queued" and first.run.trigger == "manual"
    assert first.run.dataset_ref == dataset.label and first.run.params == {"shrinkage": 1.0}
    again = queue.queue_retrain("recsys", "manual", actor=SYSTEM)
    assert not again.created and again.run.id == first.run.id
    with pytest.raises(PermissionDenied):
        queue.queue_retrain("recsys", "manual", actor=VIEWER)
    with pytest.raises(BadInput, match="schedules fire in the worker"):
        queue.queue_retrain("recsys", "schedule", actor=SYSTEM)


def test_drift_retrains_respect_active_runs_and_the_cooldown(backend, dataset: DatasetInfo) -> None:
    register_dummy("recsys", dataset_id=dataset.id)  # no schedule: the model's own data
    first = queue.queue_retrain("recsys", reason="drift in museums")
    assert first.created and first.run.trigger == "drift"
    assert first.run.dataset_ref == dataset.name and first.run.policy == "candidate"
    while_queued = queue.queue_retrain("recsys")
    assert not while_queued.created and "already queued" in while_queued.note

    claimed = runs.claim(first.run.id, worker_id="w")
    runs.finish(claimed.id, worker_id="w", status="succeeded")
    cooling = queue.queue_retrain("recsys", cooldown_s=3600)
    assert not cooling.created and "cooling down" in cooling.note
    assert queue.queue_retrain("recsys", cooldown_s=0).created


def test_a_fire_is_one_run_and_never_piles_up(backend, dataset: DatasetInfo) -> None:
    schedules.set_schedule(
        actor=SYSTEM, model="recsys", family="popularity", every_s=60, dataset=dataset.name
    )
    when = utcnow().replace(microsecond=0)
    run = queue.fire("recsys", scheduled_for=when)
    assert run is not None and run.trigger == "schedule" and run.status == "queued"
    assert run.scheduled_for == when and "every 60 s" in run.reason
    assert queue.fire("recsys", scheduled_for=when + dt.timedelta(minutes=1)) is None  # active
    runs.finish(runs.claim(run.id, worker_id="w").id, worker_id="w", status="failed")
    assert queue.fire("recsys", scheduled_for=when) is None  # that fire already ran
    assert queue.fire("recsys", scheduled_for=when + dt.timedelta(minutes=1)) is not None
    schedules.pause(actor=SYSTEM, model="recsys")
    assert queue.fire("recsys", scheduled_for=when + dt.timedelta(minutes=9)) is None
    assert queue.fire("gone", scheduled_for=when) is None
    assert len(runs.list_runs()) == 2


def test_a_drift_episode_on_production_queues_one_retrain(backend, dataset: DatasetInfo) -> None:
    from core.monitoring import alerts

    prod = register_dummy("recsys", dataset_id=dataset.id)
    registry.promote(
        actor=SYSTEM,
        model="recsys",
        version=prod.version,
        stage="production",
        reason="test promotion",
    )
    candidate = register_dummy("recsys")

    def alert(kind: str, subject: str, version: str) -> None:
        alerts.raise_alert(
            model="recsys",
            version=version,
            kind=kind,
            subject=subject,
            value=0.6,
            threshold=0.3,
            message=f"{subject} drifted",
        )

    alert("drift_share", "data", candidate.version)
    alert("error_rate", "errors", prod.version)
    assert queue.retrain_on_drift_alerts() == []  # not production's drift
    alert("feature_drift", "data:museums", prod.version)
    alert("drift_share", "prediction", prod.version)
    created = queue.retrain_on_drift_alerts()
    assert len(created) == 1
    run = created[0].run
    assert run.trigger == "drift" and run.reason.startswith("drift alert #")
    assert run.dataset_ref == dataset.name
    assert queue.retrain_on_drift_alerts() == []  # the episode is handled
