"""The figures of one window and (version, variant) pair, one kind at a time.

- ``traffic``: requests, errors, latency percentiles and click-through, against the same time
  of day on the previous days;
- ``data`` and ``prediction`` drift (:func:`drift_outcome`): the requests' ratings against the
  version's training dataset, the predicted scores against the version's own predictions on
  its validation users;
- ``health``: the label-free figures of :mod:`core.metrics.health`, with list churn after a
  promotion.

Each comes back as an :class:`Outcome` with the alert conditions it meets, ready for the job
to store; a kind that fails becomes a ``failed`` outcome (:func:`guarded`), never an exception.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core.data.categories import CATEGORIES
from core.metrics import health
from core.monitoring import alerts, drift, drift_store
from core.monitoring.window_log import Pair, baseline, previous_lists
from core.monitoring.windows import Window

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """One kind of one pair, ready to store."""

    kind: str
    version: str
    variant: str
    status: str
    rows: int
    figures: dict[str, Any]
    message: str = ""
    drift: drift.DriftResult | None = None
    reference: str = ""
    conditions: list[alerts.Condition] = field(default_factory=list)


_item_stats: health.ItemStats | None = None


def _catalogue_stats() -> health.ItemStats:
    global _item_stats
    if _item_stats is None:
        from core.data import catalogue

        cat = catalogue.load()
        _item_stats = health.item_stats(cat.place_ids.tolist(), cat.reviews)
    return _item_stats


def traffic_outcome(model: str, p: Pair, window: Window, limits: dict[str, float]) -> Outcome:
    lat = np.asarray(p.latencies, dtype=float)
    volume, ctr0 = baseline(model, p.variant, window)
    fig = alerts.TrafficFigures(
        requests=p.requests,
        error_rate=p.errors / p.requests if p.requests else 0.0,
        latency_p99_ms=float(np.percentile(lat, 99)) if len(lat) else math.nan,
        click_through=p.clicks / p.requests if p.requests else 0.0,
        baseline_requests=volume,
        baseline_click_through=ctr0,
    )
    prefix = "canary " if p.variant == "canary" else ""
    conditions = alerts.traffic_conditions(
        limits, model=model, figures=fig, span=window.span, prefix=prefix
    )
    figures = health.clean(
        {
            "requests": p.requests,
            "errors": p.errors,
            "error_rate": fig.error_rate,
            "latency_p50_ms": float(np.percentile(lat, 50)) if len(lat) else math.nan,
            "latency_p99_ms": fig.latency_p99_ms,
            "clicks": p.clicks,
            "click_through": fig.click_through,
            "baseline_requests": volume,
            "baseline_click_through": ctr0,
        }
    )
    status = "ok" if p.requests >= limits["min_requests"] else "too_few_rows"
    message = (
        "" if status == "ok" else f"{p.requests} requests; rates need {limits['min_requests']:g}"
    )
    return Outcome(
        "traffic", p.version, p.variant, status, p.requests, figures, message, conditions=conditions
    )


def _too_few(kind: str, p: Pair, needed: int) -> Outcome:
    return Outcome(
        kind,
        p.version,
        p.variant,
        "too_few_rows",
        p.ok_total,
        {},
        f"{p.ok_total} successful requests; {kind} drift needs {needed}"
        if kind in ("data", "prediction")
        else f"{p.ok_total} successful requests; health figures need {needed}",
    )


def drift_outcome(
    kind: str, model: str, p: Pair, info: Any, needed: int, limits: dict[str, float]
) -> Outcome:
    """Data or prediction drift of one pair. The two kinds differ only in the rows that count
    (every successful request; those with predicted scores), the reference (the training
    dataset's ratings; the version's predictions on its validation users) and the columns
    compared; data drift also alerts per column and notes when the log was thinned."""
    if kind == "data":
        usable, count = p.ok, p.ok_total
    else:
        usable = p.ok[p.ok["predicted"].notna()] if p.ok is not None else None
        count = len(usable) if usable is not None else 0
    if usable is None or count < needed:
        return _too_few(kind, p, needed)
    reference = (
        drift_store.cached_reference_ratings if kind == "data" else drift_store.prediction_reference
    )
    try:
        ref, label = reference(info)
    except drift_store.NoReference as exc:
        return Outcome(kind, p.version, p.variant, "no_reference", count, {}, str(exc))
    ratings = np.asarray(usable["ratings"].tolist(), dtype=float)
    if kind == "data":
        current = pd.DataFrame(ratings, columns=list(CATEGORIES))
        result = drift.compute(ref, current, numeric=list(CATEGORIES), trusted=True)
        if usable.attrs.get("step", 1) > 1:
            result.sampling += f"; logs thinned to every {usable.attrs['step']}th request by id"
        columns: dict[str, Any] = {c: d.as_dict(with_noise=True) for c, d in result.columns.items()}
    else:
        current = drift_store.predictions_of(
            ratings, np.asarray(usable["predicted"].tolist(), dtype=float)
        )
        result = drift.compute(
            ref,
            current,
            numeric=[drift_store.PRED_PREFIX + c for c in CATEGORIES],
            categorical=[drift_store.TOP_CATEGORY],
            trusted=True,
        )
        columns = {}
    conditions = alerts.drift_conditions(
        limits,
        model=model,
        kind=kind,
        drift_share=result.drift_share,
        columns=columns,
        rows=result.n_current,
        prefix="canary " if p.variant == "canary" else "",
    )
    return Outcome(
        kind,
        p.version,
        p.variant,
        "ok",
        count,
        _drift_figures(result),
        drift=result,
        reference=label,
        conditions=conditions,
    )


def _drift_figures(result: drift.DriftResult) -> dict[str, Any]:
    return {
        "drift_share": result.drift_share,
        "dataset_drift": result.dataset_drift,
        "drifted_columns": result.drifted_columns,
        "top_columns": {
            c: round(d.score, 4)
            for c, d in sorted(result.columns.items(), key=lambda kv: -kv[1].score)[:5]
        },
    }


def health_outcome(
    model: str, p: Pair, window: Window, needed: int, limits: dict[str, float]
) -> Outcome:
    if p.ok_total < needed or p.ok is None:
        return _too_few("health", p, needed)
    figures = health.figures(
        p.ok["places"].tolist(), p.ok["categories"].tolist(), _catalogue_stats()
    )
    if p.variant == "production":
        users = [u for u in p.ok["user_id"].tolist() if u]
        previous = previous_lists(model, p.version, window, users) if users else None
        if previous is not None:
            current = {
                u: list(pl) for u, pl in zip(p.ok["user_id"], p.ok["places"], strict=True) if u
            }
            figures["churn"] = health.churn(previous, current)
            figures["churn_users"] = sum(u in previous for u in current)
    figures = health.clean(figures)
    conditions = alerts.health_conditions(
        limits, model=model, figures=figures, prefix="canary " if p.variant == "canary" else ""
    )
    return Outcome("health", p.version, p.variant, "ok", p.ok_total, figures, conditions=conditions)


def guarded(kind: str, p: Pair, compute: Callable[[], Outcome]) -> Outcome:
    """One kind's outcome; a failure is recorded as such and retried later."""
    try:
        return compute()
    except Exception as exc:  # noqa: BLE001 - a failure is stored and shown, never lost
        log.exception("monitoring %s of %s@%s failed", kind, p.version, p.variant)
        return Outcome(
            kind,
            p.version,
            p.variant,
            "failed",
            p.ok_total,
            {},
            f"{type(exc).__name__}: {exc}"[:2000],
        )
