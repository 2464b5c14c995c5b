"""Builders the tests share; they go through the same core functions the product uses."""

from __future__ import annotations

from typing import Any

from sqlalchemy import inspect, select, text

from core import registry
from core.accounts.auth import SYSTEM, Actor
from core.db import Base, get_engine
from core.registry import artifacts
from core.registry.entities import VersionInfo


def register_dummy(
    model: str = "recsys",
    *,
    family: str = "popularity",
    metrics: dict[str, Any] | None = None,
    actor: Actor = SYSTEM,
    payload: bytes = b"weights",
    **kwargs: Any,
) -> VersionInfo:
    """A version whose artifact is a small file: enough for registry semantics."""
    with artifacts.staging_dir() as staged:
        (staged / "model.joblib").write_bytes(payload)
        return registry.register_version(
            actor=actor,
            model=model,
            family=family,
            staged_dir=staged,
            metrics=metrics or {"ndcg@5": 0.5, "rmse": 1.0},
            hyperparameters={"k": 1},
            **kwargs,
        )


def registry_dump() -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, to prove an operation changed nothing."""
    engine = get_engine()
    tables = [t for t in Base.metadata.sorted_tables if t.name in inspect(engine).get_table_names()]
    with engine.connect() as conn:
        dump = {
            t.name: [tuple(r) for r in conn.execute(select(t).order_by(*t.primary_key))]
            for t in tables
        }
        dump["alembic_version"] = [
            tuple(r)
            for r in conn.execute(text("SELECT version_num FROM alembic_version ORDER BY 1"))
        ]
    return dump
