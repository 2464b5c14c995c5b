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
import functools
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from core import registry
from core.config import get_settings
from core.data import datasets, splits
from core.data.categories import CATEGORIES
from core.db import transaction, utcnow
from core.db.tables import DriftResultRow, PredictionReferenceRow
from core.errors import BadInput, NotFound
from core.monitoring import alerts, drift, reads
from core.registry import artifacts
from core.registry.entities import VersionInfo

KINDS = ("data", "prediction")


class NoReference(BadInput):
    """A version without a training dataset has nothing to compare its traffic with."""


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
    variant: str = "production",
) -> DriftRecord:
    with transaction() as s:
        record = insert(
            s,
            model=model,
            version=version,
            kind=kind,
            window_start=window_start,
            window_end=window_end,
            reference=reference,
            result=result,
            variant=variant,
        )
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


def insert(
    s: Any,
    *,
    model: str,
    version: str | None,
    kind: str,
    window_start: dt.datetime,
    window_end: dt.datetime,
    reference: str,
    result: drift.DriftResult,
    variant: str = "production",
) -> DriftRecord:
    """Add a result inside the caller's transaction (the monitoring job writes a window's
    results, its ledger rows and its alerts in one)."""
    if kind not in KINDS:
        raise BadInput(f"unknown drift kind {kind!r}")
    row = DriftResultRow(
        computed_at=utcnow(),
        model=model,
        version=version,
        kind=kind,
        variant=variant,
        window_start=window_start,
        window_end=window_end,
        reference=reference,
        n_reference=result.n_reference,
        n_current=result.n_current,
        drift_share=result.drift_share,
        dataset_drift=result.dataset_drift,
        columns={c: d.as_dict(with_noise=True) for c, d in result.columns.items()},
        summaries=result.summaries,
        sampling=result.sampling,
    )
    s.add(row)
    s.flush()
    return _record(row)


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
    model: str,
    kind: str,
    *,
    since: dt.datetime | None = None,
    limit: int = 2000,
    variant: str = "production",
) -> list[DriftRecord]:
    """Results of a model over time (without the histograms, which only one view needs)."""
    with transaction(write=False) as s:
        q = (
            select(DriftResultRow)
            .where(
                DriftResultRow.model == model,
                DriftResultRow.kind == kind,
                DriftResultRow.variant == variant,
            )
            .order_by(DriftResultRow.window_end.desc(), DriftResultRow.id.desc())
            .limit(limit)
        )
        if since is not None:
            q = q.where(DriftResultRow.window_end >= since)
        from sqlalchemy.orm import defer

        rows = s.scalars(q.options(defer(DriftResultRow.summaries))).all()
        return [_record(r, with_summaries=False) for r in reversed(rows)]


def drifted(record: DriftRecord, limits: dict[str, float]) -> bool:
    """Whether a result shows drift worth acting on: whether it crosses an alert's threshold
    (:func:`core.monitoring.alerts.drift_conditions`, the one rule)."""
    return bool(
        alerts.drift_conditions(
            limits,
            model=record.model,
            kind=record.kind,
            drift_share=record.drift_share,
            columns=record.columns,
            rows=record.n_current,
        )
    )


def onset(records: list[DriftRecord], limits: dict[str, float]) -> dt.datetime | None:
    """When the current drift episode began: the start of the first window of the latest
    unbroken run of drifted windows, or None when the latest window is calm."""
    start = None
    for r in reversed(records):
        if not drifted(r, limits):
            break
        start = r.window_start
    return start


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


def latest(model: str, kind: str = "data", variant: str = "production") -> DriftRecord | None:
    with transaction(write=False) as s:
        row = s.scalar(
            select(DriftResultRow)
            .where(
                DriftResultRow.model == model,
                DriftResultRow.kind == kind,
                DriftResultRow.variant == variant,
            )
            .order_by(DriftResultRow.window_end.desc(), DriftResultRow.id.desc())
            .limit(1)
        )
        return None if row is None else _record(row)


# ------------------------------------------------------------------------ computing


@functools.lru_cache(maxsize=16)
def _dataset_ratings(
    data_root: str, name: str, version: int, sha256: str
) -> tuple[pd.DataFrame, str]:
    """A dataset's 29 ratings, kept for the process (the job asks for the same few versions
    every window; a dataset version never changes, and load_users checked its SHA-256).
    Keyed by the data folder and the recorded hash too: two registries in one process (tests,
    benchmarks) may both hold a ``madrid@1``."""
    info = datasets.get_dataset(name, version)
    return datasets.load_users(info)[list(CATEGORIES)].astype(float), info.label


def cached_reference_ratings(version: VersionInfo) -> tuple[pd.DataFrame, str]:
    """The version's training ratings (the data-drift reference), cached per dataset version."""
    if version.dataset is None:
        raise NoReference(
            f"{version.label} records no training dataset, so its inputs have no reference"
        )
    return _dataset_ratings(
        str(get_settings().data_root),
        version.dataset.name,
        version.dataset.version,
        version.dataset.sha256,
    )


