"""The request explorer and the slices-and-report page under AppTest, on simulated traffic.

Every test runs on a private copy of the simulated registry of
:func:`tests.dashboard.conftest.monitor_template` (two ``svd`` versions, production and a
30 % canary, and five simulated days with a summer drift episode from day 3).
"""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core import monitoring, registry
from tests.dashboard.conftest import assert_clean, sign_in
from tests.dashboard.conftest import chart_figure as _figure
from tests.dashboard.conftest import page_text as _text
from tests.fixtures.dashboard import MODEL

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
