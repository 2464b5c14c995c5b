"""Progressive rollout plans: steps on evidence, rollback on a broken guardrail, and one live
plan (and one application of each step) whatever two operators or workers do at once."""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest

from core import registry, rollout
from core.accounts.auth import SYSTEM, Actor
from core.cli import main
from core.db import utcnow
from core.errors import AlreadyExists, BadInput, PermissionDenied
from core.monitoring import alerts
from tests.fixtures.models import dummy_experiment
from tests.fixtures.traffic import ab_traffic

LATER = dt.timedelta(hours=1)  # a "now" past every soak


@pytest.fixture
def staged(backend):
    return dummy_experiment("m")


def _start(**kwargs):
    args = {"steps": [0.25, 1.0], "min_soak_s": 60, "min_requests": 50} | kwargs
    return rollout.start(actor=SYSTEM, model="m", **args)


def test_start_applies_the_first_step_and_refuses_a_second_plan(staged):
    plan = _start()
    assert registry.get_model("m").canary_share == 0.25 and plan.status == "running"
    with pytest.raises(AlreadyExists, match="already running"):
        _start()
    with pytest.raises(PermissionDenied):
        rollout.start(actor=Actor("v", "viewer"), model="m")
    rollout.abort(actor=SYSTEM, model="m")
    for bad in ([0.5, 0.25, 1.0], [0.5], [0, 1.0], [0.5, 1.5]):
        with pytest.raises(BadInput):
            _start(steps=bad)
    assert [e.action for e in rollout.events(plan.id)] == ["start", "abort"]


def test_concurrent_starts_leave_one_plan(staged):
    barrier, outcomes = threading.Barrier(4), []

    def go() -> None:
        barrier.wait()
        try:
            outcomes.append(_start().id)
        except AlreadyExists:
            outcomes.append("refused")

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("refused") == 3
    assert len([p for p in rollout.plans("m") if p.live]) == 1


def test_a_step_waits_for_soak_requests_and_guardrails_then_carries_figures(staged):
    prod, canary = staged
    plan = _start()
    assert rollout.tick()[0].action == "held"  # no canary traffic: guardrails not judged
    ab_traffic("m", prod, canary, 800, 0.3, 0.3)
    (held,) = rollout.tick()  # guardrails hold, but the step has not soaked
    assert held.action == "held" and "soaked" in held.detail
    (advanced,) = rollout.tick(now=utcnow() + LATER)
    assert advanced.action == "advanced"
    assert registry.get_model("m").canary_share == 1.0
    event = rollout.events(plan.id)[-1]
    assert event.action == "advance" and event.share == 1.0
    assert event.figures["canary"]["requests"] > 0 and event.figures["guardrails"]
    assert event.figures["step"]["canary_requests"] >= 50
    # The last step needs its own requests before the version is promoted.
    assert rollout.tick(now=utcnow() + 2 * LATER)[0].action == "held"
    ab_traffic("m", prod, canary, 800, 0.3, 0.3, seed=2)
    assert rollout.tick(now=utcnow() + 2 * LATER)[0].action == "completed"
    info = registry.get_model("m")
    assert info.production == canary and info.staging is None and info.canary_share == 0
    assert rollout.current("m").status == "completed"
    assert [e.action for e in rollout.events(plan.id)] == ["start", "advance", "complete"]
    promoted = [
        e for e in registry.timeline("m") if e.version == canary and e.to_stage == "production"
    ]
    assert [e.actor for e in promoted] == [rollout.ROLLOUT_ACTOR.username]
    assert f"rollout #{plan.id} completed" in promoted[0].reason


def test_a_broken_guardrail_rolls_back_at_once_with_an_alert(staged):
    prod, canary = staged
    plan = _start(min_soak_s=3600)
    ab_traffic("m", prod, canary, 600, 0.3, 0.3, error_rate=0.25)
    (outcome,) = rollout.tick()  # no soak needed to roll back
    assert outcome.action == "rolled_back" and "error_rate" in outcome.detail
    assert registry.get_model("m").canary_share == 0.0
    ended = rollout.current("m")
    assert ended.status == "rolled_back" and not ended.live
    event = rollout.events(plan.id)[-1]
    assert event.action == "rollback" and event.figures["canary"]["error_rate"] > 0.1
    (alert,) = [a for a in alerts.list_alerts("m") if a.kind == "rollout"]
    assert alert.version == canary and "error_rate" in alert.message
    assert rollout.tick() == []  # nothing live any more
    _start()  # a new plan may start once the old one ended


