"""Compare: versions side by side, their metric trend, and how their ranked lists differ."""

from __future__ import annotations

import pandas as pd
import streamlit as st
from pandas.io.formats.style import Styler

from core.errors import CoreError
from core.review import comparison
from core.review.comparison import MetricComparison
from dashboard import cache, charts, session, ui

session.actor()
st.title("Compare versions")
ui.show_flash()

models = cache.models()
if not models:
    ui.empty_state(
        "Nothing to compare yet. With two or more versions registered this page shows their "
        "metrics side by side with deltas against production and the popularity baseline, a "
        "metric's trend across all versions, and how their ranked lists differ for a sample "
        "of users."
    )
    st.stop()

m = ui.pick_model("compare_model", models)
page = cache.versions(model=m.name, page_size=500)
by_number = {v.version: v for v in page.items}
numbers = list(by_number)
if page.total > len(numbers):
    st.caption(f"The {len(numbers)} newest of {page.total} versions are offered.")

# Streamlit drops a widget's state when its page is left: the selection is also kept per
# model under a key of its own, so a revisit (or a return to this model) finds it again.
SAVED = f"compare_saved_{m.name}"
if st.session_state.get("compare_for") != m.name or "compare_versions" not in st.session_state:
    st.session_state["compare_for"] = m.name
    saved = [n for n in st.session_state.get(SAVED, []) if n in by_number]
    default = [n for n in (m.production, m.staging) if n in by_number] + [
        n for n in numbers if n not in (m.production, m.staging)
    ][:2]
    st.session_state["compare_versions"] = saved if SAVED in st.session_state else default[:4]
chosen = st.multiselect(
    "Versions",
    numbers,
    key="compare_versions",
    format_func=lambda n: f"{n} · {by_number[n].stage}",
    help="Production and the popularity baseline are added as references.",
)

st.session_state[SAVED] = list(chosen)

production = cache.stage_holder(m.name, "production")
baseline = cache.baseline()
selected = [by_number[n] for n in chosen]


def _against(mc: MetricComparison, deltas: pd.DataFrame | None) -> Styler:
    """One row per metric, one column per version: the value, and its delta against a reference
    in brackets, green where better and red where worse by the metric's direction."""
    values, diff = mc.values.T, None if deltas is None else deltas.T

    def cell(metric: str, label: str) -> str:
        value = values.at[metric, label]
        if pd.isna(value):
            return "—"
        if diff is None or pd.isna(diff.at[metric, label]) or abs(diff.at[metric, label]) < 1e-12:
            return f"{value:.4f}"
        return f"{value:.4f} ({diff.at[metric, label]:+.4f})"

    def colour(metric: str, label: str) -> str:
        if diff is None:
            return ""
        delta = diff.at[metric, label]
        if pd.isna(delta) or abs(delta) < 1e-12:
            return ""
        better = (delta > 0) == mc.directions.get(metric, True)
        return "color: #2e7d32" if better else "color: #c62828"

    text = pd.DataFrame(
        [[cell(m, c) for c in values.columns] for m in values.index],
        index=values.index,
        columns=values.columns,
    )
    colours = pd.DataFrame(
        [[colour(m, c) for c in values.columns] for m in values.index],
        index=values.index,
        columns=values.columns,
    )
    return text.style.apply(lambda _: colours, axis=None)


KEY_METRICS = ("ndcg@10", "ndcg@5", "precision@5", "recall@5", "rmse", "coverage@10")

if not selected:
    ui.empty_state("Choose one or more versions to compare.")
else:
    mc = comparison.compare_metrics(selected, production=production, baseline=baseline)
    st.subheader("Metrics", anchor=False)
    refs = []
    if mc.production:
        refs.append(f"production is **{ui.md(mc.production)}**")
    if mc.baseline:
        refs.append(f"the popularity baseline is **{ui.md(mc.baseline)}**")
    st.caption(
        ("; ".join(refs) + ".") if refs else "No production version and no popularity baseline."
    )
    if mc.values.empty or mc.values.columns.empty:
        ui.empty_state("These versions recorded no numeric metrics.")
    else:
        names = [
            f"Against production {mc.production}" if mc.production else "No production version",
            f"Against the baseline {mc.baseline}" if mc.baseline else "No popularity baseline",
        ]
        against_production, against_baseline = st.tabs(names, key="compare_tab")
        with against_production:
            st.dataframe(_against(mc, mc.vs_production), key="compare_vs_prod")
        with against_baseline:
            if mc.vs_baseline is None:
                st.caption(
                    "No popularity baseline registered: train one with "
                    "`python -m core train popularity --dataset NAME`."
                )
            st.dataframe(_against(mc, mc.vs_baseline), key="compare_vs_base")
        st.caption(
            "Each value with its difference from the reference in brackets: green better, red "
            "worse, by each metric's direction (lower is better for errors such as rmse)."
        )
        available = list(mc.values.columns)
        default = [x for x in KEY_METRICS if x in available] or available[:6]
        charted = st.multiselect("Metrics to chart", available, default, key="compare_charted")
        long = mc.long()
        long = long[long["metric"].isin(charted)]
        if not long.empty:
            st.plotly_chart(cache.figures.figure(charts.metric_bars, long), key="compare_bars")

