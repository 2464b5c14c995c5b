"""Under load, ops promote and roll back: nothing fails, nothing is lost, versions are right."""

from __future__ import annotations

import datetime as dt
import threading
import time

import httpx
import pytest

from core import monitoring, registry, training
from core.accounts.auth import SYSTEM
from tests.fixtures.api import running_api
from tests.fixtures.data import ingest_generated

BODY = {"ratings": [5, 0, 0, 4] + [0] * 25, "lat": 40.4168, "lng": -3.7038, "k": 5}
SWITCH_LAG = dt.timedelta(seconds=3)  # poll interval + loading a version, with slack


@pytest.mark.slow
def test_promote_and_rollback_under_load(backend, legacy_in_production):
    v1 = legacy_in_production()
    ref = ingest_generated(backend.root, n=300)
    v2 = training.train(
        actor=SYSTEM,
        family="transfer",
        dataset=ref,
        parent=("autoencoder", v1.version),
        params={"epochs": 1},
    ).version
    with running_api(backend.env, "load-key") as base:
        responses: list[tuple[dt.datetime, int, str | None]] = []
        stop = threading.Event()

        def client() -> None:
            with httpx.Client(base_url=base, headers={"X-API-Key": "load-key"}) as c:
                while not stop.is_set():
                    r = c.post("/recommend", json=BODY)
                    version = r.json().get("version") if r.status_code == 200 else None
                    responses.append((dt.datetime.now(dt.UTC), r.status_code, version))

        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        for _ in range(3):
            time.sleep(1.5)
            registry.promote(
                actor=SYSTEM,
                model="autoencoder",
                version=v2.version,
                stage="production",
                reason="load test",
            )
            time.sleep(1.5)
            registry.rollback(actor=SYSTEM, model="autoencoder", reason="load test")
        time.sleep(SWITCH_LAG.total_seconds() + 1.5)  # long enough to see v1 settle again
        stop.set()
        for t in threads:
            t.join()

    assert responses and all(status == 200 for _, status, _ in responses)
    spans = registry.production_history("autoencoder")

    def served_recently(version: str, at: dt.datetime) -> bool:
        return any(
            v == version and start <= at and (end is None or end >= at - SWITCH_LAG)
            for v, start, end in spans
        )

    assert all(served_recently(v, at) for at, _, v in responses if v is not None)
    # The main claim: each promotion reached the clients. Every window in which v2 was in
    # production for longer than the switch takes has responses from v2, and the last
    # responses (after the final rollback settled) are v1 again.
    served = [(at, v) for at, _, v in responses]
    v2_spans = [(start, end) for v, start, end in spans if v == v2.version]
    assert len(v2_spans) == 3
    for start, end in v2_spans:
        assert end is not None
        assert any(v == v2.version for at, v in served if start <= at <= end + SWITCH_LAG), (
            f"v2 was in production from {start} to {end} and no response came from it"
        )
    settled = [v for at, v in served if at > v2_spans[-1][1] + SWITCH_LAG]
    assert settled and set(settled) == {v1.version}
    # The log says the same as the responses (written by the API's log writer).
    from core.monitoring import explorer

    logged = explorer.count(explorer.RequestFilter(model="autoencoder", version=v2.version))
    assert logged == sum(v == v2.version for _, v in served) > 0
    assert monitoring.count_logs("autoencoder") == len(responses)  # flushed on shutdown
