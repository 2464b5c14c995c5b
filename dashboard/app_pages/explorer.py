"""Request explorer: filter the logged requests, page through them, open one, export CSV."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from core.data import catalogue
from core.data.categories import CATEGORIES
from core.errors import CoreError
from core.monitoring.explorer import RequestFilter
from core.text import spreadsheet_safe
from dashboard import cache, session, ui

PAGE_SIZE = 50
CURSORS = "explorer_cursors"

session.actor()
st.title("Request explorer")
ui.show_flash()

models = cache.models()
today = dt.datetime.now(dt.UTC).date()
with st.container(border=True):
    c: Sequence[DeltaGenerator] = st.columns(4)
    model = c[0].selectbox("Model", ["(any)"] + [m.name for m in models], key="explorer_model")
    days = c[1].date_input(
        "Between",
        (today - dt.timedelta(days=30), today),
        key="explorer_days",
        help="UTC dates, both included.",
    )
    variant = c[2].selectbox(
        "Variant", ["(any)", "production", "canary", "simulated", "preview"], key="explorer_variant"
    )
    status = c[3].selectbox("Status", ["any", "ok", "error"], key="explorer_status")
    c = st.columns([1, 1, 2])
    version = c[0].text_input("Version", key="explorer_version", placeholder="any")
    latency = c[1].number_input(
        "Latency at least (ms)", min_value=0.0, value=0.0, step=1.0, key="explorer_latency"
    )
    rated = c[2].multiselect("User rated", CATEGORIES, key="explorer_rated")

start = end = None
if isinstance(days, tuple) and len(days) == 2:
    start = dt.datetime.combine(days[0], dt.time(), tzinfo=dt.UTC)
    end = dt.datetime.combine(days[1], dt.time(), tzinfo=dt.UTC) + dt.timedelta(days=1)
flt = RequestFilter(
    start=start,
    end=end,
    model=None if model == "(any)" else model,
    version=version.strip() or None,
    variant=None if variant == "(any)" else variant,
    status=status,
    min_latency_ms=latency or None,
    rated=tuple(rated),
)
if st.session_state.get("explorer_filter") != flt:  # a new filter starts at page 1
    st.session_state["explorer_filter"] = flt
    st.session_state[CURSORS] = [None]
cursors: list[int | None] = st.session_state.setdefault(CURSORS, [None])

try:
    page = cache.insight.request_page(flt, cursors[-1], PAGE_SIZE)
except CoreError as exc:
    ui.error(exc)
    st.stop()

if not page.items and len(cursors) == 1:
    ui.empty_state(
        "No logged request matches. Requests appear here as the API serves them "
        "(`python -m api`) or when traffic is simulated (`python -m core simulate NAME`)."
    )
    st.stop()

nav = st.columns([1, 1, 3, 2])
if nav[0].button("← Newer", disabled=len(cursors) == 1, key="explorer_newer"):
    cursors.pop()
    st.rerun()
if nav[1].button("Older →", disabled=page.next_cursor is None, key="explorer_older"):
    cursors.append(page.next_cursor)
    st.rerun()
nav[2].caption(f"Page {len(cursors)} · {len(page.items)} requests, newest first")
if nav[3].toggle("Count all matches", key="explorer_count"):
    nav[3].caption(f"{cache.insight.request_count(flt):,} matching requests")

frame = pd.DataFrame(
    [
        {
            "time": r.ts,
            "model": r.model,
            "version": r.version,
            "variant": r.variant,
            "user": spreadsheet_safe(r.user_id or ""),
            "ratings given": r.n_rated,
            "k": r.k,
            "top category": r.top_category or "",
            "latency (ms)": round(r.latency_ms, 2),
            "error": spreadsheet_safe(r.error or ""),
            "request id": r.request_id,
        }
        for r in page.items
    ]
)
# The table's toolbar downloads it as CSV too: the texts a client chose are neutralised here
# as in the export (core.text.spreadsheet_safe).
st.dataframe(frame, hide_index=True, width="stretch", key="explorer_table")

with st.expander("Export the filtered requests as CSV"):
    limit = st.number_input("At most", 1, 1_000_000, 10_000, step=1000, key="explorer_limit")
    if st.button("Prepare CSV", key="explorer_export"):
        with st.status("Exporting…", expanded=False) as box:
            data = cache.insight.export_csv(flt, int(limit))
            rows = data.count(b"\n") - 1
            box.update(label=f"{rows:,} rows ready", state="complete")
        st.download_button(
            "Download CSV", data, "requests.csv", "text/csv", key="explorer_download"
        )

st.subheader("One request", anchor=False)
# Requests are named as people tell them apart (when, who, which version); the id is in the
# table above and in the details.
described = {
    r.request_id: f"{ui.when(r.ts)} · user {r.user_id or '—'} · {r.model}@{r.version}"
    f" ({r.variant})" + (" · failed" if r.error else "")
    for r in page.items
}
chosen = st.selectbox(
    "Request", list(described), key="explorer_request", format_func=described.__getitem__
)
if chosen:
    try:
        detail = cache.insight.request_detail(chosen)
    except CoreError as exc:
        ui.error(exc)
        st.stop()
    req = detail.request
    ui.facts(
        [
            ("model", f"{req['model']}@{req['version']}"),
            ("variant", req["variant"]),
            ("time", ui.when(req["ts"])),
            ("latency", f"{req['latency_ms']:.2f} ms"),
        ]
    )
    if req.get("error"):
        st.error(f"Failed: {req['error']}", icon=":material/error:")
    left, right = st.columns(2)
    ratings = pd.DataFrame({"category": CATEGORIES, "rating": req["ratings"]})
    left.plotly_chart(
        go.Figure(
            go.Bar(x=ratings["rating"], y=ratings["category"], orientation="h")
        ).update_layout(
            height=640, margin={"t": 10, "l": 10}, xaxis_title="rating", xaxis_range=[0, 5]
        ),
        key="explorer_ratings",
    )
    lats, lngs = cache.catalogue_points()
    places = req["places"]
    clicked = {f["place_id"] for f in detail.feedback}
    fig = go.Figure()
    fig.add_scattergl(
        x=lngs,
        y=lats,
        mode="markers",
        name="catalogue",
        marker={"size": 3, "color": "#cccccc"},
        hoverinfo="skip",
    )
    cat = catalogue.load()
    index = {pid: i for i, pid in enumerate(cat.place_ids)}
    found = [index[p] for p in places if p in index]
    fig.add_scatter(
        x=cat.lng[found],
        y=cat.lat[found],
        mode="markers+text",
        text=[str(n + 1) for n in range(len(found))],
        textposition="top center",
        name="returned",
        marker={"size": 10},
    )
    if req.get("lat") is not None:
        fig.add_scatter(
            x=[req["lng"]],
            y=[req["lat"]],
            mode="markers",
            name="user",
            marker={"size": 14, "symbol": "x", "color": "black"},
        )
        fig.update_xaxes(range=[req["lng"] - 0.04, req["lng"] + 0.04])
        fig.update_yaxes(range=[req["lat"] - 0.03, req["lat"] + 0.03])
    fig.update_layout(height=640, margin={"t": 10}, xaxis_title="longitude", yaxis_title="latitude")
    right.plotly_chart(fig, key="explorer_map")
    st.dataframe(
        pd.DataFrame(
            {
                "#": np.arange(1, len(places) + 1),
                "place": [cat.names[index[p]] if p in index else p for p in places],
                "category": req["categories"],
                "its types": [catalogue.own_types_label(p) for p in places],
                "score": req["scores"],
                "clicked": ["yes" if p in clicked else "" for p in places],
            }
        ),
        hide_index=True,
        width="stretch",
        key="explorer_places",
    )
