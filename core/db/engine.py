"""Database engine, sessions and the registry's tables.

Rows never leave ``core``: the public modules turn them into frozen dataclasses. Every public
operation runs in one :func:`transaction`, which commits or rolls back as a whole. On SQLite a
write transaction starts with ``BEGIN IMMEDIATE`` so that two writers queue on the busy timeout
instead of failing half-way with "database is locked"; readers use a plain deferred ``BEGIN`` and
are never blocked thanks to WAL mode.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Iterator
from typing import Any

import orjson
from sqlalchemy import (
    JSON,
    DateTime,
    Engine,
    TypeDecorator,
    create_engine,
    event,
)
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from core.config import Settings, get_settings, redact
from core.errors import CoreError

SQLITE_BUSY_TIMEOUT_MS = 30_000


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC timestamps on both backends (SQLite stores no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dt.datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


# --------------------------------------------------------------------------- engines

_engines: dict[tuple[str, str | None], Engine] = {}
_engines_lock = threading.Lock()


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when a transaction begins.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def get_engine(settings: Settings | None = None) -> Engine:
    """One engine per database (and schema) per process; created lazily, thread-safe."""
    settings = settings or get_settings()
    key = (settings.resolved_database_url(), settings.database_schema)
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _create_engine(settings)
            _engines[key] = engine
        return engine


def json_default(value: Any) -> Any:
    """NumPy scalars and arrays in JSON columns (metrics, histories) become plain numbers."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def json_dumps(value: Any) -> str:
    # orjson: the prediction log writes four JSON lists per row; the stdlib encoder was most
    # of the cost of a batch insert.
    return orjson.dumps(value, default=json_default).decode()


JSON_OPTIONS: dict[str, Any] = {"json_serializer": json_dumps, "json_deserializer": orjson.loads}


def _create_engine(settings: Settings) -> Engine:
    url = settings.resolved_database_url()
    if settings.is_sqlite:
        if settings.sqlite_file is not None:
            folder = settings.sqlite_file.parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except (FileExistsError, NotADirectoryError):
                raise DatabaseUnavailable(
                    f"the SQLite database's folder {folder} cannot be created: a part of it "
                    "is a file"
                ) from None
            except OSError as exc:
                raise DatabaseUnavailable(
                    f"the SQLite database's folder {folder} cannot be created: "
                    f"{exc.strerror or exc}"
                ) from None
        engine = create_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            **JSON_OPTIONS,
        )
        _configure_sqlite(engine)
        return engine
    connect_args: dict[str, Any] = {"connect_timeout": 10}
    if settings.database_schema:
        connect_args["options"] = f"-csearch_path={settings.database_schema}"
    return create_engine(
        url,
        connect_args=connect_args,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=10,
        **JSON_OPTIONS,
    )


def dispose_engines() -> None:
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


class DatabaseUnavailable(CoreError):
    """The database could not be reached or is locked beyond the busy timeout."""


def unavailable(exc: OperationalError) -> DatabaseUnavailable:
    """The driver's error as one line (psycopg adds a hint on a second line; SQLAlchemy a link
    to its docs): what an operator reads on the command line or in a log."""
    reason = " ".join(str(exc.orig if exc.orig is not None else exc).split())
    return DatabaseUnavailable(redact(f"database error: {reason}"))


@contextlib.contextmanager
def transaction(*, write: bool = True, settings: Settings | None = None) -> Iterator[Session]:
    """One unit of work: commits on success, rolls back on any exception.

    ``write=True`` takes SQLite's write lock up front, so the checks made at the start of the
    transaction still hold when it commits.
    """
    engine = get_engine(settings)
    if write and engine.dialect.name == "sqlite":
        engine = engine.execution_options(sqlite_begin="IMMEDIATE")
    session = Session(bind=engine, expire_on_commit=False, autoflush=True)
    try:
        with session.begin():
            yield session
    except OperationalError as exc:
        raise unavailable(exc) from exc
    finally:
        session.close()


def session_factory(settings: Settings | None = None) -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(settings), expire_on_commit=False)


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"
