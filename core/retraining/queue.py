"""The retraining queue: every run starts as a ``queued`` row that the worker picks up within
seconds.

A schedule's fire (:func:`fire`, called by the worker), a manual "run now" or the ``retrain``
command (:func:`queue_retrain`), a drift alert on the production version
(:func:`retrain_on_drift_alerts`, polled by the worker, and :func:`queue_drift_retrains`, the
monitoring job's ``on_drift``). Drift requests have a per-model cooldown so that one drift
episode does not queue a retrain per alert.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import registry
from core.accounts.auth import SYSTEM, Actor, require
from core.db import transaction, utcnow
from core.db.tables import DEFAULT_DRIFT_COOLDOWN_S, ModelRow, RunRow, ScheduleRow
from core.errors import BadInput, NotFound
from core.retraining import runs
from core.retraining.runs import RunInfo, RunSpec
from core.retraining.schedules import ScheduleInfo, check_dataset, latest_dataset_name, spec_of

log = logging.getLogger(__name__)

# Namespace of the per-model transaction lock that makes the cooldown check atomic on Postgres.
_QUEUE_LOCK_NAMESPACE = 0x504C5251  # "PLRQ"


@dataclass(frozen=True)
class QueueResult:
    """The run that will do the retraining, and whether this request created it."""

    run: RunInfo
    created: bool
    note: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run.id,
            "model": self.run.model,
            "status": self.run.status,
            "trigger": self.run.trigger,
            "dataset": self.run.dataset_ref,
            "created": self.created,
            "note": self.note,
        }


def queue_retrain(
    model: str,
    trigger: str = "drift",
    reason: str = "",
    *,
    actor: Actor = SYSTEM,
    dataset: str | None = None,
    cooldown_s: float | None = None,
) -> QueueResult:
    """Ask the worker to retrain ``model`` soon; it picks the run up within seconds.

    The run trains with the model's schedule (family, dataset, hyperparameters, policy) when
    it has one; otherwise with the model's family on the dataset of its production (else
    newest) version, as a candidate. ``dataset`` overrides the dataset.

    ``trigger='drift'`` (the default, for the drift and alerting code) is rate-limited per
    model: while a retrain of the model is queued or running, or within the cooldown after
    the last drift-triggered run was queued, no new run is created and that run is returned
    with ``created=False``. The cooldown is ``cooldown_s`` if given, else the schedule's
    ``drift_cooldown_s``, else the model setting ``drift_cooldown_s``, else 6 hours.
    ``trigger='manual'`` (operators) always queues, except that an identical run still
    waiting in the queue is returned instead of a second one (a double click).
    """
    if trigger not in ("drift", "manual"):
        raise BadInput(
            f"trigger must be 'drift' or 'manual', not {trigger!r}; schedules fire in the worker"
        )
    require(actor, "operate", "queue retraining runs")
    dataset_ref = check_dataset(dataset) if dataset is not None else None
    now = utcnow()
    with transaction() as s:
        _lock_model_queue(s, model)
        spec, cooldown_default = _resolve_spec(s, model, dataset_ref)
        if trigger == "drift":
            held = _drift_blocker(
                s, model, now, cooldown_default if cooldown_s is None else float(cooldown_s)
            )
            if held is not None:
                run, note = held
                return QueueResult(runs.to_info(run, with_log=False), False, note)
        else:
            same = s.scalar(
                select(RunRow)
                .where(
                    RunRow.model == model,
                    RunRow.status == "queued",
                    RunRow.trigger == trigger,
                    RunRow.dataset_ref == spec.dataset_ref,
                )
                .order_by(RunRow.id)
                .limit(1)
            )
            if same is not None and dict(same.params or {}) == dict(spec.params):
                return QueueResult(
                    runs.to_info(same, with_log=False), False, f"run #{same.id} is already queued"
                )
        row = runs.new_row(
            spec,
            trigger=trigger,
            status="queued",
            reason=reason,
            requested_by=actor.username,
            queued_at=now,
        )
        s.add(row)
        s.flush()
        info = runs.to_info(row)
    log.info("queued %s run #%s of %s: %s", trigger, info.id, model, reason or "no reason given")
    return QueueResult(info, True, f"queued run #{info.id}")


def _lock_model_queue(s: Session, model: str) -> None:
    """Serialise queue writes for one model until the transaction ends.

    The check (is a run active? is drift cooling down?) and the insert must be atomic; SQLite's
    ``BEGIN IMMEDIATE`` already serialises all writers, Postgres needs this lock.
    """
    if s.get_bind().dialect.name == "postgresql":
        s.execute(
            text("SELECT pg_advisory_xact_lock(:ns, hashtext(:model))"),
            {"ns": _QUEUE_LOCK_NAMESPACE, "model": model},
        )


def fire(model: str, *, scheduled_for: dt.datetime) -> RunInfo | None:
    """Record one fire of ``model``'s schedule as a queued run; the worker calls this.

    Returns None, and records nothing, when the schedule is gone or paused; when a run of the
    model is still queued or running (a schedule that fires faster than the model trains must
    not pile runs up); or when this fire already has a run: the unique (model, fire time) key
    makes one fire one run even if, against every precaution, two schedulers fired it.
    """
    try:
        with transaction() as s:
            _lock_model_queue(s, model)
            row = s.scalar(select(ScheduleRow).where(ScheduleRow.model == model))
            if row is None or row.paused:
                log.info("%s has no active schedule any more; fire ignored", model)
                return None
            active = s.scalar(
                select(RunRow.id)
                .where(RunRow.model == model, RunRow.status.in_(("queued", "running")))
                .limit(1)
            )
            if active is not None:
                log.info(
                    "skipped the %s fire of %s: run #%s is still in progress",
                    f"{scheduled_for:%Y-%m-%d %H:%M:%S}",
                    model,
                    active,
                )
                return None
            info = ScheduleInfo.of(row)
            run = runs.new_row(
                spec_of(info),
                trigger="schedule",
                status="queued",
                reason=f"{info.when} (schedule revision {info.revision})",
                requested_by="schedule",
                scheduled_for=scheduled_for,
                queued_at=utcnow(),
            )
            s.add(run)
            s.flush()
            created = runs.to_info(run)
    except IntegrityError:
        log.info("the %s fire of %s already has a run", scheduled_for.isoformat(), model)
        return None
    log.info("queued scheduled run #%s of %s", created.id, model)
    return created


def retrain_on_drift_alerts(*, limit: int = 500) -> list[QueueResult]:
    """Queue a drift retrain for each model whose production version has a new drift alert.

    The worker calls this every minute. An alert counts when it is open, of a drift kind, on
    the version in production (or on no particular version), and newer than the model's last
    drift-triggered run: one drift episode raises several alerts at once (the share, one per
    column) and they stay open until someone resolves them, so it retrains once, and
    :func:`queue_retrain`'s cooldown spaces episodes. Returns the runs it created.
    """
    from core.monitoring import alerts  # the monitoring side, only needed here

    newest: dict[str, alerts.Alert] = {}
    for alert in alerts.list_alerts(status="open", limit=limit):  # newest first
        if alert.kind in alerts.DRIFT_ALERT_KINDS:
            newest.setdefault(alert.model, alert)
    created = []
    for model, alert in sorted(newest.items()):
        production = registry.find_version(model, "production")
        if production is None or alert.version not in (None, production.version):
            continue
        with transaction(write=False) as s:
            last = s.scalar(
                select(RunRow.queued_at)
                .where(RunRow.model == model, RunRow.trigger == "drift")
                .order_by(RunRow.id.desc())
                .limit(1)
            )
        if last is not None and last >= alert.created_at:
            continue
        try:
            result = queue_retrain(model, "drift", f"drift alert #{alert.id}: {alert.message}")
        except BadInput as exc:
            log.warning("drift alert #%s of %s cannot queue a retrain: %s", alert.id, model, exc)
            continue
        if result.created:
            created.append(result)
    return created


def queue_drift_retrains() -> list[int]:
    """:func:`retrain_on_drift_alerts` as the monitoring job's ``on_drift``: the ids of the
    runs it queued."""
    return [q.run.id for q in retrain_on_drift_alerts() if q.created]


def _resolve_spec(s: Session, model: str, dataset_ref: str | None) -> tuple[RunSpec, float]:
    sched = s.scalar(select(ScheduleRow).where(ScheduleRow.model == model))
    if sched is not None:
        spec = spec_of(ScheduleInfo.of(sched))
        if dataset_ref is not None:
            spec = spec.replace(dataset_ref=dataset_ref)
        return spec, float(sched.drift_cooldown_s)
    m = s.scalar(select(ModelRow).where(ModelRow.name == model))
    if m is None:
        raise NotFound(
            f"unknown model {model!r}: give it a schedule or train it once before retraining"
        )
    ref = dataset_ref or latest_dataset_name(s, model)
    if ref is None:
        raise BadInput(f"no dataset is known for model {model!r}: give the dataset to train on")
    cooldown = (m.settings or {}).get("drift_cooldown_s", DEFAULT_DRIFT_COOLDOWN_S)
    return RunSpec(model=model, family=m.family, dataset_ref=ref), float(cooldown)


def _drift_blocker(
    s: Session, model: str, now: dt.datetime, cooldown_s: float
) -> tuple[RunRow, str] | None:
    active = s.scalar(
        select(RunRow)
        .where(RunRow.model == model, RunRow.status.in_(("queued", "running")))
        .order_by(RunRow.id.desc())
        .limit(1)
    )
    if active is not None:
        return active, f"run #{active.id} of {model} is already {active.status}"
    last = s.scalar(
        select(RunRow)
        .where(RunRow.model == model, RunRow.trigger == "drift")
        .order_by(RunRow.id.desc())
        .limit(1)
    )
    if last is not None and cooldown_s > 0:
        until = last.queued_at + dt.timedelta(seconds=cooldown_s)
        if until > now:
            return last, (
                f"drift retraining of {model} is cooling down until "
                f"{until:%Y-%m-%d %H:%M:%S} UTC (run #{last.id})"
            )
    return None
