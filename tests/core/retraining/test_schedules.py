"""Schedules, the retraining queue and the promotion policies (core.retraining.schedules)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from core import registry
from core.accounts.auth import SYSTEM, Actor
from core.data.datasets import DatasetInfo
from core.db import utcnow
from core.errors import BadInput, NotFound, PermissionDenied
from core.retraining import runs, schedules
from tests.helpers import register_dummy

VIEWER = Actor("victor", "viewer")


# ------------------------------------------------------------------------ cron


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("0 3 * * *", ((0,), (3,), None, None, None)),
        ("*/15  *  * * *", ((0, 15, 30, 45), None, None, None, None)),
        ("0 6 * * MON-FRI", ((0,), (6,), None, None, (1, 2, 3, 4, 5))),
        ("0 0 * * 0", ((0,), (0,), None, None, (0,))),
        ("0 0 * * 7", ((0,), (0,), None, None, (0,))),
        ("0 0 * * 5-7", ((0,), (0,), None, None, (0, 5, 6))),
        ("30 2 1 */3 *", ((30,), (2,), (1,), (1, 4, 7, 10), None)),
        ("0 9-17/4 * jan,jul *", ((0,), (9, 13, 17), None, (1, 7), None)),
        ("* * * * 0-6", (None, None, None, None, None)),
    ],
)
def test_cron_fields_keep_cron_meaning(expr: str, expected: tuple) -> None:
    spec = schedules.parse_cron(expr)
    assert (spec.minute, spec.hour, spec.day, spec.month, spec.day_of_week) == expected
    assert spec.expression == " ".join(expr.lower().split())


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("", "5 fields"),
        ("0 3 * *", "5 fields"),
        ("61 * * * *", "minute 61 is out of range 0-59"),
        ("0 24 * * *", "hour 24 is out of range"),
        ("0 3 * * fri-mon", "runs backwards"),
        ("0 3 * * funday", "invalid day of week"),
        ("*/0 * * * *", "invalid step"),
        ("5/15 * * * *", "as a range"),
        ("0 3 1 * mon", "both the day of month and the day of week"),
        ("0 0 30 2 *", "never fires"),
        ("0 0 ? * *", "invalid day of month"),
    ],
)
def test_bad_cron_expressions_name_the_problem(expr: str, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        schedules.parse_cron(expr)


# ------------------------------------------------------------------------ schedules


def test_set_list_pause_resume_and_revisions(backend, dataset: DatasetInfo) -> None:
    info = schedules.set_schedule(
        actor=SYSTEM,
        model="recsys",
        family="popularity",
        every_s=3600,
        dataset=dataset.name,
        params={"shrinkage": "2.5"},
        policy="staging",
    )
    assert (info.revision, info.when, info.policy, info.paused) == (
        1,
        "every 3600 s",
        "staging",
        False,
    )
    assert info.params == {"shrinkage": 2.5}  # typed by the family
    assert not info.in_sync and info.next_run_at is None

    changed = schedules.set_schedule(actor=SYSTEM, model="recsys", cron="0 3 * * SUN")
    assert changed.revision == 2 and changed.cron == "0 3 * * sun" and changed.every_s is None
    assert changed.policy == "staging" and changed.params == {"shrinkage": 2.5}  # kept

    paused = schedules.pause(actor=SYSTEM, model="recsys")
    assert paused.paused and paused.revision == 3
    assert schedules.pause(actor=SYSTEM, model="recsys").revision == 3  # no change, no bump
    edited = schedules.set_schedule(actor=SYSTEM, model="recsys", policy="candidate")
    assert edited.paused  # editing does not resume
    resumed = schedules.resume(actor=SYSTEM, model="recsys")
    assert not resumed.paused and resumed.revision == 5

    next_fire = utcnow() + dt.timedelta(hours=1)
    schedules.record_sync({"recsys": (5, next_fire)})
    synced = schedules.get_schedule("recsys")
    assert synced.in_sync and synced.next_run_at == next_fire
    assert [s.model for s in schedules.list_schedules()] == ["recsys"]

    schedules.delete_schedule(actor=SYSTEM, model="recsys")
    assert schedules.find_schedule("recsys") is None
    with pytest.raises(NotFound, match="no retraining schedule"):
        schedules.pause(actor=SYSTEM, model="recsys")


def test_schedule_input_is_checked_before_anything_is_written(
    backend, dataset: DatasetInfo
) -> None:
    base = {"actor": SYSTEM, "model": "recsys", "dataset": dataset.name}
    with pytest.raises(BadInput, match="give the family"):
        schedules.set_schedule(**base, every_s=60)
    with pytest.raises(BadInput, match="give a cron expression or an interval"):
        schedules.set_schedule(**base, family="popularity")
    with pytest.raises(BadInput, match="not both"):
        schedules.set_schedule(**base, family="popularity", every_s=60, cron="0 3 * * *")
    with pytest.raises(BadInput, match="unknown hyperparameter.*epochz"):
        schedules.set_schedule(**base, family="autoencoder", every_s=60, params={"epochz": 3})
    with pytest.raises(BadInput, match="unknown promotion policy"):
        schedules.set_schedule(**base, family="popularity", every_s=60, policy="yolo")
    with pytest.raises(BadInput, match="interval must be between"):
        schedules.set_schedule(**base, family="popularity", every_s=0)
    with pytest.raises(NotFound):
        schedules.set_schedule(
            actor=SYSTEM, model="recsys", family="popularity", every_s=60, dataset="nope"
        )
    with pytest.raises(BadInput, match="no dataset is known"):
        schedules.set_schedule(actor=SYSTEM, model="recsys", family="popularity", every_s=60)
    with pytest.raises(PermissionDenied, match="operator"):
        schedules.set_schedule(**{**base, "actor": VIEWER}, family="popularity", every_s=60)
    assert schedules.list_schedules() == []


def test_family_and_dataset_default_to_the_models(backend, dataset: DatasetInfo) -> None:
    register_dummy("recsys", dataset_id=dataset.id)
    info = schedules.set_schedule(actor=SYSTEM, model="recsys", every_s=60)
    assert (info.family, info.dataset) == ("popularity", dataset.name)
    with pytest.raises(BadInput, match="is of family 'popularity'"):
        schedules.set_schedule(actor=SYSTEM, model="recsys", family="svd")


# ------------------------------------------------------------------------ the queue


def test_manual_retrain_queues_once_per_click(backend, dataset: DatasetInfo) -> None:
    with pytest.raises(NotFound, match="unknown model"):
        schedules.queue_retrain("recsys", "manual", actor=SYSTEM)
    schedules.set_schedule(
        actor=SYSTEM,
        model="recsys",
        family="popularity",
        every_s=60,
        dataset=f"{dataset.name}@{dataset.version}",
        params={"shrinkage": 1.0},
    )
    first = schedules.queue_retrain("recsys", "manual", "because", actor=SYSTEM)
    assert first.created and first.run.status == "queued" and first.run.trigger == "manual"
    assert first.run.dataset_ref == dataset.label and first.run.params == {"shrinkage": 1.0}
    again = schedules.queue_retrain("recsys", "manual", actor=SYSTEM)
    assert not again.created and again.run.id == first.run.id
    with pytest.raises(PermissionDenied):
        schedules.queue_retrain("recsys", "manual", actor=VIEWER)
    with pytest.raises(BadInput, match="schedules fire in the worker"):
        schedules.queue_retrain("recsys", "schedule", actor=SYSTEM)


def test_drift_retrains_respect_active_runs_and_the_cooldown(backend, dataset: DatasetInfo) -> None:
    register_dummy("recsys", dataset_id=dataset.id)  # no schedule: the model's own data
    first = schedules.queue_retrain("recsys", reason="drift in museums")
    assert first.created and first.run.trigger == "drift"
    assert first.run.dataset_ref == dataset.name and first.run.policy == "candidate"
    while_queued = schedules.queue_retrain("recsys")
    assert not while_queued.created and "already queued" in while_queued.note

    claimed = runs.claim(first.run.id, worker_id="w")
    runs.finish(claimed.id, worker_id="w", status="succeeded")
    cooling = schedules.queue_retrain("recsys", cooldown_s=3600)
    assert not cooling.created and "cooling down" in cooling.note
    assert schedules.queue_retrain("recsys", cooldown_s=0).created


def test_a_fire_is_one_run_and_never_piles_up(backend, dataset: DatasetInfo) -> None:
    schedules.set_schedule(
        actor=SYSTEM, model="recsys", family="popularity", every_s=60, dataset=dataset.name
    )
    when = utcnow().replace(microsecond=0)
    run = schedules.fire("recsys", scheduled_for=when)
    assert run is not None and run.trigger == "schedule" and run.status == "queued"
    assert run.scheduled_for == when and "every 60 s" in run.reason
    assert schedules.fire("recsys", scheduled_for=when + dt.timedelta(minutes=1)) is None  # active
    runs.finish(runs.claim(run.id, worker_id="w").id, worker_id="w", status="failed")
    assert schedules.fire("recsys", scheduled_for=when) is None  # that fire already ran
    assert schedules.fire("recsys", scheduled_for=when + dt.timedelta(minutes=1)) is not None
    schedules.pause(actor=SYSTEM, model="recsys")
    assert schedules.fire("recsys", scheduled_for=when + dt.timedelta(minutes=9)) is None
    assert schedules.fire("gone", scheduled_for=when) is None
    assert len(runs.list_runs()) == 2


# ------------------------------------------------------------------------ policies


def _run(policy: str, margin: float = 0.0) -> runs.RunInfo:
    queued = schedules.queue_retrain("recsys", "manual", actor=SYSTEM, cooldown_s=0).run
    return dataclasses.replace(queued, policy=policy, margin=margin)


def test_policies_move_a_version_only_as_far_as_allowed(backend, dataset: DatasetInfo) -> None:
    prod = register_dummy("recsys", dataset_id=dataset.id, metrics={"ndcg@5": 0.5, "rmse": 1.0})
    registry.promote(actor=SYSTEM, model="recsys", version=prod.version, stage="production")

    new = register_dummy("recsys", metrics={"ndcg@5": 0.52, "rmse": 1.0})
    kept = schedules.apply_policy(_run("candidate"), new)
    assert kept.promoted_to is None and "candidate" in kept.note

    not_enough = schedules.apply_policy(_run("production", margin=0.05), new)
    assert not_enough.promoted_to is None
    assert not_enough.gates[0]["name"] == "margin" and not not_enough.gates[0]["passed"]
    assert registry.get_version("recsys", new.version).stage == "candidate"

    staged = schedules.apply_policy(_run("staging"), new)
    assert staged.promoted_to == "staging", staged.note
    assert registry.get_version("recsys", new.version).stage == "staging"

    better = register_dummy("recsys", metrics={"ndcg@5": 0.6, "rmse": 0.9})
    promoted = schedules.apply_policy(_run("production", margin=0.05), better)
    assert promoted.promoted_to == "production", promoted.note
    assert {g["name"] for g in promoted.gates} >= {"margin", "integrity"}
    assert registry.get_version("recsys", stage="production").version == better.version

    registry.update_model(actor=SYSTEM, name="recsys", require_audit=True)
    best = register_dummy("recsys", metrics={"ndcg@5": 0.9, "rmse": 0.5})
    audited = schedules.apply_policy(_run("production"), best)
    assert audited.promoted_to is None and "audit approval" in audited.note


def test_production_policy_never_picks_the_first_production_version(
    backend, dataset: DatasetInfo
) -> None:
    v = register_dummy("recsys", dataset_id=dataset.id)
    outcome = schedules.apply_policy(_run("production"), v)
    assert outcome.promoted_to is None and "no production version" in outcome.note


def test_a_drift_episode_on_production_queues_one_retrain(backend, dataset: DatasetInfo) -> None:
    from core.monitoring import alerts

    prod = register_dummy("recsys", dataset_id=dataset.id)
    registry.promote(actor=SYSTEM, model="recsys", version=prod.version, stage="production")
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
    assert schedules.retrain_on_drift_alerts() == []  # not production's drift
    alert("feature_drift", "data:museums", prod.version)
    alert("drift_share", "prediction", prod.version)
    created = schedules.retrain_on_drift_alerts()
    assert len(created) == 1
    run = created[0].run
    assert run.trigger == "drift" and run.reason.startswith("drift alert #")
    assert run.dataset_ref == dataset.name
    assert schedules.retrain_on_drift_alerts() == []  # the episode is handled
