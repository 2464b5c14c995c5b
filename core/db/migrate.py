"""Create or upgrade the schema with Alembic, once, under a lock.

Every entry point calls :func:`upgrade` on start. Several processes may start together (the
dashboard, the worker, the API), so the migration runs under a Postgres advisory lock or, on
SQLite, a file lock beside the database file; the ones that wait find the schema current.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from filelock import FileLock, Timeout
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from core.config import Settings, get_settings
from core.db import DatabaseUnavailable, get_engine, unavailable

log = logging.getLogger(__name__)
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
ADVISORY_LOCK_KEY = 0x504C414E  # "PLAN"
LOCK_TIMEOUT_S = 120

P = ParamSpec("P")
R = TypeVar("R")


def _reported(func: Callable[P, R]) -> Callable[P, R]:
    """Alembic talks to the database outside :func:`core.db.transaction`: its connection
    failures get the same one-line :class:`DatabaseUnavailable` (every entry point migrates
    first, so this is what an operator sees when the database is down or missing)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except OperationalError as exc:
            raise unavailable(exc) from exc

    return wrapper


def alembic_config(settings: Settings) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["settings"] = settings
    return cfg


@_reported
def upgrade(settings: Settings | None = None) -> list[str]:
    """Bring the database to the newest schema; returns the heads it is at afterwards."""
    settings = settings or get_settings()
    engine = get_engine(settings)
    cfg = alembic_config(settings)
    if settings.is_sqlite:
        if settings.sqlite_file is not None:
            path = f"{settings.sqlite_file}.migrate.lock"
            lock = FileLock(path, timeout=LOCK_TIMEOUT_S)
            try:
                lock.acquire()
            except Timeout:
                raise DatabaseUnavailable(
                    f"another process has held the migration lock {path} for "
                    f"{LOCK_TIMEOUT_S} s; is a migration stuck?"
                ) from None
            except OSError as exc:
                raise DatabaseUnavailable(
                    f"the migration lock {path} cannot be taken: {exc.strerror or exc}"
                ) from None
            try:
                command.upgrade(cfg, "heads")
            finally:
                lock.release()
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


@_reported
def current_heads(settings: Settings | None = None) -> list[str]:
    with get_engine(settings).connect() as conn:
        return sorted(MigrationContext.configure(conn).get_current_heads())


@_reported
def is_current(settings: Settings | None = None) -> bool:
    settings = settings or get_settings()
    script = ScriptDirectory.from_config(alembic_config(settings))
    return set(current_heads(settings)) == set(script.get_heads())
