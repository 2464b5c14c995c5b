"""Versions: register a staged artifact folder as the next version; find and list them.

Registration publishes the folder and commits the row in one step (see
:func:`register_version`), so the registry and the artifact folders never disagree.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.accounts.auth import Actor, require
from core.db import transaction, utcnow
from core.db.tables import STAGES, DatasetRow, ModelRow, StageEventRow, VersionRow
from core.errors import AlreadyExists, BadInput, NotFound
from core.registry import artifacts, provenance, semver
from core.registry.entities import Page, VersionInfo
from core.registry.family_rules import FAMILIES, check_parent, may_register
from core.registry.lookups import model_row, stage_holder, version_info, version_row
from core.registry.models import check_name

log = logging.getLogger(__name__)
MAX_PAGE_SIZE = 500


def get_version(model: str, version: str | None = None, *, stage: str | None = None) -> VersionInfo:
    """A version by number, or the one holding ``stage`` (``production`` when neither given)."""
    with transaction(write=False) as s:
        m = model_row(s, model)
        if version is not None:
            return version_info(s, version_row(s, m, version), m.name)
        stage = stage or "production"
        row = stage_holder(s, m.id, stage)
        if row is None:
            raise NotFound(f"model {model!r} has no {stage} version")
        return version_info(s, row, m.name)


def find_version(model: str, stage: str) -> VersionInfo | None:
    try:
        return get_version(model, stage=stage)
    except NotFound:
        return None


def list_versions(
    *,
    model: str | None = None,
    stage: str | None = None,
    family: str | None = None,
    search: str | None = None,
    page: int = 1,
    page_size: int = 50,
) -> Page[VersionInfo]:
    """Newest first, filtered and paginated in SQL (fast with thousands of versions)."""
    if stage is not None and stage not in STAGES:
        raise BadInput(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")
    if page < 1 or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise BadInput(f"page must be ≥ 1 and page size between 1 and {MAX_PAGE_SIZE}")
    with transaction(write=False) as s:
        stmt = select(VersionRow, ModelRow.name).join(ModelRow)
        if model:
            stmt = stmt.where(ModelRow.name == model)
        if stage:
            stmt = stmt.where(VersionRow.stage == stage)
        if family:
            stmt = stmt.where(VersionRow.family == family)
        if search:
            pattern = f"%{search.strip()}%"
            stmt = stmt.where(
                or_(
                    ModelRow.name.ilike(pattern),
                    VersionRow.version.ilike(pattern),
                    VersionRow.description.ilike(pattern),
                    VersionRow.created_by.ilike(pattern),
                )
            )
        total = s.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        rows = s.execute(
            stmt.order_by(VersionRow.created_at.desc(), VersionRow.id.desc())
            .offset((page - 1) * page_size)
            .limit(page_size)
        ).all()
        return Page([version_info(s, r[0], r[1]) for r in rows], total, page, page_size)


def register_version(
    *,
    actor: Actor,
    model: str,
    family: str,
    staged_dir: Path,
    metrics: Mapping[str, Any] | None = None,
    hyperparameters: Mapping[str, Any] | None = None,
    dataset_id: int | None = None,
    parent: tuple[str, str] | None = None,
    description: str = "",
    metadata: Mapping[str, Any] | None = None,
    version: str | None = None,
    bump: semver.Bump = "minor",
) -> VersionInfo:
    """Publish a staged artifact folder as a new ``candidate`` version.

    The folder is moved into ``<family>/v<version>`` and the row is committed only after the
    files are complete; if the commit fails the folder is removed again, so registry and
    artifacts never disagree. The model is created on first use.
    """
    require(actor, "operate", "register model versions")
    check_name(model)
    if family not in FAMILIES:
        raise BadInput(f"unknown family {family!r}; families are {', '.join(FAMILIES)}")
    if not staged_dir.is_dir():
        raise BadInput(f"staged artifact folder {staged_dir} does not exist")
    published: artifacts.Published | None = None
    try:
        with transaction() as s:
            m = s.scalar(select(ModelRow).where(ModelRow.name == model).with_for_update())
            if m is None:
                m = ModelRow(name=model, family=family, description=description, settings={})
                s.add(m)
                s.flush()
            elif not may_register(m.family, family):
                raise BadInput(f"model {model!r} is of family {m.family!r}, not {family!r}")
            parts = _next_version(s, m, version, bump)
            number = semver.fmt(parts)
            dataset = s.get(DatasetRow, dataset_id) if dataset_id is not None else None
            if dataset_id is not None and dataset is None:
                raise NotFound(f"unknown dataset id {dataset_id}")
            parent_row = None
            if parent is not None:
                parent_row = version_row(s, model_row(s, parent[0]), parent[1])
                check_parent(family, "@".join(parent), parent_row.family)
            meta = _metadata(
                model,
                number,
                family,
                metrics,
                hyperparameters,
                dataset,
                parent,
                description,
                actor,
                metadata,
            )
            published = artifacts.publish(
                staged_dir,
                relative_dir=artifacts.version_dir_name(family, model, number),
                metadata=meta,
            )
            row = VersionRow(
                model_id=m.id,
                version=number,
                major=parts[0],
                minor=parts[1],
                patch=parts[2],
                stage="candidate",
                family=family,
                artifact_dir=published.relative_dir,
                files=published.files,
                meta={**meta, "files": published.files},
                metrics=dict(metrics or {}),
                hyperparameters=dict(hyperparameters or {}),
                dataset_id=dataset_id,
                parent_id=None if parent_row is None else parent_row.id,
                description=description,
                created_by=actor.username,
            )
            s.add(row)
            s.flush()
            s.add(
                StageEventRow(
                    model_id=m.id,
                    version_id=row.id,
                    action="register",
                    from_stage=None,
                    to_stage="candidate",
                    actor=actor.username,
                    reason=description,
                    gates=[],
                )
            )
            info = version_info(s, row, m.name)
    except IntegrityError as exc:
        if published is not None:
            artifacts.unpublish(published.relative_dir)
        raise AlreadyExists(
            f"version of model {model!r} was registered concurrently; retry"
        ) from exc
    except BaseException:
        if published is not None:
            artifacts.unpublish(published.relative_dir)
        raise
    log.info("registered %s", info.label)
    return info


def _next_version(
    s: Session, m: ModelRow, version: str | None, bump: semver.Bump
) -> tuple[int, int, int]:
    existing = [
        (major, minor, patch)
        for major, minor, patch in s.execute(
            select(VersionRow.major, VersionRow.minor, VersionRow.patch).where(
                VersionRow.model_id == m.id
            )
        )
    ]
    if version is not None:
        parts = semver.parse(version)
        if parts in existing:
            raise AlreadyExists(f"model {m.name!r} already has version {semver.fmt(parts)}")
        return parts
    return semver.bump(max(existing) if existing else None, bump)


def _metadata(
    model: str,
    version: str,
    family: str,
    metrics: Mapping[str, Any] | None,
    hyperparameters: Mapping[str, Any] | None,
    dataset: DatasetRow | None,
    parent: tuple[str, str] | None,
    description: str,
    actor: Actor,
    extra: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """``metadata.json``: the Planwise format plus lineage and provenance."""
    meta: dict[str, Any] = {
        "model_name": model,
        "version": version,
        "family": family,
        "created_at": utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "created_by": actor.username,
        "python_version": provenance.python_version(),
        "performance": dict(metrics or {}),
        "hyperparameters": dict(hyperparameters or {}),
        "training_dataset": None if dataset is None else dataset.source_name,
        "dataset": None
        if dataset is None
        else {"name": dataset.name, "version": dataset.version, "sha256": dataset.sha256},
        "parent_version": None if parent is None else {"model": parent[0], "version": parent[1]},
        "code_revision": provenance.code_revision(),
        "libraries": provenance.library_versions(),
        "description": description,
    }
    extra = dict(extra or {})
    libraries = {**meta["libraries"], **extra.pop("libraries", {})}
    meta.update(extra)
    meta["libraries"] = libraries
    return meta


def verified_dir(version: VersionInfo) -> Path:
    """The version's folder, after every file matched its recorded SHA-256."""
    return artifacts.verify(version.artifact_dir, version.files)


def known_artifact_dirs() -> set[str]:
    with transaction(write=False) as s:
        return set(s.scalars(select(VersionRow.artifact_dir)).all())
