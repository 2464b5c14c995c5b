"""Promotion policies applied after a run (core.retraining.policies)."""

from __future__ import annotations

from core import registry
from core.accounts.auth import SYSTEM
from core.data.datasets import DatasetInfo
from core.retraining import policies, queue, runs
from tests.fixtures.registry import register_dummy


def _run(policy: str, margin: float = 0.0) -> runs.RunInfo:
    queued = queue.queue_retrain("recsys", "manual", actor=SYSTEM, cooldown_s=0).run
    return queued.replace(policy=policy, margin=margin)


def test_policies_move_a_version_only_as_far_as_allowed(backend, dataset: DatasetInfo) -> None:
    prod = register_dummy("recsys", dataset_id=dataset.id, metrics={"ndcg@5": 0.5, "rmse": 1.0})
    registry.promote(
        actor=SYSTEM,
        model="recsys",
        version=prod.version,
        stage="production",
        reason="test promotion",
    )

    new = register_dummy("recsys", metrics={"ndcg@5": 0.52, "rmse": 1.0})
    kept = policies.apply_policy(_run("candidate"), new)
    assert kept.promoted_to is None and "candidate" in kept.note

    not_enough = policies.apply_policy(_run("production", margin=0.05), new)
    assert not_enough.promoted_to is None
    assert not_enough.gates[0]["name"] == "margin" and not not_enough.gates[0]["passed"]
    assert registry.get_version("recsys", new.version).stage == "candidate"

    staged = policies.apply_policy(_run("staging"), new)
    assert staged.promoted_to == "staging", staged.note
    assert registry.get_version("recsys", new.version).stage == "staging"

    better = register_dummy("recsys", metrics={"ndcg@5": 0.6, "rmse": 0.9})
    promoted = policies.apply_policy(_run("production", margin=0.05), better)
    assert promoted.promoted_to == "production", promoted.note
    assert {g["name"] for g in promoted.gates} >= {"margin", "integrity"}
    assert registry.get_version("recsys", stage="production").version == better.version

    registry.update_model(actor=SYSTEM, name="recsys", require_audit=True)
    best = register_dummy("recsys", metrics={"ndcg@5": 0.9, "rmse": 0.5})
    audited = policies.apply_policy(_run("production"), best)
    assert audited.promoted_to is None and "audit approval" in audited.note


def test_production_policy_never_picks_the_first_production_version(
    backend, dataset: DatasetInfo
) -> None:
    v = register_dummy("recsys", dataset_id=dataset.id)
    outcome = policies.apply_policy(_run("production"), v)
    assert outcome.promoted_to is None and "no production version" in outcome.note
