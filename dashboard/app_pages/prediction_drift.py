"""Prediction drift: does the model answer today as it answered its own held-out users?

Each stored result (computed by the worker's monitoring job) compares the predicted score of
each of the 29 categories and the top predicted category of a window of logged predictions with
the serving version's predictions on the users its training held out (computed once per
version, so a reference exists from the first window), with the tests ``core`` pins per column
type (normed Wasserstein distance for the scores, Jensen-Shannon distance for the category).
Predictions drift when the users' tastes move or when a new version answers differently; the
page draws the results over time, the latest result's columns, one column's distribution on
both sides, and Evidently's full report on demand. It reads stored results only, never the
prediction log.
"""

from __future__ import annotations

import datetime as dt

from core.monitoring import drift
from core.monitoring.drift_store import DriftRecord
from dashboard import drift_view, ui


def _no_result(model: str) -> str:
    return (
        f"No prediction drift result for {ui.md(model)} yet. Each result compares the "
        "predicted category scores and the top predicted category of a window of logged "
        "predictions with the version's predictions on the users its training held out; here you "
        "will see the share of drifted columns and each column's score over time, the columns "
        "of the latest result, reference against current distributions, and Evidently's full "
        "report on demand.\n\n"
        "The worker's monitoring job computes a result for every window of live traffic with "
        "enough requests, once the window has ended (`python -m core monitor run --now` computes "
        "the current one too). To see it now, replay generated users through the production "
        f"version: `python -m core simulate {model} --days 14 --drift-from-day 7`."
    )


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


drift_view.page(
    title="Prediction drift",
    kind="prediction",
    prefix="prediction_drift",
    no_model=(
        "No model is registered yet. For each model this page will show how its predictions "
        "drift away from its predictions on the users its training held out: the share of drifted "
        "columns and each predicted category score's drift over time, the columns of the "
        "latest result, reference and current distributions side by side (including the top "
        "predicted category), and Evidently's full report."
    ),
    no_result=_no_result,
    describe_latest=_describe,
    methods=(
        f"{drift.NUMERIC_METHOD}: Evidently's normed Wasserstein distance, pinned for every "
        f"predicted score; {drift.CATEGORICAL_METHOD}: the Jensen-Shannon distance, pinned for "
        "the top recommended category; whatever the sample size. A column drifts when its "
        "score reaches the threshold."
    ),
    reference=_reference,
)
