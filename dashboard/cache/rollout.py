"""Cached reads of the Rollout page: the plan, the A/B readout, shadow scores.

The worker changes a plan every few seconds at most and the readout moves with the traffic,
so these reads live for :data:`ROLLOUT_TTL` seconds and are cleared after an operator acts.
"""

from __future__ import annotations

import datetime as dt

from core import rollout
from core.data import catalogue
from core.rollout import ab, shadow
from dashboard.cache.cached import cached

ROLLOUT_TTL = 10  # seconds


@cached(ttl=ROLLOUT_TTL, max_entries=32)
def plan(model: str) -> rollout.Plan | None:
    return rollout.current(model)


@cached(ttl=ROLLOUT_TTL, max_entries=32)
def events(plan_id: int) -> list[rollout.Event]:
    return rollout.events(plan_id)


@cached(ttl=ROLLOUT_TTL, max_entries=32)
def readout(
    model: str, since: dt.datetime | None, thresholds: dict[str, object] | None
) -> ab.Readout:
    return ab.readout(model, since=since, thresholds=dict(thresholds or {}))


@cached(ttl=ROLLOUT_TTL, max_entries=32)
def ctr_series(
    model: str, production: str | None, canary: str | None, since: dt.datetime
) -> list[ab.ArmPoint]:
    return ab.ctr_series(model, production, canary, since=since)


@cached(ttl=ROLLOUT_TTL, max_entries=32)
def shadow_summary(model: str) -> shadow.Summary:
    return shadow.summary(model)


@cached(ttl=ROLLOUT_TTL, max_entries=32)
def shadow_recent(model: str) -> list[shadow.ShadowScore]:
    return shadow.recent(model, limit=20)


@cached(resource=True, per_registry=False)
def place_names() -> dict[str, str]:
    """Place id → name, to show places rather than ids."""
    cat = catalogue.load()
    return dict(zip(cat.place_ids.tolist(), cat.names.tolist(), strict=True))


def rollout_changed() -> None:
    for fn in (plan, events, readout, ctr_series, shadow_summary, shadow_recent):
        fn.clear()
