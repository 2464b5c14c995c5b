"""Training runs, schedules and the worker lease: the background work's tables."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db.engine import Base, UTCDateTime, utcnow

TRIGGERS = ("schedule", "drift", "manual")
STATUSES = ("queued", "running", "succeeded", "failed")
POLICIES = ("candidate", "staging", "production")


class RunRow(Base):
    __tablename__ = "training_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(String(128))
    family: Mapped[str] = mapped_column(String(32))
    trigger: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    dataset_ref: Mapped[str] = mapped_column(String(160))
    dataset: Mapped[str | None] = mapped_column(String(160), nullable=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    policy: Mapped[str] = mapped_column(String(16), default="candidate")
    margin: Mapped[float] = mapped_column(Float, default=0.0)
    metric: Mapped[str] = mapped_column(String(64), default="ndcg@5")
    reason: Mapped[str] = mapped_column(Text, default="")
    requested_by: Mapped[str] = mapped_column(String(64))
    scheduled_for: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    queued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    worker_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    gates: Mapped[list[Any]] = mapped_column(JSON, default=list)
    promoted_to: Mapped[str | None] = mapped_column(String(16), nullable=True)
    outcome: Mapped[str] = mapped_column(Text, default="")
    log: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The worker process's highest resident memory while this run trained (MB).
    peak_rss_mb: Mapped[float | None] = mapped_column(Float, nullable=True)
    __table_args__ = (
        CheckConstraint(f"trigger IN {TRIGGERS}", name="ck_runs_trigger"),
        CheckConstraint(f"status IN {STATUSES}", name="ck_runs_status"),
        CheckConstraint(f"policy IN {POLICIES}", name="ck_runs_policy"),
        # One run per fire of a schedule, even if two schedulers fired it.
        UniqueConstraint("model", "scheduled_for", name="uq_runs_model_fire"),
        Index("ix_runs_status", "status", "id"),
        Index("ix_runs_model", "model", "id"),
    )


DEFAULT_METRIC = "ndcg@5"
DEFAULT_DRIFT_COOLDOWN_S = 6 * 3600


class ScheduleRow(Base):
    __tablename__ = "training_schedules"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(String(128), unique=True)
    family: Mapped[str] = mapped_column(String(32))
    cron: Mapped[str | None] = mapped_column(String(120), nullable=True)
    every_s: Mapped[int | None] = mapped_column(Integer, nullable=True)
    dataset: Mapped[str] = mapped_column(String(160))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    policy: Mapped[str] = mapped_column(String(16), default="candidate")
    margin: Mapped[float] = mapped_column(Float, default=0.0)
    metric: Mapped[str] = mapped_column(String(64), default=DEFAULT_METRIC)
    drift_cooldown_s: Mapped[int] = mapped_column(Integer, default=DEFAULT_DRIFT_COOLDOWN_S)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    # Interval schedules fire at anchor_at + k * every_s, so restarts do not shift them.
    anchor_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(64))
    # Written by the worker: the revision it runs and when it fires next.
    synced_revision: Mapped[int | None] = mapped_column(Integer, nullable=True)
    next_run_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    synced_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    __table_args__ = (
        CheckConstraint(
            "(cron IS NULL AND every_s IS NOT NULL) OR (cron IS NOT NULL AND every_s IS NULL)",
            name="ck_schedules_one_trigger",
        ),
        CheckConstraint("every_s IS NULL OR every_s > 0", name="ck_schedules_every"),
        CheckConstraint(f"policy IN {POLICIES}", name="ck_schedules_policy"),
        CheckConstraint("margin >= 0", name="ck_schedules_margin"),
    )


class WorkerLeaseRow(Base):
    __tablename__ = "worker_leases"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    acquired_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
