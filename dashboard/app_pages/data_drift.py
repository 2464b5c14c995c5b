"""Data drift: do the requests a model serves still look like the data it was trained on?

Each stored result compares the 29 ratings of one window of logged requests with the training
dataset of the version that served them, column by column, with the test ``core`` pins per
column type (so a verdict means the same at 100 requests and at 100,000). The page draws the
results over time, the latest result's columns, one column's distribution on both sides, and
Evidently's full report on demand. It reads stored results only, never the prediction log.
"""

from __future__ import annotations

from core.monitoring import drift
from core.monitoring.drift_store import DriftRecord
from dashboard import drift_view, ui


def _no_result(model: str) -> str:
    return (
        f"No data drift result for {ui.md(model)} yet. Each result compares the ratings of a "
        "window of logged requests with the training data of the version that served them; "
        "here you will see the share of drifted columns and each column's score over time, the "
        "columns of the latest result, reference against current distributions, and "
        "Evidently's full report on demand.\n\n"
        "The worker's monitoring job computes a result for every window of live traffic with "
        "enough requests once the window has ended (`python -m core monitor run --now` also "
        "computes the current one). To see it now, replay generated users through the "
        f"production version: `python -m core simulate {model} --days 14 --drift-from-day 7` "
        "(a summer episode from day 7 on)."
    )


def _describe(latest: DriftRecord) -> str:
    return (
        f"{latest.n_current:,} requests of version {ui.md(latest.version or '—')} against "
        f"{ui.md(latest.reference)} ({latest.n_reference:,} rows). A result counts as dataset "
        f"drift when at least {drift.DRIFT_SHARE:.0%} of the columns drift."
    )


drift_view.page(
    title="Data drift",
    kind="data",
    prefix="data_drift",
    no_model=(
        "No model is registered yet. For each model this page will show how the ratings of the "
        "requests it serves drift away from its training data: the share of drifted columns "
        "and each column's drift score over time, the columns of the latest result, reference "
        "and current distributions side by side, and Evidently's full report."
    ),
    no_result=_no_result,
    describe_latest=_describe,
    methods=(
        f"{drift.NUMERIC_METHOD}: Evidently's normed Wasserstein distance, pinned for every "
        "rating column whatever the sample size; a column drifts when its score reaches the "
        "threshold."
    ),
)
