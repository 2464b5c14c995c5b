"""Scheduled retraining: schedules, training runs, the worker lease and the job store.

``apscheduler_jobs`` is the worker's APScheduler job store. It is created here, with the
definition APScheduler 3 uses, so that the schema has one owner (Alembic) and the job store's
own ``create_all`` only ever finds the table in place.

Revision ID: 0003
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

import core.db

revision = "0003"
down_revision = "0001"
branch_labels = ("jobs",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "training_schedules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("family", sa.String(length=32), nullable=False),
        sa.Column("cron", sa.String(length=120), nullable=True),
        sa.Column("every_s", sa.Integer(), nullable=True),
        sa.Column("dataset", sa.String(length=160), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("policy", sa.String(length=16), nullable=False),
        sa.Column("margin", sa.Float(), nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("drift_cooldown_s", sa.Integer(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("anchor_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column("synced_revision", sa.Integer(), nullable=True),
        sa.Column("next_run_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("synced_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(cron IS NULL AND every_s IS NOT NULL) OR (cron IS NOT NULL AND every_s IS NULL)",
            name="ck_schedules_one_trigger",
        ),
        sa.CheckConstraint("every_s IS NULL OR every_s > 0", name="ck_schedules_every"),
        sa.CheckConstraint(
            "policy IN ('candidate', 'staging', 'production')", name="ck_schedules_policy"
        ),
        sa.CheckConstraint("margin >= 0", name="ck_schedules_margin"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("model"),
    )
    op.create_table(
        "training_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("family", sa.String(length=32), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("dataset_ref", sa.String(length=160), nullable=False),
        sa.Column("dataset", sa.String(length=160), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("policy", sa.String(length=16), nullable=False),
        sa.Column("margin", sa.Float(), nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("scheduled_for", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("queued_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("worker_id", sa.String(length=128), nullable=True),
        sa.Column("version", sa.String(length=32), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("gates", sa.JSON(), nullable=False),
        sa.Column("promoted_to", sa.String(length=16), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("log", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint("trigger IN ('schedule', 'drift', 'manual')", name="ck_runs_trigger"),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed')", name="ck_runs_status"
        ),
        sa.CheckConstraint(
            "policy IN ('candidate', 'staging', 'production')", name="ck_runs_policy"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("model", "scheduled_for", name="uq_runs_model_fire"),
    )
    with op.batch_alter_table("training_runs", schema=None) as batch_op:
        batch_op.create_index("ix_runs_status", ["status", "id"], unique=False)
        batch_op.create_index("ix_runs_model", ["model", "id"], unique=False)

    op.create_table(
        "worker_leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("acquired_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )

    # APScheduler 3's SQLAlchemyJobStore table, as it defines it.
    op.create_table(
        "apscheduler_jobs",
        sa.Column("id", sa.Unicode(length=191), nullable=False),
        sa.Column("next_run_time", sa.Float(precision=25), nullable=True),
        sa.Column("job_state", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("apscheduler_jobs", schema=None) as batch_op:
        batch_op.create_index("ix_apscheduler_jobs_next_run_time", ["next_run_time"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("apscheduler_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_apscheduler_jobs_next_run_time")
    op.drop_table("apscheduler_jobs")
    op.drop_table("worker_leases")
    with op.batch_alter_table("training_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_runs_model")
        batch_op.drop_index("ix_runs_status")
    op.drop_table("training_runs")
    op.drop_table("training_schedules")
