"""Retraining schedules, the retraining queue and the promotion policies.

* A **schedule** (one per model) says when to retrain (a cron expression in UTC, or every N
  seconds), on which dataset (``NAME`` = the latest version at run time, ``NAME@V`` = fixed),
  with which hyperparameters, and what to do with the new version (the *policy*):

  - ``candidate`` (default): register it, nothing more;
  - ``staging``: promote it to staging when the staging gates pass;
  - ``production``: promote it to production when it beats the production version by at
    least ``margin`` on ``metric`` (default ``ndcg@5``), the production gates pass, and the
    model does not require an audit approval (an approval is a person's decision). A model
    without a production version is never promoted automatically: the first production
    version is chosen by a person.

  Schedules are rows; the dashboard and the CLI edit them and the worker mirrors them into
  its scheduler within seconds. Every change bumps ``revision``; the worker writes back the
  revision it applied and the next fire time, which is how the page shows "next run".
* The **queue**: every run starts as a ``queued`` row that the worker picks up within seconds:
  a schedule's fire (:func:`fire`, called by the worker), a manual "run now" or the
  ``retrain`` command (:func:`queue_retrain`), a drift alert on the production version
  (:func:`retrain_on_drift_alerts`, polled by the worker). Drift requests have a per-model
  cooldown so that one drift episode does not queue a retrain per alert.
* :func:`execute` is what the worker does with a run: train, then apply the policy.

Cron expressions are the classic five fields, in UTC, parsed here (``core`` does not import
APScheduler): :func:`parse_cron` expands each field to the set of values it allows, and the
worker builds its trigger from those sets, so the CLI and the page accept exactly what the
worker runs, with cron's meaning (day of week 0 and 7 are Sunday; APScheduler's own crontab
parser counts from Monday). A day-of-month and a day-of-week restriction together are refused:
cron would fire when either matches, APScheduler when both do.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    select,
    text,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import registry
from core.accounts.auth import SYSTEM, Actor, require
from core.data import datasets
from core.db import transaction, utcnow
from core.db.tables import (
    DEFAULT_DRIFT_COOLDOWN_S,
    DEFAULT_METRIC,
    POLICIES,
    DatasetRow,
    ModelRow,
    RunRow,
    ScheduleRow,
    VersionRow,
)
from core.errors import AlreadyExists, BadInput, CoreError, GateFailed, NotFound
from core.registry import gates
from core.registry.entities import VersionInfo
from core.retraining import runs
from core.retraining.runs import RunInfo, RunSpec

log = logging.getLogger(__name__)

MIN_INTERVAL_S = 1
MAX_INTERVAL_S = 366 * 24 * 3600
# Namespace of the per-model transaction lock that makes the cooldown check atomic on Postgres.
_QUEUE_LOCK_NAMESPACE = 0x504C5251  # "PLRQ"
_LOWER_IS_BETTER_HINTS = ("rmse", "mae", "mse", "loss", "error")




@dataclass(frozen=True)
class ScheduleInfo:
    """One model's retraining schedule."""

    model: str
    family: str
    cron: str | None
    every_s: int | None
    dataset: str
    params: dict[str, Any]
    policy: str
    margin: float
    metric: str
    drift_cooldown_s: int
    paused: bool
    revision: int
    anchor_at: dt.datetime
    description: str
    created_at: dt.datetime
    created_by: str
    updated_at: dt.datetime
    updated_by: str
    synced_revision: int | None = None
    next_run_at: dt.datetime | None = None
    synced_at: dt.datetime | None = None

    @property
    def when(self) -> str:
        """The trigger as people read it: ``cron 0 3 * * *`` or ``every 3600 s``."""
        return f"cron {self.cron}" if self.cron else f"every {self.every_s} s"

    @property
    def in_sync(self) -> bool:
        """Whether the worker runs this revision of the schedule."""
        return self.synced_revision == self.revision

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "family": self.family,
            "cron": self.cron,
            "every_s": self.every_s,
            "dataset": self.dataset,
            "params": self.params,
            "policy": self.policy,
            "margin": self.margin,
            "metric": self.metric,
            "drift_cooldown_s": self.drift_cooldown_s,
            "paused": self.paused,
            "revision": self.revision,
            "anchor_at": self.anchor_at.isoformat(),
            "description": self.description,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "updated_at": self.updated_at.isoformat(),
            "updated_by": self.updated_by,
            "synced_revision": self.synced_revision,
            "next_run_at": None if self.next_run_at is None else self.next_run_at.isoformat(),
            "synced_at": None if self.synced_at is None else self.synced_at.isoformat(),
        }


