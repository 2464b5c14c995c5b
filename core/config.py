"""One settings object read from the environment.

Every entry point reads configuration through :func:`get_settings`, so a test can point the
whole stack at a temporary registry by setting three environment variables and calling
:func:`reset_settings`.
"""

from __future__ import annotations

import functools
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SUPPORTED_SCHEMES = ("sqlite", "postgresql+psycopg", "postgresql")


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
    session_idle_minutes: float = Field(
        default=60.0,
        gt=0,
        description="A dashboard session without activity for this long is signed out.",
    )

    @field_validator("database_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        scheme = value.split("://", 1)[0]
        if "://" not in value or scheme not in SUPPORTED_SCHEMES:
            raise ValueError(
                f"DATABASE_URL must start with sqlite:/// or postgresql+psycopg://, got {value!r}"
            )
        if scheme == "postgresql":
            # psycopg 3 is the only Postgres driver installed; say so in the URL.
            value = "postgresql+psycopg://" + value.split("://", 1)[1]
        return value

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
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise ConfigError(str(exc)) from exc


def reset_settings() -> None:
    """Forget cached settings and engines (tests change the environment between cases)."""
    get_settings.cache_clear()
    from core import db

    db.dispose_engines()
