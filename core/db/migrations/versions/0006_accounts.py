"""Audit trail: append-only audit verdicts, audited stage settings.

* ``audit_verdicts`` becomes append-only like ``stage_events``: triggers refuse UPDATE and
  DELETE, so an approval cannot be rewritten after a promotion relied on it.
* ``stage_setting_events``: who changed a stage-level setting of a model (the audit
  requirement of production), when, from what to what and why; append-only as well.

Revision ID: 0006_accounts
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_accounts"
down_revision = "0005"
branch_labels = None
depends_on = None

APPEND_ONLY = ("audit_verdicts", "stage_setting_events")


def upgrade() -> None:
    op.create_table(
        "stage_setting_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("setting", sa.String(length=64), nullable=False),
        sa.Column("old_value", sa.JSON(), nullable=True),
        sa.Column("new_value", sa.JSON(), nullable=True),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("stage_setting_events") as batch:
        batch.create_index("ix_stage_setting_events_model", ["model_id", "id"], unique=False)
    for table in APPEND_ONLY:
        _append_only(table)


def _append_only(table: str) -> None:
    """The database refuses UPDATE and DELETE on ``table`` (as 0001 does for stage_events)."""
    message = f"{table} is append-only"
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
            )
    else:
        op.execute(
            f"CREATE FUNCTION {table}_append_only() RETURNS trigger AS $$ BEGIN "
            f"RAISE EXCEPTION '{message}'; END; $$ LANGUAGE plpgsql"
        )
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()"
        )


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table in APPEND_ONLY:
        if sqlite:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {table}_append_only()")
    with op.batch_alter_table("stage_setting_events") as batch:
        batch.drop_index("ix_stage_setting_events_model")
    op.drop_table("stage_setting_events")
