"""The rollout job: one look at every running plan, and the step it takes on the evidence.

The worker's leader calls :func:`tick` every few seconds. For each running plan the A/B
readout (:mod:`core.rollout.ab`) over the plan's lifetime decides: roll back at once when a
blocking guardrail is broken with confidence (and raise a ``rollout`` alert), advance one step
when every blocking guardrail holds and the step has soaked and served enough, promote after
the last step, or hold. Each action is taken at the revision the plan was judged on
(:mod:`core.rollout.control` keeps the plans).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from core import registry
from core.accounts.auth import Actor
from core.db import transaction, utcnow
from core.db.tables import RolloutPlanRow
from core.errors import BadInput, CoreError, StageConflict
from core.monitoring import alerts
from core.rollout import ab, ab_counts
from core.rollout.control import (
    LIVE,
    ROLLOUT_ACTOR,
    Plan,
    append_event,
    apply_share,
    canary_requests_in,
    end_plan,
    plan_of,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What one look at a plan did: ``advanced``, ``completed``, ``rolled_back``, ``held``
    (with why), ``aborted`` (its version left staging) or ``skipped`` (changed meanwhile)."""

    plan_id: int
    model: str
    action: str
    detail: str


def live_plans() -> list[Plan]:
    with transaction(write=False) as s:
        rows = s.scalars(
            select(RolloutPlanRow).where(RolloutPlanRow.active_model.is_not(None))
        ).all()
        return [plan_of(r) for r in rows]


def tick(*, now: dt.datetime | None = None) -> list[Outcome]:
    """One look at every running plan (the worker's ``planwise:rollout`` job). A failure of
    one plan is logged and does not stop the others."""
    out = []
    for plan in live_plans():
        if plan.status != "running":
            continue
        try:
            out.append(evaluate(plan, now=now))
        except CoreError as exc:
            log.warning("rollout #%s of %s: %s", plan.id, plan.model, exc)
            out.append(Outcome(plan.id, plan.model, "held", str(exc)))
    return out


def figures_of(readout: ab.Readout) -> dict[str, Any]:
    """What an event keeps of the readout it was decided on."""
    data = readout.as_json()
    return {
        "production": data["production"],
        "canary": data["canary"] | {"error_rate": readout.canary.error_rate},
        "difference": {"ctr": data["difference"]["ctr"], "ci": data["difference"]["ci"]},
        "decision": readout.decision,
        "guardrails": data["guardrails"],
    }


def evaluate(plan: Plan, *, now: dt.datetime | None = None) -> Outcome:
    """Decide on one running plan from its evidence, and act (see the module's docstring)."""
    now = now or utcnow()
    info = registry.get_model(plan.model)
    if info.production == plan.version:  # promoted, and the end not yet recorded
        return _finish(plan, "completed", ROLLOUT_ACTOR, {}, "promoted to production", 0.0)
    if info.staging != plan.version:
        return _finish(
            plan, "aborted", ROLLOUT_ACTOR, {},
            f"{plan.model}@{plan.version} is no longer the staging version", 0.0,
        )  # fmt: skip
    readout = ab.readout(
        plan.model,
        since=plan.created_at,
        until=now,
        thresholds={k: v for k, v in plan.thresholds.items() if k in ab.DEFAULTS},
        canary_version=plan.version,
    )
    figures = figures_of(readout)
    verdict = readout.verdict
    if verdict == "failed":
        broken = [g for g in readout.guardrails if g.blocking and g.status == "failed"]
        message = "guardrail broken: " + "; ".join(
            f"{g.name} {g.value if g.value is None else round(g.value, 4)} "
            f"(limit {g.threshold}): {g.detail}"
            for g in broken
        )
        return _finish(plan, "rolled_back", ROLLOUT_ACTOR, figures, message, 0.0, alert=broken)
    if verdict == "hold":
        waiting = [g.name for g in readout.guardrails if g.blocking and g.status != "ok"]
        return Outcome(plan.id, plan.model, "held", f"guardrails not yet judged: {waiting}")
    soaked = (now - plan.step_started_at).total_seconds()
    served = ab_counts.canary_requests(plan.model, plan.version) - plan.step_base_requests
    if soaked < plan.min_soak_s or served < plan.min_requests:
        return Outcome(
            plan.id,
            plan.model,
            "held",
            f"step {plan.step + 1}: soaked {soaked:.0f} of {plan.min_soak_s:.0f} s, "
            f"{served} of {plan.min_requests} canary requests",
        )
    figures["step"] = {"soaked_s": soaked, "canary_requests": served}
    if plan.step + 1 < len(plan.steps):
        return _advance(plan, figures, now)
    if plan.thresholds.get("require_better") and readout.decision != "better":
        return Outcome(plan.id, plan.model, "held", "waiting for the canary to be shown better")
    try:
        registry.promote(
            actor=ROLLOUT_ACTOR,
            model=plan.model,
            version=plan.version,
            stage="production",
            expected_stage="staging",
            reason=f"rollout #{plan.id} completed: decision {readout.decision}, "
            f"difference {readout.difference:+.4f} CI [{readout.ci[0]:+.4f}, {readout.ci[1]:+.4f}]",
        )
    except StageConflict:
        if registry.get_model(plan.model).production != plan.version:
            raise
    except BadInput as exc:  # a gate refused the promotion: the canary goes back to 0
        return _finish(
            plan, "rolled_back", ROLLOUT_ACTOR, figures, f"promotion refused: {exc}", 0.0,
            alert=[],
        )  # fmt: skip
    return _finish(plan, "completed", ROLLOUT_ACTOR, figures, "promoted to production", 0.0)


