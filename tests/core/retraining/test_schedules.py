"""Retraining schedules (core.retraining.schedules): edits, revisions and their checks."""

from __future__ import annotations

import datetime as dt

import pytest

from core.accounts.auth import SYSTEM, Actor
from core.data.datasets import DatasetInfo
from core.db import utcnow
from core.errors import BadInput, NotFound, PermissionDenied
from core.retraining import schedules
from tests.fixtures.registry import register_dummy

VIEWER = Actor("victor", "viewer")


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
