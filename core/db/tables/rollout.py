"""Tables of evidence-based rollout: rollout plans, their append-only events, shadow scores.

Kept apart from the registry and telemetry tables: plans are written by operators and by the
worker's rollout job, shadow scores by the API's shadow thread.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UTCDateTime, utcnow
from core.db.tables.telemetry import BigId


class RolloutPlanRow(Base):
    """A progressive rollout of a staging version.

    ``active_model`` holds the model's name while the plan is running or paused and NULL once
    it ended: its unique index is the database's own rule of one live plan per model, whatever
    two operators do at once (NULLs never collide). ``revision`` rises with every change, so a
    writer that read step N can insist that the plan is still at step N.
    """

    __tablename__ = "rollout_plans"
    __table_args__ = (Index("ix_rollout_plans_model", "model", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(32))
    active_model: Mapped[str | None] = mapped_column(String(128), unique=True, nullable=True)
    steps: Mapped[list[float]] = mapped_column(JSON)
    min_soak_s: Mapped[float] = mapped_column(Float)
    min_requests: Mapped[int] = mapped_column(Integer)
    thresholds: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    step: Mapped[int] = mapped_column(Integer, default=0)
    step_started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(timezone=True))
    step_base_requests: Mapped[int] = mapped_column(Integer, default=0)
    revision: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(timezone=True), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(timezone=True), default=utcnow)
    message: Mapped[str] = mapped_column(Text, default="")


class RolloutEventRow(Base):
    """One thing that happened to a plan, with the figures it was decided on; never edited."""

    __tablename__ = "rollout_events"
    __table_args__ = (Index("ix_rollout_events_plan", "plan_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    plan_id: Mapped[int] = mapped_column(Integer)
    model: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(32))
    ts: Mapped[dt.datetime] = mapped_column(UTCDateTime(timezone=True), default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    step: Mapped[int] = mapped_column(Integer)
    share: Mapped[float] = mapped_column(Float)
    figures: Mapped[dict[str, Any]] = mapped_column(JSON)
    message: Mapped[str] = mapped_column(Text, default="")


class ShadowResultRow(Base):
    """A live request scored off the response path by a staging version, against production."""

    __tablename__ = "shadow_results"
    __table_args__ = (Index("ix_shadow_results_model_ts", "model", "ts"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ts: Mapped[dt.datetime] = mapped_column(UTCDateTime(timezone=True))
    model: Mapped[str] = mapped_column(String(128))
    production_version: Mapped[str] = mapped_column(String(32))
    shadow_version: Mapped[str] = mapped_column(String(32))
    request_id: Mapped[str] = mapped_column(String(36))
    k: Mapped[int] = mapped_column(Integer)
    overlap: Mapped[float] = mapped_column(Float)
    gained: Mapped[list[str]] = mapped_column(JSON)
    lost: Mapped[list[str]] = mapped_column(JSON)
    category_shift: Mapped[float] = mapped_column(Float)
    production_categories: Mapped[list[str]] = mapped_column(JSON)
    shadow_categories: Mapped[list[str]] = mapped_column(JSON)
    latency_ms: Mapped[float] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
