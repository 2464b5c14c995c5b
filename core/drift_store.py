"""Drift of a model's traffic, computed on stored windows and kept for the pages.

Data drift compares the 29 ratings of logged requests with the training dataset of the
version that served them; prediction drift compares the predicted category scores and the
top recommended category of a window with a reference window of the same model's traffic.
Results are stored per column, with histograms of both sides, so the pages never touch raw
logs; the Evidently HTML report is written as an artifact only when someone asks for it,
because it weighs megabytes per result.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import select

from core import alerts, artifacts, datasets, drift, monitoring, registry
from core.categories import CATEGORIES
from core.db import transaction, utcnow
from core.entities import VersionInfo
from core.errors import BadInput, NotFound
from core.telemetry_tables import DriftResultRow

KINDS = ("data", "prediction")
PRED_PREFIX = "predicted: "
TOP_CATEGORY = "top category"
REPORTS_DIR = "reports"


@dataclass(frozen=True)
class DriftRecord:
    id: int
    computed_at: dt.datetime
    model: str
    version: str | None
    kind: str
    window_start: dt.datetime
    window_end: dt.datetime
    reference: str
    n_reference: int
    n_current: int
    drift_share: float
    dataset_drift: bool
    columns: dict[str, Any]
    summaries: dict[str, Any]
    report_path: str | None
    sampling: str

    @property
    def drifted_columns(self) -> list[str]:
        return [c for c, d in self.columns.items() if d["drifted"]]


def _record(row: DriftResultRow, *, with_summaries: bool = True) -> DriftRecord:
    return DriftRecord(
        row.id,
        row.computed_at,
        row.model,
        row.version,
        row.kind,
        row.window_start,
        row.window_end,
        row.reference,
        row.n_reference,
        row.n_current,
        row.drift_share,
        row.dataset_drift,
        row.columns,
        row.summaries if with_summaries else {},
        row.report_path,
        row.sampling,
    )


def store(
    *,
    model: str,
    version: str | None,
    kind: str,
    window_start: dt.datetime,
    window_end: dt.datetime,
    reference: str,
    result: drift.DriftResult,
    check_alerts: bool = True,
) -> DriftRecord:
    if kind not in KINDS:
        raise BadInput(f"unknown drift kind {kind!r}")
    with transaction() as s:
        row = DriftResultRow(
            computed_at=utcnow(),
            model=model,
            version=version,
            kind=kind,
            window_start=window_start,
            window_end=window_end,
            reference=reference,
            n_reference=result.n_reference,
            n_current=result.n_current,
            drift_share=result.drift_share,
            dataset_drift=result.dataset_drift,
            columns={c: d.as_dict() for c, d in result.columns.items()},
            summaries=result.summaries,
            sampling=result.sampling,
        )
        s.add(row)
        s.flush()
        record = _record(row)
    if result.html:
        record = _save_html(record, result.html)
    if check_alerts:
        alerts.check_drift(
            model=model,
            version=version,
            kind=kind,
            drift_share=record.drift_share,
            columns=record.columns,
            rows=record.n_current,
        )
    return record


def _save_html(record: DriftRecord, html: str) -> DriftRecord:
    relative = f"{REPORTS_DIR}/{record.model}/drift-{record.id}.html"
    target = artifacts.root() / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, target)
    artifacts.store_file(relative, target)  # other replicas find it in the object store
    with transaction() as s:
        row = s.get(DriftResultRow, record.id)
        assert row is not None
        row.report_path = relative
        return _record(row)


def history(
    model: str, kind: str, *, since: dt.datetime | None = None, limit: int = 2000
) -> list[DriftRecord]:
    """Results of a model over time (without the histograms, which only one view needs)."""
    with transaction(write=False) as s:
        q = (
            select(DriftResultRow)
            .where(DriftResultRow.model == model, DriftResultRow.kind == kind)
            .order_by(DriftResultRow.window_end.desc(), DriftResultRow.id.desc())
            .limit(limit)
        )
        if since is not None:
            q = q.where(DriftResultRow.window_end >= since)
        from sqlalchemy.orm import defer

        rows = s.scalars(q.options(defer(DriftResultRow.summaries))).all()
        return [_record(r, with_summaries=False) for r in reversed(rows)]


def history_frame(records: list[DriftRecord]) -> pd.DataFrame:
    """Long format: one row per result and column, plus a row per result for the share."""
    rows = []
    for r in records:
        rows.append(
            {
                "window_end": r.window_end,
                "column": "drift share",
                "score": r.drift_share,
                "drifted": r.dataset_drift,
                "id": r.id,
            }
        )
        for c, d in r.columns.items():
            rows.append(
                {
                    "window_end": r.window_end,
                    "column": c,
                    "score": d["score"],
                    "drifted": d["drifted"],
                    "id": r.id,
                }
            )
    return pd.DataFrame(rows, columns=["window_end", "column", "score", "drifted", "id"])


def get(result_id: int) -> DriftRecord:
    with transaction(write=False) as s:
        row = s.get(DriftResultRow, result_id)
        if row is None:
            raise NotFound(f"no drift result #{result_id}")
        return _record(row)


def latest(model: str, kind: str = "data") -> DriftRecord | None:
    with transaction(write=False) as s:
        row = s.scalar(
            select(DriftResultRow)
            .where(DriftResultRow.model == model, DriftResultRow.kind == kind)
            .order_by(DriftResultRow.window_end.desc(), DriftResultRow.id.desc())
            .limit(1)
        )
        return None if row is None else _record(row)


# ------------------------------------------------------------------------ computing


def reference_ratings(version: VersionInfo) -> tuple[pd.DataFrame, str]:
    if version.dataset is None:
        raise BadInput(
            f"{version.label} records no training dataset, so its inputs have no reference"
        )
    info = datasets.get_dataset(version.dataset.name, version.dataset.version)
    return datasets.load_users(info)[list(CATEGORIES)], info.label


def prediction_frame(window: pd.DataFrame) -> pd.DataFrame:
    """Predicted category scores and the top recommended category of each logged request."""
    usable = window[window["predicted"].notna()] if not window.empty else window
    if usable.empty:
        return pd.DataFrame(columns=[PRED_PREFIX + c for c in CATEGORIES] + [TOP_CATEGORY])
    frame = pd.DataFrame(
        usable["predicted"].tolist(), columns=[PRED_PREFIX + c for c in CATEGORIES]
    ).astype(float)
    frame[TOP_CATEGORY] = [c[0] if c else "(none)" for c in usable["categories"]]
    return frame


def _version_at(model: str, version: str | None) -> VersionInfo:
    return registry.get_version(model, version) if version else registry.get_version(model)


def data_drift(
    model: str,
    start: dt.datetime,
    end: dt.datetime,
    *,
    version: str | None = None,
    html: bool = False,
    seed: int = 0,
    reference: tuple[pd.DataFrame, str] | None = None,
) -> DriftRecord:
    """Inputs of the window against the serving version's training data; stored."""
    v = _version_at(model, version)
    ref, label = reference or reference_ratings(v)
    window = monitoring.window(model, start, end, version=v.version)
    if window.empty:
        raise BadInput(
            f"no logged requests of {v.label} between {start:%Y-%m-%d %H:%M} and "
            f"{end:%Y-%m-%d %H:%M}"
        )
    result = drift.compute(
        ref, monitoring.ratings_of(window), numeric=list(CATEGORIES), html=html, seed=seed
    )
    if window.attrs.get("step", 1) > 1:
        result.sampling += f"; logs thinned to every {window.attrs['step']}th request by id"
    return store(
        model=model,
        version=v.version,
        kind="data",
        window_start=start,
        window_end=end,
        reference=label,
        result=result,
    )


