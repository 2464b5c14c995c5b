"""Reading the registry's rows inside a transaction: find them, and turn them into values.

Shared by the modules of the package (models, versions, stages, rollback); callers outside
``core.registry`` use the public functions of the package instead, which return values only.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.db.tables import DatasetRow, ModelRow, StageEventRow, VersionRow
from core.errors import NotFound
from core.registry import semver
from core.registry.entities import DatasetRef, ModelInfo, StageEvent, VersionInfo


def model_info(s: Session, row: ModelRow) -> ModelInfo:
    stages = {
        stage: version
        for stage, version in s.execute(
            select(VersionRow.stage, VersionRow.version).where(
                VersionRow.model_id == row.id, VersionRow.stage.in_(("production", "staging"))
            )
        )
    }
    latest = s.scalar(
        select(VersionRow.version)
        .where(VersionRow.model_id == row.id)
        .order_by(VersionRow.major.desc(), VersionRow.minor.desc(), VersionRow.patch.desc())
        .limit(1)
    )
    count = s.scalar(select(func.count()).where(VersionRow.model_id == row.id)) or 0
    return ModelInfo.of(
        row,
        settings=dict(row.settings or {}),
        production=stages.get("production"),
        staging=stages.get("staging"),
        latest=latest,
        version_count=count,
    )


def version_info(s: Session, row: VersionRow, model_name: str | None = None) -> VersionInfo:
    if model_name is None:
        model_name = s.scalar(select(ModelRow.name).where(ModelRow.id == row.model_id))
    dataset = None
    if row.dataset_id is not None:
        d = s.get(DatasetRow, row.dataset_id)
        if d is not None:
            dataset = DatasetRef.of(d)
    parent = None
    if row.parent_id is not None:
        p = s.execute(
            select(ModelRow.name, VersionRow.version)
            .join(VersionRow)
            .where(VersionRow.id == row.parent_id)
        ).one()
        parent = (p[0], p[1])
    return VersionInfo.of(
        row, model=model_name or "", metadata=dict(row.meta), dataset=dataset, parent=parent
    )


def event_info(row: StageEventRow, model: str, version: str) -> StageEvent:
    return StageEvent.of(row, model=model, version=version, gates=list(row.gates or []))


def model_row(s: Session, name: str, *, lock: bool = False) -> ModelRow:
    stmt = select(ModelRow).where(ModelRow.name == name)
    if lock:
        stmt = stmt.with_for_update()
    row = s.scalar(stmt)
    if row is None:
        raise NotFound(f"unknown model {name!r}")
    return row


def version_row(s: Session, model: ModelRow, version: str) -> VersionRow:
    semver.parse(version)
    row = s.scalar(
        select(VersionRow).where(
            VersionRow.model_id == model.id, VersionRow.version == version.removeprefix("v")
        )
    )
    if row is None:
        raise NotFound(f"model {model.name!r} has no version {version!r}")
    return row


def stage_holder(s: Session, model_id: int, stage: str) -> VersionRow | None:
    return s.scalar(
        select(VersionRow).where(VersionRow.model_id == model_id, VersionRow.stage == stage)
    )
