"""Prediction drift: does the model answer today as it answered in a reference window?

Each stored result compares the predicted score of each of the 29 categories and the top
recommended category of a window of logged predictions with those of a reference window of the
same model's traffic, with the tests ``core`` pins per column type (normed Wasserstein distance
for the scores, Jensen-Shannon distance for the category). Predictions drift when the users'
tastes move or when a new version answers differently; the page draws the results over time,
the latest result's columns, one column's distribution on both sides, and Evidently's full
report on demand. It reads stored results only, never the prediction log.
"""

from __future__ import annotations

import datetime as dt

import streamlit as st

from core import drift
from core.drift_store import DriftRecord
from dashboard import cache, drift_view, monitor_cache, session, ui

KIND = "prediction"
P = "prediction_drift"  # prefix of this page's state keys

session.actor()
st.title("Prediction drift")

models = cache.models()
if not models:
    ui.empty_state(
        "No model is registered yet. For each model this page will show how its predictions "
        "drift away from those of a reference window of its traffic: the share of drifted "
        "columns and each predicted category score's drift over time, the columns of the "
        "latest result, reference and current distributions side by side (including the top "
        "recommended category), and Evidently's full report.\n\n"
        "Bootstrap a demo with `python -m core demo`, or train and promote a model and replay "
        "traffic through it with `python -m core simulate NAME`."
    )
    st.stop()

m = ui.pick_model(f"{P}_model", models)
records, frame = monitor_cache.drift_history(m.name, KIND)
if not records:
    ui.empty_state(
        f"No prediction drift result for {ui.md(m.name)} yet. Each result compares the "
        "predicted category scores and the top recommended category of a window of logged "
        "predictions with those of a reference window of the same model's traffic; here you "
        "will see the share of drifted columns and each column's score over time, the columns "
        "of the latest result, reference against current distributions, and Evidently's full "
        "report on demand.\n\n"
        "The worker computes a result for every window once a reference window of traffic "
        "exists. To see it now, replay generated users through the production version: "
        f"`python -m core simulate {m.name} --days 14 --drift-from-day 7` (the first three "
        "simulated days are the reference)."
    )
    st.stop()


def _reference(label: str) -> str:
    """``traffic <start> – <end>`` (ISO times from ``core``) as people read it."""
    if label.startswith("traffic "):
        try:
            start, end = (
                dt.datetime.fromisoformat(x) for x in label.removeprefix("traffic ").split(" – ")
            )
        except ValueError:
            return label
        return f"traffic {ui.when(start)} – {ui.when(end)}"
    return label


def _describe(latest: DriftRecord) -> str:
    return (
        f"{latest.n_current:,} predictions (production version {ui.md(latest.version or '—')} "
        f"at the time) against {ui.md(_reference(latest.reference))} ({latest.n_reference:,} "
        f"predictions). A result counts as drift of the predictions as a whole when at least "
        f"{drift.DRIFT_SHARE:.0%} of the columns drift."
    )


drift_view.show(
    kind=KIND,
    prefix=P,
    model=m,
    records=records,
    frame=frame,
    describe_latest=_describe,
    methods=(
        f"{drift.NUMERIC_METHOD}: Evidently's normed Wasserstein distance, pinned for every "
        f"predicted score; {drift.CATEGORICAL_METHOD}: the Jensen-Shannon distance, pinned for "
        "the top recommended category; whatever the sample size. A column drifts when its "
        "score reaches the threshold."
    ),
    reference=_reference,
)
