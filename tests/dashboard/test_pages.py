"""The dashboard's browsing pages under AppTest: every page empty and populated, overview,
models, compare and preview, and user text never rendered as HTML."""

from __future__ import annotations

import json
import re

import pytest

from core import registry
from tests.conftest import PROJECT_ROOT
from tests.dashboard.conftest import (
    PAGES,
    assert_clean,
    open_page,
    picture_alpha,
    plain,
    sign_in,
    table,
)
from tests.fixtures.dashboard import BASELINE, BASELINE_DESCRIPTION, MODEL, populate

DASHBOARD = PROJECT_ROOT / "dashboard"
PRODUCT_PAGES = ["overview", "models", "compare", "preview", "audit", "deploy", "account"]


# ------------------------------------------------------------------------ every page renders


@pytest.mark.parametrize("page", PRODUCT_PAGES + ["users"])
def test_every_page_renders_on_an_empty_registry(dash_registry, page: str) -> None:
    at = sign_in("admin")
    at.switch_page(PAGES[page]).run()
    assert_clean(at)
    if page not in ("account", "users"):
        assert at.info, f"{page} must explain what will appear"


@pytest.mark.parametrize("page", PRODUCT_PAGES + ["users"])
def test_every_page_renders_on_a_populated_registry(populated, page: str) -> None:
    at = sign_in("admin")
    open_page(at, page)
    assert_clean(at)
    if page in ("models", "compare", "preview", "audit", "deploy"):
        text = str(at.main)
        assert MODEL in text


def test_overview_shows_each_model_and_recent_changes(populated) -> None:
    at = sign_in("victor")
    assert_clean(at)
    models = table(at, "model", "production", "newest candidate").set_index("model")
    assert models.loc[MODEL, "production"] == populated.production
    assert models.loc[MODEL, "staging"] == f"{populated.staging} (canary 10%)"
    assert models.loc[MODEL, "newest candidate"] == populated.candidate
    assert models.loc[BASELINE, "production"] == populated.baseline
    events = table(at, "when", "model", "reason")
    assert events.iloc[0]["reason"] == "the baseline"
    # No traffic and no drift result yet: the health section says how they come.
    assert "python -m core simulate NAME" in " ".join(i.value for i in at.info)
    assert not [d for d in at.dataframe if "open alerts" in d.value.columns]


# ------------------------------------------------------------------------ user text


def test_user_text_is_never_rendered_as_html(populated) -> None:
    for path in DASHBOARD.rglob("*.py"):
        source = path.read_text()
        assert "unsafe_allow_html" not in source, path
        assert "st.html" not in source, path
    at = sign_in("admin")
    open_page(at, "models", model=None)  # every model: the detail follows the filters
    at.selectbox(key="models_open").select(f"{BASELINE}@{populated.baseline}").run()
    assert_clean(at)
    assert any(t.value == BASELINE_DESCRIPTION for t in at.text), "shown verbatim, as text"
    for element in [*at.markdown, *at.caption]:
        assert not element.proto.allow_html
        assert "<b>" not in element.value


# ------------------------------------------------------------------------ models


def test_models_table_paginates_searches_and_opens_a_version(dash_registry, tmp_path) -> None:
    populate(tmp_path, extra_versions=30)
    at = sign_in("victor")
    at.switch_page(PAGES["models"]).run()
    at.selectbox(key="models_page_size").select(25).run()
    assert_clean(at)
    assert len(table(at, "model", "version", "description")) == 25
    assert any("of 35" in c.value for c in at.caption)
    at.button(key="models_next").click().run()
    assert len(table(at, "model", "version", "description")) == 10
    assert any("Page **2** of 2" in m.value for m in at.markdown)

    at.text_input(key="models_search").input("weekly").run()
    found = table(at, "model", "version", "description")
    assert list(found["description"]) == ["weekly retrain"]
    assert any("Page **1** of 1" in m.value for m in at.markdown)

    at.selectbox(key="models_stage").select("production").run()
    assert any("No version matches" in i.value for i in at.info), "weekly retrain is staging"
    at.text_input(key="models_search").input("").run()
    assert set(table(at, "model", "version", "description")["stage"]) == {"production"}


