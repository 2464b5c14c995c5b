"""Training runs: one record per retraining, whatever asked for it.

A run is born ``queued`` (a schedule's fire, a manual "run now" or ``retrain NAME``, a drift
alert), is claimed by the worker (``running``) and ends ``succeeded`` or ``failed``. The worker
writes its id and a heartbeat into the row and appends the training's progress messages to its
log, so the dashboard can follow a run live and tell a run that is still working from one whose
process died.

State changes are compare-and-set updates (``WHERE status = 'queued'``, ``WHERE worker_id =
me``), so two workers, or a worker and a recovery sweep, can never both own a run.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Collection, Iterable, Mapping
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator
from sqlalchemy import (
    func,
    select,
    update,
)
from sqlalchemy.orm import defer

from core.db import transaction, utcnow
from core.db.rows import Plain
from core.db.tables import POLICIES, STATUSES, TRIGGERS, RunRow
from core.errors import BadInput, NotFound

log = logging.getLogger(__name__)

FINISHED = ("succeeded", "failed")
Trigger = Literal["schedule", "drift", "manual"]
Status = Literal["queued", "running", "succeeded", "failed"]
Policy = Literal["candidate", "staging", "production"]

# A run's log keeps its last characters; training that logs per batch must not fill the table.
MAX_LOG_CHARS = 100_000
_LOG_TRUNCATED = "… (earlier lines dropped)\n"
_EMPTY: dict[str, Any] = {"params": {}, "metrics": {}, "gates": [], "margin": 0.0}


def _empty_if_null(value: Any, info: ValidationInfo) -> Any:
    """A NULL column as its field's empty value (``""`` for text)."""
    if value is not None:
        return value
    empty = _EMPTY.get(info.field_name or "", "")
    return type(empty)(empty) if isinstance(empty, dict | list) else empty


