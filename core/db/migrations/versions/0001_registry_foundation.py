"""Registry foundation: users, models, datasets, versions, the audit log and verdicts.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

import core.db

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("source_sha256", sa.String(length=64), nullable=False),
        sa.Column("source_name", sa.String(length=255), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("stats", sa.JSON(), nullable=False),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name", "version", name="uq_datasets_name_version"),
    )
    op.create_table(
        "models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("family", sa.String(length=32), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("require_audit", sa.Boolean(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("canary_share", sa.Float(), nullable=False),
        sa.Column("stage_revision", sa.Integer(), nullable=False),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("canary_share >= 0 AND canary_share <= 1", name="ck_models_canary"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("must_change_password", sa.Boolean(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "role IN ('viewer', 'auditor', 'operator', 'admin')", name="ck_users_role"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("username"),
    )
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("major", sa.Integer(), nullable=False),
        sa.Column("minor", sa.Integer(), nullable=False),
        sa.Column("patch", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("family", sa.String(length=32), nullable=False),
        sa.Column("artifact_dir", sa.String(length=1024), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("hyperparameters", sa.JSON(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=True),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "stage IN ('candidate', 'staging', 'production', 'archived')", name="ck_versions_stage"
        ),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
        ),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["model_versions.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("model_id", "version", name="uq_versions_model_version"),
    )
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.create_index("ix_versions_model_created", ["model_id", "created_at"], unique=False)
        batch_op.create_index(
            "uq_one_production",
            ["model_id"],
            unique=True,
            sqlite_where=sa.text("stage = 'production'"),
            postgresql_where=sa.text("stage = 'production'"),
        )
        batch_op.create_index(
            "uq_one_staging",
            ["model_id"],
            unique=True,
            sqlite_where=sa.text("stage = 'staging'"),
            postgresql_where=sa.text("stage = 'staging'"),
        )

    op.create_table(
        "audit_verdicts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("auditor", sa.String(length=64), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("sample", sa.JSON(), nullable=False),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("verdict IN ('approve', 'reject')", name="ck_verdict"),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_verdicts", schema=None) as batch_op:
        batch_op.create_index("ix_audit_verdicts_version", ["version_id", "id"], unique=False)

    op.create_table(
        "stage_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("from_stage", sa.String(length=16), nullable=True),
        sa.Column("to_stage", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("gates", sa.JSON(), nullable=False),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("stage_events", schema=None) as batch_op:
        batch_op.create_index("ix_stage_events_model", ["model_id", "id"], unique=False)

    _make_audit_log_append_only()


def _make_audit_log_append_only() -> None:
    """The audit log is never edited: the database refuses UPDATE and DELETE on it."""
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER stage_events_no_{verb.lower()} BEFORE {verb} ON stage_events "
                "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
            )
    else:
        op.execute(
            "CREATE FUNCTION stage_events_append_only() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION 'the audit log is append-only'; END; $$ LANGUAGE plpgsql"
        )
        op.execute(
            "CREATE TRIGGER stage_events_append_only BEFORE UPDATE OR DELETE ON stage_events "
            "FOR EACH ROW EXECUTE FUNCTION stage_events_append_only()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS stage_events_no_update")
        op.execute("DROP TRIGGER IF EXISTS stage_events_no_delete")
    else:
        op.execute("DROP TRIGGER IF EXISTS stage_events_append_only ON stage_events")
        op.execute("DROP FUNCTION IF EXISTS stage_events_append_only()")
    with op.batch_alter_table("stage_events", schema=None) as batch_op:
        batch_op.drop_index("ix_stage_events_model")

    op.drop_table("stage_events")
    with op.batch_alter_table("audit_verdicts", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_verdicts_version")

    op.drop_table("audit_verdicts")
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_one_staging",
            sqlite_where=sa.text("stage = 'staging'"),
            postgresql_where=sa.text("stage = 'staging'"),
        )
        batch_op.drop_index(
            "uq_one_production",
            sqlite_where=sa.text("stage = 'production'"),
            postgresql_where=sa.text("stage = 'production'"),
        )
        batch_op.drop_index("ix_versions_model_created")

    op.drop_table("model_versions")
    op.drop_table("users")
    op.drop_table("models")
    op.drop_table("datasets")
