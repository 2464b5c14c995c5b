"""Preview: live recommendations for one user at one place in Madrid, version against version.

Every slider change reruns the page and the lists follow at once: models are loaded (and
their files verified) once inside ``core``, and each list is cached by its exact inputs. The
sliders sit beside the map, so the places move while the ratings are being changed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from core.data import catalogue
from core.data.categories import CATEGORIES
from core.errors import CoreError
from core.registry.entities import ModelInfo
from core.review.comparison import NEIGHBOURHOODS
from core.serving.ranking import RankingConfig
from dashboard import cache, charts, session, ui

session.actor()
st.title("Preview recommendations")
ui.show_flash()

models = cache.models()
if not models:
    ui.empty_state(
        "No model to preview yet. Once a version is registered, set a user's ratings with 29 "
        "sliders (or pick a user from a dataset), choose a place in Madrid, and see the places "
        "each version recommends, on a map and side by side with production."
    )
    st.stop()

CUSTOM = "Custom location"
RATING_KEYS = [f"preview_r_{i}" for i in range(len(CATEGORIES))]
MAP_HEIGHT = 640
for key in RATING_KEYS:
    st.session_state.setdefault(key, 0)
st.session_state.setdefault("preview_place", "Sol")
st.session_state.setdefault("preview_lat", NEIGHBOURHOODS["Sol"][0])
st.session_state.setdefault("preview_lng", NEIGHBOURHOODS["Sol"][1])


def _move_to_place() -> None:
    place = st.session_state["preview_place"]
    if place in NEIGHBOURHOODS:
        st.session_state["preview_lat"], st.session_state["preview_lng"] = NEIGHBOURHOODS[place]


def _moved_by_hand() -> None:
    here = (st.session_state["preview_lat"], st.session_state["preview_lng"])
    if NEIGHBOURHOODS.get(st.session_state["preview_place"]) != here:
        st.session_state["preview_place"] = CUSTOM


def _set_ratings(values: list[float]) -> None:
    for key, value in zip(RATING_KEYS, values, strict=True):
        st.session_state[key] = int(round(float(value)))


def _load_user(source: str, user_id: str | None) -> None:
    if not user_id:
        return
    try:
        frame = cache.users(source)
    except CoreError as exc:
        ui.flash("error", str(exc))
        return
    row = frame.loc[frame["user_id"].astype(str) == user_id]
    if row.empty:
        ui.flash("error", f"user {user_id} is not in {source}")
        return
    _set_ratings(row.iloc[0][list(CATEGORIES)].tolist())
    st.session_state["preview_loaded"] = f"{user_id} from {source}"


def _picked_user(source: str) -> None:
    _load_user(source, st.session_state.get("preview_user"))


def _random_user(source: str) -> None:
    try:
        frame = cache.users(source)
    except CoreError as exc:
        ui.flash("error", str(exc))
        return
    if frame.empty:
        ui.flash("error", f"{source} has no users")
        return
    user_id = str(frame["user_id"].iloc[int(np.random.default_rng().integers(len(frame)))])
    st.session_state["preview_user"] = user_id
    _load_user(source, user_id)


def _clear() -> None:
    _set_ratings([0.0] * len(CATEGORIES))
    st.session_state.pop("preview_loaded", None)
    st.session_state["preview_user"] = None


# ------------------------------------------------------------------------ where

with st.sidebar:
    st.subheader("Where", anchor=False)
    st.selectbox(
        "Neighbourhood",
        [*NEIGHBOURHOODS, CUSTOM],
        key="preview_place",
        on_change=_move_to_place,
    )
    st.number_input(
        "Latitude",
        40.30,
        40.52,
        key="preview_lat",
        format="%.4f",
        step=0.001,
        on_change=_moved_by_hand,
    )
    st.number_input(
        "Longitude",
        -3.85,
        -3.58,
        key="preview_lng",
        format="%.4f",
        step=0.001,
        on_change=_moved_by_hand,
    )
    k = st.slider("Places per list (k)", 3, 20, 10, key="preview_k")
    reachable = ui.tiles_reachable(charts.TILE_URL.format(z=12, x=2046, y=1545))
    if reachable and "preview_tiles" not in st.session_state:
        st.session_state["preview_tiles"] = True
    tiles = st.toggle(
        "Street map",
        key="preview_tiles",
        disabled=not reachable,
        help="Streets come from OpenStreetMap/CARTO through the internet, when this browser "
        "reaches them; otherwise the catalogue's places outline the city.",
    )
    tiles = bool(tiles and reachable)

# ------------------------------------------------------------------------ which versions

top = st.columns([2, 3])
with top[0]:
    m = ui.pick_model("preview_model", models)
page = cache.versions(model=m.name, page_size=200)
stages = {v.version: v.stage for v in page.items}
reference = m.production or (page.items[0].version if page.items else None)
if reference is None:
    ui.empty_state(f"Model {ui.md(m.name)} has no versions yet.")
    st.stop()
stages.setdefault(reference, "production" if reference == m.production else "")


def _key(model: ModelInfo | str, number: str) -> str:
    return f"{model if isinstance(model, str) else model.name}@{number}"


# Other versions of this model, then what other models serve (e.g. the legacy Planwise model).
options = {_key(m, n): stage for n, stage in stages.items() if n != reference}
options.update(
    {_key(o, o.production): "production" for o in models if o.name != m.name and o.production}
)
with top[1]:
    beside = st.multiselect(
        "Show beside " + ("production" if m.production else "the newest version"),
        list(options),
        key=f"preview_others_{m.name}",
        max_selections=3,
        format_func=lambda label: f"{label} · {options[label]}",
        help="Up to three more versions (of this model, or what other models serve), each in "
        "its own column and colour.",
    )
shown = [_key(m, reference), *beside]
stage_of = {_key(m, reference): stages[reference], **options}
if not m.production:
    st.caption(f"{ui.md(m.name)} has no production version; the newest version is shown first.")

# ------------------------------------------------------------------------ the user

left, right = st.columns([2, 3], gap="medium")
with left:
    sources = [d.label for d in cache.dataset_list()] + [cache.GENERATED]
    pick = st.columns([3, 4])
    source = pick[0].selectbox("Users from", sources, key="preview_source")
    try:
        frame = cache.users(source)
    except CoreError as exc:
        ui.error(exc)
        frame = pd.DataFrame(columns=["user_id"])
    user_ids = frame["user_id"].astype(str).tolist()[:2000]
    if st.session_state.get("preview_user") not in user_ids:
        st.session_state["preview_user"] = None
    pick[1].selectbox(
        "User",
        user_ids,
        key="preview_user",
        placeholder="choose a user to load",
        index=None,
        on_change=_picked_user,
        args=(source,),
    )
    buttons = st.columns(2)
    buttons[0].button(
        "Random user",
        key="preview_random",
        icon=":material/casino:",
        on_click=_random_user,
        args=(source,),
        width="stretch",
    )
    buttons[1].button(
        "Clear ratings",
        key="preview_clear",
        icon=":material/restart_alt:",
        on_click=_clear,
        width="stretch",
    )
    loaded = st.session_state.get("preview_loaded")
    st.caption(
        f"Ratings of {ui.md(loaded)}; move a slider to edit them."
        if loaded
        else "Ratings 1–5; 0 means not rated (the model predicts it)."
    )
    with st.container(height=MAP_HEIGHT - 150, border=True):
        cols = st.columns(2)
        half = (len(CATEGORIES) + 1) // 2
        for i, (category, key) in enumerate(zip(CATEGORIES, RATING_KEYS, strict=True)):
            cols[i // half].slider(category, 0, 5, step=1, key=key)

prefs = [float(st.session_state[key]) for key in RATING_KEYS]
lat, lng = float(st.session_state["preview_lat"]), float(st.session_state["preview_lng"])

# ------------------------------------------------------------------------ results

lists: dict[str, list] = {}
predicted: dict[str, np.ndarray] = {}
for label in shown:
    model_name, _, number = label.partition("@")
    try:
        lists[label] = cache.recommend(model_name, number, prefs, lat, lng, k)
        predicted[label] = cache.predicted_categories(model_name, number, prefs)
    except CoreError as exc:
        st.error(f"{ui.md(label)}: {ui.md(exc)}")

try:
    radius = RankingConfig.from_settings(m.settings).radius_m
except CoreError:
    radius = RankingConfig().radius_m

with right:
    if lists:
        background = cache.catalogue_points()
        per_row = 1 if len(lists) == 1 else 2
        rows = -(-len(lists) // per_row)
        # Maps keep distances true (as wide as tall around the user): half-width maps are
        # drawn lower, so no band of empty paper sits above and below them.
        height = (
            MAP_HEIGHT if per_row == 1 else MAP_HEIGHT * 2 // 3 if rows == 1 else MAP_HEIGHT // 2
        )
        labels = list(lists)
        for row in range(rows):
            cells = st.columns(per_row)
            for cell, label in zip(
                cells, labels[row * per_row : (row + 1) * per_row], strict=False
            ):
                i = labels.index(label)
                with cell:
                    st.plotly_chart(
                        cache.figures.figure(
                            charts.places_map,
                            lists[label],
                            lat=lat,
                            lng=lng,
                            radius_m=radius,
                            height=height,
                            background=background,
                            tiles=tiles,
                            colour=charts.PALETTE[i % len(charts.PALETTE)],
                            title=f"{label} · {stage_of.get(label, '')}",
                        ),
                        key=f"preview_map_{i}",
                        config={"scrollZoom": True},
                    )
    if not reachable:
        st.caption(
            "No street map: this browser does not reach the map tiles, so the catalogue's "
            "places outline the city. Numbers are ranks."
        )
    else:
        st.caption("Numbers are ranks; each version has its own map, in its list's colour.")
    if not any(prefs):
        st.caption("No rating given yet: every category is predicted by the model.")

if not lists:
    st.stop()


def _frame(items: list) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "#": rank,
                "place": r.name,
                "category": r.category,
                "its types": catalogue.own_types_label(r.place_id),
                "score": float(r.score),
                "distance (m)": float(r.distance_m),
                "rating": float(r.rating) or None,
            }
            for rank, r in enumerate(items, start=1)
        ],
        columns=["#", "place", "category", "its types", "score", "distance (m)", "rating"],
    )


first = next(iter(lists))
reference_ids = {r.place_id for r in lists[first]}
for col, (label, items) in zip(st.columns(len(lists)), lists.items(), strict=True):
    with col:
        st.markdown(f"**{ui.md(label)}** {ui.badge(stage_of.get(label, ''))}")
        if not items:
            st.caption("No place within reach matches this user's categories here.")
            continue
        if label != first:
            same = len(reference_ids & {r.place_id for r in items})
            st.caption(f"{same} of {len(items)} places also in {ui.md(first)}")
        else:
            cats = len({r.category for r in items})
            st.caption(f"{len(items)} places in {cats} categories")
        st.dataframe(
            _frame(items),
            hide_index=True,
            key=f"preview_list_{label}",
            column_config={
                "score": st.column_config.NumberColumn(format="%.3f"),
                "distance (m)": st.column_config.NumberColumn(format="%.0f"),
                "rating": st.column_config.NumberColumn(format="%.1f"),
            },
        )

if predicted:
    st.plotly_chart(
        cache.figures.figure(charts.category_scores, predicted, prefs), key="preview_scores"
    )
    st.caption(
        "The model's score of each category for this user before their own ratings are kept; "
        "the ranking uses the user's rating where one is given (diamonds), the prediction "
        "elsewhere."
    )
