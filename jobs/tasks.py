"""The worker's jobs: module-level functions that APScheduler calls by reference.

They take plain values (a model name, a run id) because the persistent job store pickles a
job as a reference to its function plus its arguments; the state they share (the scheduler,
this worker's id, the runs it is training) is the :class:`Context` of the worker that leads in
this process, set by :mod:`jobs.worker` while it holds the lock.

* ``retrain:<model>`` (persistent store, one per schedule): :func:`fire_schedule` records the
  fire as a queued run. Training never runs inside the schedule's job: every run, whatever
  asked for it, goes through the queue, so the run exists (and is visible) from the moment it
  is due, and at most ``concurrency`` trainings run at once.
* ``planwise:sync`` mirrors the schedules table into the scheduler (:func:`sync_schedules`).
* ``planwise:dispatch`` claims queued runs while a training slot is free
  (:func:`dispatch_queue`) and hands each to :func:`execute_run` on the training executor.
* ``planwise:heartbeat`` stamps running runs and appends their new log lines
  (:func:`heartbeat`); a run taken away from this worker is told to stop, and another
  worker's run whose heartbeat stopped is marked failed.
* ``planwise:drift`` queues a retrain when a drift alert hits a production version
  (:func:`check_drift_alerts`).
* ``planwise:monitor`` computes the monitoring windows of live traffic that have ended
  (:func:`monitor_windows`): drift, service and recommendation health, and their alerts.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from core.db import DatabaseUnavailable, utcnow
from core.errors import CoreError
from core.monitoring import partitions as log_partitions
from core.monitoring import resources
from core.retraining import cron, policies, queue, runs, schedules
from core.retraining.runs import RunInfo
from core.retraining.schedules import ScheduleInfo
from jobs.run_state import RUN_LOGS, RunCancelled, RunState

log = logging.getLogger(__name__)

PERSISTENT = "default"  # the SQLAlchemy job store: schedules survive the worker
LOCAL = "local"  # in memory: housekeeping and the runs this process is executing
TRAINING = "training"  # the executor whose threads train, one per concurrent run
SYNC_JOB = "planwise:sync"
DISPATCH_JOB = "planwise:dispatch"
HEARTBEAT_JOB = "planwise:heartbeat"
DRIFT_JOB = "planwise:drift"
PRUNE_JOB = "planwise:prune-resources"
MONITOR_JOB = "planwise:monitor"
ROLLOUT_JOB = "planwise:rollout"
LOG_PARTITIONS_JOB = "planwise:log-partitions"
RESOURCE_RETENTION = dt.timedelta(days=30)
SCHEDULE_PREFIX = "retrain:"
# A missed cron fire still runs (once: coalesce) if the worker is back within a day; an
# interval schedule's missed fire runs if the worker is back before the next one is due.
CRON_MISFIRE_GRACE_S = 24 * 3600
FINISH_ATTEMPTS = 6


@dataclass
class Context:
    """What the jobs share while this process leads."""

    worker_id: str
    scheduler: BaseScheduler
    concurrency: int
    stale_after_s: float = 60.0
    """Another worker's run without a heartbeat for this long is an orphan."""
    stopping: bool = False
    active: dict[int, RunState] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    dispatch_lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, run: RunInfo) -> RunState:
        state = RunState(run)
        with self.lock:
            self.active[run.id] = state
        return state

    def remove(self, run_id: int) -> None:
        with self.lock:
            self.active.pop(run_id, None)

    def get(self, run_id: int) -> RunState | None:
        with self.lock:
            return self.active.get(run_id)

    def snapshot(self) -> list[RunState]:
        with self.lock:
            return list(self.active.values())

    def free_slots(self) -> int:
        with self.lock:
            return self.concurrency - len(self.active)

    def active_models(self) -> set[str]:
        with self.lock:
            return {s.model for s in self.active.values()}

    def cancel_all(self, reason: str) -> None:
        for state in self.snapshot():
            state.cancel(reason)

    def wake(self, job_id: str) -> None:
        """Run a housekeeping job now instead of at its next interval."""
        if self.stopping or (job_id == DISPATCH_JOB and self.dispatch_lock.locked()):
            return
        try:
            self.scheduler.modify_job(job_id, jobstore=LOCAL, next_run_time=utcnow())
        except (JobLookupError, RuntimeError) as exc:  # shutting down
            log.debug("could not wake %s: %s", job_id, exc)