def test_concurrent_ticks_apply_a_step_once(staged):
    prod, canary = staged
    plan = _start(steps=[0.1, 0.5, 1.0])
    ab_traffic("m", prod, canary, 800, 0.3, 0.3)
    later = utcnow() + LATER
    barrier, outcomes = threading.Barrier(3), []

    def go() -> None:
        barrier.wait()
        outcomes.extend(o.action for o in rollout.tick(now=later))

    threads = [threading.Thread(target=go) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("advanced") == 1, outcomes
    assert rollout.current("m").step == 1 and registry.get_model("m").canary_share == 0.5
    assert [e.action for e in rollout.events(plan.id)] == ["start", "advance"]


def test_pause_holds_abort_returns_the_share_and_a_stale_decision_is_skipped(staged):
    prod, canary = staged
    plan = _start()
    ab_traffic("m", prod, canary, 800, 0.3, 0.3)
    rollout.pause(actor=SYSTEM, model="m", reason="looking")
    assert rollout.tick(now=utcnow() + LATER) == []
    assert registry.get_model("m").canary_share == 0.25
    resumed = rollout.resume(actor=SYSTEM, model="m")
    ab_traffic("m", prod, canary, 800, 0.3, 0.3, seed=3)  # the resumed step's own requests
    # A decision made on the plan as it was before the operator acted changes nothing.
    stale = rollout.evaluate(plan, now=utcnow() + LATER)
    assert stale.action == "skipped"
    assert rollout.current("m").step == 0
    rollout.abort(actor=SYSTEM, model="m", reason="enough")
    assert registry.get_model("m").canary_share == 0.0
    assert rollout.evaluate(resumed, now=utcnow() + LATER).action == "skipped"
    assert registry.get_model("m").canary_share == 0.0
    with pytest.raises(BadInput, match="no live rollout"):
        rollout.pause(actor=SYSTEM, model="m")


def test_rollout_commands(staged, capsys):
    assert main(["rollout", "start", "m", "--steps", "0.1,1", "--soak", "5", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["share"] == 0.1 and plan["status"] == "running"
    assert main(["rollout", "start", "m"]) == 2
    assert "already running" in capsys.readouterr().err
    assert main(["rollout", "status", "m", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["plan"]["id"] == plan["id"] and status["events"][0]["action"] == "start"
    assert status["readout"]["decision"] == "inconclusive" and status["verdict"] == "hold"
    for bad in (["--steps", "0.5,0.2,1"], ["--steps", "a,b"], ["--soak", "-1"]):
        assert main(["rollout", "start", "m", *bad]) == 2
        assert "Traceback" not in capsys.readouterr().err
    assert main(["canary", "m", "--share", "0.5"]) == 2  # the plan holds the share
    assert "holds the canary share" in capsys.readouterr().err
    assert registry.get_model("m").canary_share == 0.1
    assert main(["rollout", "pause", "m"]) == 0 and main(["rollout", "resume", "m"]) == 0
    assert main(["rollout", "abort", "m", "--reason", "test"]) == 0
    assert "aborted" in capsys.readouterr().out
    assert main(["rollout", "abort", "m"]) == 2


def test_events_are_append_only_in_the_database(staged):
    from sqlalchemy import delete, update
    from sqlalchemy.exc import DBAPIError

    from core.db import transaction
    from core.db.tables import RolloutEventRow

    _start()
    for statement in (update(RolloutEventRow).values(message="edited"), delete(RolloutEventRow)):
        with pytest.raises(DBAPIError, match="append-only"), transaction() as s:
            s.execute(statement)
    assert [e.message for e in rollout.events(rollout.current("m").id)] == [""]
