"""``python -m jobs.worker``: the scheduler process.

Start-up waits for the database and brings its schema up to date. Then the worker tries to
take the scheduler lock (:mod:`core.retraining.leader`); while another worker holds it, this one is
a
standby and retries every few seconds, so when the leader dies the standby takes over (at once
on Postgres, when the lease expires on SQLite).

The leader first marks failed the runs a dead worker left ``running`` and moves aside any
version folder that was published but never registered, then starts one APScheduler
``BackgroundScheduler``: schedules live in a ``SQLAlchemyJobStore`` in the same database (a
fire missed while no worker ran still happens once, ``coalesce``), housekeeping and the runs
being trained in a memory store. The main thread renews the lock; a worker that cannot renew
it in time stops its scheduler before a standby may take over.

SIGTERM or SIGINT stop the worker cleanly: running trainings are asked to stop (at their next
progress report) and given ``--shutdown-grace`` seconds, whatever is left is recorded as
failed, and the lock is released so that a standby takes over at once. A second signal ends
the process immediately.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.exc import SQLAlchemyError

from core import registry
from core.accounts import bootstrap
from core.db import DatabaseUnavailable, get_engine, utcnow
from core.errors import ConfigError, CoreError
from core.monitoring import resources
from core.registry import orphans
from core.retraining import leader, runs
from jobs import tasks

log = logging.getLogger("jobs.worker")


@dataclass(frozen=True)
class Options:
    """How often the worker looks at things, and its limits."""

    poll_s: float = 2.0
    """Seconds between looks at the queue of runs (a fire or a finished run looks at once)."""
    sync_s: float = 3.0
    """Seconds between syncs of the schedules table into the scheduler."""
    heartbeat_s: float = 5.0
    """Seconds between heartbeats (and log saves) of running runs."""
    drift_s: float = 60.0
    """Seconds between looks for new drift alerts on production versions."""
    lease_ttl_s: float = 30.0
    """How long the lock outlives a silent leader (SQLite: the standby's takeover delay)."""
    concurrency: int = 1
    """Trainings at once; training is CPU-bound, so more rarely helps on a small machine."""
    db_timeout_s: float = 300.0
    """How long to wait for the database on start (0: forever)."""
    shutdown_grace_s: float = 20.0
    """How long running trainings get to stop on SIGTERM before they are recorded failed."""
    resources_s: float = 15.0
    """Seconds between samples of this process's CPU and memory (the Monitoring page's)."""
    monitor_s: float = 60.0
    """Seconds between looks for monitoring windows that have ended (core.monitoring.monitor)."""
    rollout_s: float = 2.0
    """Seconds between looks at running rollout plans (core.rollout): a broken guardrail is
    rolled back within this long of the evidence reaching the rollups."""

    metrics_port: int | None = None
    """Port of the worker's Prometheus /metrics (jobs.metrics); None: not served."""
    metrics_host: str = "127.0.0.1"

    @property
    def renew_s(self) -> float:
        return max(0.5, self.lease_ttl_s / 3)

    @property
    def standby_s(self) -> float:
        return max(0.5, min(self.lease_ttl_s / 3, 5.0))


def new_worker_id() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    """One worker process: standby or leader, until told to stop."""

    def __init__(self, options: Options, *, worker_id: str | None = None) -> None:
        self.options = options
        self.worker_id = worker_id or new_worker_id()
        self.stop_event = threading.Event()
        self.stop_reason = ""
        self.stuck_runs: list[int] = []

    def request_stop(self, reason: str) -> None:
        if not self.stop_event.is_set():
            self.stop_reason = reason
            self.stop_event.set()

    # ------------------------------------------------------------------ start-up

    def wait_for_database(self) -> bool:
        """Migrate once the database answers; False if it did not within the timeout."""
        deadline = (
            time.monotonic() + self.options.db_timeout_s if self.options.db_timeout_s else None
        )
        delay = 0.5
        while True:
            try:
                report = bootstrap.ensure_ready()
            except ConfigError:
                raise
            except (CoreError, SQLAlchemyError, OSError) as exc:
                if deadline is not None and time.monotonic() >= deadline:
                    log.error("the database did not become available: %s", exc)
                    return False
                log.warning("waiting for the database (%s); retrying in %.0f s", exc, delay)
                if self.stop_event.wait(delay):
                    return False
                delay = min(delay * 2, 10.0)
                continue
            if report.admin_password:
                log.warning(
                    "created user 'admin' with one-time password: %s (change it at first sign-in)",
                    report.admin_password,
                )
            log.info("database ready at schema %s", ", ".join(report.heads))
            return True

    # ------------------------------------------------------------------ the loop

    def run(self) -> int:
        """Stand by or lead until stopped; the exit status."""
        log.info("worker %s starting", self.worker_id)
        if not self.wait_for_database():
            return 0 if self.stop_event.is_set() else 1
        sampler = resources.Sampler("worker", interval=self.options.resources_s)
        sampler.start()
        try:
            self._loop()
        finally:
            sampler.stop()
        log.info("worker %s stopped (%s)", self.worker_id, self.stop_reason or "done")
        return 0

    def _loop(self) -> None:
        lock = leader.for_database(self.worker_id, ttl_s=self.options.lease_ttl_s)
        announced = False  # the standby says so once per wait
        while not self.stop_event.is_set():
            try:
                acquired = lock.try_acquire()
            except (DatabaseUnavailable, SQLAlchemyError) as exc:
                log.warning("could not ask for the scheduler lock: %s", exc)
                acquired = False
            if acquired:
                announced = False
                self._lead(lock)
                continue
            if not announced:
                announced = True
                log.info("standing by: worker %s runs the schedule", _holder())
            self.stop_event.wait(self.options.standby_s)

    def _lead(self, lock: leader.Leadership) -> None:
        log.info("worker %s leads: running the schedule", self.worker_id)
        context: tasks.Context | None = None
        scheduler: BackgroundScheduler | None = None
        reason = "the worker lost the scheduler lock"
        try:
            self._recover()
            scheduler = build_scheduler(self.options)
            context = tasks.Context(
                self.worker_id,
                scheduler,
                self.options.concurrency,
                stale_after_s=max(self.options.lease_ttl_s, 6 * self.options.heartbeat_s),
            )
            tasks.activate(context)
            scheduler.start()
            add_housekeeping(scheduler, self.options)
            reason = self._hold(lock)
        except (DatabaseUnavailable, SQLAlchemyError) as exc:
            log.error("database failure while leading: %s", exc)
            reason = f"database failure: {exc}"
        finally:
            if scheduler is not None and scheduler.running:
                scheduler.shutdown(wait=False)
            if context is not None:
                self.stuck_runs = tasks.stand_down(
                    context, reason=reason, grace_s=self.options.shutdown_grace_s
                )
            tasks.deactivate()
            lock.release()
            log.info("worker %s no longer leads (%s)", self.worker_id, reason)

    def _recover(self) -> None:
        """Clean up after a leader that died: its runs are marked failed.

        Artifact folders are only reported: moving them is an operator's decision (``python
        -m core artifacts sweep``); a worker pointed at the wrong or an empty database that
        shares ``ARTIFACTS_DIR`` must not move another registry's folders."""
        for run in runs.fail_orphans(worker_id=self.worker_id):
            log.warning("run #%s of %s was left running: marked failed", run.id, run.model)
        for entry in orphans.sweep(registry.known_artifact_dirs(), dry_run=True):
            if entry.action == "would move":
                log.warning(
                    "artifact folder %s was published but never registered; "
                    "`python -m core artifacts sweep` moves it aside",
                    entry.folder,
                )

    def _hold(self, lock: leader.Leadership) -> str:
        """Renew the lock until stopped or lost; the reason leadership ends."""
        while not self.stop_event.wait(self.options.renew_s):
            try:
                if not lock.renew():
                    return "another worker took the scheduler lock"
            except (DatabaseUnavailable, SQLAlchemyError) as exc:
                if time.monotonic() >= lock.valid_until:
                    return f"could not renew the scheduler lock in time: {exc}"
                log.warning("could not renew the scheduler lock (will retry): %s", exc)
        return self.stop_reason or "stopped"


def _holder() -> str:
    """Who leads, for a standby's log line (the record may be a moment stale)."""
    try:
        status = leader.current_worker()
    except (CoreError, SQLAlchemyError):
        return "(unknown)"
    return "(unknown)" if status is None else status.holder


def build_scheduler(options: Options) -> BackgroundScheduler:
    """The scheduler: schedules persist in the registry's database, housekeeping in memory."""
    engine = get_engine()
    if engine.dialect.name == "sqlite":
        # Writes wait on the busy timeout instead of failing when upgrading a read lock.
        engine = engine.execution_options(sqlite_begin="IMMEDIATE")
    return BackgroundScheduler(
        jobstores={
            tasks.PERSISTENT: SQLAlchemyJobStore(engine=engine, tablename="apscheduler_jobs"),
            tasks.LOCAL: MemoryJobStore(),
        },
        executors={
            "default": ThreadPoolExecutor(4),
            tasks.TRAINING: ThreadPoolExecutor(options.concurrency),
        },
        job_defaults={"coalesce": True, "max_instances": 1},
        timezone=dt.UTC,
    )


def add_housekeeping(scheduler: BackgroundScheduler, options: Options) -> None:
    """The fixed jobs of a leader; each runs once at once, then at its interval."""
    for job_id, func, every in (
        (tasks.SYNC_JOB, "sync_schedules", options.sync_s),
        (tasks.DISPATCH_JOB, "dispatch_queue", options.poll_s),
        (tasks.HEARTBEAT_JOB, "heartbeat", options.heartbeat_s),
        (tasks.DRIFT_JOB, "check_drift_alerts", options.drift_s),
        (tasks.PRUNE_JOB, "prune_resources", 3600.0),
        (tasks.MONITOR_JOB, "monitor_windows", options.monitor_s),
        (tasks.ROLLOUT_JOB, "advance_rollouts", options.rollout_s),
        (tasks.LOG_PARTITIONS_JOB, "log_partitions_housekeeping", 3600.0),
    ):
        scheduler.add_job(
            f"jobs.tasks:{func}",
            "interval",
            seconds=every,
            id=job_id,
            name=job_id,
            jobstore=tasks.LOCAL,
            replace_existing=True,
            next_run_time=utcnow(),
            coalesce=True,
            max_instances=1,
            misfire_grace_time=max(1, int(every)),
        )


# ---------------------------------------------------------------------- process


def parse_args(argv: Sequence[str] | None) -> tuple[Options, bool]:
    defaults = Options()
    p = argparse.ArgumentParser(
        prog="python -m jobs.worker",
        description="Run scheduled and queued retraining (one worker leads, others stand by).",
    )
    p.add_argument("--poll", type=float, default=defaults.poll_s, help="queue poll seconds")
    p.add_argument("--sync", type=float, default=defaults.sync_s, help="schedule sync seconds")
    p.add_argument("--heartbeat", type=float, default=defaults.heartbeat_s)
    p.add_argument(
        "--drift-check",
        type=float,
        default=defaults.drift_s,
        help="seconds between looks for drift alerts that should trigger a retrain",
    )
    p.add_argument(
        "--lease-ttl",
        type=float,
        default=defaults.lease_ttl_s,
        help="seconds a silent leader keeps the lock (SQLite takeover delay)",
    )
    p.add_argument("--concurrency", type=int, default=defaults.concurrency)
    p.add_argument(
        "--db-timeout",
        type=float,
        default=defaults.db_timeout_s,
        help="seconds to wait for the database on start (0: forever)",
    )
    p.add_argument("--shutdown-grace", type=float, default=defaults.shutdown_grace_s)
    p.add_argument(
        "--resources",
        type=float,
        default=defaults.resources_s,
        help="seconds between samples of the worker's CPU and memory",
    )
    p.add_argument(
        "--monitor",
        type=float,
        default=defaults.monitor_s,
        help="seconds between looks for monitoring windows that have ended",
    )
    p.add_argument(
        "--rollout",
        type=float,
        default=defaults.rollout_s,
        help="seconds between looks at running rollout plans",
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        default=defaults.metrics_port,
        help="serve the worker's Prometheus /metrics on this port (default: off)",
    )
    p.add_argument("--metrics-host", default=defaults.metrics_host, help="address of /metrics")
    p.add_argument("-v", "--verbose", action="store_true", help="also log APScheduler's chatter")
    args = p.parse_args(argv)
    if args.metrics_port is not None and not 1 <= args.metrics_port <= 65535:
        p.error("--metrics-port must be from 1 to 65535")
    checked = ("poll", "sync", "heartbeat", "drift_check", "lease_ttl", "resources", "monitor")
    for name in (*checked, "rollout"):
        if getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be positive")
    if args.concurrency < 1:
        p.error("--concurrency must be at least 1")
    options = Options(
        poll_s=args.poll,
        sync_s=args.sync,
        heartbeat_s=args.heartbeat,
        drift_s=args.drift_check,
        lease_ttl_s=args.lease_ttl,
        concurrency=args.concurrency,
        db_timeout_s=max(0.0, args.db_timeout),
        shutdown_grace_s=max(0.0, args.shutdown_grace),
        resources_s=args.resources,
        monitor_s=args.monitor,
        rollout_s=args.rollout,
        metrics_port=args.metrics_port,
        metrics_host=args.metrics_host,
    )
    return options, args.verbose


def configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger().addHandler(tasks.RUN_LOGS)
    if not verbose:
        logging.getLogger("apscheduler").setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    options, verbose = parse_args(argv)
    configure_logging(verbose)
    worker = Worker(options)
    if options.metrics_port is not None:
        from jobs import metrics

        try:
            metrics.serve(worker.worker_id, options.metrics_port, options.metrics_host)
        except OSError as exc:  # the port is taken, or the address is not this machine's
            print(
                f"error: cannot serve /metrics on port {options.metrics_port}: {exc}",
                file=sys.stderr,
            )
            return 2

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if worker.stop_event.is_set():
            log.warning("%s again: stopping at once", name)
            logging.shutdown()
            os._exit(1)
        log.info("%s received: stopping (send it again to stop at once)", name)
        worker.request_stop(f"{name} received")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        status = worker.run()
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    if worker.stuck_runs:
        # Their threads are still inside a training; the interpreter would wait for them.
        log.warning("leaving runs %s behind (recorded failed)", worker.stuck_runs)
        logging.shutdown()
        os._exit(status)
    return status


if __name__ == "__main__":
    sys.exit(main())
