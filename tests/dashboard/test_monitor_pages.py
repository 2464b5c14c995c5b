"""Monitoring under AppTest, on real simulated traffic: the empty states of the monitoring
pages, traffic per variant, the job's windows, alerts, resources and the overview's health.

Every test runs on a private copy of the simulated registry of
:func:`tests.dashboard.conftest.monitor_template` (two ``svd`` versions, production and a
30 % canary, and five simulated days with a summer drift episode from day 3).
"""

from __future__ import annotations

import os
import socket

import pytest
import streamlit as st

from core import monitoring
from core.accounts import auth
from core.accounts.auth import SYSTEM
from core.monitoring import alerts, drift_store
from tests.dashboard.conftest import MONITOR_PAGES as PAGES
from tests.dashboard.conftest import MONITOR_TITLES as TITLES
from tests.dashboard.conftest import QUIET, assert_clean, charts, sign_in
from tests.dashboard.conftest import chart_figure as _figure
from tests.dashboard.conftest import open_monitor_page as open_page
from tests.dashboard.conftest import page_text as _text
from tests.fixtures.dashboard import MODEL

# ------------------------------------------------------------------------ empty states


@pytest.mark.parametrize("page", list(PAGES))
def test_empty_registry_explains_what_will_appear(dash_registry, page: str) -> None:
    at = sign_in("victor")
    at.switch_page(PAGES[page]).run()
    assert_clean(at)
    assert at.title[0].value == TITLES[page]
    assert "python -m core simulate NAME" in _text(at)
    assert not charts(at)


@pytest.mark.parametrize("page", list(PAGES))
def test_a_model_without_traffic_says_how_to_produce_it(simulated, page: str) -> None:
    at = open_page(page, model=QUIET)
    text = _text(at)
    assert f"python -m core simulate {QUIET}" in text
    assert not charts(at)
    if page == "monitoring":
        assert "No request was logged in the last 24 hours" in text


# ------------------------------------------------------------------------ monitoring


def test_monitoring_page_shows_traffic_per_variant(simulated) -> None:
    summary = monitoring.summary(MODEL)
    at = open_page("monitoring")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Requests"] == f"{summary.requests:,}"
    assert metrics["Click-through"] == (f"{summary.click_through:.1%}" if summary.requests else "—")

    figures = charts(at)
    assert len(figures) == 5  # volume, latency, errors, clicks, recommendation health
    volume = _figure(at, "volume")["data"]
    by_variant = {t["name"]: sum(t["y"]) for t in volume if t["type"] == "bar"}
    assert set(by_variant) == {"production", "canary"}
    assert sum(by_variant.values()) == 500
    assert by_variant["canary"] == pytest.approx(150, abs=40)
    latency = _figure(at, "latency")["data"]
    assert {t["name"] for t in latency} == {
        f"{v} {p}" for v in ("production", "canary") for p in ("p50", "p95", "p99")
    }
    clicks = _figure(at, "clicks")["data"]
    assert all(0 < y < 1 for t in clicks for y in t["y"])

    day = len(_figure(at, "errors")["data"][0]["x"])
    at.segmented_control(key="monitoring_bucket").set_value("hour").run()
    assert_clean(at)
    hourly = _figure(at, "errors")["data"][0]["x"]
    assert len(hourly) > 4 * day  # a busy simulated day has requests in most hours
    at.segmented_control(key="monitoring_period").set_value("1 year").run()
    assert_clean(at)
    assert "this period is shown by day" in _text(at)
    assert len(_figure(at, "errors")["data"][0]["x"]) == day
    assert sum(sum(t["y"]) for t in _figure(at, "volume")["data"] if t["type"] == "bar") == 500


def test_monitoring_page_shows_the_jobs_windows_and_health(simulated) -> None:
    from core.monitoring import monitor

    stored = monitor.results(MODEL, kind="health")
    at = open_page("monitoring")
    text = _text(at)
    assert "Monitoring job: windows of 24 h" in text and "next due" in text
    health = _figure(at, "health")["data"]
    assert {t["name"] for t in health} == {"production"}  # the canary's days are too small
    points = sum(len(t["y"]) for t in health)
    assert points == sum(r.status == "ok" for r in stored) == 5
    # Another figure, and the windows' table with their figures in words.
    at.segmented_control(key="monitoring_health_metric").set_value("diversity").run()
    assert_clean(at)
    assert all(0 <= y <= 1 for t in _figure(at, "health")["data"] for y in t["y"])
    windows = next(d.value for d in at.dataframe if "figures" in d.value.columns)
    assert {"traffic", "data", "prediction", "health"} <= set(windows["kind"])
    assert windows["figures"].str.contains("requests").any()
    # A viewer cannot queue a recomputation; an operator can, and the worker is told.
    assert not [b for b in at.button if b.key == "monitoring_recompute"]
    op = open_page("monitoring", "olga")
    op.button(key="monitoring_recompute").click().run()
    assert_clean(op)
    assert monitor.status(MODEL).pending_requests == 1
    assert "1 recomputation waiting for the worker" in _text(op)


