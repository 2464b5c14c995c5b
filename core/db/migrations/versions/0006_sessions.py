"""Dashboard sessions: the server-side rows that signed session cookies name.

Revision ID: 0006_sessions
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

import core.db

revision = "0006_sessions"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dashboard_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("auth_stamp", sa.String(length=64), nullable=False),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_dashboard_sessions_username", "dashboard_sessions", ["username"])


def downgrade() -> None:
    op.drop_index("ix_dashboard_sessions_username", table_name="dashboard_sessions")
    op.drop_table("dashboard_sessions")
