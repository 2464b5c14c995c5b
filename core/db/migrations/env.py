"""Alembic environment: runs against the engine of :mod:`core.db` (no alembic.ini needed)."""

from __future__ import annotations

from alembic import context

from core.config import get_settings
from core.db import Base, get_engine

config = context.config
settings = config.attributes.get("settings") or get_settings()
connection = config.attributes.get("connection")


def _run(conn) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=conn,
        target_metadata=Base.metadata,
        render_as_batch=conn.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    _run(connection)
else:
    with get_engine(settings).connect() as conn:
        _run(conn)
        conn.commit()