_context: Context | None = None


def activate(context: Context) -> None:
    global _context
    _context = context


def deactivate() -> None:
    global _context
    _context = None


def _current() -> Context | None:
    """The leading worker's context; None while standing down (the job then does nothing)."""
    context = _context
    return None if context is None or context.stopping else context


# ------------------------------------------------------------------------ schedules


def schedule_job_id(model: str) -> str:
    return f"{SCHEDULE_PREFIX}{model}"


def schedule_job_name(schedule: ScheduleInfo) -> str:
    """The job's name carries the schedule revision it was built from."""
    return f"{schedule.model} revision {schedule.revision}"


def build_trigger(schedule: ScheduleInfo) -> BaseTrigger:
    """The APScheduler trigger of a schedule, in UTC.

    Cron fields are given to APScheduler as the value lists
    :func:`core.retraining.cron.parse_cron`
    expanded, and days of week by name, so the expression keeps cron's meaning. An interval
    schedule fires at ``anchor + k × interval`` (k ≥ 1), so restarts do not shift it.
    """
    if schedule.cron:
        spec = cron.parse_cron(schedule.cron)

        def values(allowed: tuple[int, ...] | None) -> str:
            return "*" if allowed is None else ",".join(str(v) for v in allowed)

        days = (
            "*"
            if spec.day_of_week is None
            else ",".join(cron.DAY_NAMES[d] for d in spec.day_of_week)
        )
        return CronTrigger(
            second=0,
            minute=values(spec.minute),
            hour=values(spec.hour),
            day=values(spec.day),
            month=values(spec.month),
            day_of_week=days,
            timezone=dt.UTC,
        )
    every = int(schedule.every_s or 0)
    return IntervalTrigger(
        seconds=every,
        start_date=schedule.anchor_at + dt.timedelta(seconds=every),
        timezone=dt.UTC,
    )


def misfire_grace_s(schedule: ScheduleInfo) -> int:
    return int(schedule.every_s) if schedule.every_s else CRON_MISFIRE_GRACE_S


def latest_fire(trigger: BaseTrigger, now: dt.datetime, horizon_s: float) -> dt.datetime:
    """The latest fire time of ``trigger`` at or before ``now`` (``now`` if none is found).

    APScheduler does not tell a job which fire it is running; this is that fire (coalesced
    fires run once, as the latest), the key that makes one fire one run.
    """
    fire: dt.datetime | None = trigger.get_next_fire_time(
        None, now - dt.timedelta(seconds=horizon_s)
    )
    last = None
    while fire is not None and fire <= now:
        last = fire
        fire = trigger.get_next_fire_time(fire, fire)
    return last or now


def fire_schedule(model: str) -> None:
    """A schedule is due: queue its run and wake the dispatcher."""
    context = _current()
    if context is None:
        return
    job = context.scheduler.get_job(schedule_job_id(model), jobstore=PERSISTENT)
    now = utcnow()
    when = now
    if job is not None:
        when = latest_fire(job.trigger, now, (job.misfire_grace_time or CRON_MISFIRE_GRACE_S) + 60)
    if queue.fire(model, scheduled_for=when) is not None:
        context.wake(DISPATCH_JOB)


def sync_schedules() -> None:
    """Make the scheduler's jobs match the schedules table, and report next fire times.

    A job is rebuilt only when its schedule's revision changed, so a job loaded from the store
    keeps its pending fire (a fire missed while no worker ran still happens, once).
    """
    context = _current()
    if context is None:
        return
    scheduler = context.scheduler
    wanted = {schedule_job_id(s.model): s for s in schedules.list_schedules()}
    jobs = {job.id: job for job in scheduler.get_jobs(jobstore=PERSISTENT)}
    for job_id in jobs.keys() - wanted.keys():
        scheduler.remove_job(job_id, jobstore=PERSISTENT)
        log.info("removed the job of deleted schedule %s", job_id)
    applied: dict[str, tuple[int, dt.datetime | None]] = {}
    for job_id, schedule in wanted.items():
        job = jobs.get(job_id)
        if job is None or job.name != schedule_job_name(schedule):
            try:
                trigger = build_trigger(schedule)
            except CoreError as exc:
                log.error("schedule of %s cannot run: %s", schedule.model, exc)
                continue
            extra: dict[str, Any] = {"next_run_time": None} if schedule.paused else {}
            job = scheduler.add_job(
                f"{__name__}:fire_schedule",
                trigger=trigger,
                args=(schedule.model,),
                id=job_id,
                name=schedule_job_name(schedule),
                jobstore=PERSISTENT,
                replace_existing=True,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=misfire_grace_s(schedule),
                **extra,
            )
            log.info(
                "schedule of %s: %s%s, next run %s",
                schedule.model,
                schedule.when,
                " (paused)" if schedule.paused else "",
                job.next_run_time,
            )
        applied[schedule.model] = (schedule.revision, job.next_run_time)
    schedules.record_sync(applied)