def test_version_page_shows_lineage_integrity_metrics_and_loss_curves(populated) -> None:
    at = sign_in("victor")
    open_page(at, "models")
    at.selectbox(key="models_open").select(f"{MODEL}@{populated.candidate}").run()
    assert_clean(at)
    assert any(f"{MODEL}@{populated.candidate}" in plain(s.value) for s in at.subheader)
    cells = " ".join(str(x) for df in at.dataframe for x in df.value.to_numpy().ravel())
    assert populated.dataset.label in cells and populated.dataset.sha256 in cells
    assert "ndcg@5" in cells and "numpy" in cells  # metrics, library versions
    assert any(re.search(r"All \d+ files match", plain(s.value)) for s in at.success)
    charts = at.get("plotly_chart")
    assert charts, "svd versions record loss curves"
    assert "val_loss" in charts[0].proto.spec
    timeline = table(at, "when", "action", "gates")
    assert list(timeline["action"]) == ["register"]


def test_modified_artifact_is_flagged_on_the_version_page(populated_env) -> None:
    env, populated = populated_env
    v = registry.get_version(MODEL, populated.candidate)
    target = env.artifacts / v.artifact_dir / next(iter(v.files))
    target.write_bytes(target.read_bytes() + b"tampered")
    at = sign_in("victor")
    open_page(at, "models")
    at.selectbox(key="models_open").select(v.label).run()
    assert not at.exception
    assert any("missing or modified" in plain(e.value) for e in at.error)


# ------------------------------------------------------------------------ compare


def test_compare_shows_metrics_with_deltas_trend_and_list_differences(populated) -> None:
    at = sign_in("victor")
    open_page(at, "compare")
    assert_clean(at)
    against_production, against_baseline = at.dataframe[0].value, at.dataframe[1].value
    production = f"{MODEL}@{populated.production}"
    candidate = f"{MODEL}@{populated.candidate}"
    baseline = f"{BASELINE}@{populated.baseline}"
    assert {production, candidate, baseline} <= set(against_production.columns)
    assert {"ndcg@5", "rmse"} <= set(against_production.index)
    assert re.fullmatch(r"\d\.\d{4}", against_production.loc["ndcg@5", production])
    assert re.fullmatch(r"\d\.\d{4} \([+-]\d\.\d{4}\)", against_production.loc["ndcg@5", candidate])
    assert re.fullmatch(r"\d\.\d{4}", against_baseline.loc["ndcg@5", baseline])
    assert "(" in against_baseline.loc["ndcg@5", production]
    assert at.get("plotly_chart"), "bars, trend and list charts"

    # The ranked lists of production against the candidate, on users of the dataset.
    assert any(m.label.startswith("Mean overlap@10") for m in at.metric)
    at.selectbox(key=f"compare_b_{MODEL}").select(f"{MODEL}@{populated.candidate}")
    at.number_input(key="compare_n").set_value(20).run()
    assert_clean(at)
    assert any(f"20 users from {populated.dataset.label}" in plain(c.value) for c in at.caption)

    # Against what another model serves: the popularity baseline.
    at.selectbox(key=f"compare_b_{MODEL}").select(baseline).run()
    assert_clean(at)
    overlap = next(m for m in at.metric if m.label.startswith("Mean overlap"))
    assert overlap.value.endswith("%")
    gained = table(at, "place", "category", "users")
    assert list(gained.columns) == ["place", "category", "users"]


# ------------------------------------------------------------------------ preview


def _lists(at) -> list:
    """The ranked lists on the page, production (or the newest version) first."""
    return [d.value for d in at.dataframe if {"#", "place", "score"} <= set(d.value.columns)]


