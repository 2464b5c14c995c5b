"""Plain, frozen views of registry rows: what ``core`` hands to its callers."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class DatasetRef:
    name: str
    version: int
    sha256: str

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class ModelInfo:
    name: str
    family: str
    description: str
    require_audit: bool
    settings: dict[str, Any]
    canary_share: float
    stage_revision: int
    created_at: dt.datetime
    production: str | None = None
    staging: str | None = None
    latest: str | None = None
    version_count: int = 0


@dataclass(frozen=True)
class VersionInfo:
    id: int
    model: str
    version: str
    stage: str
    family: str
    artifact_dir: str
    files: dict[str, str]
    metadata: dict[str, Any]
    metrics: dict[str, Any]
    hyperparameters: dict[str, Any]
    dataset: DatasetRef | None
    parent: tuple[str, str] | None
    description: str
    created_by: str
    created_at: dt.datetime

    @property
    def label(self) -> str:
        return f"{self.model}@{self.version}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "stage": self.stage,
            "family": self.family,
            "artifact_dir": self.artifact_dir,
            "files": self.files,
            "metrics": self.metrics,
            "hyperparameters": self.hyperparameters,
            "dataset": None
            if self.dataset is None
            else {
                "name": self.dataset.name,
                "version": self.dataset.version,
                "sha256": self.dataset.sha256,
            },
            "parent": None
            if self.parent is None
            else {"model": self.parent[0], "version": self.parent[1]},
            "description": self.description,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "metadata": self.metadata,
        }


@dataclass(frozen=True)
class StageEvent:
    id: int
    model: str
    version: str
    action: str
    from_stage: str | None
    to_stage: str
    actor: str
    reason: str
    gates: list[dict[str, Any]]
    created_at: dt.datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "version": self.version,
            "action": self.action,
            "from_stage": self.from_stage,
            "to_stage": self.to_stage,
            "actor": self.actor,
            "reason": self.reason,
            "gates": self.gates,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True)
class StageChange:
    """The outcome of a promotion or rollback: the event, the gates, what was displaced."""

    event: StageEvent
    gates: list[dict[str, Any]]
    displaced: StageEvent | None = None


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


@dataclass(frozen=True)
class AuditVerdict:
    id: int
    model: str
    version: str
    auditor: str
    verdict: str
    comment: str
    created_at: dt.datetime
    sample: dict[str, Any] = field(default_factory=dict)