class RunInfo(Plain):
    """One training run as the interfaces see it. ``log`` is empty in listings."""

    id: int
    model: str
    family: str
    trigger: str
    status: str
    dataset_ref: str
    dataset: str | None
    params: dict[str, Any]
    policy: str
    margin: float
    metric: str
    reason: str
    requested_by: str
    scheduled_for: dt.datetime | None
    queued_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    heartbeat_at: dt.datetime | None
    worker_id: str | None
    version: str | None
    metrics: dict[str, Any] = Field(default_factory=dict)
    gates: list[dict[str, Any]] = Field(default_factory=list)
    promoted_to: str | None = None
    outcome: str = ""
    error: str | None = None
    peak_rss_mb: float | None = None
    log: str = ""

    @field_validator(
        "params", "metrics", "gates", "reason", "outcome", "log", "margin", mode="before"
    )
    @classmethod
    def empty_if_null(cls, value: Any, info: ValidationInfo) -> Any:
        """A NULL column (older rows) as the field's empty value."""
        return _empty_if_null(value, info)

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to end (or to now while running); None before it starts."""
        if self.started_at is None:
            return None
        end = self.finished_at or utcnow()
        return max(0.0, (end - self.started_at).total_seconds())

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def as_dict(self, *, with_log: bool = True) -> dict[str, Any]:
        """The fields, with ``duration_s`` after the timestamps it is computed from."""
        out: dict[str, Any] = {}
        for key, value in super().as_dict().items():
            if key == "log" and not with_log:
                continue
            out[key] = value
            if key == "heartbeat_at":
                out["duration_s"] = self.duration_s
        return out


def to_info(row: RunRow, *, with_log: bool = True) -> RunInfo:
    """``row`` as a value; without its log (a deferred column in listings) unless asked."""
    return RunInfo.of(row) if with_log else RunInfo.of(row, log="")


def _cap(text: str) -> str:
    if len(text) <= MAX_LOG_CHARS:
        return text
    tail = text[-(MAX_LOG_CHARS - len(_LOG_TRUNCATED)) :]
    return _LOG_TRUNCATED + tail[tail.find("\n") + 1 :]


class RunSpec(Plain):
    """What to train: the snapshot a run keeps, so a later schedule edit cannot change it."""

    model: str
    family: str
    dataset_ref: str
    params: dict[str, Any] = Field(default_factory=dict)
    policy: str = "candidate"
    margin: float = 0.0
    metric: str = "ndcg@5"


def new_row(spec: RunSpec, **fields: Any) -> RunRow:
    if spec.policy not in POLICIES:
        raise BadInput(f"unknown promotion policy {spec.policy!r}; use {', '.join(POLICIES)}")
    return RunRow(
        model=spec.model,
        family=spec.family,
        dataset_ref=spec.dataset_ref,
        params=dict(spec.params),
        policy=spec.policy,
        margin=float(spec.margin),
        metric=spec.metric,
        metrics={},
        gates=[],
        outcome="",
        log="",
        **fields,
    )


# ------------------------------------------------------------------------ reads


def get_run(run_id: int) -> RunInfo:
    with transaction(write=False) as s:
        row = s.get(RunRow, run_id)
        if row is None:
            raise NotFound(f"unknown training run {run_id}")
        return to_info(row)


def list_runs(
    *,
    model: str | None = None,
    status: str | None = None,
    trigger: str | None = None,
    limit: int = 100,
) -> list[RunInfo]:
    """Newest first, without logs (read one run with :func:`get_run` for its log)."""
    if status is not None and status not in STATUSES:
        raise BadInput(f"unknown run status {status!r}; statuses are {', '.join(STATUSES)}")
    if trigger is not None and trigger not in TRIGGERS:
        raise BadInput(f"unknown trigger {trigger!r}; triggers are {', '.join(TRIGGERS)}")
    if not 1 <= limit <= 1000:
        raise BadInput("limit must be between 1 and 1000")
    stmt = select(RunRow).options(defer(RunRow.log))
    if model:
        stmt = stmt.where(RunRow.model == model)
    if status:
        stmt = stmt.where(RunRow.status == status)
    if trigger:
        stmt = stmt.where(RunRow.trigger == trigger)
    with transaction(write=False) as s:
        rows = s.scalars(stmt.order_by(RunRow.id.desc()).limit(limit)).all()
        return [to_info(r, with_log=False) for r in rows]


def count_by_status() -> dict[str, int]:
    """How many runs are in each status, every status named (the worker's /metrics)."""
    with transaction(write=False) as s:
        rows = s.execute(select(RunRow.status, func.count()).group_by(RunRow.status)).all()
        found = {status: int(n) for status, n in rows}
    return {status: found.get(status, 0) for status in STATUSES}


def queued_ids(limit: int = 100) -> list[int]:
    """Queued runs, oldest first: the worker's to-do list."""
    with transaction(write=False) as s:
        return list(
            s.scalars(
                select(RunRow.id).where(RunRow.status == "queued").order_by(RunRow.id).limit(limit)
            ).all()
        )


# ------------------------------------------------------------------------ the worker's side


def claim(run_id: int, *, worker_id: str) -> RunInfo | None:
    """Take a queued run (queued → running); None if it is not queued any more."""
    now = utcnow()
    with transaction() as s:
        result = s.execute(
            update(RunRow)
            .where(RunRow.id == run_id, RunRow.status == "queued")
            .values(status="running", started_at=now, heartbeat_at=now, worker_id=worker_id)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return None
        row = s.get(RunRow, run_id)
        assert row is not None
        s.refresh(row)
        return to_info(row)


def claim_next(*, worker_id: str, skip_models: Collection[str] = ()) -> RunInfo | None:
    """Take the oldest queued run, passing over models in ``skip_models``.

    The worker skips the models it is training already, so two runs of one model never train
    at the same time (the second would only register a near-identical version).
    """
    with transaction(write=False) as s:
        waiting = s.execute(
            select(RunRow.id, RunRow.model)
            .where(RunRow.status == "queued")
            .order_by(RunRow.id)
            .limit(100)
        ).all()
    for run_id, model in waiting:
        if model not in skip_models:
            claimed = claim(run_id, worker_id=worker_id)
            if claimed is not None:
                return claimed
    return None


def heartbeat(*, worker_id: str, logs: Mapping[int, str]) -> list[int]:
    """Stamp the heartbeat of the worker's running runs and append their new log lines.

    Returns the ids that are no longer this worker's (marked failed by a recovery sweep):
    their training should stop.
    """
    if not logs:
        return []
    now = utcnow()
    lost = []
    with transaction() as s:
        for run_id, chunk in logs.items():
            row = s.get(RunRow, run_id)
            if row is None or row.worker_id != worker_id or row.status != "running":
                lost.append(run_id)
                continue
            row.heartbeat_at = now
            if chunk:
                row.log = _cap((row.log or "") + chunk)
    return lost


def finish(
    run_id: int,
    *,
    worker_id: str,
    status: Literal["succeeded", "failed"],
    log_tail: str = "",
    version: str | None = None,
    dataset: str | None = None,
    metrics: Mapping[str, Any] | None = None,
    gates: Iterable[Mapping[str, Any]] = (),
    promoted_to: str | None = None,
    outcome: str = "",
    error: str | None = None,
    peak_rss_mb: float | None = None,
) -> RunInfo | None:
    """Close a run this worker owns; None if it is not its run any more."""
    if status not in FINISHED:
        raise BadInput(f"a run finishes as succeeded or failed, not {status!r}")
    with transaction() as s:
        row = s.get(RunRow, run_id)
        if row is None or row.worker_id != worker_id or row.status != "running":
            log.warning(
                "run %s is no longer owned by worker %s; result not recorded", run_id, worker_id
            )
            return None
        row.status = status
        row.finished_at = utcnow()
        row.heartbeat_at = row.finished_at
        row.log = _cap((row.log or "") + log_tail)
        row.version = version
        row.dataset = dataset
        row.metrics = dict(metrics or {})
        row.gates = [dict(g) for g in gates]
        row.promoted_to = promoted_to
        row.outcome = outcome
        row.error = error
        row.peak_rss_mb = peak_rss_mb
        s.flush()
        return to_info(row)


def version_tag(run_id: int) -> str:
    """The mark a run leaves in the description of the version it registers."""
    return f"(training run #{run_id})"


def fail_orphans(*, worker_id: str, stale_before: dt.datetime | None = None) -> list[RunInfo]:
    """Mark failed every running run that is not ``worker_id``'s (with ``stale_before``: only
    those whose last heartbeat is older).

    Only the worker that holds the scheduler lock calls this: right after taking it, for all
    such runs (the lock is exclusive, so they belong to a worker that died or lost the lock),
    and then now and again for stale ones (a worker that lost the lock without noticing at once
    may have claimed a run meanwhile). The registry publishes versions atomically, so such a
    run either registered its version whole (it is linked here, found by its tag) or not at all.
    """
    from core.db.tables import ModelRow, VersionRow

    now = utcnow()
    failed = []
    with transaction() as s:
        stmt = select(RunRow).where(RunRow.status == "running", RunRow.worker_id != worker_id)
        if stale_before is not None:
            stmt = stmt.where(RunRow.heartbeat_at < stale_before)
        rows = s.scalars(stmt).all()
        for row in rows:
            beat = row.heartbeat_at or row.started_at
            row.status = "failed"
            row.finished_at = now
            row.error = f"worker {row.worker_id} stopped during the run" + (
                "" if beat is None else f" (last heartbeat {beat:%Y-%m-%d %H:%M:%S} UTC)"
            )
            registered = s.scalar(
                select(VersionRow.version)
                .join(ModelRow, ModelRow.id == VersionRow.model_id)
                .where(
                    ModelRow.name == row.model,
                    VersionRow.description.contains(version_tag(row.id), autoescape=True),
                )
                .limit(1)
            )
            if registered is not None:
                row.version = registered
                row.outcome = f"registered {registered} before the worker stopped"
            row.log = _cap((row.log or "") + f"[{now:%H:%M:%S}] marked failed: {row.error}\n")
            failed.append(row)
        s.flush()
        infos = [to_info(r) for r in failed]
    for info in infos:
        log.warning("run %s of %s marked failed: %s", info.id, info.model, info.error)
    return infos
