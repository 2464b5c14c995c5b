"""The model registry: models, versions, stages and the audit timeline.

Every public function is one transaction. Stage changes lock the model's row (``FOR UPDATE``
on Postgres; SQLite's ``BEGIN IMMEDIATE`` serialises writers) and re-read the state inside
that transaction, so two operators racing cannot leave zero or two production versions; the
partial unique indexes of the schema are the last line of defence.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from core.accounts.auth import Actor, require
from core.db import transaction, utcnow
from core.db.tables import (
    STAGES,
    DatasetRow,
    ModelRow,
    StageEventRow,
    StageSettingEventRow,
    VersionRow,
)
from core.errors import AlreadyExists, BadInput, GateFailed, NotFound, StageConflict
from core.registry import artifacts, gates, semver
from core.registry.entities import DatasetRef, ModelInfo, Page, StageChange, StageEvent, VersionInfo

log = logging.getLogger(__name__)
TargetStage = Literal["staging", "production"]
FAMILIES = ("autoencoder", "svd", "transfer", "embeddings", "popularity")
MAX_PAGE_SIZE = 500


# ------------------------------------------------------------------------ conversions


def _model_info(s: Session, row: ModelRow) -> ModelInfo:
    stages = dict(
        s.execute(
            select(VersionRow.stage, VersionRow.version).where(
                VersionRow.model_id == row.id, VersionRow.stage.in_(("production", "staging"))
            )
        )
        .tuples()
        .all()
    )
    latest = s.scalar(
        select(VersionRow.version)
        .where(VersionRow.model_id == row.id)
        .order_by(VersionRow.major.desc(), VersionRow.minor.desc(), VersionRow.patch.desc())
        .limit(1)
    )
    count = s.scalar(select(func.count()).where(VersionRow.model_id == row.id)) or 0
    return ModelInfo(
        row.name,
        row.family,
        row.description,
        row.require_audit,
        dict(row.settings or {}),
        row.canary_share,
        row.stage_revision,
        row.created_at,
        stages.get("production"),
        stages.get("staging"),
        latest,
        count,
    )


def _version_info(s: Session, row: VersionRow, model_name: str | None = None) -> VersionInfo:
    if model_name is None:
        model_name = s.scalar(select(ModelRow.name).where(ModelRow.id == row.model_id))
    dataset = None
    if row.dataset_id is not None:
        d = s.get(DatasetRow, row.dataset_id)
        if d is not None:
            dataset = DatasetRef(d.name, d.version, d.sha256)
    parent = None
    if row.parent_id is not None:
        p = s.execute(
            select(ModelRow.name, VersionRow.version)
            .join(VersionRow)
            .where(VersionRow.id == row.parent_id)
        ).one()
        parent = (p[0], p[1])
    return VersionInfo(
        row.id,
        model_name or "",
        row.version,
        row.stage,
        row.family,
        row.artifact_dir,
        dict(row.files),
        dict(row.meta),
        dict(row.metrics),
        dict(row.hyperparameters),
        dataset,
        parent,
        row.description,
        row.created_by,
        row.created_at,
    )


def _event(row: StageEventRow, model: str, version: str) -> StageEvent:
    return StageEvent(
        row.id,
        model,
        version,
        row.action,
        row.from_stage,
        row.to_stage,
        row.actor,
        row.reason,
        list(row.gates or []),
        row.created_at,
    )


# ------------------------------------------------------------------------ lookups


def _model_row(s: Session, name: str, *, lock: bool = False) -> ModelRow:
    stmt = select(ModelRow).where(ModelRow.name == name)
    if lock:
        stmt = stmt.with_for_update()
    row = s.scalar(stmt)
    if row is None:
        raise NotFound(f"unknown model {name!r}")
    return row


def _version_row(s: Session, model: ModelRow, version: str) -> VersionRow:
    semver.parse(version)
    row = s.scalar(
        select(VersionRow).where(
            VersionRow.model_id == model.id, VersionRow.version == version.removeprefix("v")
        )
    )
    if row is None:
        raise NotFound(f"model {model.name!r} has no version {version!r}")
    return row


def _stage_holder(s: Session, model_id: int, stage: str) -> VersionRow | None:
    return s.scalar(
        select(VersionRow).where(VersionRow.model_id == model_id, VersionRow.stage == stage)
    )


def get_model(name: str) -> ModelInfo:
    with transaction(write=False) as s:
        return _model_info(s, _model_row(s, name))


def list_models() -> list[ModelInfo]:
    with transaction(write=False) as s:
        return [_model_info(s, r) for r in s.scalars(select(ModelRow).order_by(ModelRow.name))]


def get_version(model: str, version: str | None = None, *, stage: str | None = None) -> VersionInfo:
    """A version by number, or the one holding ``stage`` (``production`` when neither given)."""
    with transaction(write=False) as s:
        m = _model_row(s, model)
        if version is not None:
            return _version_info(s, _version_row(s, m, version), m.name)
        stage = stage or "production"
        row = _stage_holder(s, m.id, stage)
        if row is None:
            raise NotFound(f"model {model!r} has no {stage} version")
        return _version_info(s, row, m.name)


def find_version(model: str, stage: str) -> VersionInfo | None:
    try:
        return get_version(model, stage=stage)
    except NotFound:
        return None


def list_versions(
    *,
    model: str | None = None,
    stage: str | None = None,
    family: str | None = None,
    search: str | None = None,
    page: int = 1,
    page_size: int = 50,
) -> Page[VersionInfo]:
    """Newest first, filtered and paginated in SQL (fast with thousands of versions)."""
    if stage is not None and stage not in STAGES:
        raise BadInput(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")
    if page < 1 or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise BadInput(f"page must be ≥ 1 and page size between 1 and {MAX_PAGE_SIZE}")
    with transaction(write=False) as s:
        stmt = select(VersionRow, ModelRow.name).join(ModelRow)
        if model:
            stmt = stmt.where(ModelRow.name == model)
        if stage:
            stmt = stmt.where(VersionRow.stage == stage)
        if family:
            stmt = stmt.where(VersionRow.family == family)
        if search:
            pattern = f"%{search.strip()}%"
            stmt = stmt.where(
                or_(
                    ModelRow.name.ilike(pattern),
                    VersionRow.version.ilike(pattern),
                    VersionRow.description.ilike(pattern),
                    VersionRow.created_by.ilike(pattern),
                )
            )
        total = s.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        rows = s.execute(
            stmt.order_by(VersionRow.created_at.desc(), VersionRow.id.desc())
            .offset((page - 1) * page_size)
            .limit(page_size)
        ).all()
        return Page([_version_info(s, r[0], r[1]) for r in rows], total, page, page_size)


# ------------------------------------------------------------------------ models


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
    _check_name(name)
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
        return _model_info(s, row)


def _check_name(name: str) -> None:
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
        row = _model_row(s, name, lock=True)
        if require_audit is not None:
            _set_audit_requirement(s, row, bool(require_audit), actor, reason)
        if settings is not None:
            row.settings = {**(row.settings or {}), **dict(settings)}
        if canary_share is not None:
            row.canary_share = canary_share
        if description is not None:
            row.description = description
        s.flush()
        return _model_info(s, row)


@dataclass(frozen=True)
class SettingEvent:
    """One change of a stage-level setting: who, when, from what to what, and why."""

    id: int
    model: str
    stage: str
    setting: str
    old_value: Any
    new_value: Any
    actor: str
    reason: str
    created_at: dt.datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "stage": self.stage,
            "setting": self.setting,
            "old_value": self.old_value,
            "new_value": self.new_value,
            "actor": self.actor,
            "reason": self.reason,
            "created_at": self.created_at.isoformat(),
        }


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
        row = _model_row(s, model, lock=True)
        _set_audit_requirement(s, row, bool(required), actor, reason)
        s.flush()
        return _model_info(s, row)


def setting_events(model: str) -> list[SettingEvent]:
    """Changes of the model's stage-level settings, newest first."""
    with transaction(write=False) as s:
        m = _model_row(s, model)
        rows = s.scalars(
            select(StageSettingEventRow)
            .where(StageSettingEventRow.model_id == m.id)
            .order_by(StageSettingEventRow.id.desc())
        ).all()
        return [
            SettingEvent(
                r.id,
                m.name,
                r.stage,
                r.setting,
                r.old_value,
                r.new_value,
                r.actor,
                r.reason,
                r.created_at,
            )
            for r in rows
        ]