def prediction_drift(
    model: str,
    start: dt.datetime,
    end: dt.datetime,
    *,
    reference_start: dt.datetime,
    reference_end: dt.datetime,
    html: bool = False,
    seed: int = 0,
) -> DriftRecord:
    """Predictions of the window against those of a reference window; stored."""
    current = prediction_frame(monitoring.window(model, start, end))
    ref = prediction_frame(monitoring.window(model, reference_start, reference_end))
    if current.empty or ref.empty:
        empty = "current" if current.empty else "reference"
        raise BadInput(f"the {empty} window of {model} holds no logged predictions")
    result = drift.compute(
        ref,
        current,
        numeric=[PRED_PREFIX + c for c in CATEGORIES],
        categorical=[TOP_CATEGORY],
        html=html,
        seed=seed,
    )
    label = f"traffic {reference_start.isoformat()} – {reference_end.isoformat()}"
    version = registry.find_version(model, "production")
    return store(
        model=model,
        version=None if version is None else version.version,
        kind="prediction",
        window_start=start,
        window_end=end,
        reference=label,
        result=result,
    )


def report_html(result_id: int) -> Path:
    """The Evidently report of a stored result, computed from its windows when first asked."""
    record = get(result_id)
    if record.report_path:
        path = artifacts.local_file(record.report_path)
        if path is not None:
            return path
    if record.kind == "data":
        if record.version is None:
            raise BadInput(f"drift result #{result_id} names no version")
        v = registry.get_version(record.model, record.version)
        ref, _ = reference_ratings(v)
        window = monitoring.window(
            record.model, record.window_start, record.window_end, version=record.version
        )
        current = monitoring.ratings_of(window)
        numeric, categorical = list(CATEGORIES), []
    else:
        span = record.reference.removeprefix("traffic ").split(" – ")
        ref_start, ref_end = (dt.datetime.fromisoformat(x) for x in span)
        ref = prediction_frame(monitoring.window(record.model, ref_start, ref_end))
        current = prediction_frame(
            monitoring.window(record.model, record.window_start, record.window_end)
        )
        numeric, categorical = [PRED_PREFIX + c for c in CATEGORIES], [TOP_CATEGORY]
    if current.empty:
        raise BadInput(f"the logs of drift result #{result_id} are no longer available")
    result = drift.compute(ref, current, numeric=numeric, categorical=categorical, html=True)
    assert result.html is not None
    saved = _save_html(record, result.html)
    assert saved.report_path is not None
    return artifacts.root() / saved.report_path
