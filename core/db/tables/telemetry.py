"""Tables of what happens after promotion: prediction logs, hourly rollups, drift, alerts.

Kept apart from the registry tables (``core.db``) because they grow without bound and are
written by the serving path; the dashboard reads only rollups and stored drift results, never
raw logs, so its pages stay fast however long the service has run.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UTCDateTime, utcnow

# Upper edges (ms) of the latency histogram bins of a rollup; the last bin is open-ended.
LATENCY_EDGES_MS = (0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
N_LATENCY_BINS = len(LATENCY_EDGES_MS) + 1

BigId = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER only


class PredictionLogRow(Base):
    """One served request. On PostgreSQL the table is partitioned by day of ``ts`` (migration
    ``0009_log_partitions``, :mod:`core.monitoring.partitions`): its keys there hold ``ts``, the
    primary key ``(id, ts)`` and the request id unique with its time, ``(request_id, ts)``.
    SQLite keeps the plain table declared here."""

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
    # production or canary: the two arms' traffic is judged apart
    variant: Mapped[str] = mapped_column(String(16), default="production")
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


class MonitorResultRow(Base):
    """One figure set of the monitoring job: a (model, version, variant, kind, window).

    The unique key is the job's ledger: a window is computed once whatever two processes do at
    the same moment, and a worker that restarts finds what is done. ``status`` says why a
    window holds no figures (too few rows, no reference) instead of leaving a silent gap;
    ``failed`` rows are retried and ``provisional`` ones (a window computed before it closed)
    are replaced when it closes.
    """

    __tablename__ = "monitor_results"
    __table_args__ = (
        UniqueConstraint(
            "model", "version", "variant", "kind", "window_start", name="uq_monitor_results_window"
        ),
        Index("ix_monitor_results_model_start", "model", "window_start"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(32))
    variant: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))  # traffic | data | prediction | health
    window_start: Mapped[dt.datetime] = mapped_column(UTCDateTime(timezone=True))
    window_end: Mapped[dt.datetime] = mapped_column(UTCDateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16))  # ok | too_few_rows | no_reference | failed
    provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    rows: Mapped[int] = mapped_column(Integer, default=0)
    figures: Mapped[dict[str, Any]] = mapped_column(JSON)
    message: Mapped[str] = mapped_column(Text, default="")
    drift_result_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    alert_ids: Mapped[list[int]] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    computed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(timezone=True), default=utcnow)
    cpu_s: Mapped[float] = mapped_column(Float, default=0.0)


class PredictionReferenceRow(Base):
    """A version's predictions on its own validation users: the prediction-drift reference.

    Computed once per version (a forward pass over a few hundred users), so prediction drift
    has a reference from the version's first window instead of waiting for days of traffic.
    ``data`` is an ``.npz`` of the predicted scores and the top category of each user.
    """

    __tablename__ = "prediction_references"
    __table_args__ = (UniqueConstraint("model", "version", name="uq_prediction_references"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(32))
    rows: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(255))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    computed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(timezone=True), default=utcnow)


class MonitorRequestRow(Base):
    """An operator's request to recompute a model's windows, carried out by the worker."""

    __tablename__ = "monitor_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(128))
    since: Mapped[dt.datetime] = mapped_column(UTCDateTime(timezone=True))
    requested_by: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(timezone=True), default=utcnow)
    done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(timezone=True), nullable=True)
    outcome: Mapped[str] = mapped_column(Text, default="")


class LogRefusalRow(Base):
    """A prediction log record the database could not store, kept aside with the reason.

    One bad record must not block the others (the writer isolates it and writes the rest of
    its batch); it is not dropped either: its fields are kept as ASCII-escaped JSON, which
    every database stores, so an operator can see what was sent.
    """

    __tablename__ = "prediction_log_refusals"
    __table_args__ = (Index("ix_prediction_log_refusals_at", "refused_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    refused_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(timezone=True), default=utcnow)
    request_id: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text)
    record: Mapped[str] = mapped_column(Text)


class ResourceSampleRow(Base):
    __tablename__ = "resource_samples"
    __table_args__ = (Index("ix_resource_samples_kind_ts", "kind", "ts"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ts: Mapped[dt.datetime] = mapped_column(UTCDateTime(timezone=True))
    kind: Mapped[str] = mapped_column(String(16))  # api | worker
    host: Mapped[str] = mapped_column(String(128))
    pid: Mapped[int] = mapped_column(Integer)
    cpu: Mapped[float] = mapped_column(Float)  # cores busy
    rss_mb: Mapped[float] = mapped_column(Float)
    peak_rss_mb: Mapped[float] = mapped_column(Float)
