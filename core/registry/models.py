"""Models and their settings: create, read, change (the audit requirement with a trace).

A model's ``FAMILIES`` are the kinds of recommender it may be; every version of it keeps its
family (see :func:`core.registry.versions.register_version` for the one exception).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.accounts.auth import Actor, require
from core.db import transaction
from core.db.tables import ModelRow, StageSettingEventRow
from core.errors import AlreadyExists, BadInput
from core.registry.entities import ModelInfo, SettingEvent
from core.registry.family_rules import FAMILIES
from core.registry.lookups import model_info, model_row


def get_model(name: str) -> ModelInfo:
    with transaction(write=False) as s:
        return model_info(s, model_row(s, name))


def list_models() -> list[ModelInfo]:
    with transaction(write=False) as s:
        return [model_info(s, r) for r in s.scalars(select(ModelRow).order_by(ModelRow.name))]


def create_model(
    *,
    actor: Actor,
    name: str,
    family: str,
    description: str = "",
    require_audit: bool = False,
    settings: Mapping[str, Any] | None = None,
) -> ModelInfo:
    require(actor, "operate", "create models")
    check_name(name)
    if family not in FAMILIES:
        raise BadInput(f"unknown family {family!r}; families are {', '.join(FAMILIES)}")
    with transaction() as s:
        if s.scalar(select(ModelRow.id).where(ModelRow.name == name)) is not None:
            raise AlreadyExists(f"model {name!r} already exists")
        row = ModelRow(
            name=name,
            family=family,
            description=description,
            require_audit=require_audit,
            settings=dict(settings or {}),
        )
        s.add(row)
        s.flush()
        return model_info(s, row)


def check_name(name: str) -> None:
    """Refuse a model name that is not letters, digits and ._- (it becomes a folder name)."""
    import re

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}", name or ""):
        raise BadInput(
            f"invalid model name {name!r}: use letters, digits and ._- (at most 128 characters)"
        )


def update_model(
    *,
    actor: Actor,
    name: str,
    require_audit: bool | None = None,
    settings: Mapping[str, Any] | None = None,
    canary_share: float | None = None,
    description: str | None = None,
    reason: str = "",
) -> ModelInfo:
    """Change a model's settings; a change of the audit requirement is audited (see
    :func:`set_audit_requirement`, whose rules apply, ``reason`` included)."""
    require(actor, "operate", "change model settings")
    if canary_share is not None and not 0.0 <= canary_share <= 1.0:
        raise BadInput(f"canary share must be between 0 and 1, got {canary_share}")
    with transaction() as s:
        row = model_row(s, name, lock=True)
        if require_audit is not None:
            _set_audit_requirement(s, row, bool(require_audit), actor, reason)
        if settings is not None:
            row.settings = {**(row.settings or {}), **dict(settings)}
        if canary_share is not None:
            row.canary_share = canary_share
        if description is not None:
            row.description = description
        s.flush()
        return model_info(s, row)


def _set_audit_requirement(
    s: Session, row: ModelRow, required: bool, actor: Actor, reason: str
) -> None:
    """Production's audit requirement: changed only with a trace (append-only events).

    Switching it off weakens a control, so it needs a reason; switching it on does not.
    """
    reason = (reason or "").strip()
    if bool(row.require_audit) == required:
        return
    if not required and not reason:
        raise BadInput(
            f"give a reason for no longer requiring an audit of {row.name!r}; "
            "it goes into the audit log"
        )
    s.add(
        StageSettingEventRow(
            model_id=row.id,
            stage="production",
            setting="require_audit",
            old_value=bool(row.require_audit),
            new_value=required,
            actor=actor.username,
            reason=reason,
        )
    )
    row.require_audit = required


def set_audit_requirement(
    *, actor: Actor, model: str, required: bool, reason: str = ""
) -> ModelInfo:
    """Require (or stop requiring) an approving audit verdict before production.

    Operators and admins only; every change writes an append-only event with who, when and
    why, so the control cannot be switched off without a trace.
    """
    require(actor, "operate", "change the audit requirement")
    with transaction() as s:
        row = model_row(s, model, lock=True)
        _set_audit_requirement(s, row, bool(required), actor, reason)
        s.flush()
        return model_info(s, row)


def setting_events(model: str) -> list[SettingEvent]:
    """Changes of the model's stage-level settings, newest first."""
    with transaction(write=False) as s:
        m = model_row(s, model)
        rows = s.scalars(
            select(StageSettingEventRow)
            .where(StageSettingEventRow.model_id == m.id)
            .order_by(StageSettingEventRow.id.desc())
        ).all()
        return [SettingEvent.of(r, model=m.name) for r in rows]
