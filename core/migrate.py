"""Create or upgrade the schema with Alembic, once, under a lock.

Every entry point calls :func:`upgrade` on start. Several processes may start together (the
dashboard, the worker, the API), so the migration runs under a Postgres advisory lock or, on
SQLite, a file lock beside the database file; the ones that wait find the schema current.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from filelock import FileLock
from sqlalchemy import text

from core.config import Settings, get_settings
from core.db import get_engine

log = logging.getLogger(__name__)
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
ADVISORY_LOCK_KEY = 0x504C414E  # "PLAN"


def alembic_config(settings: Settings) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["settings"] = settings
    return cfg


def upgrade(settings: Settings | None = None) -> list[str]:
    """Bring the database to the newest schema; returns the heads it is at afterwards."""
    settings = settings or get_settings()
    engine = get_engine(settings)
    cfg = alembic_config(settings)
    if settings.is_sqlite:
        if settings.sqlite_file is not None:
            with FileLock(f"{settings.sqlite_file}.migrate.lock", timeout=120):
                command.upgrade(cfg, "heads")
        else:
            command.upgrade(cfg, "heads")
    else:
        with engine.connect() as conn:
            if settings.database_schema:
                conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{settings.database_schema}"'))
                conn.commit()
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": ADVISORY_LOCK_KEY})
            try:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "heads")
                conn.commit()
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK_KEY})
                conn.commit()
    return current_heads(settings)


def current_heads(settings: Settings | None = None) -> list[str]:
    with get_engine(settings).connect() as conn:
        return sorted(MigrationContext.configure(conn).get_current_heads())


def is_current(settings: Settings | None = None) -> bool:
    settings = settings or get_settings()
    script = ScriptDirectory.from_config(alembic_config(settings))
    return set(current_heads(settings)) == set(script.get_heads())
