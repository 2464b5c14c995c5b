"""Data drift and Prediction drift under AppTest: the stored results drawn, the summer
episode found in its categories, and the Evidently report on demand.

Every test runs on a private copy of the simulated registry of
:func:`tests.dashboard.conftest.monitor_template` (two ``svd`` versions, production and a
30 % canary, and five simulated days with a summer drift episode from day 3).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.monitoring import drift_store
from dashboard import ui
from tests.dashboard.conftest import assert_clean
from tests.dashboard.conftest import chart_figure as _figure
from tests.dashboard.conftest import open_monitor_page as open_page
from tests.dashboard.conftest import page_text as _text
from tests.fixtures.dashboard import MODEL

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
