"""Joins the branches that the accounts, log refusals, sessions, rollout, tokens and log
partitions migrations grew from 0005/0006 into one head again; changes nothing.

Revision ID: 0010_merge
Revises: 0006_accounts, 0006_log_refusals, 0006_sessions, 0007_rollout, 0008_tokens,
    0009_log_partitions
"""

revision = "0010_merge"
down_revision = (
    "0006_accounts",
    "0006_log_refusals",
    "0006_sessions",
    "0007_rollout",
    "0008_tokens",
    "0009_log_partitions",
)
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