def check_drift_alerts() -> None:
    """Queue drift retrains for new drift alerts on production versions."""
    context = _current()
    if context is None:
        return
    if queue.retrain_on_drift_alerts():
        context.wake(DISPATCH_JOB)


def monitor_windows() -> None:
    """Compute every due monitoring window (:func:`core.monitoring.monitor.run_due`).

    A failure of one model is recorded with its window and does not stop the others; new
    drift alerts queue their retraining in the same call, so the dispatcher is woken.
    """
    context = _current()
    if context is None:
        return
    from core.monitoring import monitor  # pandas and Evidently: only in the leader that monitors

    report = monitor.run_due(on_drift=queue.queue_drift_retrains)
    if report.windows or report.failures:
        log.info(
            "monitoring: %s windows, %s alerts, %s failures (%.1f s CPU)",
            report.windows,
            len(report.alerts),
            len(report.failures),
            report.cpu_s,
        )
    for failure in report.failures:
        log.warning("monitoring failed: %s", failure)
    if report.retrains:
        context.wake(DISPATCH_JOB)


def advance_rollouts() -> None:
    """One look at every running rollout plan (:func:`core.rollout.tick`): advance a step on
    evidence, promote after the last, roll back at once on a broken guardrail."""
    if _current() is None:
        return
    from core import rollout  # scipy: only in the leader that runs rollouts

    for outcome in rollout.tick():
        if outcome.action not in ("held", "skipped"):
            log.info("rollout #%s of %s: %s (%s)", *outcome.__dict__.values())


def prune_resources() -> None:
    """Drop CPU and memory samples older than the retention: a sample every 15 s per process
    would otherwise grow the table by two million rows a year."""
    if _current() is None:
        return
    dropped = resources.prune(before=utcnow() - RESOURCE_RETENTION)
    if dropped:
        log.info("dropped %s resource samples older than %s days", dropped, RESOURCE_RETENTION.days)


def log_partitions_housekeeping() -> None:
    """The prediction log's daily partitions made a week ahead (writers then never wait on
    creating one) and those past ``LOG_RETENTION_DAYS`` dropped; rollups, drift and monitoring
    results stay. PostgreSQL only: on SQLite this does nothing."""
    if _current() is None:
        return
    done = log_partitions.housekeep()
    if done.dropped:
        log.info(
            "prediction log: dropped %s past retention in %.3f s",
            ", ".join(done.dropped),
            done.drop_seconds,
        )


# ------------------------------------------------------------------------ runs


def dispatch_queue() -> None:
    """Claim queued runs, oldest first, while a training slot is free."""
    context = _current()
    if context is None:
        return
    with context.dispatch_lock:
        while not context.stopping and context.free_slots() > 0:
            run = runs.claim_next(worker_id=context.worker_id, skip_models=context.active_models())
            if run is None:
                return
            state = context.add(run)
            state.write(f"claimed by worker {context.worker_id}")
            try:
                context.scheduler.add_job(
                    f"{__name__}:execute_run",
                    args=(run.id,),
                    id=f"run:{run.id}",
                    name=f"run #{run.id} of {run.model}",
                    jobstore=LOCAL,
                    executor=TRAINING,
                    replace_existing=True,
                    misfire_grace_time=None,
                )
            except Exception as exc:  # noqa: BLE001 - the scheduler is shutting down
                _record_end(context, state, "failed", {"error": f"could not start: {exc}"})
                context.remove(run.id)
                return


