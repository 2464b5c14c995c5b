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
    Boolean,
    CheckConstraint,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    event,
    text,
)
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from core.config import Settings, get_settings, redact
from core.errors import CoreError

STAGES = ("candidate", "staging", "production", "archived")
ROLES = ("viewer", "auditor", "operator", "admin")
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


class UserRow(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (CheckConstraint(f"role IN {ROLES}", name="ck_users_role"),)


class ModelRow(Base):
    __tablename__ = "models"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    family: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text, default="")
    require_audit: Mapped[bool] = mapped_column(Boolean, default=False)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    canary_share: Mapped[float] = mapped_column(Float, default=0.0)
    # Bumped by every stage change; a caller that saw revision N may insist on it.
    stage_revision: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (
        CheckConstraint("canary_share >= 0 AND canary_share <= 1", name="ck_models_canary"),
    )


class DatasetRow(Base):
    __tablename__ = "datasets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    source_sha256: Mapped[str] = mapped_column(String(64))
    source_name: Mapped[str] = mapped_column(String(255))
    rows: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(1024))
    stats: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))
    __table_args__ = (UniqueConstraint("name", "version", name="uq_datasets_name_version"),)


class VersionRow(Base):
    __tablename__ = "model_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="RESTRICT"))
    version: Mapped[str] = mapped_column(String(32))
    major: Mapped[int] = mapped_column(Integer)
    minor: Mapped[int] = mapped_column(Integer)
    patch: Mapped[int] = mapped_column(Integer)
    stage: Mapped[str] = mapped_column(String(16), default="candidate")
    family: Mapped[str] = mapped_column(String(32))
    artifact_dir: Mapped[str] = mapped_column(String(1024))
    files: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    hyperparameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id"), nullable=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"), nullable=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (
        UniqueConstraint("model_id", "version", name="uq_versions_model_version"),
        CheckConstraint(f"stage IN {STAGES}", name="ck_versions_stage"),
        # The database itself guarantees one production and one staging version per model.
        Index(
            "uq_one_production",
            "model_id",
            unique=True,
            sqlite_where=text("stage = 'production'"),
            postgresql_where=text("stage = 'production'"),
        ),
        Index(
            "uq_one_staging",
            "model_id",
            unique=True,
            sqlite_where=text("stage = 'staging'"),
            postgresql_where=text("stage = 'staging'"),
        ),
        Index("ix_versions_model_created", "model_id", "created_at"),
    )


class StageEventRow(Base):
    """The audit log. Append-only: triggers in the migration refuse UPDATE and DELETE."""

    __tablename__ = "stage_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    action: Mapped[str] = mapped_column(String(16))
    from_stage: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_stage: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="")
    gates: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (Index("ix_stage_events_model", "model_id", "id"),)


class AuditVerdictRow(Base):
    """Auditors' verdicts. Append-only: triggers (migration 0006) refuse UPDATE and DELETE."""

    __tablename__ = "audit_verdicts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    auditor: Mapped[str] = mapped_column(String(64))
    verdict: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str] = mapped_column(Text, default="")
    sample: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (
        CheckConstraint("verdict IN ('approve', 'reject')", name="ck_verdict"),
        Index("ix_audit_verdicts_version", "version_id", "id"),
    )


class StageSettingEventRow(Base):
    """Who changed a stage-level setting of a model (e.g. production's audit requirement), when
    and why. Append-only: triggers (migration 0006) refuse UPDATE and DELETE."""

    __tablename__ = "stage_setting_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    stage: Mapped[str] = mapped_column(String(16))
    setting: Mapped[str] = mapped_column(String(64))
    old_value: Mapped[Any] = mapped_column(JSON, nullable=True)
    new_value: Mapped[Any] = mapped_column(JSON, nullable=True)
    actor: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (Index("ix_stage_setting_events_model", "model_id", "id"),)


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
