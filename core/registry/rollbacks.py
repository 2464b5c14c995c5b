"""Rollback: the one rule of where production returns to, and the rollback itself.

:func:`rollback_plan` is what every interface shows and :func:`rollback` is what it does; both
replay the model's stage events through :func:`_plan`, so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.accounts.auth import Actor, require
from core.db import transaction
from core.db.tables import ModelRow, StageEventRow, VersionRow
from core.errors import BadInput, GateFailed, StageConflict
from core.registry import gates, semver
from core.registry.entities import StageChange
from core.registry.lookups import model_row, stage_holder
from core.registry.stages import change_stage, check_revision, stated_reason


@dataclass(frozen=True)
class RollbackPlan:
    """Where a rollback of a model would take production now, and why (the one rule).

    ``target`` is the last production version before ``current`` that was never itself rolled
    back from; ``choices`` are every version a rollback may return to, newest first (an
    operator may pick an earlier one explicitly); ``rolled_back_from`` are the versions a
    rollback never returns to. ``target`` is None when there is nowhere to go (``why`` says).
    """

    model: str
    current: str | None
    target: str | None
    why: str
    choices: tuple[str, ...] = ()
    rolled_back_from: tuple[str, ...] = ()
    stage_revision: int = 0


def _plan(s: Session, m: ModelRow) -> tuple[RollbackPlan, dict[str, VersionRow]]:
    """Replay the model's stage events: who held production, in order, and who was rolled back.

    A rollback's events are written as "displace" (the version leaving production) then
    "rollback" (the one returning), so the version rolled back from is the one that left
    production just before the rollback event.
    """
    events = s.execute(
        select(
            StageEventRow.action,
            StageEventRow.from_stage,
            StageEventRow.to_stage,
            StageEventRow.version_id,
        )
        .where(StageEventRow.model_id == m.id)
        .order_by(StageEventRow.id)
    ).all()
    holder: int | None = None
    last_out: int | None = None
    entered: list[int] = []
    rolled_back: set[int] = set()
    for action, from_stage, to_stage, version_id in events:
        if to_stage == "production":
            if action == "rollback":
                left = holder if holder is not None else last_out
                if left is not None and left != version_id:
                    rolled_back.add(left)
            holder = version_id
            entered.append(version_id)
        elif from_stage == "production" and version_id == holder:
            last_out, holder = holder, None
    current = stage_holder(s, m.id, "production")
    ids = set(entered) | rolled_back
    rows = (
        {r.id: r for r in s.scalars(select(VersionRow).where(VersionRow.id.in_(ids))).all()}
        if ids
        else {}
    )
    names = {vid: rows[vid].version for vid in rows}
    choices: list[str] = []
    skipped: list[str] = []
    for vid in reversed(entered):
        if current is not None and vid == current.id:
            continue
        if vid in rolled_back:
            if names[vid] not in skipped:
                skipped.append(names[vid])
            continue
        if names[vid] not in choices:
            choices.append(names[vid])
    rolled_back_names = tuple(sorted({names[v] for v in rolled_back}, key=semver.parse))
    by_name = {r.version: r for r in rows.values()}
    if current is None:
        plan = RollbackPlan(
            m.name,
            None,
            None,
            f"model {m.name!r} has no production version to roll back",
            (),
            rolled_back_names,
            m.stage_revision,
        )
        return plan, by_name
    if not choices:
        why = f"model {m.name!r} has no earlier production version to return to"
        if skipped:
            why += (
                f" ({', '.join(skipped)} {'was' if len(skipped) == 1 else 'were'} rolled back from)"
            )
        plan = RollbackPlan(
            m.name, current.version, None, why, (), rolled_back_names, m.stage_revision
        )
        return plan, by_name
    why = (
        f"{choices[0]} is the last production version before {current.version} "
        "that was not itself rolled back from"
    )
    if skipped:
        why += (
            f"; skipped {', '.join(skipped)}: rolled back from, so a rollback never returns to "
            + ("it" if len(skipped) == 1 else "them")
        )
    plan = RollbackPlan(
        m.name,
        current.version,
        choices[0],
        why,
        tuple(choices),
        rolled_back_names,
        m.stage_revision,
    )
    return plan, by_name


def rollback_plan(model: str) -> RollbackPlan:
    """What :func:`rollback` would do now: from which version, to which one, and why."""
    with transaction(write=False) as s:
        return _plan(s, model_row(s, model))[0]


def rollback(
    *,
    actor: Actor,
    model: str,
    reason: str = "",
    expected_revision: int | None = None,
    expected_from: str | None = None,
    to_version: str | None = None,
) -> StageChange:
    """Return production to the last production version not itself rolled back from.

    ``expected_from`` names the version the caller means to roll back from: when production
    holds another one (someone rolled back or promoted meanwhile, or this is a retry of a
    rollback that already happened) nothing changes and :class:`StageConflict` says why. So a
    retried or doubled rollback can never undo the first one. ``to_version`` picks an earlier
    production version explicitly (one of :attr:`RollbackPlan.choices`).
    """
    require(actor, "operate", "roll back production")
    if expected_from is not None:
        expected_from = semver.fmt(semver.parse(expected_from))
    if to_version is not None:
        to_version = semver.fmt(semver.parse(to_version))
    with transaction() as s:
        m = model_row(s, model, lock=True)
        reason = stated_reason(reason, "rollback")  # once the model is known
        check_revision(m, expected_revision)
        plan, rows = _plan(s, m)
        if expected_from is not None and plan.current != expected_from:
            raise StageConflict(
                f"production of {model} is "
                + (plan.current if plan.current is not None else "empty")
                + f" now, not {expected_from}: someone rolled back or promoted meanwhile; "
                "nothing was rolled back"
            )
        if plan.current is None:
            raise BadInput(plan.why)
        if to_version is None:
            if plan.target is None:
                raise BadInput(plan.why)
            to_version = plan.target
        elif to_version not in plan.choices:
            if to_version == plan.current:
                problem = "is in production now"
            elif to_version in plan.rolled_back_from:
                problem = "was rolled back from; a rollback never returns to it"
            else:
                problem = "was never in production before; promote it instead"
            raise BadInput(f"cannot roll {model} back to {to_version}: it {problem}")
        current = stage_holder(s, m.id, "production")
        assert current is not None  # plan.current is not None
        target = rows[to_version]
        integrity = gates.integrity_gate(target)
        if not integrity.passed:
            raise GateFailed(
                f"rollback of {model} to {target.version} refused: {integrity.detail}",
                [integrity],
            )
        return change_stage(
            s,
            m,
            target,
            "production",
            action="rollback",
            actor=actor,
            reason=reason,
            gate_dicts=[integrity.as_dict()],
        )