def test_preview_follows_sliders_location_and_dataset_users(populated) -> None:
    at = sign_in("victor")
    open_page(at, "preview")
    assert_clean(at)
    before = _lists(at)[0]
    assert len(before) == 10

    at.slider(key="preview_r_15").set_value(5).run()  # museums
    assert_clean(at)
    after = _lists(at)[0]
    assert list(after["place"]) != list(before["place"]), "the list follows the slider"

    at.selectbox(key="preview_place").select("Retiro").run()
    assert at.number_input(key="preview_lat").value == pytest.approx(40.4153)
    assert_clean(at)
    assert list(_lists(at)[0]["place"]) != list(after["place"])

    user_id = at.selectbox(key="preview_user").options[3]
    at.selectbox(key="preview_user").select(user_id).run()
    assert_clean(at)
    assert any(user_id in plain(c.value) for c in at.caption)
    ratings = [at.slider(key=f"preview_r_{i}").value for i in range(29)]
    assert any(ratings)

    at.slider(key="preview_k").set_value(5).run()
    assert len(_lists(at)[0]) == 5
    at.button(key="preview_clear").click().run()
    assert not any(at.slider(key=f"preview_r_{i}").value for i in range(29))


def test_preview_puts_other_versions_beside_production(populated) -> None:
    at = sign_in("victor")
    open_page(at, "preview")
    candidate = f"{MODEL}@{populated.candidate}"
    baseline = f"{BASELINE}@{populated.baseline}"
    at.multiselect(key=f"preview_others_{MODEL}").select(candidate).select(baseline).run()
    assert_clean(at)
    assert [len(x) for x in _lists(at)] == [10, 10, 10]
    headings = plain(" ".join(m.value for m in at.markdown))
    for label in (f"{MODEL}@{populated.production}", candidate, baseline):
        assert f"**{label}**" in headings
    # Each version on its own map (shared places hide nothing), markers numbered by rank,
    # and without tiles (no browser has answered the tile probe here) the catalogue's places
    # drawn as the background: never a blank map.
    maps = [json.loads(c.proto.spec) for c in at.get("plotly_chart")][:3]
    titles = [m["layout"]["title"]["text"] for m in maps]
    assert [t.split(" · ")[0] for t in titles] == [
        f"{MODEL}@{populated.production}",
        candidate,
        baseline,
    ]
    for figure in maps:
        traces = {t["name"]: t for t in figure["data"]}
        assert "catalogue" in traces, "named in the legend"
        (backdrop,) = figure["layout"]["images"]
        assert (picture_alpha(backdrop["source"]) > 0).sum() > 1000, "the city's places"
        assert traces["places by rank"]["text"] == [str(i) for i in range(1, 11)]
        assert "map" not in figure["layout"], "no tile map without tiles"
    assert at.toggle(key="preview_tiles").disabled
    # Each place's own types beside the category it matched.
    first = _lists(at)[0]
    assert "its types" in first.columns and first["its types"].str.len().min() > 0


def test_the_chosen_model_follows_the_user_from_page_to_page(populated) -> None:
    at = sign_in("victor")
    at.switch_page(PAGES["preview"]).run()
    assert at.selectbox(key="preview_model").value == MODEL, "not the baseline by default"
    at.selectbox(key="preview_model").select(BASELINE).run()
    at.switch_page(PAGES["deploy"]).run()
    assert_clean(at)
    assert at.selectbox(key="deploy_model").value == BASELINE


def test_a_revisit_draws_compare_and_preview_from_charts_already_built(
    populated, monkeypatch
) -> None:
    """A Plotly figure object is slow to build (0.6 s of each run of Compare's four charts);
    the same inputs on a rerun or a revisit reuse the built chart."""
    import functools

    import streamlit as st

    from dashboard import charts

    built: list[str] = []

    def counted(chart):
        @functools.wraps(chart)
        def build(*args, **kwargs):
            built.append(chart.__name__)
            return chart(*args, **kwargs)

        return build

    names = ["metric_bars", "trend", "overlap_histogram", "category_mix"]
    names += ["places_map", "category_scores"]
    for name in names:
        monkeypatch.setattr(charts, name, counted(getattr(charts, name)))
    st.cache_resource.clear()  # what earlier tests built for the same inputs
    at = sign_in("victor")
    for page in ("compare", "preview"):
        open_page(at, page)
        assert_clean(at)
    assert sorted(set(built)) == sorted(names), "every chart drawn once"
    built.clear()
    for page in ("overview", "compare", "overview", "preview"):
        open_page(at, page)
        assert_clean(at)
    at.run()
    assert built == [], "nothing built again"
    assert len(at.get("plotly_chart")) >= 2, "the map and the scores still drawn"
