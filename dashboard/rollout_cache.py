"""Cached reads of the Rollout page: the plan, the A/B readout, shadow scores.

The worker changes a plan every few seconds at most and the readout moves with the traffic,
so these reads live for :data:`ROLLOUT_TTL` seconds and are cleared after an operator acts.
Each cached function takes ``registry_key`` first, as in :mod:`dashboard.cache`.
"""

from __future__ import annotations

import datetime as dt

import streamlit as st

from core import rollout
from core.data import catalogue
from core.rollout import ab, shadow
from dashboard.cache import registry_key

ROLLOUT_TTL = 10  # seconds


def plan(model: str) -> rollout.Plan | None:
    return _plan(registry_key(), model)


@st.cache_data(ttl=ROLLOUT_TTL, max_entries=32, show_spinner=False)
def _plan(registry_key: str, model: str) -> rollout.Plan | None:
    return rollout.current(model)


def events(plan_id: int) -> list[rollout.Event]:
    return _events(registry_key(), plan_id)


@st.cache_data(ttl=ROLLOUT_TTL, max_entries=32, show_spinner=False)
def _events(registry_key: str, plan_id: int) -> list[rollout.Event]:
    return rollout.events(plan_id)


def readout(
    model: str, since: dt.datetime | None, thresholds: dict[str, object] | None
) -> ab.Readout:
    items = tuple(sorted((thresholds or {}).items()))
    return _readout(registry_key(), model, since, items)


@st.cache_data(ttl=ROLLOUT_TTL, max_entries=32, show_spinner=False)
def _readout(
    registry_key: str, model: str, since: dt.datetime | None, thresholds: tuple
) -> ab.Readout:
    return ab.readout(model, since=since, thresholds=dict(thresholds))


def ctr_series(
    model: str, production: str | None, canary: str | None, since: dt.datetime
) -> list[ab.ArmPoint]:
    return _ctr_series(registry_key(), model, production, canary, since)


@st.cache_data(ttl=ROLLOUT_TTL, max_entries=32, show_spinner=False)
def _ctr_series(
    registry_key: str, model: str, production: str | None, canary: str | None, since: dt.datetime
) -> list[ab.ArmPoint]:
    return ab.ctr_series(model, production, canary, since=since)


def shadow_summary(model: str) -> shadow.Summary:
    return _shadow_summary(registry_key(), model)


@st.cache_data(ttl=ROLLOUT_TTL, max_entries=32, show_spinner=False)
def _shadow_summary(registry_key: str, model: str) -> shadow.Summary:
    return shadow.summary(model)


def shadow_recent(model: str) -> list[shadow.ShadowScore]:
    return _shadow_recent(registry_key(), model)


@st.cache_data(ttl=ROLLOUT_TTL, max_entries=32, show_spinner=False)
def _shadow_recent(registry_key: str, model: str) -> list[shadow.ShadowScore]:
    return shadow.recent(model, limit=20)


@st.cache_resource(show_spinner=False)
def place_names() -> dict[str, str]:
    """Place id → name, to show places rather than ids."""
    cat = catalogue.load()
    return dict(zip(cat.place_ids.tolist(), cat.names.tolist(), strict=True))


def rollout_changed() -> None:
    for fn in (_plan, _events, _readout, _ctr_series, _shadow_summary, _shadow_recent):
        fn.clear()