def predictions_of(ratings: np.ndarray, predicted: np.ndarray) -> pd.DataFrame:
    """The prediction-drift columns: the 29 predicted scores and the top category of the
    final scores (the user's own ratings where given, predictions elsewhere), computed the
    same way for the reference and for logged traffic, so neither side has an advantage."""
    frame = pd.DataFrame(predicted.astype(float), columns=[PRED_PREFIX + c for c in CATEGORIES])
    final = np.where(ratings > 0, ratings, predicted)
    names = np.asarray(CATEGORIES, dtype=object)
    frame[TOP_CATEGORY] = names[np.argmax(final, axis=1)] if len(final) else []
    return frame


REFERENCE_USERS = 2000  # held-out users predicted for a reference (enough for 29 columns)


def prediction_reference(version: VersionInfo) -> tuple[pd.DataFrame, str]:
    """The version's predictions on the users its training held out (validation and test),
    computed once and stored.

    A reference that exists from the first window (the traffic of the first days was the
    reference before, so a version served for the first time had none, and an episode that
    began early became the norm). Raises BadInput when the version records no dataset.
    """
    with transaction(write=False) as s:
        row = s.scalar(
            select(PredictionReferenceRow).where(
                PredictionReferenceRow.model == version.model,
                PredictionReferenceRow.version == version.version,
            )
        )
        if row is not None:
            return _reference_frame(row.data), row.source
    ratings, label = cached_reference_ratings(version)
    matrix = ratings.to_numpy(dtype=float)
    seed = int((version.metadata.get("split") or {}).get("seed", 0))
    split = splits.split_users(matrix, seed=seed)
    rows = np.sort(np.concatenate([split.valid, split.test]))  # users training never saw
    if len(rows) == 0:
        rows = np.arange(len(matrix))
    rows = rows[:REFERENCE_USERS]
    users = matrix[rows]
    from core.serving import predict  # the model families: only when a reference is first needed

    predicted = predict.load_version(version).model.predict(users, users > 0)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, ratings=users, predicted=np.asarray(predicted, dtype=np.float32))
    source = f"{version.label} on {len(rows)} held-out users of {label}"
    try:
        with transaction() as s:
            s.add(
                PredictionReferenceRow(
                    model=version.model,
                    version=version.version,
                    rows=len(rows),
                    source=source,
                    data=buffer.getvalue(),
                    computed_at=utcnow(),
                )
            )
    except IntegrityError:  # another process stored it first: the same numbers
        pass
    return _reference_frame(buffer.getvalue()), source


def _reference_frame(data: bytes) -> pd.DataFrame:
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        return predictions_of(z["ratings"], z["predicted"].astype(float))


def prediction_frame(window: pd.DataFrame) -> pd.DataFrame:
    """The prediction-drift columns of logged requests (see :func:`predictions_of`)."""
    usable = window[window["predicted"].notna()] if not window.empty else window
    if usable.empty:
        return pd.DataFrame(columns=[PRED_PREFIX + c for c in CATEGORIES] + [TOP_CATEGORY])
    return predictions_of(
        np.asarray(usable["ratings"].tolist(), dtype=float),
        np.asarray(usable["predicted"].tolist(), dtype=float),
    )


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
    ref, label = reference or cached_reference_ratings(v)
    window = reads.window(model, start, end, version=v.version)
    if window.empty:
        raise BadInput(
            f"no logged requests of {v.label} between {start:%Y-%m-%d %H:%M} and "
            f"{end:%Y-%m-%d %H:%M}"
        )
    result = drift.compute(
        ref, reads.ratings_of(window), numeric=list(CATEGORIES), html=html, seed=seed
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
        ref, _ = cached_reference_ratings(v)
        window = reads.window(
            record.model, record.window_start, record.window_end, version=record.version
        )
        current = reads.ratings_of(window)
        numeric, categorical = list(CATEGORIES), []
    elif not record.reference.startswith("traffic "):
        if record.version is None:
            raise BadInput(f"drift result #{result_id} names no version")
        ref, _ = prediction_reference(registry.get_version(record.model, record.version))
        current = prediction_frame(
            reads.window(
                record.model, record.window_start, record.window_end, version=record.version
            )
        )
        numeric, categorical = [PRED_PREFIX + c for c in CATEGORIES], [TOP_CATEGORY]
    else:
        span = record.reference.removeprefix("traffic ").split(" – ")
        ref_start, ref_end = (dt.datetime.fromisoformat(x) for x in span)
        ref = prediction_frame(reads.window(record.model, ref_start, ref_end))
        current = prediction_frame(
            reads.window(record.model, record.window_start, record.window_end)
        )
        numeric, categorical = [PRED_PREFIX + c for c in CATEGORIES], [TOP_CATEGORY]
    if current.empty:
        raise BadInput(f"the logs of drift result #{result_id} are no longer available")
    result = drift.compute(ref, current, numeric=numeric, categorical=categorical, html=True)
    assert result.html is not None
    saved = _save_html(record, result.html)
    assert saved.report_path is not None
    return artifacts.root() / saved.report_path
