"""Data drift, Prediction drift and Monitoring under AppTest, on real simulated traffic.

One registry is built per module through ``core`` (a generated dataset, two trained ``svd``
versions: production and a 30 % canary, and five simulated days with a summer drift episode
from day 3) and copied for each test, so tests that write (a report, a resolved alert) never
see each other's changes and the simulation runs once.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core import monitoring, registry, training
from core.accounts import auth
from core.accounts.auth import SYSTEM
from core.config import reset_settings
from core.data.generator import DriftEpisode
from core.db import migrate
from core.demo import simulate
from core.monitoring import alerts, drift_store
from dashboard import ui
from tests.conftest import make_env
from tests.dashboard.builders import create_accounts, ingest_users
from tests.dashboard.conftest import assert_clean, sign_in

PAGES = {
    "data": "app_pages/data_drift.py",
    "prediction": "app_pages/prediction_drift.py",
    "monitoring": "app_pages/monitoring.py",
}
TITLES = {"data": "Data drift", "prediction": "Prediction drift", "monitoring": "Monitoring"}
MODEL = "recsys"
QUIET = "popularity"  # in production, but no traffic


def _use(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    monkeypatch.delenv("DATABASE_SCHEMA", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reset_settings()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("monitor-registry")
    env, _ = make_env("sqlite", root)
    with pytest.MonkeyPatch.context() as mp:
        _use(mp, env)
        migrate.upgrade()
        create_accounts()
        ds = ingest_users(root, n=300)
        params = {"impute_rounds": 3, "fold_in_rounds": 3}
        first = training.train(
            actor=SYSTEM, family="svd", dataset=ds.label, model=MODEL, params={"rank": 3, **params}
        ).version.version
        second = training.train(
            actor=SYSTEM, family="svd", dataset=ds.label, model=MODEL, params={"rank": 5, **params}
        ).version.version
        registry.promote(actor=SYSTEM, model=MODEL, version=first, stage="production")
        registry.promote(actor=SYSTEM, model=MODEL, version=second, stage="staging")
        registry.update_model(
            actor=SYSTEM,
            name=MODEL,
            canary_share=0.3,
            # A hundred requests a day: judged by day (the monitoring job's window).
            settings={"monitor_window_minutes": 24 * 60, "monitor_min_rows": 50},
        )
        quiet = training.train(
            actor=SYSTEM, family="popularity", dataset=ds.label, model=QUIET
        ).version.version
        registry.promote(actor=SYSTEM, model=QUIET, version=quiet, stage="production")
        simulate.simulate(
            actor=SYSTEM, model=MODEL, days=5, users_per_day=100, drift=DriftEpisode(3)
        )
    reset_settings()  # closes the engine, so the copies below are complete
    yield root


@pytest.fixture
def simulated(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private copy of the simulated registry; dashboard caches start cold."""
    root = tmp_path / "registry"
    shutil.copytree(template, root)
    env, _ = make_env("sqlite", root)
    _use(monkeypatch, env)
    st.cache_data.clear()
    yield root
    st.cache_data.clear()
    reset_settings()


def open_page(page: str, user: str = "victor", *, model: str = MODEL) -> AppTest:
    at = sign_in(user)
    at.switch_page(PAGES[page]).run()
    assert_clean(at)
    assert at.title[0].value == TITLES[page]
    if at.selectbox and at.selectbox[0].label == "Model" and at.selectbox[0].value != model:
        at.selectbox[0].select(model).run()
        assert_clean(at)
    return at


