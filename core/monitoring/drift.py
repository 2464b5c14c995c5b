"""Drift statistics, computed by Evidently with the test pinned per column type.

The only module that imports Evidently. Evidently's default test changes with the sample size
(K-S/chi-square up to 1,000 reference rows, Wasserstein/Jensen-Shannon above), which would make
a verdict change meaning when traffic grows; here every numeric column (the 0–5 ratings and
the predicted category scores) uses the normed Wasserstein distance and every categorical
column (recommended categories) the Jensen-Shannon distance, both with threshold 0.3, whatever
the size. Large inputs are sampled (``SAMPLE_ROWS`` rows per side, seeded, uniformly without
replacement) so one result costs seconds, not minutes; the rule is stored with the result.
The per-column verdicts are read from Evidently's report, and the number of drifted columns is
checked against Evidently's own count, so the two can never disagree silently.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core.errors import BadInput, CoreError

log = logging.getLogger(__name__)

NUMERIC_METHOD = "wasserstein"
CATEGORICAL_METHOD = "jensenshannon"
# One threshold for "this column drifted", shared by the verdicts, the pages and the alerts
# (core.monitoring.alerts): at Evidently's 0.1 a window of a few hundred requests marked half the
# columns drifted by sampling noise alone, while alerts waited for 0.3.
THRESHOLD = 0.3
DRIFT_SHARE = 0.5  # the dataset drifts when at least this share of columns drifts
SAMPLE_ROWS = 20_000
HIST_BINS = 10


@dataclass(frozen=True)
class ColumnDrift:
    drifted: bool
    method: str
    score: float
    threshold: float
    noise: float = 0.0
    """The score two samples of these sizes reach by chance alone, on average (numeric columns;
    see :func:`noise_floor`): a score near it says nothing, however it compares to the
    threshold."""

    def as_dict(self, *, with_noise: bool = False) -> dict[str, Any]:
        """DESIGN's JSON of a column; stored results also keep the noise (``with_noise``)."""
        out = {
            "drifted": self.drifted,
            "method": self.method,
            "score": self.score,
            "threshold": self.threshold,
        }
        if with_noise:
            out["noise"] = self.noise
        return out


@dataclass
class DriftResult:
    columns: dict[str, ColumnDrift]
    drift_share: float
    dataset_drift: bool
    n_reference: int
    n_current: int
    sampling: str
    summaries: dict[str, Any] = field(default_factory=dict)
    html: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "columns": {c: d.as_dict() for c, d in self.columns.items()},
            "drift_share": self.drift_share,
            "dataset_drift": self.dataset_drift,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "sampling": self.sampling,
        }

    @property
    def drifted_columns(self) -> list[str]:
        return [c for c, d in self.columns.items() if d.drifted]


def _sample(frame: pd.DataFrame, seed: int, limit: int) -> pd.DataFrame:
    if len(frame) <= limit:
        return frame
    return frame.sample(n=limit, random_state=seed, replace=False)


def _check(frame: pd.DataFrame, columns: Sequence[str], side: str, numeric: set[str]) -> None:
    if frame.empty:
        raise BadInput(f"the {side} data has no rows")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise BadInput(f"the {side} data lacks the column(s) {', '.join(map(repr, missing))}")
    for c in columns:
        if c not in numeric:
            continue
        values = pd.to_numeric(frame[c], errors="coerce")
        bad = values.isna() & frame[c].notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise BadInput(
                f"column {c!r} of the {side} data holds text, e.g. {frame[c].iloc[row]!r} "
                f"in row {row + 1}"
            )
        if frame[c].isna().any():
            row = int(np.flatnonzero(frame[c].isna().to_numpy())[0])
            raise BadInput(
                f"column {c!r} of the {side} data has {int(frame[c].isna().sum())} empty "
                f"value(s), e.g. in row {row + 1}"
            )
        if not np.isfinite(values.dropna().to_numpy(dtype=float)).all():
            raise BadInput(f"column {c!r} of the {side} data holds infinite values")
        if values.notna().sum() == 0:
            raise BadInput(f"column {c!r} of the {side} data is empty")


