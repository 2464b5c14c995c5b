"""Run records (core.retraining.runs): claims, heartbeats, ends and the recovery of dead workers'
runs."""

from __future__ import annotations

import datetime as dt

import pytest

from core.accounts.auth import SYSTEM
from core.data.datasets import DatasetInfo
from core.db import utcnow
from core.errors import BadInput
from core.retraining import queue, runs, schedules
from tests.fixtures.registry import register_dummy


@pytest.fixture
def queued(backend, dataset: DatasetInfo) -> list[runs.RunInfo]:
    """Two queued runs of ``recsys`` and one of ``other``."""
    for model in ("recsys", "other"):
        schedules.set_schedule(
            actor=SYSTEM, model=model, family="popularity", every_s=60, dataset=dataset.name
        )
    return [
        queue.queue_retrain("recsys", "manual", "first", actor=SYSTEM).run,
        queue.queue_retrain("recsys", "manual", "second", actor=SYSTEM, dataset=dataset.label).run,
        queue.queue_retrain("other", "manual", actor=SYSTEM).run,
    ]


def test_a_run_is_claimed_once(queued) -> None:
    first = runs.claim(queued[0].id, worker_id="a")
    assert first is not None and first.status == "running" and first.worker_id == "a"
    assert first.started_at is not None
    assert runs.claim(queued[0].id, worker_id="b") is None
    # claim_next passes over the models a worker is busy with, oldest first otherwise.
    nxt = runs.claim_next(worker_id="a", skip_models={"recsys"})
    assert nxt is not None and nxt.id == queued[2].id
    assert runs.claim_next(worker_id="a", skip_models={"recsys"}) is None
    assert runs.claim_next(worker_id="a").id == queued[1].id
    assert runs.queued_ids() == []


def test_heartbeat_appends_the_log_and_reports_lost_runs(queued) -> None:
    run = runs.claim(queued[0].id, worker_id="a")
    assert runs.heartbeat(worker_id="a", logs={run.id: "line 1\n"}) == []
    assert runs.heartbeat(worker_id="a", logs={run.id: "line 2\n"}) == []
    assert runs.get_run(run.id).log == "line 1\nline 2\n"
    assert runs.heartbeat(worker_id="b", logs={run.id: "intruder\n"}) == [run.id]
    assert "intruder" not in runs.get_run(run.id).log


def test_finish_records_the_result_only_for_the_owner(queued) -> None:
    run = runs.claim(queued[0].id, worker_id="a")
    assert runs.finish(run.id, worker_id="b", status="succeeded") is None
    done = runs.finish(
        run.id,
        worker_id="a",
        status="succeeded",
        log_tail="done\n",
        version="1.0.0",
        dataset="madrid@1",
        metrics={"ndcg@5": 0.4},
        gates=[{"name": "margin", "passed": True}],
        outcome="registered 1.0.0 as a candidate",
    )
    assert done is not None and done.finished and done.version == "1.0.0"
    assert done.duration_s is not None and done.duration_s >= 0
    assert runs.finish(run.id, worker_id="a", status="failed") is None  # already ended
    with pytest.raises(BadInput):
        runs.finish(run.id, worker_id="a", status="running")  # type: ignore[arg-type]
    listed = runs.list_runs(model="recsys")
    assert [r.id for r in listed] == [queued[1].id, queued[0].id]  # newest first
    assert listed[1].log == "" and runs.get_run(run.id).log == "done\n"  # listings skip logs
    assert [r.id for r in runs.list_runs(status="succeeded")] == [run.id]
    with pytest.raises(BadInput, match="unknown run status"):
        runs.list_runs(status="exploded")


def test_runs_of_a_dead_worker_are_failed_and_keep_what_they_registered(queued) -> None:
    mine = runs.claim(queued[0].id, worker_id="me")
    dead = runs.claim(queued[1].id, worker_id="dead")
    registered = runs.claim(queued[2].id, worker_id="dead")
    # The dead worker's last run got as far as registering its version.
    register_dummy("other", description=f"manual retraining {runs.version_tag(registered.id)}")

    failed = {r.id: r for r in runs.fail_orphans(worker_id="me")}
    assert set(failed) == {dead.id, registered.id}
    assert failed[dead.id].status == "failed" and "worker dead stopped" in failed[dead.id].error
    assert failed[dead.id].version is None
    assert failed[registered.id].version == "1.0.0"
    assert "registered 1.0.0" in failed[registered.id].outcome
    assert runs.get_run(mine.id).status == "running"
    assert runs.fail_orphans(worker_id="me") == []


def test_only_stale_runs_of_others_when_asked(queued) -> None:
    silent = runs.claim(queued[2].id, worker_id="old-leader")
    cut = utcnow()
    beating = runs.claim(queued[0].id, worker_id="old-leader")
    assert silent.heartbeat_at < cut <= beating.heartbeat_at
    assert [r.id for r in runs.fail_orphans(worker_id="me", stale_before=cut)] == [silent.id]
    assert runs.get_run(beating.id).status == "running"
    later = utcnow() + dt.timedelta(seconds=1)
    assert [r.id for r in runs.fail_orphans(worker_id="me", stale_before=later)] == [beating.id]


def test_the_log_keeps_its_tail(queued) -> None:
    run = runs.claim(queued[0].id, worker_id="a")
    line = "x" * 99 + "\n"
    for _ in range(12):
        runs.heartbeat(worker_id="a", logs={run.id: line * 100})
    log = runs.get_run(run.id).log
    assert len(log) <= runs.MAX_LOG_CHARS and log.startswith("…") and log.endswith(line)
