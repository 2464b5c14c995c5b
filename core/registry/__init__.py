"""The model registry: models, versions, stages and the audit timeline.

This package's face: callers write ``from core import registry`` and
``registry.get_version(...)``. The rules live in one module each: :mod:`.models` (models and
their settings), :mod:`.versions` (registering, finding and listing versions), :mod:`.stages`
(promotion, archiving, the stage timeline) and :mod:`.rollbacks` (the rollback target and the
rollback). Every public function is one transaction.

A test that replaces a function or name of the registry must patch the module that uses it
(``core.registry.versions.StageEventRow``), not this facade: the modules call each other
directly.
"""

from __future__ import annotations

from core.db.tables import STAGES
from core.registry.entities import (
    AuditVerdict,
    DatasetRef,
    ModelInfo,
    Page,
    SettingEvent,
    StageChange,
    StageEvent,
    VersionInfo,
)
from core.registry.models import (
    FAMILIES,
    check_name,
    create_model,
    get_model,
    list_models,
    set_audit_requirement,
    setting_events,
    update_model,
)
from core.registry.rollbacks import RollbackPlan, rollback, rollback_plan
from core.registry.stages import (
    TargetStage,
    archive,
    preview_gates,
    production_at,
    production_history,
    promote,
    timeline,
)
from core.registry.versions import (
    MAX_PAGE_SIZE,
    find_version,
    get_version,
    known_artifact_dirs,
    list_versions,
    register_version,
    verified_dir,
)

__all__ = [
    "FAMILIES",
    "MAX_PAGE_SIZE",
    "STAGES",
    "AuditVerdict",
    "DatasetRef",
    "ModelInfo",
    "Page",
    "RollbackPlan",
    "SettingEvent",
    "StageChange",
    "StageEvent",
    "TargetStage",
    "VersionInfo",
    "archive",
    "check_name",
    "create_model",
    "find_version",
    "get_model",
    "get_version",
    "known_artifact_dirs",
    "list_models",
    "list_versions",
    "preview_gates",
    "production_at",
    "production_history",
    "promote",
    "register_version",
    "rollback",
    "rollback_plan",
    "set_audit_requirement",
    "setting_events",
    "timeline",
    "update_model",
    "verified_dir",
]
