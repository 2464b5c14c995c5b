"""The single-active-worker lock: at most one worker runs the schedule, others stand by.

Two workers must never run schedulers on one job store (both would fire every job). The
worker therefore holds a lock in the database for its whole life and starts its scheduler
only once it holds it:

* **PostgreSQL**: ``pg_try_advisory_lock`` on a dedicated connection kept open for the
  worker's life. The server releases the lock the moment that connection closes, so a killed
  worker hands over at once. The key is derived from the schema, so test schemas (and
  separate deployments sharing a database) do not exclude each other.
* **SQLite**: a lease row in ``worker_leases`` (holder id, expiry), taken in a write
  transaction (``BEGIN IMMEDIATE``: the check and the take are atomic) and renewed by the
  holder's heartbeat. A standby takes over when the lease has expired. The expiry is compared
  with the clock of the process that reads it; SQLite databases are local files, so all
  workers share one clock.

On both, the holder also records itself in ``worker_leases`` (on Postgres only as a status
for the dashboard: the advisory lock is what excludes).

Fencing: :attr:`Leadership.valid_until` is a monotonic deadline the holder must stop working
by if it has not renewed. The worker checks it, so a worker that cannot reach the database
stops its scheduler before a standby may take over.
"""

from __future__ import annotations

import abc
import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, text, update
from sqlalchemy.exc import SQLAlchemyError

from core.config import get_settings
from core.db import DatabaseUnavailable, get_engine, transaction, utcnow
from core.db.tables import WorkerLeaseRow

log = logging.getLogger(__name__)

LOCK_NAME = "scheduler"
# First key of the two-key advisory lock form; the second is hashtext(schema). The two-key
# space never collides with the one-key lock that core.db.migrate takes.
ADVISORY_NAMESPACE = 0x504C4E57  # "PLNW"


@dataclass(frozen=True)
class WorkerStatus:
    """Who holds the scheduler lock, as last recorded."""

    holder: str
    acquired_at: dt.datetime
    heartbeat_at: dt.datetime
    expires_at: dt.datetime

    def alive(self, now: dt.datetime | None = None) -> bool:
        return self.expires_at > (now or utcnow())


def current_worker(name: str = LOCK_NAME) -> WorkerStatus | None:
    """The active worker as recorded in ``worker_leases`` (None if none ever ran)."""
    with transaction(write=False) as s:
        row = s.get(WorkerLeaseRow, name)
        if row is None:
            return None
        return WorkerStatus(row.holder, row.acquired_at, row.heartbeat_at, row.expires_at)


class Leadership(abc.ABC):
    """A lock that one worker holds for its life; see the module docstring."""

    def __init__(self, holder: str, *, ttl_s: float, name: str = LOCK_NAME):
        self.holder = holder
        self.name = name
        self.ttl_s = ttl_s
        self.valid_until = 0.0  # time.monotonic() deadline; 0 while not held
        self.held = False

    @abc.abstractmethod
    def try_acquire(self) -> bool:
        """Take the lock if it is free; never blocks for long."""

    @abc.abstractmethod
    def renew(self) -> bool:
        """Keep the lock; False when it is certainly lost.

        Raises :class:`DatabaseUnavailable` when the database cannot say (the caller keeps
        working until :attr:`valid_until`).
        """

    @abc.abstractmethod
    def release(self) -> None:
        """Give the lock up (a clean shutdown lets a standby take over at once)."""

    def _record(self, *, acquired: bool) -> None:
        """Write (or refresh) this holder's status row."""
        now = utcnow()
        expires = now + dt.timedelta(seconds=self.ttl_s)
        with transaction() as s:
            row = s.get(WorkerLeaseRow, self.name)
            if row is None:
                s.add(
                    WorkerLeaseRow(
                        name=self.name,
                        holder=self.holder,
                        acquired_at=now,
                        heartbeat_at=now,
                        expires_at=expires,
                    )
                )
                return
            if acquired or row.holder != self.holder:
                row.acquired_at = now
            row.holder = self.holder
            row.heartbeat_at = now
            row.expires_at = expires

    def _drop_record(self) -> None:
        with transaction() as s:
            s.execute(
                delete(WorkerLeaseRow).where(
                    WorkerLeaseRow.name == self.name, WorkerLeaseRow.holder == self.holder
                )
            )


