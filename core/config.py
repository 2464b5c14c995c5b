"""One settings object read from the environment.

Every entry point reads configuration through :func:`get_settings`, so a test can point the
whole stack at a temporary registry by setting three environment variables and calling
:func:`reset_settings`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from core.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SUPPORTED_SCHEMES = ("sqlite", "postgresql+psycopg", "postgresql", "postgres")


class Settings(BaseSettings):
    """Where the registry, the artifacts and the data live."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    database_url: str = Field(
        default="sqlite:///data/registry.db",
        description="SQLAlchemy URL; sqlite:///path or postgresql+psycopg://user@host/db.",
    )
    artifacts_dir: str = Field(
        default="models",
        description="Root of model artifacts: a folder, or an fsspec URL (s3://bucket/prefix).",
    )
    data_dir: Path = Field(default=Path("data"), description="Datasets and the catalogue.")
    max_file_rows: int = Field(
        default=1_000_000,
        ge=1,
        description="A users or drift file with more rows is refused before it is read.",
    )
    max_file_bytes: int = Field(
        default=512 * 1024**2,
        ge=1,
        description="A users or drift file larger than this (a CSV's size; a Parquet file's "
        "uncompressed size, or rows × columns × 8 bytes if more) is refused before it is read.",
    )
    database_schema: str | None = Field(
        default=None,
        description="Postgres schema to use instead of public (tests isolate themselves so).",
    )
    api_keys: str | None = Field(
        default=None, description="Comma-separated API keys of the recommendation API clients."
    )
    api_model: str | None = Field(
        default=None, description="Model the API serves when a request names none."
    )
    alert_webhook_url: str | None = Field(
        default=None, description="POST every new alert as JSON to this URL (optional)."
    )
    monitor_window_minutes: float = Field(
        default=60.0,
        gt=0,
        le=7 * 24 * 60,
        description="Length of a monitoring window (a model may set its own, "
        "settings['monitor_window_minutes']).",
    )
    monitor_min_rows: int = Field(
        default=100,
        ge=1,
        description="A window with fewer logged requests is recorded as too small to judge.",
    )
    monitor_lookback_hours: float = Field(
        default=48.0,
        gt=0,
        description="How far back a worker catches up on windows it missed (oldest first).",
    )
    monitor_grace_seconds: float = Field(
        default=20.0,
        ge=0,
        description="A window is computed this long after it ends, so the API's last log "
        "batch of it has arrived.",
    )
    log_stall_seconds: float = Field(
        default=30.0,
        gt=0,
        description="The API's /health calls its prediction log not draining when a record "
        "has waited this long to be written.",
    )
    log_retention_days: int = Field(
        default=90,
        ge=1,
        le=36_500,
        description="Raw prediction log rows are kept this many days (PostgreSQL: the "
        "worker drops whole daily partitions past it); hourly rollups, drift and monitoring "
        "results are kept.",
    )
    session_idle_minutes: float = Field(
        default=60.0,
        gt=0,
        description="A dashboard session without activity for this long is signed out.",
    )
    mlflow_tracking_uri: str | None = Field(
        default=None,
        description="Also log every training run to this MLflow tracking server (optional); "
        "MLflow being down never fails a training.",
    )
    mlflow_experiment: str = Field(
        default="planwise-monitor",
        min_length=1,
        description="MLflow experiment that training runs are logged under.",
    )
    mlflow_attempts: int = Field(
        default=3,
        ge=1,
        le=10,
        description="Tries at logging one training run to MLflow before giving up on it.",
    )
    mlflow_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        le=120,
        description="Timeout of one MLflow request, so a server that is down costs a "
        "training seconds, not minutes.",
    )

    @field_validator("database_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        scheme = value.split("://", 1)[0]
        if "://" not in value or scheme not in SUPPORTED_SCHEMES:
            raise ValueError(
                "DATABASE_URL must start with sqlite:/// or postgresql+psycopg://, "
                f"got {mask_url(value)!r}"
            )
        if scheme in ("postgresql", "postgres"):  # postgres:// is what many hosts hand out
            # psycopg 3 is the only Postgres driver installed; say so in the URL.
            value = "postgresql+psycopg://" + value.split("://", 1)[1]
        return value

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, mask_url(value) if name == "database_url" else value

    @property
    def safe_database_url(self) -> str:
        """The database URL to show in messages and logs: the password masked."""
        return mask_url(self.database_url)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def resolved_database_url(self) -> str:
        """The URL with a relative SQLite path anchored at the project root."""
        if self.is_sqlite and ":///" in self.database_url:  # sqlite:// is in memory
            path = self.database_url.split(":///", 1)[1]
            if path and path != ":memory:" and not Path(path).is_absolute():
                return f"sqlite:///{PROJECT_ROOT / path}"
        return self.database_url

    @property
    def sqlite_file(self) -> Path | None:
        """The SQLite database's file; None for PostgreSQL and for a database in memory
        (``sqlite://``, ``:memory:``, ``mode=memory``), which lives in one process only."""
        if not self.is_sqlite:
            return None
        url = self.resolved_database_url()
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path in ("", ":memory:") or "mode=memory" in path:
            return None
        return Path(path)

    @property
    def artifacts_root(self) -> Path:
        """The local folder artifacts are read from: the store itself, or for an object store
        a cache of verified copies under ``DATA_DIR`` (models are loaded from local files)."""
        url = self.artifacts_url
        if url is None:
            return _anchor(Path(self.artifacts_dir.removeprefix("file://")))
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in url)
        return self.data_root / "artifact-cache" / safe

    @property
    def artifacts_url(self) -> str | None:
        """The object-store URL of the artifacts, or None when they live in a local folder."""
        value = self.artifacts_dir
        if "://" in value and not value.startswith("file://"):
            return value.rstrip("/")
        return None

    @property
    def data_root(self) -> Path:
        return _anchor(self.data_dir)


