"""Prediction log records the database refused, kept aside with the reason.

Revision ID: 0006_log_refusals
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

import core.db

revision = "0006_log_refusals"
down_revision = "0005"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "prediction_log_refusals",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("refused_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("record", sa.Text(), nullable=False),
    )
    op.create_index("ix_prediction_log_refusals_at", "prediction_log_refusals", ["refused_at"])


def downgrade() -> None:
    op.drop_index("ix_prediction_log_refusals_at", table_name="prediction_log_refusals")
    op.drop_table("prediction_log_refusals")
