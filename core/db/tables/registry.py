"""ModelRow, DatasetRow, VersionRow and the stage history: the registry's tables."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db.engine import Base, UTCDateTime, utcnow

STAGES = ("candidate", "staging", "production", "archived")


class ModelRow(Base):
    __tablename__ = "models"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    family: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text, default="")
    require_audit: Mapped[bool] = mapped_column(Boolean, default=False)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    canary_share: Mapped[float] = mapped_column(Float, default=0.0)
    # Bumped by every stage change; a caller that saw revision N may insist on it.
    stage_revision: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (
        CheckConstraint("canary_share >= 0 AND canary_share <= 1", name="ck_models_canary"),
    )


class DatasetRow(Base):
    __tablename__ = "datasets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    source_sha256: Mapped[str] = mapped_column(String(64))
    source_name: Mapped[str] = mapped_column(String(255))
    rows: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(1024))
    stats: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))
    __table_args__ = (UniqueConstraint("name", "version", name="uq_datasets_name_version"),)


class VersionRow(Base):
    __tablename__ = "model_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="RESTRICT"))
    version: Mapped[str] = mapped_column(String(32))
    major: Mapped[int] = mapped_column(Integer)
    minor: Mapped[int] = mapped_column(Integer)
    patch: Mapped[int] = mapped_column(Integer)
    stage: Mapped[str] = mapped_column(String(16), default="candidate")
    family: Mapped[str] = mapped_column(String(32))
    artifact_dir: Mapped[str] = mapped_column(String(1024))
    files: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    hyperparameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id"), nullable=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"), nullable=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (
        UniqueConstraint("model_id", "version", name="uq_versions_model_version"),
        CheckConstraint(f"stage IN {STAGES}", name="ck_versions_stage"),
        # The database itself guarantees one production and one staging version per model.
        Index(
            "uq_one_production",
            "model_id",
            unique=True,
            sqlite_where=text("stage = 'production'"),
            postgresql_where=text("stage = 'production'"),
        ),
        Index(
            "uq_one_staging",
            "model_id",
            unique=True,
            sqlite_where=text("stage = 'staging'"),
            postgresql_where=text("stage = 'staging'"),
        ),
        Index("ix_versions_model_created", "model_id", "created_at"),
    )


class StageEventRow(Base):
    """The audit log. Append-only: triggers in the migration refuse UPDATE and DELETE."""

    __tablename__ = "stage_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    action: Mapped[str] = mapped_column(String(16))
    from_stage: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_stage: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="")
    gates: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (Index("ix_stage_events_model", "model_id", "id"),)


class AuditVerdictRow(Base):
    """Auditors' verdicts. Append-only: triggers (migration 0006) refuse UPDATE and DELETE."""

    __tablename__ = "audit_verdicts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    auditor: Mapped[str] = mapped_column(String(64))
    verdict: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str] = mapped_column(Text, default="")
    sample: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (
        CheckConstraint("verdict IN ('approve', 'reject')", name="ck_verdict"),
        Index("ix_audit_verdicts_version", "version_id", "id"),
    )


class StageSettingEventRow(Base):
    """Who changed a stage-level setting of a model (e.g. production's audit requirement), when
    and why. Append-only: triggers (migration 0006) refuse UPDATE and DELETE."""

    __tablename__ = "stage_setting_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    stage: Mapped[str] = mapped_column(String(16))
    setting: Mapped[str] = mapped_column(String(64))
    old_value: Mapped[Any] = mapped_column(JSON, nullable=True)
    new_value: Mapped[Any] = mapped_column(JSON, nullable=True)
    actor: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (Index("ix_stage_setting_events_model", "model_id", "id"),)