# ------------------------------------------------------------------------ versions


def register_version(
    *,
    actor: Actor,
    model: str,
    family: str,
    staged_dir: Path,
    metrics: Mapping[str, Any] | None = None,
    hyperparameters: Mapping[str, Any] | None = None,
    dataset_id: int | None = None,
    parent: tuple[str, str] | None = None,
    description: str = "",
    metadata: Mapping[str, Any] | None = None,
    version: str | None = None,
    bump: semver.Bump = "minor",
) -> VersionInfo:
    """Publish a staged artifact folder as a new ``candidate`` version.

    The folder is moved into ``<family>/v<version>`` and the row is committed only after the
    files are complete; if the commit fails the folder is removed again, so registry and
    artifacts never disagree. The model is created on first use.
    """
    require(actor, "operate", "register model versions")
    _check_name(model)
    if family not in FAMILIES:
        raise BadInput(f"unknown family {family!r}; families are {', '.join(FAMILIES)}")
    if not staged_dir.is_dir():
        raise BadInput(f"staged artifact folder {staged_dir} does not exist")
    published: artifacts.Published | None = None
    try:
        with transaction() as s:
            m = s.scalar(select(ModelRow).where(ModelRow.name == model).with_for_update())
            if m is None:
                m = ModelRow(name=model, family=family, description=description, settings={})
                s.add(m)
                s.flush()
            elif m.family != family and not (m.family == "autoencoder" and family == "transfer"):
                raise BadInput(f"model {model!r} is of family {m.family!r}, not {family!r}")
            parts = _next_version(s, m, version, bump)
            number = semver.fmt(parts)
            dataset = s.get(DatasetRow, dataset_id) if dataset_id is not None else None
            if dataset_id is not None and dataset is None:
                raise NotFound(f"unknown dataset id {dataset_id}")
            parent_row = None
            if parent is not None:
                parent_row = _version_row(s, _model_row(s, parent[0]), parent[1])
            meta = _metadata(
                model,
                number,
                family,
                metrics,
                hyperparameters,
                dataset,
                parent,
                description,
                actor,
                metadata,
            )
            published = artifacts.publish(
                staged_dir,
                relative_dir=artifacts.version_dir_name(family, model, number),
                metadata=meta,
            )
            row = VersionRow(
                model_id=m.id,
                version=number,
                major=parts[0],
                minor=parts[1],
                patch=parts[2],
                stage="candidate",
                family=family,
                artifact_dir=published.relative_dir,
                files=published.files,
                meta={**meta, "files": published.files},
                metrics=dict(metrics or {}),
                hyperparameters=dict(hyperparameters or {}),
                dataset_id=dataset_id,
                parent_id=None if parent_row is None else parent_row.id,
                description=description,
                created_by=actor.username,
            )
            s.add(row)
            s.flush()
            s.add(
                StageEventRow(
                    model_id=m.id,
                    version_id=row.id,
                    action="register",
                    from_stage=None,
                    to_stage="candidate",
                    actor=actor.username,
                    reason=description,
                    gates=[],
                )
            )
            info = _version_info(s, row, m.name)
    except IntegrityError as exc:
        if published is not None:
            artifacts.unpublish(published.relative_dir)
        raise AlreadyExists(
            f"version of model {model!r} was registered concurrently; retry"
        ) from exc
    except BaseException:
        if published is not None:
            artifacts.unpublish(published.relative_dir)
        raise
    log.info("registered %s", info.label)
    return info