def test_an_operator_resolves_alerts_and_a_viewer_cannot(simulated) -> None:
    opened = alerts.list_alerts(MODEL)
    assert opened, "the drift episode raised alerts"
    viewer = open_page("monitoring", "victor")
    assert len(viewer.dataframe[0].value) == len(opened)
    assert not [b for b in viewer.button if b.key == "monitoring_resolve"]
    assert "as a viewer you can follow them" in _text(viewer)

    at = open_page("monitoring", "olga")
    chosen = [a.id for a in opened[:2]]
    at.multiselect(key="monitoring_resolve_ids").set_value(chosen).run()
    at.button(key="monitoring_resolve").click().run()
    assert_clean(at)
    assert any("Resolved 2 alerts" in s.value for s in at.success)
    still_open = {a.id for a in alerts.list_alerts(MODEL)}
    assert still_open == {a.id for a in opened} - set(chosen)
    resolved = {a.id: a for a in alerts.list_alerts(MODEL, status="resolved")}
    assert {resolved[i].resolved_by for i in chosen} == {"olga"}
    assert len(at.dataframe[0].value) == len(opened) - 2


def test_a_role_taken_away_meanwhile_is_refused_by_core(simulated) -> None:
    at = open_page("monitoring", "olga")
    target = alerts.list_alerts(MODEL)[0].id
    at.multiselect(key="monitoring_resolve_ids").set_value([target]).run()
    auth.set_role(actor=SYSTEM, username="olga", role="viewer")
    at.button(key="monitoring_resolve").click().run()
    assert not at.exception
    assert any("may not resolve alerts" in e.value.replace("\\", "") for e in at.error)
    assert target in {a.id for a in alerts.list_alerts(MODEL)}


def test_monitoring_page_draws_the_services_cpu_and_memory(simulated) -> None:
    from core.monitoring import resources

    at = open_page("monitoring")
    assert "none were recorded in this period" in _text(at)
    api, worker = resources.Sampler("api"), resources.Sampler("worker")
    recorded = [api.record(), worker.record(), api.record()]
    st.cache_data.clear()
    at = open_page("monitoring")
    traces = _figure(at, "resources")["data"]
    where = f"{socket.gethostname()}:{os.getpid()}"
    assert {t["name"] for t in traces} == {f"api {where}", f"worker {where}"}
    assert len(traces) == 4  # CPU and memory of each
    memory = [t for t in traces if t["yaxis"] == "y2" and t["name"].startswith("api")]
    assert max(memory[0]["y"]) == pytest.approx(max(recorded[0].rss_mb, recorded[2].rss_mb))


def test_overview_shows_serving_health_drift_and_alerts(simulated) -> None:
    at = sign_in("victor")
    assert_clean(at)
    assert at.title[0].value == "Overview"
    health = next(d.value for d in at.dataframe if "open alerts" in d.value.columns)
    health = health.set_index("model")
    summary = monitoring.summary(MODEL, hours=24)
    latest = drift_store.history(MODEL, "data")[-1]
    row = health.loc[MODEL]
    assert row["requests"] == summary.requests
    # Shares as people read them, and a dash where there is nothing (never "None").
    assert row["error rate"] == f"{summary.error_rate:.1%}"
    assert row["data drift"] == f"{latest.drift_share:.0%}"
    assert health.loc[QUIET, "error rate"] == "—" and health.loc[QUIET, "p99 latency"] == "—"
    assert row["open alerts"] == len(alerts.list_alerts(MODEL)) > 0
    assert health.loc[QUIET, "requests"] == 0 and health.loc[QUIET, "open alerts"] == 0
    assert any(MODEL in w.value and "Open alerts" in w.value for w in at.warning)