def _floats(column: pd.Series) -> np.ndarray:
    """A column's numbers without the missing ones (no conversion when already floats)."""
    if column.dtype.kind == "f":
        values = column.to_numpy()
    else:
        values = pd.to_numeric(column, errors="coerce").to_numpy(float)
    return values[~np.isnan(values)]


def summaries(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
) -> dict[str, Any]:
    """Histograms of each column on both sides, so pages draw distributions without raw data."""
    out: dict[str, Any] = {}
    for c in numeric:
        ref, cur = _floats(reference[c]), _floats(current[c])
        both = np.concatenate([ref, cur])
        lo, hi = float(both.min()), float(both.max())
        distinct = np.unique(both)
        if len(distinct) <= 12:  # discrete (the 0–5 ratings): one bar per value
            r = [int((ref == v).sum()) for v in distinct]
            k = [int((cur == v).sum()) for v in distinct]
            out[c] = {"kind": "discrete", "values": distinct.tolist(), "reference": r, "current": k}
            continue
        edges = np.linspace(lo, hi if hi > lo else lo + 1, HIST_BINS + 1)
        out[c] = {
            "kind": "numeric",
            "edges": edges.tolist(),
            "reference": np.histogram(ref, edges)[0].tolist(),
            "current": np.histogram(cur, edges)[0].tolist(),
        }
    for c in categorical:
        r = reference[c].astype(str).value_counts()
        k = current[c].astype(str).value_counts()
        labels = sorted(set(r.index) | set(k.index))
        out[c] = {
            "kind": "categorical",
            "values": labels,
            "reference": [int(r.get(v, 0)) for v in labels],
            "current": [int(k.get(v, 0)) for v in labels],
        }
    return out


def compute(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    numeric: Sequence[str] = (),
    categorical: Sequence[str] = (),
    seed: int = 0,
    sample_rows: int = SAMPLE_ROWS,
    html: bool = False,
    full_report: bool = False,
    trusted: bool = False,
) -> DriftResult:
    """Drift of each column of ``current`` against ``reference`` with the pinned tests.

    By default Evidently's statistical tests are called per column (milliseconds); with
    ``html`` or ``full_report`` Evidently's whole Report runs (seconds: it renders every
    chart), and its verdicts are read from the report. Both use the same test functions and
    thresholds; the tests prove that they agree.
    """
    numeric, categorical = list(numeric), list(categorical)
    columns = numeric + categorical
    if not columns:
        raise BadInput("no columns to compare")
    if len(set(columns)) != len(columns):
        raise BadInput("a column is listed twice")
    if trusted:  # the caller's frames hold finite floats and strings already (the log)
        for side, frame in (("reference", reference), ("current", current)):
            if frame.empty:
                raise BadInput(f"the {side} data has no rows")
    else:
        _check(reference, columns, "reference", set(numeric))
        _check(current, columns, "current", set(numeric))
    ref = _sample(reference[columns], seed, sample_rows).reset_index(drop=True)
    cur = _sample(current[columns], seed + 1, sample_rows).reset_index(drop=True)
    if not trusted:
        for c in numeric:
            ref[c] = pd.to_numeric(ref[c], errors="coerce").astype(float)
            cur[c] = pd.to_numeric(cur[c], errors="coerce").astype(float)
        for c in categorical:
            ref[c], cur[c] = ref[c].astype(str), cur[c].astype(str)
    sampling = (
        f"uniform random sample without replacement of at most {sample_rows} rows per side "
        f"(seeds {seed} and {seed + 1}); {len(reference)} → {len(ref)} reference rows, "
        f"{len(current)} → {len(cur)} current rows"
    )
    if not (html or full_report):
        result = _stattests(ref, cur, numeric, categorical)
        _with_noise(result, ref, len(cur), numeric)
        result.n_reference, result.n_current, result.sampling = len(ref), len(cur), sampling
        result.summaries = summaries(ref, cur, numeric, categorical)
        return result

    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    preset = DataDriftPreset(
        columns=columns,
        num_method=NUMERIC_METHOD,
        cat_method=CATEGORICAL_METHOD,
        threshold=THRESHOLD,
        drift_share=DRIFT_SHARE,
    )
    snapshot = Report([preset]).run(
        Dataset.from_pandas(cur, data_definition=definition),
        Dataset.from_pandas(ref, data_definition=definition),
    )
    result = _read(snapshot.dict(), numeric, categorical)
    _with_noise(result, ref, len(cur), numeric)
    result.n_reference, result.n_current, result.sampling = len(ref), len(cur), sampling
    result.summaries = summaries(ref, cur, numeric, categorical)
    if html:
        result.html = snapshot.get_html_str(as_iframe=False)
    return result