def _anchor(path: Path) -> Path:
    return path if path.is_absolute() else PROJECT_ROOT / path


@functools.cache
def get_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        # Pydantic's own message quotes the input (a URL with its password): the problems are
        # named without it, and the original is not chained for a traceback to print.
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']).upper() or 'settings'}: "
            f"{e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors(include_input=False, include_url=False)
        )
        raise ConfigError(redact(f"bad setting: {problems}")) from None


def reset_settings() -> None:
    """Forget cached settings and engines (tests change the environment between cases)."""
    get_settings.cache_clear()
    from core import db

    db.dispose_engines()


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***``: the one way a database URL is shown
    (messages, logs, pages). SQLAlchemy renders what it can parse; a URL it cannot parse (a bad
    port, say) is masked by hand, between the first ``:`` after the scheme and the last ``@``.
    """
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - unparsable: masked below all the same
        shown = url
        scheme, sep, rest = url.partition("://")
        at = rest.rfind("@")
        if sep and at >= 0 and ":" in rest[:at]:
            shown = f"{scheme}://{rest[:at].split(':', 1)[0]}:***@{rest[at + 1 :]}"
    return _QUERY_PASSWORD.sub(r"\1***", shown)


def redact(text: str) -> str:
    """``text`` without the database password that ``DATABASE_URL`` holds: for messages made
    of other libraries' errors, which may quote the URL (or the password alone)."""
    raw = os.environ.get("DATABASE_URL", "")
    if not raw or "@" not in raw and "password" not in raw.lower():
        return text
    text = text.replace(raw, mask_url(raw))
    secrets = {raw.partition("://")[2].rpartition("@")[0].partition(":")[2]}
    with contextlib.suppress(Exception):  # unparsable: its raw password was taken above
        secrets.add(make_url(raw).password or "")
    secrets.update(m.group(2) for m in _QUERY_PASSWORD.finditer(raw))
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 4:  # shorter ones would mask ordinary words, and guard nothing
            text = text.replace(secret, "***")
    return text


_QUERY_PASSWORD = re.compile(r"(?i)([?&;]password=)([^&;\s]*)")