def _info(row: ScheduleRow) -> ScheduleInfo:
    return ScheduleInfo(
        model=row.model,
        family=row.family,
        cron=row.cron,
        every_s=row.every_s,
        dataset=row.dataset,
        params=dict(row.params or {}),
        policy=row.policy,
        margin=float(row.margin),
        metric=row.metric,
        drift_cooldown_s=int(row.drift_cooldown_s),
        paused=bool(row.paused),
        revision=int(row.revision),
        anchor_at=row.anchor_at,
        description=row.description or "",
        created_at=row.created_at,
        created_by=row.created_by,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
        synced_revision=row.synced_revision,
        next_run_at=row.next_run_at,
        synced_at=row.synced_at,
    )


# ------------------------------------------------------------------------ validation


_MONTHS = {
    m: i
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_DAYS = {d: i for i, d in enumerate(DAY_NAMES)}
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
# (label, lowest, highest, names) of the five fields, in order.
_CRON_FIELDS: tuple[tuple[str, int, int, Mapping[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
_CRON_HELP = (
    "expected 5 fields (minute hour day-of-month month day-of-week, in UTC) made of *, "
    "numbers, ranges a-b, steps */n or a-b/n and lists, e.g. '0 3 * * *' for 03:00 every day, "
    "'*/15 * * * *' for every 15 minutes, '0 6 * * mon-fri' for 06:00 on weekdays"
)


@dataclass(frozen=True)
class CronSpec:
    """A parsed cron expression: the values each field allows (None: any value).

    ``day_of_week`` counts from Sunday = 0, as cron does.
    """

    expression: str
    minute: tuple[int, ...] | None
    hour: tuple[int, ...] | None
    day: tuple[int, ...] | None
    month: tuple[int, ...] | None
    day_of_week: tuple[int, ...] | None


def _cron_value(token: str, label: str, low: int, high: int, names: Mapping[str, int]) -> int:
    if token in names:
        return names[token]
    if not token.isdigit():
        raise BadInput(f"invalid {label} {token!r} in the cron expression; {_CRON_HELP}")
    value = int(token)
    if not low <= value <= high:
        raise BadInput(f"{label} {value} is out of range {low}-{high} in the cron expression")
    return value


def _cron_field(
    part: str, label: str, low: int, high: int, names: Mapping[str, int]
) -> tuple[int, ...] | None:
    top = 6 if label == "day of week" else high  # 7 is another name for Sunday
    allowed: set[int] = set()
    for item in part.split(","):
        span, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) < 1:
                raise BadInput(f"invalid step {step_text!r} in the {label} field; {_CRON_HELP}")
            step = int(step_text)
        if span == "*":
            first, last = low, top
        elif "-" in span:
            a, _, b = span.partition("-")
            first = _cron_value(a, label, low, high, names)
            last = _cron_value(b, label, low, high, names)
            if first > last:
                raise BadInput(f"the {label} range {span!r} runs backwards; write it low-high")
        elif step_text:
            raise BadInput(f"write the {label} step {item!r} as a range: a-b/{step_text}")
        else:
            first = last = _cron_value(span, label, low, high, names)
        allowed.update(range(first, last + 1, step))
    if label == "day of week":
        allowed = {d % 7 for d in allowed}
    return None if allowed >= set(range(low, top + 1)) else tuple(sorted(allowed))


def parse_cron(expr: str) -> CronSpec:
    """Parse a five-field cron expression (UTC); BadInput names the field at fault."""
    text_ = " ".join((expr or "").lower().split())
    parts = text_.split(" ") if text_ else []
    if len(parts) != 5:
        raise BadInput(f"invalid cron expression {expr!r}: {_CRON_HELP}")
    minute, hour, day, month, dow = (
        _cron_field(part, *spec) for part, spec in zip(parts, _CRON_FIELDS, strict=True)
    )
    if day is not None and dow is not None:
        raise BadInput(
            f"cron expression {text_!r} restricts both the day of month and the day of week; "
            "restrict one of them (cron runs when either matches, which is rarely what is meant)"
        )
    if day is not None and min(day) > max(_DAYS_IN_MONTH[m - 1] for m in (month or range(1, 13))):
        raise BadInput(f"cron expression {text_!r} never fires: no such day in those months")
    return CronSpec(text_, minute, hour, day, month, dow)


def validate_cron(expr: str) -> str:
    """The expression, normalised (lower case, single spaces), if valid; else BadInput."""
    return parse_cron(expr).expression


def _check_interval(every_s: int) -> int:
    if isinstance(every_s, bool) or not isinstance(every_s, int):
        raise BadInput(f"the interval must be a whole number of seconds, got {every_s!r}")
    if not MIN_INTERVAL_S <= every_s <= MAX_INTERVAL_S:
        raise BadInput(
            f"the interval must be between {MIN_INTERVAL_S} s and {MAX_INTERVAL_S} s "
            f"(366 days), got {every_s} s"
        )
    return every_s


def _check_policy(policy: str) -> str:
    if policy not in POLICIES:
        raise BadInput(f"unknown promotion policy {policy!r}; policies are {', '.join(POLICIES)}")
    return policy


def _check_margin(margin: float) -> float:
    try:
        value = float(margin)
    except (TypeError, ValueError):
        raise BadInput(f"the margin must be a number, got {margin!r}") from None
    if not value >= 0 or value == float("inf"):
        raise BadInput(f"the margin must be a finite number ≥ 0, got {margin!r}")
    return value


def _check_params(params: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(params)
    for key in out:
        if not isinstance(key, str) or not key:
            raise BadInput(f"hyperparameter names must be non-empty text, got {key!r}")
    try:
        json.dumps(out, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise BadInput(f"hyperparameters must be plain JSON values: {exc}") from None
    return out


def _params_for(family: str, params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The given hyperparameters, checked and typed by the family (a typo is an error now,
    not at 3 a.m. in the worker). Only the given keys are kept: the others follow the
    family's defaults at training time."""
    if params is None:
        return None
    from core.families import family_class

    resolved = family_class(family).resolve_params(params)
    return {key: resolved[key] for key in params}


def _check_dataset(ref: str) -> str:
    name, version = datasets.parse_ref(ref.strip())
    datasets.get_dataset(name, version)  # NotFound names it
    return name if version is None else f"{name}@{version}"


def _check_family(s: Session, model: str, family: str | None) -> str:
    existing = s.scalar(select(ModelRow.family).where(ModelRow.name == model))
    if family is None:
        if existing is None:
            raise BadInput(
                f"model {model!r} is not registered yet: give the family to train "
                f"({', '.join(registry.FAMILIES)})"
            )
        return existing
    if family not in registry.FAMILIES:
        raise BadInput(f"unknown family {family!r}; families are {', '.join(registry.FAMILIES)}")
    if (
        existing is not None
        and existing != family
        and (existing, family)
        != (
            "autoencoder",
            "transfer",
        )
    ):
        raise BadInput(f"model {model!r} is of family {existing!r}, not {family!r}")
    return family


def _latest_dataset_name(s: Session, model: str) -> str | None:
    """The dataset the model was last trained on (its production version's first)."""
    for stage_first in (True, False):
        stmt = (
            select(DatasetRow.name)
            .join(VersionRow, VersionRow.dataset_id == DatasetRow.id)
            .join(ModelRow, ModelRow.id == VersionRow.model_id)
            .where(ModelRow.name == model)
        )
        if stage_first:
            stmt = stmt.where(VersionRow.stage == "production")
        name = s.scalar(stmt.order_by(VersionRow.id.desc()).limit(1))
        if name is not None:
            return name
    return None


# ------------------------------------------------------------------------ schedules


def _row(s: Session, model: str) -> ScheduleRow:
    row = s.scalar(select(ScheduleRow).where(ScheduleRow.model == model))
    if row is None:
        raise NotFound(f"model {model!r} has no retraining schedule")
    return row


def set_schedule(
    *,
    actor: Actor,
    model: str,
    cron: str | None = None,
    every_s: int | None = None,
    dataset: str | None = None,
    family: str | None = None,
    params: Mapping[str, Any] | None = None,
    policy: str | None = None,
    margin: float | None = None,
    metric: str | None = None,
    drift_cooldown_s: int | None = None,
    description: str | None = None,
) -> ScheduleInfo:
    """Create or change a model's schedule; options left as None keep their current value.

    A new schedule needs a trigger (``cron`` or ``every_s``). Its family and dataset default to
    the model's family and the dataset its production (else newest) version was trained on.
    ``params`` replaces the hyperparameters as a whole. A paused schedule stays paused.
    """
    require(actor, "operate", "edit retraining schedules")
    registry._check_name(model)
    if cron is not None and every_s is not None:
        raise BadInput("give either a cron expression or an interval, not both")
    cron = validate_cron(cron) if cron is not None else None
    every_s = _check_interval(every_s) if every_s is not None else None
    policy = _check_policy(policy) if policy is not None else None
    margin = _check_margin(margin) if margin is not None else None
    clean_params = _check_params(params) if params is not None else None
    if metric is not None and not metric.strip():
        raise BadInput("the comparison metric must not be empty")
    if drift_cooldown_s is not None and not 0 <= int(drift_cooldown_s) <= MAX_INTERVAL_S:
        raise BadInput(f"the drift cooldown must be between 0 and {MAX_INTERVAL_S} seconds")
    dataset_ref = _check_dataset(dataset) if dataset is not None else None
    now = utcnow()
    try:
        return _upsert(
            actor,
            model,
            now,
            cron=cron,
            every_s=every_s,
            dataset_ref=dataset_ref,
            family=family,
            params=clean_params,
            policy=policy,
            margin=margin,
            metric=metric,
            drift_cooldown_s=drift_cooldown_s,
            description=description,
        )
    except IntegrityError as exc:
        raise AlreadyExists(
            f"the schedule of {model!r} was created by someone else at the same time; retry"
        ) from exc


def _upsert(
    actor: Actor,
    model: str,
    now: dt.datetime,
    *,
    cron: str | None,
    every_s: int | None,
    dataset_ref: str | None,
    family: str | None,
    params: dict[str, Any] | None,
    policy: str | None,
    margin: float | None,
    metric: str | None,
    drift_cooldown_s: int | None,
    description: str | None,
) -> ScheduleInfo:
    with transaction() as s:
        row = s.scalar(select(ScheduleRow).where(ScheduleRow.model == model).with_for_update())
        resolved_family = _check_family(s, model, family if family or row is None else row.family)
        clean_params = _params_for(resolved_family, params)
        if clean_params is None and row is not None and resolved_family != row.family:
            _params_for(resolved_family, row.params)  # the kept ones must suit the new family
        if row is None:
            if cron is None and every_s is None:
                raise BadInput(
                    f"model {model!r} has no schedule yet: give a cron expression or an interval"
                )
            if dataset_ref is None:
                known = _latest_dataset_name(s, model)
                if known is None:
                    raise BadInput(
                        f"no dataset is known for model {model!r}: give the dataset to train on"
                    )
                dataset_ref = known
            row = ScheduleRow(
                model=model,
                family=resolved_family,
                cron=cron,
                every_s=every_s,
                dataset=dataset_ref,
                params=clean_params or {},
                policy=policy or "candidate",
                margin=0.0 if margin is None else margin,
                metric=(metric or DEFAULT_METRIC).strip(),
                drift_cooldown_s=(
                    DEFAULT_DRIFT_COOLDOWN_S if drift_cooldown_s is None else int(drift_cooldown_s)
                ),
                paused=False,
                revision=1,
                anchor_at=now,
                description=description or "",
                created_at=now,
                created_by=actor.username,
                updated_at=now,
                updated_by=actor.username,
            )
            s.add(row)
        else:
            if cron is not None or every_s is not None:
                row.cron, row.every_s = cron, every_s
                row.anchor_at = now
            row.family = resolved_family
            if dataset_ref is not None:
                row.dataset = dataset_ref
            if clean_params is not None:
                row.params = clean_params
            if policy is not None:
                row.policy = policy
            if margin is not None:
                row.margin = margin
            if metric is not None:
                row.metric = metric.strip()
            if drift_cooldown_s is not None:
                row.drift_cooldown_s = int(drift_cooldown_s)
            if description is not None:
                row.description = description
            row.revision += 1
            row.updated_at = now
            row.updated_by = actor.username
        s.flush()
        info = _info(row)
    log.info("schedule of %s set to %s (revision %s)", model, info.when, info.revision)
    return info


def get_schedule(model: str) -> ScheduleInfo:
    with transaction(write=False) as s:
        return _info(_row(s, model))


def find_schedule(model: str) -> ScheduleInfo | None:
    with transaction(write=False) as s:
        row = s.scalar(select(ScheduleRow).where(ScheduleRow.model == model))
        return None if row is None else _info(row)


def list_schedules() -> list[ScheduleInfo]:
    with transaction(write=False) as s:
        return [_info(r) for r in s.scalars(select(ScheduleRow).order_by(ScheduleRow.model))]


def _set_paused(actor: Actor, model: str, paused: bool) -> ScheduleInfo:
    require(actor, "operate", "pause or resume retraining schedules")
    with transaction() as s:
        row = _row(s, model)
        if row.paused != paused:
            row.paused = paused
            row.revision += 1
            row.updated_at = utcnow()
            row.updated_by = actor.username
        s.flush()
        return _info(row)


def pause(*, actor: Actor, model: str) -> ScheduleInfo:
    """Stop firing (queued and running runs are not affected)."""
    return _set_paused(actor, model, True)


def resume(*, actor: Actor, model: str) -> ScheduleInfo:
    """Fire again from the next fire time after now (missed fires are not caught up)."""
    return _set_paused(actor, model, False)


def delete_schedule(*, actor: Actor, model: str) -> None:
    require(actor, "operate", "delete retraining schedules")
    with transaction() as s:
        s.delete(_row(s, model))


def record_sync(applied: Mapping[str, tuple[int, dt.datetime | None]]) -> None:
    """The worker reports, per model, the revision it runs and the next fire time."""
    if not applied:
        return
    now = utcnow()
    with transaction() as s:
        for row in s.scalars(select(ScheduleRow).where(ScheduleRow.model.in_(list(applied)))):
            revision, next_run = applied[row.model]
            if row.synced_revision != revision or row.next_run_at != next_run:
                row.synced_revision = revision
                row.next_run_at = next_run
                row.synced_at = now


def spec_of(schedule: ScheduleInfo) -> RunSpec:
    return RunSpec(
        model=schedule.model,
        family=schedule.family,
        dataset_ref=schedule.dataset,
        params=schedule.params,
        policy=schedule.policy,
        margin=schedule.margin,
        metric=schedule.metric,
    )


# ------------------------------------------------------------------------ the queue


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
    dataset_ref = _check_dataset(dataset) if dataset is not None else None
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
            info = _info(row)
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
        spec = spec_of(_info(sched))
        if dataset_ref is not None:
            spec = dataclasses.replace(spec, dataset_ref=dataset_ref)
        return spec, float(sched.drift_cooldown_s)
    m = s.scalar(select(ModelRow).where(ModelRow.name == model))
    if m is None:
        raise NotFound(
            f"unknown model {model!r}: give it a schedule or train it once before retraining"
        )
    ref = dataset_ref or _latest_dataset_name(s, model)
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


# ------------------------------------------------------------------------ execution


@dataclass(frozen=True)
class PolicyOutcome:
    """What the promotion policy did with a new version, and the gates it faced."""

    promoted_to: str | None
    gates: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""


@dataclass(frozen=True)
class RunOutcome:
    version: str
    dataset: str | None
    metrics: dict[str, Any]
    duration_s: float
    policy: PolicyOutcome


def execute(
    run: RunInfo,
    *,
    progress: Callable[[float, str], None] | None = None,
    actor: Actor = SYSTEM,
) -> RunOutcome:
    """Train the run's model, register the version and apply the run's policy.

    Training errors propagate (the worker records them). A refused promotion is not an error:
    the version stays a candidate and the outcome says why, with the gates' figures.
    """
    from core import training  # heavy: families import numpy, scikit-learn, TensorFlow

    what = {"schedule": "scheduled", "drift": "drift-triggered", "manual": "manual"}[run.trigger]
    description = f"{what} retraining {runs.version_tag(run.id)}"
    if run.reason:
        description = f"{what} retraining: {run.reason} {runs.version_tag(run.id)}"
    parent = None
    if run.family == "transfer":
        # Fine-tuning starts from what serves now (else the newest version).
        base = registry.find_version(run.model, "production")
        if base is None:
            latest = registry.get_model(run.model).latest
            if latest is None:
                raise BadInput(f"transfer model {run.model!r} has no version to fine-tune")
            base = registry.get_version(run.model, latest)
        parent = (base.model, base.version)
    result = training.train(
        actor=actor,
        family=run.family,
        dataset=run.dataset_ref,
        model=run.model,
        params=run.params or None,
        parent=parent,
        progress=progress,
        description=description,
    )
    version = result.version
    outcome = apply_policy(run, version, actor=actor)
    return RunOutcome(
        version=version.version,
        dataset=None if version.dataset is None else version.dataset.label,
        metrics=dict(result.metrics),
        duration_s=float(result.duration_s),
        policy=outcome,
    )


def higher_is_better(metric: str, model_settings: Mapping[str, Any] | None = None) -> bool:
    configured = (model_settings or {}).get("gates")
    rules = configured if isinstance(configured, dict) else gates.DEFAULT_METRIC_GATES
    rule = rules.get(metric) or gates.DEFAULT_METRIC_GATES.get(metric)
    if isinstance(rule, dict) and "higher_is_better" in rule:
        return bool(rule["higher_is_better"])
    return not any(hint in metric.lower() for hint in _LOWER_IS_BETTER_HINTS)


def apply_policy(run: RunInfo, version: VersionInfo, *, actor: Actor = SYSTEM) -> PolicyOutcome:
    """Move ``version`` as far as the run's policy allows."""
    reason = f"policy {run.policy} of {run.trigger} run #{run.id}"
    if run.policy == "candidate":
        return PolicyOutcome(None, [], f"registered {version.version} as a candidate")
    if run.policy == "staging":
        return _promote(version, "staging", reason, actor, [])
    model = registry.get_model(run.model)
    if model.require_audit:
        return PolicyOutcome(
            None,
            [],
            f"{version.version} stays a candidate: model {model.name} requires an audit "
            "approval, which a person gives",
        )
    production = registry.find_version(run.model, "production")
    if production is None:
        return PolicyOutcome(
            None,
            [],
            f"{version.version} stays a candidate: there is no production version to beat "
            "(the first production version is chosen by a person)",
        )
    margin_gate = _margin_gate(run, version, production, model.settings)
    if not margin_gate["passed"]:
        return PolicyOutcome(
            None, [margin_gate], f"{version.version} stays a candidate: {margin_gate['detail']}"
        )
    return _promote(
        version, "production", reason, actor, [margin_gate], revision=model.stage_revision
    )


def _margin_gate(
    run: RunInfo, version: VersionInfo, production: VersionInfo, settings: Mapping[str, Any]
) -> dict[str, Any]:
    metric = run.metric
    new, old = version.metrics.get(metric), production.metrics.get(metric)
    figures: dict[str, Any] = {
        "metric": metric,
        "candidate": new,
        "production": old,
        "production_version": production.version,
        "margin": run.margin,
    }
    if not isinstance(new, int | float) or not isinstance(old, int | float):
        missing = "the new version" if not isinstance(new, int | float) else "production"
        return {
            "name": "margin",
            "passed": False,
            "detail": f"{metric} was not measured for {missing}",
            "figures": figures,
        }
    higher = higher_is_better(metric, settings)
    gain = float(new) - float(old) if higher else float(old) - float(new)
    figures.update(gain=gain, higher_is_better=higher)
    passed = gain > 0 and gain >= run.margin
    detail = (
        f"{metric} {float(new):.4f} vs production {production.version} {float(old):.4f} "
        f"(improvement {gain:+.4f}, needs > 0 and ≥ {run.margin:g})"
    )
    return {"name": "margin", "passed": passed, "detail": detail, "figures": figures}


def _promote(
    version: VersionInfo,
    stage: str,
    reason: str,
    actor: Actor,
    extra_gates: list[dict[str, Any]],
    *,
    revision: int | None = None,
) -> PolicyOutcome:
    try:
        change = registry.promote(
            actor=actor,
            model=version.model,
            version=version.version,
            stage=stage,  # type: ignore[arg-type]
            reason=reason,
            expected_revision=revision,
            expected_stage="candidate",
        )
    except GateFailed as exc:
        return PolicyOutcome(
            None,
            extra_gates + [g.as_dict() for g in exc.gates],
            f"{version.version} stays a candidate: {exc}",
        )
    except CoreError as exc:  # a concurrent stage change, a vanished version
        return PolicyOutcome(None, extra_gates, f"{version.version} stays a candidate: {exc}")
    return PolicyOutcome(
        stage, extra_gates + list(change.gates), f"promoted {version.version} to {stage}"
    )
