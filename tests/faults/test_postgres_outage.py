"""The database goes away (the local PostgreSQL is stopped) and comes back.

Each test states the invariant it protects. The cluster is always started again, even when
a test fails, so the rest of the suite keeps its database.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select

from api.log_writer import InProcessWriter, WriterProcess
from api.logger import PredictionLogger
from core import monitoring, registry, training
from core.accounts.auth import SYSTEM
from core.db import dispose_engines, transaction
from core.db.tables import StageEventRow, VersionRow
from core.errors import CoreError
from tests.conftest import RegistryEnv, _registry
from tests.fixtures.data import ingest_generated
from tests.fixtures.registry import register_dummy

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("pg_ctlcluster") is None
        or not Path("/etc/postgresql").is_dir()
        or os.geteuid() != 0,
        reason="needs the local PostgreSQL cluster and the right to stop it",
    ),
]


def _cluster(action: str) -> None:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    args = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action]
    if action == "stop":
        args += ["--", "-m", "fast"]
    subprocess.run(args, check=True, capture_output=True, timeout=60)


def _up() -> bool:
    return (
        subprocess.run(
            ["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"], check=False
        ).returncode
        == 0
    )


class Outage:
    def stop(self) -> None:
        _cluster("stop")
        dispose_engines()  # pooled connections died with the server

    def start(self) -> None:
        if not _up():
            _cluster("start")
        for _ in range(60):
            if _up():
                return
            time.sleep(0.5)
        raise RuntimeError("PostgreSQL did not come back")


@pytest.fixture
def outage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Outage, RegistryEnv]]:
    o = Outage()
    gen = _registry("postgres", tmp_path, monkeypatch)
    env = next(gen)
    try:
        yield o, env
    finally:
        o.start()
        dispose_engines()
        next(gen, None)


def test_promotion_fails_cleanly_and_the_registry_stays_consistent(outage):
    """Invariant: exactly one production version, and no stage event without its change."""
    o, _ = outage
    v1 = register_dummy("recsys")
    v2 = register_dummy("recsys")
    registry.promote(
        actor=SYSTEM,
        model="recsys",
        version=v1.version,
        stage="production",
        reason="test promotion",
    )
    o.stop()
    with pytest.raises(CoreError, match="database"):
        registry.promote(
            actor=SYSTEM,
            model="recsys",
            version=v2.version,
            stage="production",
            reason="test promotion",
        )
    o.start()
    assert registry.get_version("recsys").version == v1.version
    with transaction(write=False) as s:
        events = s.scalars(select(StageEventRow.action)).all()
    assert sorted(events) == ["promote", "register", "register"]
    registry.promote(
        actor=SYSTEM,
        model="recsys",
        version=v2.version,
        stage="production",
        reason="test promotion",
    )
    assert registry.get_version("recsys").version == v2.version


def test_training_run_leaves_no_version_and_no_artifacts(outage):
    """Invariant: a version exists in the registry if and only if its folder does."""
    o, env = outage
    ref = ingest_generated(env.root, n=400)

    def stop_before_registering(fraction: float, message: str) -> None:
        if message.startswith("writing artifacts"):
            o.stop()

    with pytest.raises(CoreError):
        training.train(actor=SYSTEM, family="svd", dataset=ref, progress=stop_before_registering)
    o.start()
    with transaction(write=False) as s:
        assert s.scalars(select(VersionRow)).all() == []
    leftovers = [p for p in env.artifacts.rglob("*") if p.is_file()]
    assert leftovers == []
    assert training.train(actor=SYSTEM, family="svd", dataset=ref).version.version == "1.0.0"


@pytest.mark.parametrize("writer", [InProcessWriter, WriterProcess])
def test_prediction_logs_are_retried_not_lost(outage, writer):
    """Invariant: every record handed to the logger is written once the database is back,
    whether the logger writes itself or through the API's writer process (whose pooled
    connection dies with the server)."""
    o, _ = outage
    logger = PredictionLogger(registry=CollectorRegistry(), writer=writer())
    logger.start()
    logger.add(_log_record())
    deadline = time.monotonic() + 30
    while logger.buffer and time.monotonic() < deadline:
        time.sleep(0.1)
    assert monitoring.count_logs("m") == 1
    records = [_log_record() for _ in range(50)]
    o.stop()
    for r in records:
        logger.add(r)
    time.sleep(1.5)
    assert len(logger.buffer) == 50  # kept while the writes fail
    o.start()
    deadline = time.monotonic() + 30
    while logger.buffer and time.monotonic() < deadline:
        time.sleep(0.2)
    logger.stop()
    assert monitoring.count_logs("m") == 51


def _log_record() -> monitoring.PredictionRecord:
    return monitoring.PredictionRecord(
        model="m",
        version="1.0.0",
        variant="production",
        ratings=[1.0] * 29,
        k=1,
        places=["p"],
        categories=["cafes"],
        scores=[0.5],
        latency_ms=1.0,
    )