# ------------------------------------------------------------------------ trend

st.subheader("Trend across all versions", anchor=False)
trend = cache.metric_trend(m.name)
metric_names = [c for c in trend.columns if c not in ("version", "created_at", "stage")]
if not metric_names:
    ui.empty_state("No version of this model recorded a numeric metric yet.")
else:
    preferred = next((x for x in KEY_METRICS if x in metric_names), metric_names[0])
    metric = st.selectbox(
        "Metric", metric_names, index=metric_names.index(preferred), key="compare_trend_metric"
    )
    st.plotly_chart(
        cache.figures.figure(charts.trend, trend, metric, production=m.production),
        key="compare_trend_chart",
    )

# ------------------------------------------------------------------------ ranked lists

st.subheader("Ranked lists on a sample of users", anchor=False)
# B may also be what another model serves (the popularity baseline, the legacy model).
own = {f"{m.name}@{n}": v.stage for n, v in by_number.items()}
served = {
    f"{o.name}@{o.production}": "production" for o in models if o.name != m.name and o.production
}
if len(own) + len(served) < 2:
    ui.empty_state("The list comparison needs a second version (of this model or another).")
    st.stop()

sources = [d.label for d in cache.dataset_list()] + [cache.GENERATED]
c = st.columns([2, 2, 2, 1, 1, 1])
a_options = list(own)
a_default = f"{m.name}@{m.production}"
version_a = c[0].selectbox(
    "Version A (reference)",
    a_options,
    index=a_options.index(a_default) if a_default in a_options else 0,
    key=f"compare_a_{m.name}",
    format_func=lambda x: f"{x} · {own[x]}",
)
b_stages = {**{x: st_ for x, st_ in own.items() if x != version_a}, **served}
b_options = list(b_stages)
b_default = next(
    (i for i, x in enumerate(b_options) if x.partition("@")[2] in chosen and x in own), 0
)
version_b = c[1].selectbox(
    "Version B",
    b_options,
    index=b_default,
    key=f"compare_b_{m.name}",
    format_func=lambda x: f"{x} · {b_stages[x]}",
)
preferred = by_number[version_a.partition("@")[2]].dataset
source = c[2].selectbox(
    "Users",
    sources,
    index=sources.index(preferred.label) if preferred and preferred.label in sources else 0,
    key="compare_source",
    help="A sample of this dataset's users, each placed in a central Madrid neighbourhood.",
)
n_users = c[3].number_input("Users", 10, 1000, 100, step=10, key="compare_n")
k = c[4].number_input("k", 1, 50, 10, key="compare_k")
seed = c[5].number_input("Seed", 0, 10_000, 0, key="compare_seed")

try:
    diff = cache.list_diff(version_a, version_b, source, int(n_users), int(k), int(seed))
except CoreError as exc:
    ui.error(exc)
    st.stop()

figures = st.columns(4)
figures[0].metric(f"Mean overlap@{diff.k}", f"{diff.mean_overlap:.0%}")
figures[1].metric("Identical lists", f"{diff.identical_share:.0%}")
figures[2].metric(f"Short lists ({diff.label_a})", diff.short_lists[diff.label_a])
figures[3].metric(f"Short lists ({diff.label_b})", diff.short_lists[diff.label_b])
st.caption(
    f"{diff.users} users from {ui.md(source)} (seed {int(seed)}), each at a central Madrid "
    "neighbourhood; overlap@k is the share of the top-k places both versions show."
)

left, right = st.columns(2)
with left:
    st.plotly_chart(
        cache.figures.figure(charts.overlap_histogram, diff.overlap, diff.k),
        key="compare_overlap",
    )
with right:
    mix = diff.mix_frame()
    if mix.empty:
        st.caption("Neither version recommended any place for this sample.")
    else:
        st.plotly_chart(cache.figures.figure(charts.category_mix, mix), key="compare_mix")


def _changes(items: list[comparison.PlaceChange]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"place": p.name, "category": p.category, "users": p.users} for p in items],
        columns=["place", "category", "users"],
    )


left, right = st.columns(2)
left.markdown(f"**Places gained by {ui.md(diff.label_b)}** (most users first)")
left.dataframe(_changes(diff.gained), hide_index=True, key="compare_gained")
right.markdown(f"**Places lost from {ui.md(diff.label_a)}** (most users first)")
right.dataframe(_changes(diff.lost), hide_index=True, key="compare_lost")
