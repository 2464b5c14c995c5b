"""The single-leader lock (core.retraining.leader) on both databases, in one process.

Two lock objects stand for two workers: on Postgres each holds its own session, which is what
the advisory lock excludes; on SQLite the lease row does.
"""

from __future__ import annotations

import time

from core.retraining import leader


def test_one_holder_at_a_time_and_release_hands_over(backend) -> None:
    a = leader.for_database("worker-a", ttl_s=30)
    b = leader.for_database("worker-b", ttl_s=30)
    try:
        assert a.try_acquire()
        assert a.held and a.valid_until > time.monotonic()
        assert not b.try_acquire()
        assert a.try_acquire()  # taking it again is harmless (and needs one release)
        assert a.renew()
        status = leader.current_worker()
        assert status is not None and status.holder == "worker-a" and status.alive()

        a.release()
        assert not a.held and leader.current_worker() is None
        assert b.try_acquire()
        assert leader.current_worker().holder == "worker-b"
        assert not a.try_acquire()
    finally:
        a.release()
        b.release()


def test_a_dead_holder_is_replaced(backend) -> None:
    ttl = 0.5 if backend.backend == "sqlite" else 30
    a = leader.for_database("worker-a", ttl_s=ttl)
    b = leader.for_database("worker-b", ttl_s=ttl)
    try:
        assert a.try_acquire()
        assert not b.try_acquire()
        if isinstance(a, leader.PostgresAdvisoryLock):
            a._discard()  # the session ends, as when the process is killed
        else:
            time.sleep(ttl + 0.2)  # the lease runs out without renewals
        assert b.try_acquire()
        assert leader.current_worker().holder == "worker-b"
        assert not a.renew()  # the old holder learns it lost the lock
        assert not a.held
    finally:
        a.release()
        b.release()


def test_locks_are_scoped_by_name_and_schema(backend) -> None:
    """Another lock name (like another schema: the key includes both) is another lock."""
    a = leader.for_database("worker-a", ttl_s=30)
    other = leader.for_database("worker-b", ttl_s=30, name="something-else")
    try:
        assert a.try_acquire()
        assert other.try_acquire()
        if isinstance(a, leader.PostgresAdvisoryLock):
            assert a._lock_args()["scope"].startswith(f"{backend.env['DATABASE_SCHEMA']}:")
    finally:
        a.release()
        other.release()
