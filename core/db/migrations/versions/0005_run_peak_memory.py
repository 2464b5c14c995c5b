"""Peak memory of each training run; joins the monitoring and jobs branches into one head.

Revision ID: 0005
Revises: 0003, 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = ("0003", "0004")
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("training_runs") as batch:
        batch.add_column(sa.Column("peak_rss_mb", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("training_runs") as batch:
        batch.drop_column("peak_rss_mb")
