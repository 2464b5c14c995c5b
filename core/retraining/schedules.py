"""Retraining schedules: one row per model saying when to retrain, on what, and what to do with
the new version.

A **schedule** says when to retrain (a cron expression in UTC, see :mod:`core.retraining.cron`,
or every N seconds), on which dataset (``NAME`` = the latest version at run time, ``NAME@V`` =
fixed), with which hyperparameters, and what to do with the new version (the *policy*, applied
by :mod:`core.retraining.policies`):

- ``candidate`` (default): register it, nothing more;
- ``staging``: promote it to staging when the staging gates pass;
- ``production``: promote it to production when it beats the production version by at least
  ``margin`` on ``metric`` (default ``ndcg@5``), the production gates pass, and the model does
  not require an audit approval (an approval is a person's decision). A model without a
  production version is never promoted automatically: the first production version is chosen
  by a person.

Schedules are rows; the dashboard and the CLI edit them and the worker mirrors them into its
scheduler within seconds. Every change bumps ``revision``; the worker writes back the revision
it applied and the next fire time, which is how the page shows "next run". A schedule's fire
becomes a queued run through :func:`core.retraining.queue.fire`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationInfo, field_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import registry
from core.accounts.auth import Actor, require
from core.data import datasets
from core.db import transaction, utcnow
from core.db.rows import Plain
from core.db.tables import (
    DEFAULT_DRIFT_COOLDOWN_S,
    DEFAULT_METRIC,
    POLICIES,
    DatasetRow,
    ModelRow,
    ScheduleRow,
    VersionRow,
)
from core.errors import AlreadyExists, BadInput, NotFound
from core.families import FAMILIES, family_class, may_register
from core.retraining.cron import validate_cron
from core.retraining.runs import RunSpec

log = logging.getLogger(__name__)

MIN_INTERVAL_S = 1
MAX_INTERVAL_S = 366 * 24 * 3600


class ScheduleInfo(Plain):
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

    @field_validator("params", "description", mode="before")
    @classmethod
    def empty_if_null(cls, value: Any, info: ValidationInfo) -> Any:
        """A NULL column (older rows) as the field's empty value."""
        if value is not None:
            return value
        return {} if info.field_name == "params" else ""


# ------------------------------------------------------------------------ validation


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
    resolved = family_class(family).resolve_params(params)
    return {key: resolved[key] for key in params}


def check_dataset(ref: str) -> str:
    name, version = datasets.parse_ref(ref.strip())
    datasets.get_dataset(name, version)  # NotFound names it
    return name if version is None else f"{name}@{version}"


def _check_family(s: Session, model: str, family: str | None) -> str:
    existing = s.scalar(select(ModelRow.family).where(ModelRow.name == model))
    if family is None:
        if existing is None:
            raise BadInput(
                f"model {model!r} is not registered yet: give the family to train "
                f"({', '.join(FAMILIES)})"
            )
        return existing
    if family not in FAMILIES:
        raise BadInput(f"unknown family {family!r}; families are {', '.join(FAMILIES)}")
    if existing is not None and not may_register(existing, family):
        raise BadInput(f"model {model!r} is of family {existing!r}, not {family!r}")
    return family


def latest_dataset_name(s: Session, model: str) -> str | None:
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
    registry.check_name(model)
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
    dataset_ref = check_dataset(dataset) if dataset is not None else None
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
                known = latest_dataset_name(s, model)
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
        info = ScheduleInfo.of(row)
    log.info("schedule of %s set to %s (revision %s)", model, info.when, info.revision)
    return info


def get_schedule(model: str) -> ScheduleInfo:
    with transaction(write=False) as s:
        return ScheduleInfo.of(_row(s, model))


def find_schedule(model: str) -> ScheduleInfo | None:
    with transaction(write=False) as s:
        row = s.scalar(select(ScheduleRow).where(ScheduleRow.model == model))
        return None if row is None else ScheduleInfo.of(row)


def list_schedules() -> list[ScheduleInfo]:
    with transaction(write=False) as s:
        return [
            ScheduleInfo.of(r) for r in s.scalars(select(ScheduleRow).order_by(ScheduleRow.model))
        ]


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
        return ScheduleInfo.of(row)


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
    """What a run of ``schedule`` trains (its ``dataset`` is the run's ``dataset_ref``)."""
    return RunSpec.of(schedule, dataset_ref=schedule.dataset)
