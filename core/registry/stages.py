"""Stage changes: promotion through the gates, archiving, and the timeline of stage events.

Every change locks the model's row (``FOR UPDATE`` on Postgres; SQLite's ``BEGIN IMMEDIATE``
serialises writers) and re-reads the state inside that transaction, so two operators racing
cannot leave zero or two production versions; the partial unique indexes of the schema are
the last line of defence. Rollbacks are :mod:`core.registry.rollbacks`'s.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from core.accounts.auth import Actor, require
from core.db import transaction
from core.db.tables import ModelRow, StageEventRow, VersionRow
from core.errors import BadInput, GateFailed, StageConflict
from core.registry import gates
from core.registry.entities import StageChange, StageEvent
from core.registry.lookups import event_info, model_row, stage_holder, version_row

TargetStage = Literal["staging", "production"]


def stated_reason(reason: str, action: str) -> str:
    """``reason`` without surrounding blanks; refused when empty.

    Every change of what serves goes into the audit log with the words of whoever made it:
    people give theirs on every interface, and the automation states its own (a retraining
    policy, a rollout plan, the demo). ``action`` names the change in the message.
    """
    text = (reason or "").strip()
    if not text:
        raise BadInput(f"give a reason for the {action}; it goes into the audit log")
    return text


def check_revision(m: ModelRow, expected_revision: int | None) -> None:
    """Refuse a change when the model's stages moved on since the caller looked."""
    if expected_revision is not None and m.stage_revision != expected_revision:
        raise StageConflict(
            f"the stages of model {m.name!r} changed since you loaded them (revision "
            f"{expected_revision} → {m.stage_revision}); reload and try again"
        )


def preview_gates(
    model: str, version: str, stage: TargetStage, *, actor: Actor | None = None
) -> list[dict[str, Any]]:
    """The gates a promotion by ``actor`` would face now, with their figures (for a
    confirmation); without an actor, the audit gate cannot judge separation of duties."""
    with transaction(write=False) as s:
        m = model_row(s, model)
        v = version_row(s, m, version)
        _check_move(model, v, stage)  # no gate is shown for a move that cannot happen
        prod = stage_holder(s, m.id, "production")
        return [g.as_dict() for g in gates.evaluate(s, m, v, stage, prod, actor)]


def _check_move(model: str, v: VersionRow, stage: str) -> None:
    """The stage moves a promotion may make, whatever the gates say."""
    if stage not in ("staging", "production"):
        raise BadInput(f"can only promote to staging or production, not {stage!r}")
    if v.stage == stage:
        raise BadInput(f"{model}@{v.version} is already in {stage}")
    if v.stage == "production" and stage == "staging":
        raise BadInput(
            f"{model}@{v.version} is in production; roll back or promote "
            "another version instead of demoting it"
        )


def promote(
    *,
    actor: Actor,
    model: str,
    version: str,
    stage: TargetStage,
    reason: str = "",
    expected_revision: int | None = None,
    expected_stage: str | None = None,
) -> StageChange:
    """Move a version to staging or production through the gates, in one transaction.

    The version that held the stage is archived. ``expected_revision``/``expected_stage`` let
    an interface insist that nothing changed since the user looked. The ``reason`` is required
    (:func:`stated_reason`), as a rollback's is.
    """
    require(actor, "operate", "promote versions")
    if stage not in ("staging", "production"):
        raise BadInput(f"can only promote to staging or production, not {stage!r}")
    with transaction() as s:
        m = model_row(s, model, lock=True)
        check_revision(m, expected_revision)
        v = version_row(s, m, version)
        reason = stated_reason(reason, "promotion")  # once the model and version are known
        if expected_stage is not None and v.stage != expected_stage:
            raise StageConflict(
                f"{model}@{v.version} is now {v.stage}, not {expected_stage}; "
                "someone changed it meanwhile"
            )
        _check_move(model, v, stage)
        prod = stage_holder(s, m.id, "production")
        results = gates.evaluate(s, m, v, stage, prod, actor)
        gate_dicts = [g.as_dict() for g in results]
        failed = [g for g in results if not g.passed]
        if failed:
            raise GateFailed(
                f"promotion of {model}@{v.version} to {stage} refused by "
                + "; ".join(f"{g.name} gate: {g.detail}" for g in failed),
                results,
            )
        return change_stage(
            s, m, v, stage, action="promote", actor=actor, reason=reason, gate_dicts=gate_dicts
        )


