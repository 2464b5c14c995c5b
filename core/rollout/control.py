"""Rollout plans as operators see them: starting one, setting the canary share by hand,
pausing, resuming and aborting, and reading plans and their events.

Every change is one transaction that locks the plan row and checks the revision its decision
was made on, and appends an event. The worker's side, stepping running plans on evidence, is
:mod:`core.rollout.stepping`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import registry
from core.accounts.auth import Actor, require
from core.db import transaction, utcnow
from core.db.tables import ModelRow, RolloutEventRow, RolloutPlanRow
from core.errors import AlreadyExists, BadInput, NotFound, StageConflict
from core.rollout import ab, ab_counts

LIVE = ("running", "paused")
STATUSES = (*LIVE, "aborted", "rolled_back", "completed")
DEFAULT_STEPS = (0.05, 0.25, 0.5, 1.0)
ROLLOUT_ACTOR = Actor("worker:rollout", "operator")
MAX_STEPS = 20


@dataclass(frozen=True)
class Event:
    id: int
    plan_id: int
    ts: dt.datetime
    actor: str
    action: str
    step: int
    share: float
    figures: dict[str, Any]
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "ts": self.ts.isoformat()}


@dataclass(frozen=True)
class Plan:
    """A rollout plan as callers see it (``step`` indexes ``steps``)."""

    id: int
    model: str
    version: str
    steps: list[float]
    min_soak_s: float
    min_requests: int
    thresholds: dict[str, Any]
    status: str
    step: int
    step_started_at: dt.datetime
    step_base_requests: int
    revision: int
    created_at: dt.datetime
    created_by: str
    updated_at: dt.datetime
    message: str

    @property
    def share(self) -> float:
        """The canary share the plan holds now (0 once it ended)."""
        return self.steps[self.step] if self.status in LIVE else 0.0

    @property
    def live(self) -> bool:
        return self.status in LIVE

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        for key in ("step_started_at", "created_at", "updated_at"):
            out[key] = out[key].isoformat()
        out["share"] = self.share
        return out


def plan_of(row: RolloutPlanRow) -> Plan:
    return Plan(
        row.id, row.model, row.version, [float(v) for v in row.steps], row.min_soak_s,
        row.min_requests, dict(row.thresholds or {}), row.status, row.step, row.step_started_at,
        row.step_base_requests, row.revision, row.created_at, row.created_by, row.updated_at,
        row.message,
    )  # fmt: skip


def _event_of(row: RolloutEventRow) -> Event:
    return Event(
        row.id, row.plan_id, row.ts, row.actor, row.action, row.step, row.share,
        dict(row.figures or {}), row.message,
    )  # fmt: skip


def check_steps(steps: Sequence[float]) -> list[float]:
    """Shares strictly rising within (0, 1] and ending at 1 (the version takes all traffic
    before it is promoted)."""
    values = [float(v) for v in steps]
    if not values or len(values) > MAX_STEPS:
        raise BadInput(f"a plan needs 1 to {MAX_STEPS} steps, got {len(values)}")
    if any(not math.isfinite(v) or not 0 < v <= 1 for v in values):
        raise BadInput(f"every step must be a share in (0, 1], got {values}")
    if any(b <= a for a, b in zip(values, values[1:], strict=False)):
        raise BadInput(f"steps must rise, got {values}")
    if values[-1] != 1.0:
        raise BadInput(f"the last step must be 1.0 (all traffic), got {values[-1]}")
    return values


def append_event(
    s: Session,
    row: RolloutPlanRow,
    actor: Actor,
    action: str,
    figures: Mapping[str, Any],
    message: str,
) -> None:
    s.add(
        RolloutEventRow(
            plan_id=row.id,
            model=row.model,
            version=row.version,
            ts=utcnow(),
            actor=actor.username,
            action=action,
            step=row.step,
            share=row.steps[row.step] if row.status in LIVE else 0.0,
            figures=dict(figures),
            message=message,
        )
    )


def apply_share(s: Session, model: str, share: float) -> None:
    """The canary share, in the plan's transaction (the registry's own column and check)."""
    s.execute(update(ModelRow).where(ModelRow.name == model).values(canary_share=share))


def start(
    *,
    actor: Actor,
    model: str,
    version: str | None = None,
    steps: Sequence[float] = DEFAULT_STEPS,
    min_soak_s: float = 300.0,
    min_requests: int = 500,
    thresholds: Mapping[str, Any] | None = None,
    reason: str = "",
) -> Plan:
    """Start a plan for the staging version (``version`` must be it, when given): the first
    step's share is applied in the same transaction."""
    require(actor, "operate", "start a rollout")
    values = check_steps(steps)
    if not (math.isfinite(min_soak_s) and 0 <= min_soak_s <= 30 * 86400):
        raise BadInput(f"min soak must be between 0 and 30 days in seconds, got {min_soak_s}")
    if not 0 <= int(min_requests) <= 100_000_000:
        raise BadInput(f"min requests must be between 0 and 100000000, got {min_requests}")
    limits = {k: v for k, v in dict(thresholds or {}).items() if v is not None}
    unknown = sorted(set(limits) - set(ab.DEFAULTS) - {"require_better"})
    if unknown:
        raise BadInput(f"unknown threshold {unknown[0]!r}; known: {', '.join(ab.DEFAULTS)}")
    ab.check_settings({**ab.DEFAULTS, **{k: float(v) for k, v in limits.items()}})
    info = registry.get_model(model)
    staging = info.staging
    if staging is None:
        raise BadInput(f"{model} has no staging version to roll out")
    if version is not None and version != staging:
        raise BadInput(f"{model}@{version} is not the staging version ({staging})")
    if info.production is None:
        raise BadInput(f"{model} has no production version to compare against")
    base = ab_counts.canary_requests(model, staging)
    now = utcnow()
    try:
        with transaction() as s:
            m = s.scalar(select(ModelRow).where(ModelRow.name == model).with_for_update())
            if m is None:
                raise NotFound(f"no model named {model!r}")
            live = s.scalar(select(RolloutPlanRow).where(RolloutPlanRow.active_model == model))
            if live is not None:
                raise AlreadyExists(
                    f"rollout #{live.id} of {model}@{live.version} is already {live.status}"
                )
            row = RolloutPlanRow(
                model=model, version=staging, active_model=model, steps=values,
                min_soak_s=float(min_soak_s), min_requests=int(min_requests), thresholds=limits,
                status="running", step=0, step_started_at=now, step_base_requests=base,
                revision=0, created_at=now, created_by=actor.username, updated_at=now,
                message=reason,
            )  # fmt: skip
            s.add(row)
            s.flush()
            apply_share(s, model, values[0])
            append_event(s, row, actor, "start", {"steps": values, "thresholds": limits}, reason)
            return plan_of(row)
    except IntegrityError as exc:
        raise AlreadyExists(
            f"a rollout of {model} started at the same time; see its status"
        ) from exc


