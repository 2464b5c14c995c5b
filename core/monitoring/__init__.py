"""Monitoring of served traffic. The package itself is the prediction log's API.

Every served recommendation becomes one row of the prediction log, and the same transaction
folds it into an hourly rollup per model, version and variant, which is what the dashboard
reads. The log's parts are modules of their own: :mod:`~core.monitoring.records` (what a row
holds), :mod:`~core.monitoring.writes` (batches, refused rows, feedback),
:mod:`~core.monitoring.bulk_insert` (COPY and multi-row INSERTs) and
:mod:`~core.monitoring.reads` (traffic, summaries, windows of requests). Their public names are
re-exported here because callers write ``monitoring.write_batch(...)``. The package's other
modules (drift, alerts, the monitoring job in ``monitor``, ...) are imported by name.
"""

from __future__ import annotations

from core.monitoring.bulk_insert import SQLITE_ROWS_PER_INSERT
from core.monitoring.reads import (
    Bucket,
    Summary,
    count_logs,
    count_over,
    percentile_from_bins,
    ratings_of,
    summary,
    traffic,
    traffic_frame,
    window,
)
from core.monitoring.records import (
    STORED_DECIMALS,
    VARIANTS,
    PredictionRecord,
    hour_of,
    latency_bin,
    time_ordered_id,
)
from core.monitoring.writes import (
    ERROR_CHARS,
    BatchOutcome,
    Refusal,
    Refusals,
    record_feedback,
    refusals,
    store_batch,
    write_batch,
)

__all__ = [
    "ERROR_CHARS",
    "SQLITE_ROWS_PER_INSERT",
    "STORED_DECIMALS",
    "VARIANTS",
    "BatchOutcome",
    "Bucket",
    "PredictionRecord",
    "Refusal",
    "Refusals",
    "Summary",
    "count_logs",
    "count_over",
    "hour_of",
    "latency_bin",
    "percentile_from_bins",
    "ratings_of",
    "record_feedback",
    "refusals",
    "store_batch",
    "summary",
    "time_ordered_id",
    "traffic",
    "traffic_frame",
    "window",
    "write_batch",
]
