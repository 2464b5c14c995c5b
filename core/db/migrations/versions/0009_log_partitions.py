"""The prediction log partitioned by day on PostgreSQL (see core.monitoring.partitions).

The plain table is renamed aside, a table partitioned by range of ``ts`` takes its name (same
columns, defaults and id sequence), the existing rows move into daily partitions made for
them, and the old table is dropped. Unique keys must hold the partition key: the primary key
becomes ``(id, ts)`` and the request id is unique with its timestamp, ``(request_id, ts)``.
SQLite keeps the plain table: nothing happens there.

Revision ID: 0009_log_partitions
Revises: 0006_monitor_windows
"""

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0009_log_partitions"
down_revision = "0006_monitor_windows"
branch_labels = None
depends_on = None

OLD = "prediction_logs_unpartitioned"


def _partition(day: dt.date) -> None:
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    end = start + dt.timedelta(days=1)
    op.execute(
        f'CREATE TABLE IF NOT EXISTS "prediction_logs_p{day:%Y%m%d}" PARTITION OF prediction_logs '
        f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
    )


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute(f"ALTER TABLE prediction_logs RENAME TO {OLD}")
    op.execute(f"ALTER TABLE {OLD} RENAME CONSTRAINT prediction_logs_pkey TO {OLD}_pkey")
    op.execute(
        f"ALTER TABLE {OLD} RENAME CONSTRAINT prediction_logs_request_id_key "
        f"TO {OLD}_request_id_key"
    )
    op.execute(f"ALTER INDEX ix_prediction_logs_model_ts RENAME TO ix_{OLD}_model_ts")
    op.execute(f"ALTER INDEX ix_prediction_logs_ts RENAME TO ix_{OLD}_ts")
    op.execute(
        f"CREATE TABLE prediction_logs (LIKE {OLD} INCLUDING DEFAULTS) PARTITION BY RANGE (ts)"
    )
    op.execute("ALTER SEQUENCE prediction_logs_id_seq OWNED BY prediction_logs.id")
    op.execute(
        "ALTER TABLE prediction_logs ADD CONSTRAINT prediction_logs_pkey PRIMARY KEY (id, ts)"
    )
    op.execute(
        "ALTER TABLE prediction_logs ADD CONSTRAINT uq_prediction_logs_request_ts "
        "UNIQUE (request_id, ts)"
    )
    op.execute("CREATE INDEX ix_prediction_logs_model_ts ON prediction_logs (model, ts)")
    op.execute("CREATE INDEX ix_prediction_logs_ts ON prediction_logs (ts)")
    days = {
        row[0]
        for row in bind.execute(
            sa.text(f"SELECT DISTINCT (ts AT TIME ZONE 'UTC')::date FROM {OLD}")
        )
    }
    today = dt.datetime.now(dt.UTC).date()
    days.update(today + dt.timedelta(days=n) for n in range(-1, 8))
    for day in sorted(days):
        _partition(day)
    op.execute(f"INSERT INTO prediction_logs SELECT * FROM {OLD}")
    op.execute(f"DROP TABLE {OLD}")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute(f"CREATE TABLE {OLD} (LIKE prediction_logs INCLUDING DEFAULTS)")
    op.execute(f"INSERT INTO {OLD} SELECT * FROM prediction_logs")
    op.execute("ALTER SEQUENCE prediction_logs_id_seq OWNED BY NONE")
    op.execute("DROP TABLE prediction_logs CASCADE")
    op.execute(f"ALTER TABLE {OLD} RENAME TO prediction_logs")
    op.execute("ALTER SEQUENCE prediction_logs_id_seq OWNED BY prediction_logs.id")
    op.execute("ALTER TABLE prediction_logs ADD PRIMARY KEY (id)")
    op.execute("ALTER TABLE prediction_logs ADD UNIQUE (request_id)")
    op.execute("CREATE INDEX ix_prediction_logs_model_ts ON prediction_logs (model, ts)")
    op.execute("CREATE INDEX ix_prediction_logs_ts ON prediction_logs (ts)")