def _advance(plan: Plan, figures: dict[str, Any], now: dt.datetime) -> Outcome:
    with transaction() as s:
        row = s.scalar(select(RolloutPlanRow).where(RolloutPlanRow.id == plan.id).with_for_update())
        if row is None or row.status != "running" or row.revision != plan.revision:
            return Outcome(plan.id, plan.model, "skipped", "the plan changed meanwhile")
        row.step += 1
        row.revision += 1
        row.step_started_at = now
        row.updated_at = now
        row.step_base_requests = canary_requests_in(s, row.model, row.version)
        apply_share(s, row.model, row.steps[row.step])
        append_event(s, row, ROLLOUT_ACTOR, "advance", figures, f"to {row.steps[row.step]:.0%}")
        share = row.steps[row.step]
    log.info("rollout #%s of %s advanced to %.0f%%", plan.id, plan.model, 100 * share)
    return Outcome(plan.id, plan.model, "advanced", f"canary share {share}")


def _finish(
    plan: Plan,
    status: str,
    actor: Actor,
    figures: dict[str, Any],
    message: str,
    share: float,
    *,
    alert: list[ab.Guardrail] | None = None,
) -> Outcome:
    """End a plan at the revision it was judged on; with ``alert``, raise a ``rollout`` alert
    in the same transaction (its webhook is called once committed)."""
    raised = None
    with transaction() as s:
        row = s.scalar(select(RolloutPlanRow).where(RolloutPlanRow.id == plan.id).with_for_update())
        if row is None or row.status not in LIVE or row.revision != plan.revision:
            return Outcome(plan.id, plan.model, "skipped", "the plan changed meanwhile")
        end_plan(row, status, message)
        if status != "completed" or share == 0.0:
            apply_share(s, row.model, share)
        append_event(
            s,
            row,
            actor,
            {"rolled_back": "rollback", "completed": "complete"}.get(status, "abort"),
            figures,
            message,
        )
        if alert is not None:
            first = alert[0] if alert else None
            raised = alerts.raise_in(
                s,
                model=row.model,
                version=row.version,
                condition=alerts.Condition(
                    "rollout",
                    f"rollout #{row.id}",
                    float(first.value) if first is not None and first.value is not None else 0.0,
                    float(first.threshold)
                    if first is not None and first.threshold is not None
                    else 0.0,
                    f"rollout #{row.id} of {row.model}@{row.version} rolled back: {message}",
                    "critical",
                ),
            )
    if raised is not None:
        alerts.notify(raised)
    log.warning("rollout #%s of %s %s: %s", plan.id, plan.model, status, message)
    action = {"rolled_back": "rolled_back", "completed": "completed"}.get(status, "aborted")
    return Outcome(plan.id, plan.model, action, message)
