"""Cached reads of the registry, the datasets and the catalogue, and the start-up work.

Registry reads live briefly (:data:`REGISTRY_TTL`) and are cleared by :func:`registry_changed`
after every write, so the page that made a change shows it at once; other sessions see it
within the TTL, and a promotion from a stale page is refused by ``core``
(``expected_revision``) with a message saying why. A dataset version never changes (its
SHA-256 is checked on load), so its users are kept long.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from core import registry
from core.accounts import bootstrap
from core.data import datasets
from core.data.datasets import DatasetInfo
from core.registry import artifacts, audit
from core.registry.entities import AuditVerdict, ModelInfo, Page, StageEvent, VersionInfo
from core.review import comparison
from dashboard.cache.cached import REGISTRY_TTL, RESULT_TTL, cached

log = logging.getLogger(__name__)

GENERATED = "generated users"


# ------------------------------------------------------------------------ start-up


@cached(resource=True, spinner="Preparing the registry…")
def ensure_ready() -> None:
    """Schema up to date and a first admin account, once per process and registry."""
    report = bootstrap.ensure_ready()
    if report.admin_password:
        # Printed to the terminal that started the dashboard, never shown in a browser.
        log.warning(
            "created user 'admin' with one-time password: %s (change it at first sign-in)",
            report.admin_password,
        )


# ------------------------------------------------------------------------ registry reads


@cached(ttl=REGISTRY_TTL)
def models() -> list[ModelInfo]:
    return registry.list_models()


@cached(ttl=REGISTRY_TTL)
def model(name: str) -> ModelInfo:
    return registry.get_model(name)


@cached(ttl=REGISTRY_TTL)
def versions(
    *,
    model: str | None = None,
    stage: str | None = None,
    family: str | None = None,
    search: str | None = None,
    page: int = 1,
    page_size: int = 50,
) -> Page[VersionInfo]:
    return registry.list_versions(
        model=model,
        stage=stage,
        family=family,
        search=search or None,
        page=page,
        page_size=page_size,
    )


@cached(ttl=REGISTRY_TTL)
def version(model: str, number: str) -> VersionInfo:
    return registry.get_version(model, number)


@cached(ttl=REGISTRY_TTL)
def stage_holder(model: str, stage: str) -> VersionInfo | None:
    return registry.find_version(model, stage)


def newest(model: str, stage: str | None = None) -> VersionInfo | None:
    """The most recently registered version of a model (in ``stage``, if given)."""
    page = versions(model=model, stage=stage, page_size=1)
    return page.items[0] if page.items else None


@cached(ttl=REGISTRY_TTL)
def timeline(model: str) -> list[StageEvent]:
    return registry.timeline(model)


@cached(ttl=REGISTRY_TTL)
def recent_events(limit: int = 10) -> list[StageEvent]:
    """The newest stage events of all models."""
    return registry.timeline(limit=limit)


@cached(ttl=REGISTRY_TTL)
def production_history(model: str) -> list[tuple[str, Any, Any]]:
    return registry.production_history(model)


@cached(ttl=REGISTRY_TTL)
def verdicts(model: str, number: str) -> list[AuditVerdict]:
    return audit.verdicts(model, number)


def artifact_status(v: VersionInfo) -> dict[str, str]:
    """Per-file integrity; hashing large files is slow, so results live for a minute.

    Keyed by the files alone (not the whole version, whose stage and notes move), so a
    promotion does not hash the files again.
    """
    return _artifact_status(v.artifact_dir, tuple(sorted(v.files.items())))


@cached(ttl=60, spinner="Checking artifact hashes…")
def _artifact_status(artifact_dir: str, files: tuple[tuple[str, str], ...]) -> dict[str, str]:
    return artifacts.check(artifact_dir, dict(files))


@cached(ttl=REGISTRY_TTL)
def metric_trend(model: str) -> pd.DataFrame:
    return comparison.metric_trend(model)


@cached(ttl=REGISTRY_TTL)
def baseline() -> VersionInfo | None:
    return comparison.find_baseline()


def registry_changed() -> None:
    """Forget registry reads after a write, so every page shows the new state."""
    for fn in (
        models,
        model,
        versions,
        version,
        stage_holder,
        timeline,
        recent_events,
        production_history,
        verdicts,
        _artifact_status,
        metric_trend,
        baseline,
    ):
        fn.clear()


# ------------------------------------------------------------------------ datasets


@cached(ttl=REGISTRY_TTL)
def dataset_list() -> list[DatasetInfo]:
    return datasets.list_datasets()


@cached(ttl=RESULT_TTL, max_entries=8, spinner="Loading users…")
def users(source: str, *, generated_n: int = 500, seed: int = 0) -> pd.DataFrame:
    """The users of a dataset (``name@version``), or generated ones for :data:`GENERATED`."""
    if source == GENERATED:
        return comparison.generated_users(generated_n, seed=seed)
    return datasets.load_users(datasets.resolve(source))


# ------------------------------------------------------------------------ the catalogue


@cached(resource=True, per_registry=False)
def catalogue_points() -> tuple[np.ndarray, np.ndarray]:
    """Latitudes and longitudes of every place of the catalogue (a map without tiles)."""
    from core.data import catalogue

    places = catalogue.load()
    return places.lat.copy(), places.lng.copy()


@cached(resource=True, per_registry=False)
def catch_all_categories(mapping: Any = None) -> list[Any]:
    """``core.data.catalogue.catch_all_categories`` for a model's mapping (computed once each)."""
    from core.data import catalogue

    return catalogue.catch_all_categories(mapping)
