"""CPU and memory samples of the API and worker processes.

Revision ID: 0004
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

import core.db

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "resource_samples",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("ts", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("host", sa.String(128), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("cpu", sa.Float(), nullable=False),
        sa.Column("rss_mb", sa.Float(), nullable=False),
        sa.Column("peak_rss_mb", sa.Float(), nullable=False),
    )
    op.create_index("ix_resource_samples_kind_ts", "resource_samples", ["kind", "ts"])


def downgrade() -> None:
    op.drop_table("resource_samples")
