"""The monitoring job's ledger of windows, prediction references, recomputation requests, and
the variant of a drift result.

Revision ID: 0006_monitor_windows
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

import core.db

revision = "0006_monitor_windows"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("drift_results") as batch:
        batch.add_column(
            sa.Column("variant", sa.String(16), nullable=False, server_default="production")
        )
    op.create_table(
        "monitor_results",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("variant", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("window_start", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("window_end", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("provisional", sa.Boolean(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("drift_result_id", sa.Integer(), nullable=True),
        sa.Column("alert_ids", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("computed_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("cpu_s", sa.Float(), nullable=False),
        sa.UniqueConstraint(
            "model", "version", "variant", "kind", "window_start", name="uq_monitor_results_window"
        ),
    )
    op.create_index("ix_monitor_results_model_start", "monitor_results", ["model", "window_start"])
    op.create_table(
        "prediction_references",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("computed_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("model", "version", name="uq_prediction_references"),
    )
    op.create_table(
        "monitor_requests",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("since", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("requested_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("done_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("monitor_requests")
    op.drop_table("prediction_references")
    op.drop_index("ix_monitor_results_model_start", table_name="monitor_results")
    op.drop_table("monitor_results")
    with op.batch_alter_table("drift_results") as batch:
        batch.drop_column("variant")
