"""Every cached call of the dashboard, through one decorator (:mod:`dashboard.cache.cached`).

* ``resource=True`` (``st.cache_resource``): start-up work done once per process and registry
  (schema, first admin, the warm-up), the shipped catalogue, and built charts (shared, never
  changed).
* otherwise (``st.cache_data``): query results. Registry reads live briefly and are cleared by
  :func:`registry_changed` after every write; results that depend only on immutable things (a
  version number, a dataset version) are kept longer.

Every key includes the registry (database and artifact locations), so two registries in one
process (tests, benchmarks) never share entries. The registry's reads, the rankings and the
warm-up are used as ``cache.models()``; the other areas as ``cache.monitoring.summary()``,
``cache.insight.request_page()``, ``cache.rollout.plan()`` and ``cache.figures.figure()``,
imported at first use: their ``core`` modules (SciPy's statistics among them) and Plotly would
slow the sign-in page, which imports this package.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

from dashboard.cache.cached import REGISTRY_TTL, RESULT_TTL, cached, registry_key
from dashboard.cache.ranking import (
    VersionFailed,
    audit_review,
    list_diff,
    predicted_categories,
    recommend,
)
from dashboard.cache.registry import (
    GENERATED,
    artifact_status,
    baseline,
    catalogue_points,
    catch_all_categories,
    dataset_list,
    ensure_ready,
    metric_trend,
    model,
    models,
    newest,
    production_history,
    recent_events,
    registry_changed,
    stage_holder,
    timeline,
    users,
    verdicts,
    version,
    versions,
)
from dashboard.cache.warm_up import start_warm_up, warm_up_done

if TYPE_CHECKING:
    from dashboard.cache import figures, insight, monitoring, rollout

AREAS = ("figures", "insight", "monitoring", "rollout")


def __getattr__(name: str) -> ModuleType:
    if name in AREAS:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "GENERATED",
    "REGISTRY_TTL",
    "RESULT_TTL",
    "VersionFailed",
    "artifact_status",
    "audit_review",
    "baseline",
    "cached",
    "catalogue_points",
    "catch_all_categories",
    "dataset_list",
    "ensure_ready",
    "figures",
    "insight",
    "list_diff",
    "metric_trend",
    "model",
    "models",
    "monitoring",
    "newest",
    "predicted_categories",
    "production_history",
    "recent_events",
    "recommend",
    "registry_changed",
    "registry_key",
    "rollout",
    "stage_holder",
    "start_warm_up",
    "timeline",
    "users",
    "verdicts",
    "version",
    "versions",
    "warm_up_done",
]