def set_share(*, actor: Actor, model: str, share: float) -> float:
    """Set the staging version's share by hand (``python -m core canary``): refused while a
    plan is live, since the plan holds the share (pause and resume keep it, abort returns it
    to 0); checked in the same transaction that sets it."""
    require(actor, "operate", "set the canary share")
    if not (isinstance(share, int | float) and math.isfinite(share) and 0 <= share <= 1):
        raise BadInput(f"canary share must be between 0 and 1, got {share}")
    info = registry.get_model(model)
    if info.staging is None and share > 0:
        raise BadInput(f"{model} has no staging version to give a share of traffic")
    with transaction() as s:
        m = s.scalar(select(ModelRow).where(ModelRow.name == model).with_for_update())
        if m is None:
            raise NotFound(f"no model named {model!r}")
        live = s.scalar(select(RolloutPlanRow).where(RolloutPlanRow.active_model == model))
        if live is not None:
            raise StageConflict(
                f"rollout #{live.id} of {model} is {live.status} and holds the canary share; "
                "abort it first (python -m core rollout abort)"
            )
        m.canary_share = float(share)
    return float(share)


def plans(model: str, *, limit: int = 20) -> list[Plan]:
    """The model's plans, newest first."""
    with transaction(write=False) as s:
        rows = s.scalars(
            select(RolloutPlanRow)
            .where(RolloutPlanRow.model == model)
            .order_by(RolloutPlanRow.id.desc())
            .limit(limit)
        ).all()
        return [plan_of(r) for r in rows]


