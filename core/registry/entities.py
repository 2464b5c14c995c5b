"""Plain, frozen views of registry rows: what ``core`` hands to its callers.

The values read from rows are :class:`core.db.rows.Plain` (built with ``Info.of(row, ...)``);
the outcomes composed of them (a stage change, a page of results) are frozen dataclasses.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import Field

from core.db.rows import Plain

T = TypeVar("T")


class DatasetRef(Plain):
    """The dataset a version was trained on, as a version records it."""

    name: str
    version: int
    sha256: str

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"


class ModelInfo(Plain):
    """A model with its settings and, derived from its versions, who holds which stage."""

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


class VersionInfo(Plain):
    """A registered version. Fields are in the order of :meth:`as_dict` (the CLI's and the
    API's JSON); ``id`` is the database's and stays out of it."""

    model: str
    version: str
    stage: str
    family: str
    artifact_dir: str
    files: dict[str, str]
    metrics: dict[str, Any]
    hyperparameters: dict[str, Any]
    dataset: DatasetRef | None
    parent: tuple[str, str] | None
    description: str
    created_by: str
    created_at: dt.datetime
    metadata: dict[str, Any]
    id: int

    @property
    def label(self) -> str:
        return f"{self.model}@{self.version}"

    def as_dict(self) -> dict[str, Any]:
        out = super().as_dict()
        del out["id"]
        if self.parent is not None:
            out["parent"] = {"model": self.parent[0], "version": self.parent[1]}
        return out


class StageEvent(Plain):
    """One entry of the stage timeline: a registration, promotion, rollback or archival."""

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


class SettingEvent(Plain):
    """One change of a stage-level setting: who, when, from what to what, and why."""

    id: int
    model: str
    stage: str
    setting: str
    old_value: Any
    new_value: Any
    actor: str
    reason: str
    created_at: dt.datetime


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


class AuditVerdict(Plain):
    """An auditor's verdict on a version, with the sample of recommendations it judged."""

    id: int
    model: str
    version: str
    auditor: str
    verdict: str
    comment: str
    created_at: dt.datetime
    sample: dict[str, Any] = Field(default_factory=dict)