def _next_version(
    s: Session, m: ModelRow, version: str | None, bump: semver.Bump
) -> tuple[int, int, int]:
    existing = (
        s.execute(
            select(VersionRow.major, VersionRow.minor, VersionRow.patch).where(
                VersionRow.model_id == m.id
            )
        )
        .tuples()
        .all()
    )
    if version is not None:
        parts = semver.parse(version)
        if parts in existing:
            raise AlreadyExists(f"model {m.name!r} already has version {semver.fmt(parts)}")
        return parts
    return semver.bump(max(existing) if existing else None, bump)


def _metadata(
    model: str,
    version: str,
    family: str,
    metrics: Mapping[str, Any] | None,
    hyperparameters: Mapping[str, Any] | None,
    dataset: DatasetRow | None,
    parent: tuple[str, str] | None,
    description: str,
    actor: Actor,
    extra: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """``metadata.json``: the Planwise format plus lineage and provenance."""
    meta: dict[str, Any] = {
        "model_name": model,
        "version": version,
        "family": family,
        "created_at": utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "created_by": actor.username,
        "python_version": artifacts.python_version(),
        "performance": dict(metrics or {}),
        "hyperparameters": dict(hyperparameters or {}),
        "training_dataset": None if dataset is None else dataset.source_name,
        "dataset": None
        if dataset is None
        else {"name": dataset.name, "version": dataset.version, "sha256": dataset.sha256},
        "parent_version": None if parent is None else {"model": parent[0], "version": parent[1]},
        "code_revision": artifacts.code_revision(),
        "libraries": artifacts.library_versions(),
        "description": description,
    }
    extra = dict(extra or {})
    libraries = {**meta["libraries"], **extra.pop("libraries", {})}
    meta.update(extra)
    meta["libraries"] = libraries
    return meta


def verified_dir(version: VersionInfo) -> Path:
    """The version's folder, after every file matched its recorded SHA-256."""
    return artifacts.verify(version.artifact_dir, version.files)


# ------------------------------------------------------------------------ stage changes


def _check_revision(m: ModelRow, expected_revision: int | None) -> None:
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
        m = _model_row(s, model)
        v = _version_row(s, m, version)
        _check_move(model, v, stage)  # no gate is shown for a move that cannot happen
        prod = _stage_holder(s, m.id, "production")
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
    an interface insist that nothing changed since the user looked.
    """
    require(actor, "operate", "promote versions")
    if stage not in ("staging", "production"):
        raise BadInput(f"can only promote to staging or production, not {stage!r}")
    with transaction() as s:
        m = _model_row(s, model, lock=True)
        _check_revision(m, expected_revision)
        v = _version_row(s, m, version)
        if expected_stage is not None and v.stage != expected_stage:
            raise StageConflict(
                f"{model}@{v.version} is now {v.stage}, not {expected_stage}; "
                "someone changed it meanwhile"
            )
        _check_move(model, v, stage)
        prod = _stage_holder(s, m.id, "production")
        results = gates.evaluate(s, m, v, stage, prod, actor)
        gate_dicts = [g.as_dict() for g in results]
        failed = [g for g in results if not g.passed]
        if failed:
            raise GateFailed(
                f"promotion of {model}@{v.version} to {stage} refused by "
                + "; ".join(f"{g.name} gate: {g.detail}" for g in failed),
                results,
            )
        return _move(
            s, m, v, stage, action="promote", actor=actor, reason=reason, gate_dicts=gate_dicts
        )


def _move(
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
    displaced_event = None
    holder = _stage_holder(s, m.id, stage)
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
        displaced_event = _event(row, m.name, holder.version)
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
    return StageChange(_event(ev, m.name, v.version), gate_dicts, displaced_event)


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
    current = _stage_holder(s, m.id, "production")
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
        return _plan(s, _model_row(s, model))[0]


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
        m = _model_row(s, model, lock=True)
        _check_revision(m, expected_revision)
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
        current = _stage_holder(s, m.id, "production")
        assert current is not None  # plan.current is not None
        target = rows[to_version]
        integrity = gates.integrity_gate(target)
        if not integrity.passed:
            raise GateFailed(
                f"rollback of {model} to {target.version} refused: {integrity.detail}",
                [integrity],
            )
        return _move(
            s,
            m,
            target,
            "production",
            action="rollback",
            actor=actor,
            reason=reason or f"rollback from {current.version}",
            gate_dicts=[integrity.as_dict()],
        )


def archive(*, actor: Actor, model: str, version: str, reason: str = "") -> StageEvent:
    require(actor, "operate", "archive versions")
    with transaction() as s:
        m = _model_row(s, model, lock=True)
        v = _version_row(s, m, version)
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
        return _event(ev, m.name, v.version)


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
            stmt = stmt.where(StageEventRow.model_id == _model_row(s, model).id)
        rows = s.execute(stmt.order_by(StageEventRow.id.desc()).limit(limit)).all()
        return [_event(r[0], r[1], r[2]) for r in rows]


def production_at(model: str, when: dt.datetime) -> str | None:
    """The version that was in production at ``when`` (None if none was)."""
    if when.tzinfo is None:
        raise BadInput("give the time with a time zone, e.g. 2026-05-01T12:00:00+00:00")
    with transaction(write=False) as s:
        m = _model_row(s, model)
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


def known_artifact_dirs() -> set[str]:
    with transaction(write=False) as s:
        return set(s.scalars(select(VersionRow.artifact_dir)).all())
