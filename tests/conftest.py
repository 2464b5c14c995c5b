"""Shared fixtures: an isolated registry per test, on SQLite and on the real PostgreSQL.

The ``registry`` fixture is parametrised over both databases. Postgres tests use a fresh
schema each (dropped afterwards) in the database named by ``TEST_POSTGRES_URL`` (default: the
local server's ``test`` database). Under CI (``CI`` set) an unreachable Postgres fails the run
instead of skipping, so the Postgres half can never silently vanish.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

POSTGRES_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
PROJECT_ROOT = Path(__file__).resolve().parent.parent
LEGACY_MODEL = PROJECT_ROOT / "data" / "planwise" / "legacy_model"  # the original Planwise model
# Fixtures shared across folders (a conftest.py reaches only its own folder).
pytest_plugins = ["tests.fixtures.workers", "tests.fixtures.cli"]


def _postgres_reachable() -> str | None:
    import psycopg

    try:
        with psycopg.connect(POSTGRES_URL.replace("+psycopg", ""), connect_timeout=3):
            return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return str(exc)


@dataclass(frozen=True)
class RegistryEnv:
    backend: str
    root: Path
    env: dict[str, str]

    @property
    def artifacts(self) -> Path:
        return Path(self.env["ARTIFACTS_DIR"])

    @property
    def data(self) -> Path:
        return Path(self.env["DATA_DIR"])


def make_env(backend: str, root: Path) -> tuple[dict[str, str], str | None]:
    env = {"ARTIFACTS_DIR": str(root / "models"), "DATA_DIR": str(root / "data")}
    schema = None
    if backend == "sqlite":
        env["DATABASE_URL"] = f"sqlite:///{root / 'registry.db'}"
    else:
        problem = _postgres_reachable()
        if problem:
            message = f"PostgreSQL at {POSTGRES_URL} is not reachable: {problem}"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)
        schema = f"t_{uuid.uuid4().hex[:12]}"
        env["DATABASE_URL"] = POSTGRES_URL
        env["DATABASE_SCHEMA"] = schema
    return env, schema


def drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_URL.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgres"])
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RegistryEnv]:
    """A migrated, empty registry with its own artifact and data folders."""
    yield from _registry(request.param, tmp_path, monkeypatch)


@pytest.fixture
def sqlite_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RegistryEnv]:
    yield from _registry("sqlite", tmp_path, monkeypatch)


def _registry(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RegistryEnv]:
    from core.config import reset_settings
    from core.db import migrate

    env, schema = make_env(backend, tmp_path)
    monkeypatch.delenv("DATABASE_SCHEMA", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reset_settings()
    migrate.upgrade()
    try:
        yield RegistryEnv(backend, tmp_path, env)
    finally:
        reset_settings()
        if schema:
            drop_schema(schema)


def tree_snapshot(*roots: Path) -> dict[str, bytes]:
    """Every file under the given folders with its bytes, to prove nothing changed."""
    snap: dict[str, bytes] = {}
    for root in roots:
        if root.exists():
            for p in sorted(root.rglob("*")):
                if p.is_file() and not p.name.endswith((".lock", "-shm", "-wal")):
                    snap[str(p)] = p.read_bytes()
    return snap