def _text(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [i.value for i in at.info] + [s.value for s in at.success]
    return " ".join(parts).replace("\\", "")


def charts(at: AppTest) -> dict[str, dict]:
    """The page's Plotly figures by widget key, as the browser receives them."""
    out = {}
    for element in at.get("plotly_chart"):
        figure = json.loads(element.proto.spec)
        out[element.proto.id] = figure
    return out


def _figure(at: AppTest, key: str) -> dict:
    found = [f for k, f in charts(at).items() if key in k]
    assert len(found) == 1, list(charts(at))
    return found[0]


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


# ------------------------------------------------------------------------ data drift


def test_data_drift_page_draws_the_stored_results(simulated) -> None:
    records = drift_store.history(MODEL, "data")
    latest = drift_store.get(records[-1].id)
    assert len(records) == 5
    at = open_page("data")

    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Drift share (latest)"] == f"{latest.drift_share:.0%}"
    assert metrics["Drifted columns"] == f"{len(latest.drifted_columns)} of 29"
    assert metrics["Results"] == "5"

    over_time = _figure(at, "over_time")
    names = [t["name"] for t in over_time["data"]]
    ranked = sorted(latest.columns, key=lambda c: -latest.columns[c]["score"])
    assert names == ["drift share", *ranked[:6]]
    share = over_time["data"][0]
    assert share["y"] == pytest.approx([r.drift_share for r in records])

    table = at.dataframe[0].value
    assert list(table.columns) == ["column", "drifted", "method", "score", "threshold"]
    assert len(table) == 29 and set(table["method"]) == {"wasserstein"}
    for row in table.itertuples():
        stored = latest.columns[row.column]
        assert (row.drifted, row.score, row.threshold) == (
            stored["drifted"],
            pytest.approx(stored["score"]),
            stored["threshold"],
        )
    assert list(table["score"]) == sorted(table["score"], reverse=True)

    # Another result and column: the bars are that result's stored histogram, as shares.
    first = drift_store.get(records[0].id)
    at.selectbox(key="data_drift_result").select(first.id).run()
    at.selectbox(key="data_drift_column").select("museums").run()
    assert_clean(at)
    bars = _figure(at, "distribution")["data"]
    stored = first.summaries["museums"]
    assert [b["x"] for b in bars] == [[f"{v:g}" for v in stored["values"]]] * 2
    for bar, side in zip(bars, ("reference", "current"), strict=True):
        counts = stored[side]
        assert bar["y"] == pytest.approx([c / sum(counts) for c in counts])
    assert "Reference" in _text(at) and "madrid@1" in _text(at)

    # The chosen columns of the chart follow the multiselect.
    at.multiselect(key=f"data_drift_features_{MODEL}").set_value(["beaches", "museums"]).run()
    names = [t["name"] for t in _figure(at, "over_time")["data"]]
    assert names == ["drift share", "beaches", "museums"]


def test_the_summer_episode_shows_in_the_drift_of_its_categories(simulated) -> None:
    """Days 3 and 4 of the simulation drift on beaches and swimming pools; days 0–2 do not."""
    records = drift_store.history(MODEL, "data")
    at = open_page("data")
    at.multiselect(key=f"data_drift_features_{MODEL}").set_value(["beaches"]).run()
    beaches = _figure(at, "over_time")["data"][1]["y"]
    assert max(beaches[:3]) < 0.3 < min(beaches[3:])
    assert [r.columns["beaches"]["score"] for r in records] == pytest.approx(beaches)
    # The episode's start is marked, in words and on the chart.
    began = records[3].window_start
    print([c.value for c in at.caption])
    assert f"The current drift episode began with the window of {ui.when(began)}" in _text(at)
    shapes = _figure(at, "over_time")["layout"]["shapes"]
    assert any(s.get("x0") and str(s["x0"]).startswith(f"{began:%Y-%m-%d}") for s in shapes)


def test_evidently_report_on_demand(simulated: Path) -> None:
    at = open_page("data", "ana")
    assert not at.download_button
    result_id = at.selectbox(key="data_drift_result").value
    at.button(key="data_drift_report").click().run()
    assert_clean(at)
    assert at.status[0].proto.label == "The report is ready"  # type: ignore[attr-defined]
    stored = drift_store.get(result_id)
    assert stored.report_path is not None
    report = simulated / "models" / stored.report_path
    assert report.stat().st_size > 100_000 and b"swimming pools" in report.read_bytes()
    assert at.download_button[0].proto.label == "Download the report (HTML)"
    at.toggle(key="data_drift_show_report").set_value(True).run()
    assert_clean(at)
    frames = at.get("iframe")
    assert len(frames) == 1

    # Another session finds the stored file: no computing, the button only opens it.
    again = open_page("data", "victor")
    assert again.button(key="data_drift_report").proto.label == "Open the report"


# ------------------------------------------------------------------------ prediction drift


def test_prediction_drift_page_draws_scores_and_the_top_category(simulated) -> None:
    records = drift_store.history(MODEL, "prediction")
    assert len(records) == 5  # every day, against the version's held-out users
    latest = drift_store.get(records[-1].id)
    at = open_page("prediction")
    assert {m.label: m.value for m in at.metric}["Drift share (latest)"] == (
        f"{latest.drift_share:.0%}"
    )
    table = at.dataframe[0].value
    assert len(table) == 30
    methods = dict(zip(table["column"], table["method"], strict=True))
    assert methods.pop("top category") == "jensenshannon"
    assert set(methods.values()) == {"wasserstein"}
    assert all(c.startswith("predicted: ") for c in methods)

    at.selectbox(key="prediction_drift_column").select("top category").run()
    assert_clean(at)
    bars = _figure(at, "distribution")["data"]
    stored = latest.summaries["top category"]
    assert bars[0]["x"] == stored["values"]
    assert sum(bars[1]["y"]) == pytest.approx(1.0)
    assert "held-out users" in _text(at)  # the version's own predictions are the reference


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


# ------------------------------------------------------------------------ request explorer

INSIGHT_PAGES = {"explorer": "app_pages/explorer.py", "report": "app_pages/report.py"}


def open_insight(page: str, user: str = "victor") -> AppTest:
    at = sign_in(user)
    at.switch_page(INSIGHT_PAGES[page]).run()
    assert_clean(at)
    return at


def test_explorer_on_an_empty_log_says_where_requests_come_from(dash_registry) -> None:
    at = open_insight("explorer")
    assert at.title[0].value == "Request explorer"
    assert "python -m core simulate NAME" in _text(at)
    assert not at.dataframe


def test_explorer_pages_through_the_log_newest_first(simulated) -> None:
    at = open_insight("explorer")
    first = at.dataframe[0].value
    assert len(first) == 50
    assert list(first["time"]) == sorted(first["time"], reverse=True)
    assert set(first["model"]) == {MODEL}
    assert "Page 1 · 50 requests" in _text(at)
    assert at.button(key="explorer_newer").proto.disabled

    at.button(key="explorer_older").click().run()
    assert_clean(at)
    second = at.dataframe[0].value
    assert "Page 2" in _text(at)
    assert not set(first["request id"]) & set(second["request id"])
    assert second["time"].max() <= first["time"].min()

    at.button(key="explorer_newer").click().run()
    assert list(at.dataframe[0].value["request id"]) == list(first["request id"])

    at.toggle(key="explorer_count").set_value(True).run()
    assert "500 matching requests" in _text(at)


def test_explorer_filters_and_a_new_filter_starts_at_page_one(simulated) -> None:
    at = open_insight("explorer")
    at.button(key="explorer_older").click().run()
    at.selectbox(key="explorer_variant").select("canary").run()
    assert_clean(at)
    table = at.dataframe[0].value
    assert set(table["variant"]) == {"canary"}
    assert "Page 1" in _text(at)
    versions = set(table["version"])
    assert len(versions) == 1

    at.toggle(key="explorer_count").set_value(True).run()
    canary = monitoring.summary(MODEL, hours=24 * 30)
    shown = [c.value for c in at.caption if "matching requests" in c.value][0]
    count = int(shown.split()[0].replace(",", ""))
    assert 60 < count < 250 and count < canary.requests

    at.multiselect(key="explorer_rated").set_value(["beaches"]).run()
    assert_clean(at)
    narrowed = at.dataframe[0].value
    assert (narrowed["ratings given"] >= 1).all()

    at.selectbox(key="explorer_status").select("error").run()
    assert_clean(at)
    assert "No logged request matches" in _text(at)


def test_explorer_opens_one_request_with_its_ratings_and_places(simulated) -> None:
    at = open_insight("explorer")
    box = at.selectbox(key="explorer_request")
    assert box.value == at.dataframe[0].value["request id"][0]
    # Requests are offered by when, who and which version, not by their UUIDs.
    shown = box.format_func(box.value) if hasattr(box, "format_func") else box.options[0]
    assert box.value not in shown and " · user " in shown
    ratings = _figure(at, "explorer_ratings")["data"][0]
    assert len(ratings["y"]) == 29 and all(0 <= x <= 5 for x in ratings["x"])
    places = at.dataframe[1].value
    assert list(places.columns) == ["#", "place", "category", "its types", "score", "clicked"]
    assert len(places) == at.dataframe[0].value["k"][0]
    returned = [t for t in _figure(at, "explorer_map")["data"] if t["name"] == "returned"]
    assert len(returned[0]["x"]) == len(places)


def test_explorer_exports_the_filtered_requests_as_csv(simulated) -> None:
    at = open_insight("explorer")
    at.selectbox(key="explorer_variant").select("production").run()
    at.button(key="explorer_export").click().run()
    assert_clean(at)
    label = at.status[0].proto.label  # type: ignore[attr-defined]
    rows = int(label.split()[0].replace(",", ""))
    assert 250 < rows < 440
    assert at.download_button[0].proto.label == "Download CSV"


def test_explorer_rejects_an_unknown_category_filter_clearly(simulated) -> None:
    from core.errors import BadInput
    from core.monitoring.explorer import RequestFilter, page

    with pytest.raises(BadInput, match="unknown category 'surfing'"):
        page(RequestFilter(rated=("surfing",)))


# ------------------------------------------------------------------------ slices & report


def test_report_page_compares_slices_and_builds_the_report(simulated) -> None:
    at = open_insight("report")
    assert at.title[0].value == "Slices and model report"
    if at.selectbox(key="report_model").value != MODEL:
        at.selectbox(key="report_model").select(MODEL).run()
    production = registry.find_version(MODEL, "production")
    staging = registry.find_version(MODEL, "staging")
    assert production is not None and staging is not None
    assert at.selectbox(key=f"report_version_{MODEL}").value == staging.version

    slices_table = at.dataframe[0].value
    assert {"slicing", "slice", "Δ", "flagged"} <= set(slices_table.columns)
    assert len(slices_table) > 3
    assert list(slices_table["Δ"]) == pytest.approx(
        list(slices_table["ndcg@5 (this)"] - slices_table["ndcg@5 (production)"]), abs=2e-4
    )
    flagged = set(slices_table.loc[slices_table["flagged"] != "", "slice"])
    if flagged:
        assert any("Worse than production on" in e.value for e in at.error)
    else:
        assert any("No slice is worse" in s.value for s in at.success)

    figure = _figure(at, "report_time_slices")
    hours = figure["data"]
    assert sum(sum(t["y"]) for t in hours) == 500
    # Words on the colour bar and axes, not field names; the error rate as a percentage.
    assert figure["layout"]["coloraxis"]["colorbar"]["title"]["text"] == "error rate"
    assert figure["layout"]["coloraxis"]["colorbar"]["tickformat"] == ".0%"
    at.radio(key="report_traffic_slicing").set_value("area of the city").run()
    assert_clean(at)
    assert _figure(at, "report_area")

    # The production version has nothing to compare against.
    at.selectbox(key=f"report_version_{MODEL}").select(production.version).run()
    assert "Nothing to compare" in _text(at)

    at.selectbox(key=f"report_version_{MODEL}").select(staging.version).run()
    at.button(key="report_build").click().run()
    assert_clean(at)
    label = at.status[0].proto.label  # type: ignore[attr-defined]
    assert label == f"Report of {MODEL}@{staging.version} ready"
    assert at.download_button[0].proto.label == "Download report.html"
    frames = at.get("iframe")
    assert len(frames) == 1


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