def current(model: str) -> Plan | None:
    """The live plan of ``model``, or else its latest one (None: never rolled out)."""
    found = plans(model, limit=1)
    return found[0] if found else None


def events(plan_id: int) -> list[Event]:
    with transaction(write=False) as s:
        rows = s.scalars(
            select(RolloutEventRow)
            .where(RolloutEventRow.plan_id == plan_id)
            .order_by(RolloutEventRow.id)
        ).all()
        return [_event_of(r) for r in rows]


def _locked(s: Session, model: str, plan_id: int | None) -> RolloutPlanRow:
    q = select(RolloutPlanRow).where(RolloutPlanRow.model == model)
    q = (
        q.where(RolloutPlanRow.id == plan_id)
        if plan_id is not None
        else q.where(RolloutPlanRow.active_model == model)
    )
    row = s.scalar(q.with_for_update())
    if row is None:
        raise NotFound(
            f"no rollout #{plan_id} of {model}" if plan_id else f"{model} has no live rollout"
        )
    return row


def _check_expected(
    row: RolloutPlanRow, expected_step: int | None, expected_revision: int | None
) -> None:
    if expected_step is not None and row.step != expected_step:
        raise StageConflict(
            f"rollout #{row.id} is at step {row.step + 1}, not {expected_step + 1}; "
            "it moved meanwhile"
        )
    if expected_revision is not None and row.revision != expected_revision:
        raise StageConflict(f"rollout #{row.id} changed meanwhile; reload and try again")


def end_plan(row: RolloutPlanRow, status: str, message: str) -> None:
    row.status = status
    row.active_model = None
    row.revision += 1
    row.updated_at = utcnow()
    row.message = message


def pause(*, actor: Actor, model: str, reason: str = "", expected_step: int | None = None) -> Plan:
    """Hold the live plan at its step (its share stays; no step is taken while paused)."""
    require(actor, "operate", "pause a rollout")
    with transaction() as s:
        row = _locked(s, model, None)
        _check_expected(row, expected_step, None)
        if row.status != "running":
            raise BadInput(f"rollout #{row.id} of {model} is {row.status}, not running")
        row.status, row.revision, row.updated_at = "paused", row.revision + 1, utcnow()
        append_event(s, row, actor, "pause", {}, reason)
        return plan_of(row)


def resume(*, actor: Actor, model: str, reason: str = "") -> Plan:
    """Run a paused plan again; its step's soak and request count start afresh."""
    require(actor, "operate", "resume a rollout")
    with transaction() as s:
        row = _locked(s, model, None)
        if row.status != "paused":
            raise BadInput(f"rollout #{row.id} of {model} is {row.status}, not paused")
        row.status, row.revision, row.updated_at = "running", row.revision + 1, utcnow()
        row.step_started_at = utcnow()
        row.step_base_requests = canary_requests_in(s, row.model, row.version)
        apply_share(s, model, row.steps[row.step])
        append_event(s, row, actor, "resume", {}, reason)
        return plan_of(row)


def abort(*, actor: Actor, model: str, reason: str = "", expected_step: int | None = None) -> Plan:
    """End the live plan; the canary share returns to 0 in the same transaction."""
    require(actor, "operate", "abort a rollout")
    with transaction() as s:
        row = _locked(s, model, None)
        _check_expected(row, expected_step, None)
        end_plan(row, "aborted", reason or "aborted by an operator")
        apply_share(s, model, 0.0)
        append_event(s, row, actor, "abort", {}, reason)
        return plan_of(row)


def canary_requests_in(s: Session, model: str, version: str) -> int:
    from sqlalchemy import func

    from core.db.tables import RollupRow

    total = s.scalar(
        select(func.coalesce(func.sum(RollupRow.requests), 0)).where(
            RollupRow.model == model, RollupRow.version == version, RollupRow.variant == "canary"
        )
    )
    return int(total or 0)
