"""Audit: a domain expert reviews a version's lists for a stratified sample and records a verdict.

The verdict (approve, or reject with a comment) is what the audit gate of a promotion to
production checks when the model requires an audit.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.data import catalogue
from core.data.categories import CATEGORIES
from core.errors import BadInput, CoreError
from core.registry import audit
from core.serving.ranking import RankingConfig
from dashboard import cache, session, ui

actor = session.actor()
st.title("Audit a version")
ui.show_flash()

models = cache.models()
if not models:
    ui.empty_state(
        "No version to audit yet. Here an auditor sees a version's recommendations for a "
        "sample of users drawn from every taste segment, with automatic warnings (a category "
        "dominating the lists, a category never recommended, short lists, …), and approves or "
        "rejects the version."
    )
    st.stop()

top = st.columns([2, 2, 3])
with top[0]:
    m = ui.pick_model("audit_model", models)
page = cache.versions(model=m.name, page_size=200)
by_number = {v.version: v for v in page.items}
numbers = list(by_number)
if not numbers:
    ui.empty_state(f"Model {ui.md(m.name)} has no versions yet.")
    st.stop()
candidate = cache.newest(m.name, "candidate")
default = numbers.index(candidate.version) if candidate and candidate.version in numbers else 0
number = top[1].selectbox(
    "Version",
    numbers,
    index=default,
    key=f"audit_version_{m.name}",
    format_func=lambda n: f"{n} · {by_number[n].stage}",
)
v = by_number[number]
with top[2]:
    if m.require_audit:
        st.info(
            "This model requires an approving verdict before a version goes to production; "
            "whoever approves a version cannot also be the one who promotes it.",
            icon=":material/verified_user:",
        )
    else:
        st.caption(
            "This model does not require an audit for production (operators can turn it on, "
            "Deploy page); verdicts are recorded all the same."
        )

# ------------------------------------------------------------------------ verdicts

history = cache.verdicts(m.name, number)
if history:
    latest = history[0]
    shown = st.success if latest.verdict == "approve" else st.error
    shown(
        f"Latest verdict: **{latest.verdict}** by {ui.md(latest.auditor)}, "
        f"{ui.when(latest.created_at)}" + (f" — {ui.md(latest.comment)}" if latest.comment else "")
    )
else:
    st.caption("No verdict recorded for this version yet.")

# ------------------------------------------------------------------------ sample

st.subheader("Stratified sample", anchor=False)
sources = [d.label for d in cache.dataset_list()] + [cache.GENERATED]
preferred = v.dataset.label if v.dataset and v.dataset.label in sources else sources[0]
c = st.columns([3, 1, 1, 1])
source = c[0].selectbox(
    "Users from",
    sources,
    index=sources.index(preferred),
    key="audit_source",
    help="By default the dataset the version was trained on.",
)
per_segment = c[1].number_input("Users per segment", 1, 50, 5, key="audit_per_segment")
k = c[2].number_input("k", 1, 30, 10, key="audit_k")
seed = c[3].number_input("Seed", 0, 10_000, 0, key="audit_seed")
st.caption(
    "Users from every taste segment (culture, foodie, nightlife, …), each placed at a central "
    "Madrid neighbourhood; the warnings below are computed from their lists."
)
review = None
try:
    review = cache.audit_review(m.name, number, source, int(per_segment), int(k), int(seed))
except CoreError as exc:
    ui.error(exc)

# Findings about the model's configuration, whatever the sample: a category whose place types
# match almost every place labels any place with its name.
try:
    mapping = RankingConfig.from_settings(m.settings).mapping
except CoreError:
    mapping = None
catch_all = cache.catch_all_categories(mapping)
if catch_all:
    st.warning(
        "**Model configuration:** " + " ".join(ui.md(c.message) for c in catch_all),
        icon=":material/tune:",
    )

if review is not None:
    warnings = [f for f in review.findings if f.severity == "warning"]
    if not warnings and not catch_all:
        st.success("No automatic warning for this sample.", icon=":material/check_circle:")
    for f in review.findings:
        (st.warning if f.severity == "warning" else st.info)(ui.md(f.message))

    st.markdown("**By taste segment**")
    st.dataframe(
        review.segments,
        hide_index=True,
        column_config={
            "liked-category share": st.column_config.ProgressColumn(
                format="percent", min_value=0.0, max_value=1.0
            ),
            "mean length": st.column_config.NumberColumn(format="%.1f"),
            "distinct categories": st.column_config.NumberColumn(format="%.1f"),
        },
        key="audit_segments",
    )

    sample = review.sample
    overview = pd.DataFrame(
        [
            {
                "user": sample.user_ids[i],
                "segment": sample.segments[i] if sample.segments else "",
                "where": sample.places[i],
                "places": len(review.lists[i]),
                "top 3": " · ".join(r.name for r in review.lists[i][:3]),
            }
            for i in range(len(sample))
        ]
    )
    st.markdown("**Users in the sample**")
    st.dataframe(overview, hide_index=True, key="audit_users")

    pick = st.selectbox(
        "Look at one user",
        range(len(sample)),
        format_func=lambda i: (
            f"{sample.user_ids[i]} · {sample.segments[i] if sample.segments else ''}"
            f" · {sample.places[i]}"
        ),
        key="audit_user",
    )
    left, right = st.columns([1, 2])
    with left:
        ratings = pd.DataFrame(
            [
                {"category": c, "rating": int(r)}
                for c, r in zip(CATEGORIES, sample.prefs[pick], strict=True)
                if r > 0
            ],
            columns=["category", "rating"],
        ).sort_values("rating", ascending=False)
        st.markdown("**Their ratings**")
        st.dataframe(ratings, hide_index=True, key="audit_ratings")
    with right:
        st.markdown(f"**Their {len(review.lists[pick])} places**")
        liked = set(review.liked_categories(pick))
        frame = review.user_frame(pick)
        frame.insert(
            3, "its types", [catalogue.own_types_label(r.place_id) for r in review.lists[pick]]
        )
        frame["liked"] = frame["category"].isin(liked)
        st.dataframe(
            frame,
            hide_index=True,
            key="audit_list",
            column_config={
                "score": st.column_config.NumberColumn(format="%.3f"),
                "distance (m)": st.column_config.NumberColumn(format="%.0f"),
                "liked": st.column_config.CheckboxColumn(help="A category the user rated 4 or 5."),
            },
        )

# ------------------------------------------------------------------------ record a verdict

st.subheader("Verdict", anchor=False)


def _record() -> str:
    state = st.session_state
    verdict = state.get("audit_verdict")
    comment = state.get("audit_comment", "")
    if verdict is None:
        raise BadInput("choose Approve or Reject first: a verdict has no default")
    done = audit.record_verdict(
        actor=session.acting(),
        model=m.name,
        version=number,
        verdict=verdict,
        comment=comment,
        sample=review.record() if review is not None else None,
    )
    state["audit_comment"] = ""
    state["audit_verdict"] = None
    return f"Recorded: {done.verdict} of {m.name}@{number} by {done.auditor}."


if not actor.can("audit"):
    st.info(
        f"Your role ({actor.role}) can read audits. Auditors, operators and admins record verdicts."
    )
else:
    with st.form("audit_form", border=True):
        st.radio(
            "Verdict",
            ["approve", "reject"],
            key="audit_verdict",
            index=None,
            horizontal=True,
            format_func=lambda x: "Approve" if x == "approve" else "Reject",
        )
        st.text_area(
            "Comment",
            key="audit_comment",
            max_chars=audit.MAX_COMMENT,
            placeholder="What you checked; for a rejection, what is wrong.",
        )
        if review is None:
            st.caption("No sample could be built: the verdict is recorded without one.")
        else:
            st.caption(
                f"The sample you saw ({len(review.sample)} users, seed {review.sample.seed}) and "
                "its warnings are stored with the verdict."
            )
        st.form_submit_button("Record verdict", type="primary", on_click=ui.act, args=(_record,))

if history:
    with st.expander(f"All {len(history)} verdicts for this version"):
        ui.verdicts(history, with_sample=True, key="audit_history")