def execute_run(run_id: int) -> None:
    """Train one claimed run, apply its policy and record the result."""
    context = _context
    state = None if context is None else context.get(run_id)
    if context is None or state is None:
        log.error("run #%s is not one this worker claimed; not executed", run_id)
        return
    status = "failed"
    result: dict[str, Any] = {}
    RUN_LOGS.attach(state)
    try:
        run = runs.get_run(run_id)
        state.write(
            f"training {run.family} model {run.model} on {run.dataset_ref} "
            f"({run.trigger} run, policy {run.policy})"
        )
        if state.cancel_reason is not None:
            raise RunCancelled(state.cancel_reason)
        with resources.PeakMemory() as memory:
            outcome = policies.execute(run, progress=state.progress)
        status = "succeeded"
        result = {
            "version": outcome.version,
            "dataset": outcome.dataset,
            "metrics": outcome.metrics,
            "gates": outcome.policy.gates,
            "promoted_to": outcome.policy.promoted_to,
            "outcome": outcome.policy.note,
            "peak_rss_mb": round(memory.peak_mb, 1),
        }
        state.write(
            f"finished in {outcome.duration_s:.1f} s, worker memory peaked at "
            f"{memory.peak_mb:,.0f} MB: {outcome.policy.note}"
        )
    except RunCancelled as exc:
        result = {"error": f"stopped: {exc}"}
        state.write(f"stopped: {exc}")
    except CoreError as exc:
        result = {"error": str(exc)}
        state.write(f"failed: {exc}")
    except Exception as exc:  # noqa: BLE001 - any failure of a training is the run's failure
        log.exception("run #%s failed", run_id)  # the traceback lands in the run's log
        result = {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        RUN_LOGS.detach()
    _record_end(context, state, status, result)
    context.remove(run_id)
    context.wake(DISPATCH_JOB)


def _record_end(context: Context, state: RunState, status: str, result: dict[str, Any]) -> None:
    """Close the run in the database, retrying while the database is briefly unavailable."""
    with state.flush_lock:
        state.done = True
        tail = state.take()
        for attempt in range(FINISH_ATTEMPTS):
            try:
                runs.finish(
                    state.run_id,
                    worker_id=context.worker_id,
                    status=status,  # type: ignore[arg-type]
                    log_tail=tail,
                    **result,
                )
            except DatabaseUnavailable as exc:
                if attempt == FINISH_ATTEMPTS - 1:
                    log.error("could not record the end of run #%s: %s", state.run_id, exc)
                    return
                time.sleep(min(2**attempt, 10))
            else:
                log.info("run #%s of %s %s", state.run_id, state.model, status)
                return


def heartbeat() -> None:
    """Stamp this worker's running runs, save their new log lines, stop runs it lost."""
    context = _current()
    if context is None:
        return
    for state in context.snapshot():
        with state.flush_lock:
            if state.done:
                continue
            chunk = state.take()
            try:
                lost = runs.heartbeat(worker_id=context.worker_id, logs={state.run_id: chunk})
            except DatabaseUnavailable as exc:
                state.unshift(chunk)
                log.warning("could not save the heartbeat of run #%s: %s", state.run_id, exc)
                return
        if lost:
            state.cancel("another worker marked this run failed")
    stale = utcnow() - dt.timedelta(seconds=context.stale_after_s)
    try:
        orphans = runs.fail_orphans(worker_id=context.worker_id, stale_before=stale)
    except DatabaseUnavailable as exc:
        log.warning("could not look for orphaned runs: %s", exc)
        return
    for run in orphans:
        log.warning("run #%s of %s had no heartbeat: marked failed", run.id, run.model)


def stand_down(context: Context, *, reason: str, grace_s: float) -> list[int]:
    """Stop the runs in progress: ask them to stop, wait up to ``grace_s``, then record them
    failed. Returns the ids whose training threads were still busy (the caller may have to
    end the process without them)."""
    context.stopping = True
    context.cancel_all(reason)
    deadline = time.monotonic() + grace_s
    while context.snapshot() and time.monotonic() < deadline:
        time.sleep(0.2)
    stuck = []
    for state in context.snapshot():
        stuck.append(state.run_id)
        state.write(f"stopped: {reason}")
        _record_end(context, state, "failed", {"error": f"stopped: {reason}"})
    return stuck