def noise_floor(reference: np.ndarray, n_current: int) -> float:
    """The normed Wasserstein distance two samples reach by sampling alone, on average.

    Under no drift, at each x the two empirical CDFs differ by about
    √(F(x)(1−F(x))(1/n + 1/m)) in standard deviation, so the expected distance is close to
    √(2/π)·√(1/n + 1/m)·∫√(F(1−F))dx (del Barrio, Giné and Matrán, 1999), normed by the
    reference's standard deviation as Evidently norms the distance. A window of 70 requests
    reaches 0.3 on some of 29 columns by chance; one of 2,000 stays near 0.05.
    """
    x = np.sort(reference[~np.isnan(reference)])
    n = len(x)
    if n < 2 or n_current < 1:
        return 0.0
    f = np.arange(1, n) / n
    spread = float(np.sum(np.sqrt(f * (1 - f)) * np.diff(x)))
    norm = max(float(np.std(x)), 0.001)
    return float(np.sqrt(2 / np.pi) * np.sqrt(1 / n + 1 / n_current) * spread / norm)


def _with_noise(result: DriftResult, ref: pd.DataFrame, n_current: int, numeric: list[str]) -> None:
    for c in numeric:
        d = result.columns[c]
        noise = noise_floor(ref[c].to_numpy(dtype=float), n_current)
        result.columns[c] = ColumnDrift(d.drifted, d.method, d.score, d.threshold, noise)


def _stattests(
    ref: pd.DataFrame, cur: pd.DataFrame, numeric: list[str], categorical: list[str]
) -> DriftResult:
    """Evidently's test functions column by column, without building a report."""
    from evidently.legacy.calculations.stattests.registry import get_stattest
    from evidently.legacy.core import ColumnType

    columns: dict[str, ColumnDrift] = {}
    for names, kind, method in (
        (numeric, ColumnType.Numerical, NUMERIC_METHOD),
        (categorical, ColumnType.Categorical, CATEGORICAL_METHOD),
    ):
        for c in names:
            test = get_stattest(ref[c], cur[c], kind, method)
            score, drifted = test.func(ref[c], cur[c], kind, THRESHOLD)
            columns[c] = ColumnDrift(bool(drifted), method, float(score), THRESHOLD)
    share = sum(d.drifted for d in columns.values()) / len(columns)
    return DriftResult(columns, share, share >= DRIFT_SHARE, 0, 0, "")


def _read(raw: Mapping[str, Any], numeric: list[str], categorical: list[str]) -> DriftResult:
    """Per-column scores and Evidently's drifted count out of the snapshot's dictionary."""
    scores: dict[str, tuple[str, float, float]] = {}
    evidently_count: float | None = None
    for metric in raw.get("metrics", []):
        config = metric.get("config", {})
        kind = str(config.get("type", ""))
        if kind.endswith(":ValueDrift"):
            scores[config["column"]] = (
                str(config["method"]),
                float(metric["value"]),
                float(config["threshold"]),
            )
        elif kind.endswith(":DriftedColumnsCount"):
            evidently_count = float(metric["value"]["count"])
    columns: dict[str, ColumnDrift] = {}
    for c in numeric + categorical:
        if c not in scores:
            raise CoreError(f"Evidently returned no drift score for column {c!r}")
        method, score, threshold = scores[c]
        # Both pinned methods are distances: drift when the distance reaches the threshold.
        columns[c] = ColumnDrift(bool(score >= threshold), method, score, threshold)
    drifted = sum(d.drifted for d in columns.values())
    if evidently_count is not None and int(evidently_count) != drifted:
        raise CoreError(
            f"drift verdicts disagree with Evidently's own count ({drifted} vs {evidently_count})"
        )
    share = drifted / len(columns)
    return DriftResult(columns, share, share >= DRIFT_SHARE, 0, 0, "")