class SqliteLease(Leadership):
    """A lease row with an expiry, renewed by heartbeat."""

    def try_acquire(self) -> bool:
        started = time.monotonic()
        now = utcnow()
        expires = now + dt.timedelta(seconds=self.ttl_s)
        with transaction() as s:  # BEGIN IMMEDIATE: no one else can take it in between
            row = s.get(WorkerLeaseRow, self.name)
            if row is None:
                s.add(
                    WorkerLeaseRow(
                        name=self.name,
                        holder=self.holder,
                        acquired_at=now,
                        heartbeat_at=now,
                        expires_at=expires,
                    )
                )
            elif row.holder == self.holder or row.expires_at <= now:
                if row.holder != self.holder:
                    log.warning(
                        "taking over the scheduler lease from %s (expired %s)",
                        row.holder,
                        row.expires_at.isoformat(),
                    )
                row.holder = self.holder
                row.acquired_at = now
                row.heartbeat_at = now
                row.expires_at = expires
            else:
                return False
        self.held = True
        self.valid_until = started + self.ttl_s
        return True

    def renew(self) -> bool:
        started = time.monotonic()
        now = utcnow()
        with transaction() as s:
            result = s.execute(
                update(WorkerLeaseRow)
                .where(WorkerLeaseRow.name == self.name, WorkerLeaseRow.holder == self.holder)
                .values(heartbeat_at=now, expires_at=now + dt.timedelta(seconds=self.ttl_s))
            )
            ok = result.rowcount == 1  # type: ignore[attr-defined]
        if ok:
            self.valid_until = started + self.ttl_s
        else:
            self.held = False
        return ok

    def release(self) -> None:
        if self.held:
            try:
                self._drop_record()
            except DatabaseUnavailable as exc:
                log.warning("could not release the scheduler lease: %s", exc)
        self.held = False
        self.valid_until = 0.0


class PostgresAdvisoryLock(Leadership):
    """``pg_try_advisory_lock`` on a connection held for the worker's life."""

    def __init__(self, holder: str, *, ttl_s: float, name: str = LOCK_NAME):
        super().__init__(holder, ttl_s=ttl_s, name=name)
        self._conn: Connection | None = None
        self._scope = f"{get_settings().database_schema or 'public'}:{name}"

    def _lock_args(self) -> dict[str, Any]:
        return {"ns": ADVISORY_NAMESPACE, "scope": self._scope}

    def try_acquire(self) -> bool:
        if self.held:
            # Session-level advisory locks stack: taking it twice would need two unlocks.
            return self.renew()
        started = time.monotonic()
        try:
            if self._conn is None:
                conn = get_engine().connect()
                self._conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            got = bool(
                self._conn.execute(
                    text("SELECT pg_try_advisory_lock(:ns, hashtext(:scope))"), self._lock_args()
                ).scalar()
            )
        except SQLAlchemyError as exc:
            self._discard()
            raise DatabaseUnavailable(f"could not ask for the scheduler lock: {exc}") from exc
        if not got:
            return False
        self.held = True
        self.valid_until = started + self.ttl_s
        try:
            self._record(acquired=True)
        except DatabaseUnavailable as exc:
            log.warning("could not record the worker status row: %s", exc)
        return True

    def renew(self) -> bool:
        started = time.monotonic()
        if self._conn is None or not self.held:
            return False
        try:
            self._conn.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            # The lock lived in that session: whatever failed, it is gone or going.
            log.error("lost the connection holding the scheduler lock: %s", exc)
            self._discard()
            return False
        self.valid_until = started + self.ttl_s
        try:
            self._record(acquired=False)
        except DatabaseUnavailable as exc:
            log.warning("could not refresh the worker status row: %s", exc)
        return True

    def _discard(self) -> None:
        """Drop the connection without returning it to the pool (it may still hold the lock)."""
        self.held = False
        self.valid_until = 0.0
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.invalidate()
                conn.close()
            except Exception:  # noqa: BLE001 - the connection is gone either way
                pass

    def release(self) -> None:
        if self._conn is None:
            self.held = False
            return
        if not self.held:
            self._discard()
            return
        try:
            self._conn.execute(
                text("SELECT pg_advisory_unlock(:ns, hashtext(:scope))"), self._lock_args()
            )
        except SQLAlchemyError as exc:
            log.warning("could not release the scheduler lock cleanly: %s", exc)
            self._discard()  # closing the session releases it
            return
        try:
            self._drop_record()
        except DatabaseUnavailable as exc:
            log.warning("could not remove the worker status row: %s", exc)
        self.held = False
        self.valid_until = 0.0
        conn, self._conn = self._conn, None
        conn.close()


def for_database(holder: str, *, ttl_s: float, name: str = LOCK_NAME) -> Leadership:
    """The lock that suits the configured database."""
    if get_settings().is_sqlite:
        return SqliteLease(holder, ttl_s=ttl_s, name=name)
    return PostgresAdvisoryLock(holder, ttl_s=ttl_s, name=name)
