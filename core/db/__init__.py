"""The registry database: its engine and sessions (:mod:`core.db.engine`), every table
(:mod:`core.db.tables`), migrations (:mod:`core.db.migrate`)."""

from core.db.engine import (
    SQLITE_BUSY_TIMEOUT_MS,
    Base,
    DatabaseUnavailable,
    UTCDateTime,
    dispose_engines,
    get_engine,
    is_postgres,
    json_default,
    json_dumps,
    session_factory,
    transaction,
    unavailable,
    utcnow,
)

__all__ = [
    "Base",
    "DatabaseUnavailable",
    "SQLITE_BUSY_TIMEOUT_MS",
    "UTCDateTime",
    "dispose_engines",
    "get_engine",
    "is_postgres",
    "json_default",
    "json_dumps",
    "session_factory",
    "transaction",
    "unavailable",
    "utcnow",
]