def change_stage(
    s: Session,
    m: ModelRow,
    v: VersionRow,
    stage: str,
    *,
    action: str,
    actor: Actor,
    reason: str,
    gate_dicts: list[dict[str, Any]],
) -> StageChange:
    """Move ``v`` into ``stage`` (archiving its holder) and record the events; the caller has
    locked the model and checked the gates."""
    displaced_event = None
    holder = stage_holder(s, m.id, stage)
    if holder is not None and holder.id != v.id:
        holder.stage = "archived"
        s.flush()
        row = StageEventRow(
            model_id=m.id,
            version_id=holder.id,
            action="displace",
            from_stage=stage,
            to_stage="archived",
            actor=actor.username,
            reason=f"replaced by {v.version}",
            gates=[],
        )
        s.add(row)
        s.flush()
        displaced_event = event_info(row, m.name, holder.version)
    from_stage = v.stage
    v.stage = stage
    m.stage_revision += 1
    ev = StageEventRow(
        model_id=m.id,
        version_id=v.id,
        action=action,
        from_stage=from_stage,
        to_stage=stage,
        actor=actor.username,
        reason=reason,
        gates=gate_dicts,
    )
    s.add(ev)
    try:
        s.flush()
    except IntegrityError as exc:
        raise StageConflict(
            f"another change to {m.name!r} {stage} happened at the same time; reload and try again"
        ) from exc
    return StageChange(event_info(ev, m.name, v.version), gate_dicts, displaced_event)


def archive(*, actor: Actor, model: str, version: str, reason: str = "") -> StageEvent:
    require(actor, "operate", "archive versions")
    with transaction() as s:
        m = model_row(s, model, lock=True)
        v = version_row(s, m, version)
        if v.stage == "production":
            raise BadInput(
                f"{model}@{v.version} is in production; roll back or promote another version first"
            )
        if v.stage == "archived":
            raise BadInput(f"{model}@{v.version} is already archived")
        ev = StageEventRow(
            model_id=m.id,
            version_id=v.id,
            action="archive",
            from_stage=v.stage,
            to_stage="archived",
            actor=actor.username,
            reason=reason,
            gates=[],
        )
        v.stage = "archived"
        m.stage_revision += 1
        s.add(ev)
        s.flush()
        return event_info(ev, m.name, v.version)


# ------------------------------------------------------------------------ timeline


def timeline(model: str | None = None, *, limit: int = 500) -> list[StageEvent]:
    """Stage events, newest first."""
    with transaction(write=False) as s:
        mv = aliased(VersionRow)
        stmt = (
            select(StageEventRow, ModelRow.name, mv.version)
            .join(ModelRow, ModelRow.id == StageEventRow.model_id)
            .join(mv, mv.id == StageEventRow.version_id)
        )
        if model is not None:
            stmt = stmt.where(StageEventRow.model_id == model_row(s, model).id)
        rows = s.execute(stmt.order_by(StageEventRow.id.desc()).limit(limit)).all()
        return [event_info(r[0], r[1], r[2]) for r in rows]


def production_at(model: str, when: dt.datetime) -> str | None:
    """The version that was in production at ``when`` (None if none was)."""
    if when.tzinfo is None:
        raise BadInput("give the time with a time zone, e.g. 2026-05-01T12:00:00+00:00")
    with transaction(write=False) as s:
        m = model_row(s, model)
        rows = s.execute(
            select(StageEventRow.from_stage, StageEventRow.to_stage, VersionRow.version)
            .join(VersionRow, VersionRow.id == StageEventRow.version_id)
            .where(StageEventRow.model_id == m.id, StageEventRow.created_at <= when)
            .order_by(StageEventRow.id)
        ).all()
    current: str | None = None
    for from_stage, to_stage, version in rows:
        if to_stage == "production":
            current = version
        elif from_stage == "production" and current == version:
            current = None
    return current


def production_history(model: str) -> list[tuple[str, dt.datetime, dt.datetime | None]]:
    """(version, from, until) intervals of production, oldest first, for timeline charts."""
    events = list(reversed(timeline(model, limit=100_000)))
    spans: list[tuple[str, dt.datetime, dt.datetime | None]] = []
    for ev in events:
        if ev.to_stage == "production":
            if spans and spans[-1][2] is None:
                spans[-1] = (spans[-1][0], spans[-1][1], ev.created_at)
            spans.append((ev.version, ev.created_at, None))
        elif (
            ev.from_stage == "production"
            and spans
            and spans[-1][2] is None
            and spans[-1][0] == ev.version
        ):
            spans[-1] = (spans[-1][0], spans[-1][1], ev.created_at)
    return spans
