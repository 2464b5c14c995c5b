"""Evidence-based rollout: rollout plans (one live plan per model, by a unique marker), their
append-only events, and shadow scores of staging versions on live requests.

Revision ID: 0007_rollout
Revises: 0006_monitor_windows
"""

import sqlalchemy as sa
from alembic import op

import core.db

revision = "0007_rollout"
down_revision = "0006_monitor_windows"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "rollout_plans",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("active_model", sa.String(128), nullable=True),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("min_soak_s", sa.Float(), nullable=False),
        sa.Column("min_requests", sa.Integer(), nullable=False),
        sa.Column("thresholds", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("step_started_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("step_base_requests", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("updated_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.UniqueConstraint("active_model", name="uq_rollout_plans_active_model"),
    )
    op.create_index("ix_rollout_plans_model", "rollout_plans", ["model", "id"])
    op.create_table(
        "rollout_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("ts", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("share", sa.Float(), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
    )
    op.create_index("ix_rollout_events_plan", "rollout_events", ["plan_id", "id"])
    _make_events_append_only()
    op.create_table(
        "shadow_results",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("ts", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("production_version", sa.String(32), nullable=False),
        sa.Column("shadow_version", sa.String(32), nullable=False),
        sa.Column("request_id", sa.String(36), nullable=False),
        sa.Column("k", sa.Integer(), nullable=False),
        sa.Column("overlap", sa.Float(), nullable=False),
        sa.Column("gained", sa.JSON(), nullable=False),
        sa.Column("lost", sa.JSON(), nullable=False),
        sa.Column("category_shift", sa.Float(), nullable=False),
        sa.Column("production_categories", sa.JSON(), nullable=False),
        sa.Column("shadow_categories", sa.JSON(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
    )
    op.create_index("ix_shadow_results_model_ts", "shadow_results", ["model", "ts"])


def _make_events_append_only() -> None:
    """A rollout's events are its audit trail: the database refuses UPDATE and DELETE."""
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER rollout_events_no_{verb.lower()} BEFORE {verb} ON rollout_events "
                "BEGIN SELECT RAISE(ABORT, 'rollout events are append-only'); END"
            )
    else:
        op.execute(
            "CREATE FUNCTION rollout_events_append_only() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION 'rollout events are append-only'; END; $$ LANGUAGE plpgsql"
        )
        op.execute(
            "CREATE TRIGGER rollout_events_append_only BEFORE UPDATE OR DELETE ON rollout_events "
            "FOR EACH ROW EXECUTE FUNCTION rollout_events_append_only()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS rollout_events_no_update")
        op.execute("DROP TRIGGER IF EXISTS rollout_events_no_delete")
    else:
        op.execute("DROP TRIGGER IF EXISTS rollout_events_append_only ON rollout_events")
        op.execute("DROP FUNCTION IF EXISTS rollout_events_append_only()")
    op.drop_index("ix_shadow_results_model_ts", table_name="shadow_results")
    op.drop_table("shadow_results")
    op.drop_index("ix_rollout_events_plan", table_name="rollout_events")
    op.drop_table("rollout_events")
    op.drop_index("ix_rollout_plans_model", table_name="rollout_plans")
    op.drop_table("rollout_plans")
