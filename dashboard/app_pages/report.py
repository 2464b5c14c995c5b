"""Model report and slices: where a candidate is worse than production, and the evidence pack."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

from core.errors import CoreError
from dashboard import cache, session, ui

session.actor()
st.title("Slices and model report")
ui.show_flash()

models = cache.models()
if not models:
    ui.empty_state("No model is registered yet; train one with `python -m core train`.")
    st.stop()
m = ui.pick_model("report_model", models)
page = cache.versions(model=m.name, page_size=200)
if not page.items:
    ui.empty_state(f"Model {ui.md(m.name)} has no versions yet.")
    st.stop()
numbers = [v.version for v in page.items]
newest_candidate = cache.newest(m.name, "candidate")
default = numbers.index(newest_candidate.version) if newest_candidate else 0
number = st.selectbox("Version", numbers, index=default, key=f"report_version_{m.name}")
v = cache.version(m.name, number)

# Column names of the slice tables, as people say them on axes and colour bars.
WORDS = {
    "error_rate": "error rate",
    "mean_score": "mean score",
    "click_rate": "click-through",
    "lat": "latitude",
    "lng": "longitude",
    "bucket": "slice",
    "requests": "requests",
}

st.subheader("Quality by slice against production", anchor=False)
metric = st.radio("Metric", ["ndcg@5", "rmse"], horizontal=True, key="report_metric")
rows = cache.insight.slice_deltas(m.name, number, metric)
if not rows:
    st.info(
        "Nothing to compare: either this version is the production version, the model has no "
        "production version, or one of them was trained before per-slice figures were kept.",
        icon=":material/info:",
    )
else:
    worse = [r for r in rows if r.worse]
    if worse:
        st.error(
            "Worse than production on: "
            + ", ".join(f"{ui.md(r.slicing)} = {ui.md(r.bucket)} ({r.delta:+.3f})" for r in worse),
            icon=":material/warning:",
        )
    else:
        st.success(
            "No slice is worse than production beyond the margin.", icon=":material/check_circle:"
        )
    frame = [
        {
            "slicing": r.slicing,
            "slice": r.bucket,
            "test users": r.users,
            f"{metric} (this)": round(r.candidate, 4),
            f"{metric} (production)": round(r.reference, 4),
            "Δ": round(r.delta, 4),
            "flagged": "⚠" if r.worse else "",
        }
        for r in rows
    ]
    st.dataframe(frame, hide_index=True, width="stretch", key="report_slices")
    fig = px.bar(
        frame,
        x="slice",
        y="Δ",
        color="slicing",
        height=320,
        title=f"{metric}: this version minus production",
    )
    st.plotly_chart(fig, key="report_slices_chart")

st.subheader("Traffic and drift by slice", anchor=False)
c = st.columns([2, 1])
slicing = c[0].radio(
    "Cut traffic by",
    ["hour of day", "day of week", "area of the city"],
    horizontal=True,
    key="report_traffic_slicing",
)
days = c[1].number_input("Last days", 1, 365, 30, key="report_days")
traffic = cache.insight.traffic_slices(m.name, slicing, int(days))
if traffic.empty:
    st.caption("No traffic logged for this model in that period.")
elif slicing == "area of the city":
    st.plotly_chart(
        px.scatter(
            traffic,
            x="lng",
            y="lat",
            size="requests",
            color="error_rate",
            height=420,
            color_continuous_scale="Reds",
            labels=WORDS,
            title="Requests and error rate by area",
        ).update_coloraxes(colorbar_tickformat=".0%"),
        key="report_area",
    )
else:
    st.plotly_chart(
        px.bar(
            traffic,
            x="bucket",
            y="requests",
            color="error_rate",
            height=320,
            color_continuous_scale="Reds",
            labels=WORDS,
            title=f"Requests by {slicing}",
        ).update_coloraxes(colorbar_tickformat=".0%"),
        key="report_time_slices",
    )
concentration = cache.insight.drift_concentration(m.name, int(days))
if not concentration.empty:
    st.caption(
        "Where data drift concentrates: share of stored results in which each category drifted."
    )
    st.dataframe(
        concentration.head(10).rename(
            columns={
                "column": "category",
                "results": "drift results",
                "drifted": "drifted in",
                "share": "share drifted",
                "mean_score": "mean drift score",
            }
        ),
        hide_index=True,
        width="stretch",
        key="report_drift_concentration",
        column_config={
            "share drifted": st.column_config.NumberColumn(format="percent"),
            "mean drift score": st.column_config.NumberColumn(format="%.3f"),
        },
    )

st.subheader("Model report", anchor=False)
st.caption(
    "One self-contained HTML file: metadata, lineage, metrics against production and the "
    "baseline, per-slice figures, drift of the training data, audit verdicts, sample "
    "recommendations on a map and the stage timeline. It opens offline."
)
if st.button("Build the report", key="report_build", icon=":material/description:"):
    with st.status(f"Building the report of {v.label}…", expanded=False) as box:
        try:
            html, summary = cache.insight.model_report(m.name, number)
        except CoreError as exc:
            box.update(label="Failed", state="error")
            ui.error(exc)
            st.stop()
        box.update(label=f"Report of {v.label} ready", state="complete")
    st.session_state["report_html"] = (m.name, number, html, summary)
shown = st.session_state.get("report_html")
if shown and shown[:2] == (m.name, number):
    _, _, html, summary = shown
    st.download_button(
        "Download report.html",
        html.encode(),
        f"{m.name}-{number}.html",
        "text/html",
        key="report_download",
    )
    if summary["worse_slices"]:
        st.warning(
            "The report flags: "
            + ", ".join(f"{ui.md(a)} = {ui.md(b)}" for a, b in summary["worse_slices"])
        )
    # A whole HTML document with its own scripts (plotly): st.iframe embeds it as the frame's
    # srcdoc, in the same sandboxed frame as every embedded HTML (it scrolls within its height).
    st.iframe(html, height=900)
