"""The worker's jobs without a process: triggers, fire times, progress logs, recovery."""

from __future__ import annotations

import datetime as dt

import pytest

from core.accounts.auth import SYSTEM
from core.config import get_settings
from core.data.datasets import DatasetInfo
from core.db import utcnow
from core.retraining import cron, queue, runs, schedules
from core.retraining.schedules import ScheduleInfo
from jobs import tasks
from jobs.worker import Options, Worker, parse_args
from tests.fixtures.registry import register_dummy

UTC = dt.UTC
WEDNESDAY = dt.datetime(2026, 5, 13, 12, 0, tzinfo=UTC)


def _schedule(**fields: object) -> ScheduleInfo:
    now = utcnow()
    base: dict[str, object] = {
        "model": "recsys",
        "family": "popularity",
        "cron": None,
        "every_s": None,
        "dataset": "madrid",
        "params": {},
        "policy": "candidate",
        "margin": 0.0,
        "metric": "ndcg@5",
        "drift_cooldown_s": 0,
        "paused": False,
        "revision": 1,
        "anchor_at": now,
        "description": "",
        "created_at": now,
        "created_by": "t",
        "updated_at": now,
        "updated_by": "t",
    }
    return ScheduleInfo(**{**base, **fields})  # type: ignore[arg-type]


def _fires(expr: str, after: dt.datetime, n: int = 3) -> list[dt.datetime]:
    trigger = tasks.build_trigger(_schedule(cron=cron.validate_cron(expr)))
    out, prev = [], None
    for _ in range(n):
        nxt = trigger.get_next_fire_time(prev, prev or after)
        out.append(nxt)
        prev = nxt
    return out


def test_cron_triggers_fire_when_cron_would() -> None:
    # Day of week 0 is Sunday in cron (APScheduler's own crontab parser would say Monday).
    sundays = _fires("0 3 * * 0", WEDNESDAY)
    assert [f.strftime("%a %H:%M") for f in sundays] == ["Sun 03:00"] * 3
    assert sundays[0] == dt.datetime(2026, 5, 17, 3, 0, tzinfo=UTC)
    assert [f.strftime("%a") for f in _fires("0 6 * * 1-5", WEDNESDAY, 4)] == [
        "Thu", "Fri", "Mon", "Tue"
    ]  # fmt: skip
    assert [f.minute for f in _fires("*/20 * * * *", WEDNESDAY)] == [0, 20, 40]
    assert [f.month for f in _fires("0 0 1 */3 *", WEDNESDAY)] == [7, 10, 1]
    assert [f.strftime("%a") for f in _fires("0 0 * * 7,sat", WEDNESDAY)] == ["Sat", "Sun", "Sat"]


def test_interval_triggers_fire_on_the_anchor_grid() -> None:
    anchor = dt.datetime(2026, 5, 13, 12, 0, 0, tzinfo=UTC)
    trigger = tasks.build_trigger(_schedule(every_s=600, anchor_at=anchor))
    assert trigger.get_next_fire_time(None, anchor) == anchor + dt.timedelta(minutes=10)
    later = anchor + dt.timedelta(minutes=25)
    assert trigger.get_next_fire_time(None, later) == anchor + dt.timedelta(minutes=30)
    assert tasks.misfire_grace_s(_schedule(every_s=600)) == 600
    assert tasks.misfire_grace_s(_schedule(cron="0 3 * * *")) == tasks.CRON_MISFIRE_GRACE_S


def test_latest_fire_is_the_fire_being_run() -> None:
    anchor = dt.datetime(2026, 5, 13, 12, 0, 0, tzinfo=UTC)
    trigger = tasks.build_trigger(_schedule(every_s=60, anchor_at=anchor))
    now = anchor + dt.timedelta(minutes=5, seconds=20)
    assert tasks.latest_fire(trigger, now, 120) == anchor + dt.timedelta(minutes=5)
    daily = tasks.build_trigger(_schedule(cron="0 3 * * *"))
    now = dt.datetime(2026, 5, 13, 3, 0, 2, tzinfo=UTC)
    assert tasks.latest_fire(daily, now, 3600) == dt.datetime(2026, 5, 13, 3, 0, tzinfo=UTC)
    assert tasks.latest_fire(daily, now.replace(hour=9), 60) == now.replace(hour=9)  # none


def test_progress_is_logged_sparingly_and_stops_a_cancelled_run() -> None:
    state = tasks.RunState(runs.RunInfo(**_run_fields()))
    state.progress(0.0, "loading the dataset")
    for epoch in range(1, 200):
        state.progress(epoch / 200, f"epoch {epoch}/200: loss 0.1")
    state.progress(0.9, "evaluating on held-out users")
    state.progress(1.0, "registered recsys@1.0.0")
    lines = state.take().splitlines()
    assert "loading the dataset" in lines[0] and "epoch 1/200" in lines[1]
    assert len(lines) < 10 and "evaluating" in lines[-2] and "100%" in lines[-1]
    state.cancel("SIGTERM received")
    with pytest.raises(tasks.RunCancelled, match="SIGTERM"):
        state.progress(0.5, "epoch 100/200")
    state.unshift("kept\n")
    assert state.take() == "kept\n"


def _run_fields() -> dict[str, object]:
    now = utcnow()
    return {
        "id": 1,
        "model": "recsys",
        "family": "popularity",
        "trigger": "manual",
        "status": "running",
        "dataset_ref": "madrid",
        "dataset": None,
        "params": {},
        "policy": "candidate",
        "margin": 0.0,
        "metric": "ndcg@5",
        "reason": "",
        "requested_by": "t",
        "scheduled_for": None,
        "queued_at": now,
        "started_at": now,
        "finished_at": None,
        "heartbeat_at": now,
        "worker_id": "w",
        "version": None,
    }


def test_recovery_fails_a_dead_workers_runs_and_moves_no_folder(
    backend, dataset: DatasetInfo
) -> None:
    """A dead worker's runs are failed. Folders the registry does not know stay where they
    are: moving them is ``python -m core artifacts sweep``'s job, asked for by an operator."""
    kept = register_dummy("recsys", dataset_id=dataset.id)
    half = get_settings().artifacts_root / "popularity" / "recsys" / "v1.1.0"
    half.mkdir(parents=True)
    (half / "model.joblib").write_bytes(b"half")
    schedules.set_schedule(
        actor=SYSTEM, model="recsys", family="popularity", every_s=60, dataset=dataset.name
    )
    run = queue.queue_retrain("recsys", "manual", actor=SYSTEM).run
    runs.claim(run.id, worker_id="dead")

    Worker(Options(), worker_id="alive")._recover()
    assert (half / "model.joblib").read_bytes() == b"half"
    assert (get_settings().artifacts_root / kept.artifact_dir).is_dir()
    assert runs.get_run(run.id).status == "failed"


def test_worker_options_are_checked() -> None:
    options, verbose = parse_args(["--poll", "1", "--lease-ttl", "9", "--concurrency", "2", "-v"])
    assert (options.poll_s, options.lease_ttl_s, options.concurrency, verbose) == (1, 9, 2, True)
    assert options.renew_s == 3 and options.standby_s == 3
    with pytest.raises(SystemExit):
        parse_args(["--poll", "0"])
    with pytest.raises(SystemExit):
        parse_args(["--concurrency", "0"])
