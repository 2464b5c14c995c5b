"""Tables of what happens after promotion: prediction logs, hourly rollups, drift, alerts.

Kept apart from the registry tables (``core.db``) because they grow without bound and are
written by the serving path; the dashboard reads only rollups and stored drift results, never
raw logs, so its pages stay fast however long the service has run.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UTCDateTime, utcnow

# Upper edges (ms) of the latency histogram bins of a rollup; the last bin is open-ended.
LATENCY_EDGES_MS = (0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
N_LATENCY_BINS = len(LATENCY_EDGES_MS) + 1

BigId = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER only


class PredictionLogRow(Base):
    __tablename__ = "prediction_logs"
    __table_args__ = (
        Index("ix_prediction_logs_model_ts", "model", "ts"),
        Index("ix_prediction_logs_ts", "ts"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(36), unique=True)
    ts: Mapped[dt.datetime] = mapped_column(UTCDateTime(timezone=True))
    model: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(32))
    variant: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[str | None] = mapped_column(String(128))
    ratings: Mapped[list[float]] = mapped_column(JSON)
    lat: Mapped[float | None] = mapped_column(Float)
    lng: Mapped[float | None] = mapped_column(Float)
    k: Mapped[int] = mapped_column(Integer)
    places: Mapped[list[str]] = mapped_column(JSON)
    categories: Mapped[list[str]] = mapped_column(JSON)
    scores: Mapped[list[float]] = mapped_column(JSON)
    predicted: Mapped[list[float] | None] = mapped_column(JSON)
    latency_ms: Mapped[float] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)


class FeedbackRow(Base):
    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(36), index=True)
    place_id: Mapped[str] = mapped_column(String(128))
    ts: Mapped[dt.datetime] = mapped_column(UTCDateTime(timezone=True), default=utcnow)
    kind: Mapped[str] = mapped_column(String(16), default="click")


class RollupRow(Base):
    """Per hour, model, version and variant: volume, errors, clicks, latency histogram."""

    __tablename__ = "prediction_rollups"
    __table_args__ = (Index("ix_rollups_model_hour", "model", "hour"),)

    hour: Mapped[int] = mapped_column(Integer, primary_key=True)  # epoch seconds // 3600
    model: Mapped[str] = mapped_column(String(128), primary_key=True)
    version: Mapped[str] = mapped_column(String(32), primary_key=True)
    variant: Mapped[str] = mapped_column(String(16), primary_key=True)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    clicks: Mapped[int] = mapped_column(Integer, default=0)
    latency_sum_ms: Mapped[float] = mapped_column(Float, default=0.0)
    latency_bins: Mapped[list[int]] = mapped_column(JSON)


class DriftResultRow(Base):
    __tablename__ = "drift_results"
    __table_args__ = (Index("ix_drift_results_model_kind_end", "model", "kind", "window_end"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    computed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(timezone=True), default=utcnow)
    model: Mapped[str] = mapped_column(String(128))
    version: Mapped[str | None] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))  # data | prediction
    window_start: Mapped[dt.datetime] = mapped_column(UTCDateTime(timezone=True))
    window_end: Mapped[dt.datetime] = mapped_column(UTCDateTime(timezone=True))
    reference: Mapped[str] = mapped_column(String(255))
    n_reference: Mapped[int] = mapped_column(Integer)
    n_current: Mapped[int] = mapped_column(Integer)
    drift_share: Mapped[float] = mapped_column(Float)
    dataset_drift: Mapped[bool] = mapped_column(Boolean)
    columns: Mapped[dict[str, Any]] = mapped_column(JSON)
    summaries: Mapped[dict[str, Any]] = mapped_column(JSON)  # per-column histograms
    report_path: Mapped[str | None] = mapped_column(String(1024))
    sampling: Mapped[str] = mapped_column(Text, default="")


class AlertRow(Base):
    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_status_model", "status", "model"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(timezone=True), default=utcnow)
    model: Mapped[str] = mapped_column(String(128))
    version: Mapped[str | None] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(128), default="")
    severity: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    value: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), default="open")
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(timezone=True))
    resolved_by: Mapped[str | None] = mapped_column(String(64))
    webhook: Mapped[str | None] = mapped_column(String(255))
