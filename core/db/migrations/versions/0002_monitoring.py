"""Prediction logs, feedback, hourly rollups, drift results and alerts.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

import core.db

revision = "0002"
down_revision = "0001"
branch_labels = ("monitoring",)
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = core.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "prediction_logs",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(36), nullable=False, unique=True),
        sa.Column("ts", TS, nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("variant", sa.String(16), nullable=False),
        sa.Column("user_id", sa.String(128)),
        sa.Column("ratings", sa.JSON(), nullable=False),
        sa.Column("lat", sa.Float()),
        sa.Column("lng", sa.Float()),
        sa.Column("k", sa.Integer(), nullable=False),
        sa.Column("places", sa.JSON(), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("predicted", sa.JSON()),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("error", sa.Text()),
    )
    op.create_index("ix_prediction_logs_model_ts", "prediction_logs", ["model", "ts"])
    op.create_index("ix_prediction_logs_ts", "prediction_logs", ["ts"])
    op.create_table(
        "feedback",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(36), nullable=False),
        sa.Column("place_id", sa.String(128), nullable=False),
        sa.Column("ts", TS, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
    )
    op.create_index("ix_feedback_request_id", "feedback", ["request_id"])
    op.create_table(
        "prediction_rollups",
        sa.Column("hour", sa.Integer(), primary_key=True),
        sa.Column("model", sa.String(128), primary_key=True),
        sa.Column("version", sa.String(32), primary_key=True),
        sa.Column("variant", sa.String(16), primary_key=True),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.Column("latency_sum_ms", sa.Float(), nullable=False),
        sa.Column("latency_bins", sa.JSON(), nullable=False),
    )
    op.create_index("ix_rollups_model_hour", "prediction_rollups", ["model", "hour"])
    op.create_table(
        "drift_results",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("computed_at", TS, nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.String(32)),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("window_start", TS, nullable=False),
        sa.Column("window_end", TS, nullable=False),
        sa.Column("reference", sa.String(255), nullable=False),
        sa.Column("n_reference", sa.Integer(), nullable=False),
        sa.Column("n_current", sa.Integer(), nullable=False),
        sa.Column("drift_share", sa.Float(), nullable=False),
        sa.Column("dataset_drift", sa.Boolean(), nullable=False),
        sa.Column("columns", sa.JSON(), nullable=False),
        sa.Column("summaries", sa.JSON(), nullable=False),
        sa.Column("report_path", sa.String(1024)),
        sa.Column("sampling", sa.Text(), nullable=False),
    )
    op.create_index(
        "ix_drift_results_model_kind_end", "drift_results", ["model", "kind", "window_end"]
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.String(32)),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("resolved_at", TS),
        sa.Column("resolved_by", sa.String(64)),
        sa.Column("webhook", sa.String(255)),
    )
    op.create_index("ix_alerts_status_model", "alerts", ["status", "model"])


def downgrade() -> None:
    for table in ("alerts", "drift_results", "prediction_rollups", "feedback", "prediction_logs"):
        op.drop_table(table)
