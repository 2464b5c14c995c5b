"""Shadow evaluation: the staging version scores live requests off the response path.

The comparison rules are checked on small lists; the scorer's pipe to its process on its own
(it never blocks, and counts what it drops); and a real API process, with a sample rate set in the
registry, stores per request what the staging version would have shown, which is exactly
what that version recommends for the same user (and nothing of it reaches the log or the
rollups that the A/B readout counts).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from api.shadow import Sample, ShadowScorer
from core import monitoring, registry, training
from core.accounts.auth import SYSTEM
from core.data import datasets
from core.data.generator import generate_users
from core.rollout import shadow
from core.serving import predict
from tests.fixtures.api import KEY, running_api
from tests.fixtures.workers import wait_for


def test_compare_counts_overlap_gains_losses_and_category_shift():
    c = shadow.compare(["a", "b", "c", "d"], ["x", "x", "y", "y"], ["b", "a", "e", "f"],
                       ["x", "x", "z", "z"], 4)  # fmt: skip
    assert c.overlap == 0.5 and c.gained == ["e", "f"] and c.lost == ["c", "d"]
    assert c.category_shift == pytest.approx(0.5)
    same = shadow.compare(["a"], ["x"], ["a"], ["x"], 1)
    assert (same.overlap, same.gained, same.lost, same.category_shift) == (1.0, [], [], 0.0)
    assert shadow.compare(["a"], ["x"], [], [], 1).category_shift == 1.0
    assert shadow.rate_of({"shadow": {"rate": "nonsense"}}) == 0.0
    assert shadow.rate_of({"shadow": {"rate": 3}}) == 1.0


def _sample(loaded: predict.LoadedVersion) -> Sample:
    prefs = np.zeros(29)
    prefs[0] = 5
    return Sample("m", "1.0.0", loaded, prefs, prefs > 0, 40.4168, -3.7038, 5, "r", [], [])


def test_a_full_pipe_drops_and_counts_without_waiting(sqlite_backend, tmp_path: Path):
    loaded = _popularity(tmp_path)
    scorer = ShadowScorer()
    scorer.start()
    try:
        os.kill(scorer.pid, signal.SIGSTOP)  # a scorer that has fallen behind
        started = time.perf_counter()
        accepted = sum(scorer.submit(_sample(loaded)) for _ in range(2000))
        assert time.perf_counter() - started < 1.0
        assert 0 < accepted < 2000 and scorer.drops["pipe_full"] == 2000 - accepted
        big = _sample(loaded)
        big = Sample(**{**big.__dict__, "places": ["x" * 100] * 100})
        assert not scorer.submit(big) and scorer.drops["too_large"] == 1
        os.kill(scorer.pid, signal.SIGCONT)
    finally:
        scorer.stop()
    assert shadow.summary("m").requests == accepted  # the child stored what it was sent


def _popularity(tmp_path: Path) -> predict.LoadedVersion:
    path = tmp_path / "users.csv"
    generate_users(300, seed=4).to_csv(path, index=False)
    data = datasets.ingest(path, name="users", actor=SYSTEM).label
    v = training.train(actor=SYSTEM, family="popularity", dataset=data, model="m").version
    return predict.load_version(v)


@pytest.mark.slow
def test_live_requests_are_shadow_scored_by_the_staging_version(sqlite_backend, tmp_path):
    path = tmp_path / "users.csv"
    generate_users(300, seed=5).to_csv(path, index=False)
    data = datasets.ingest(path, name="users", actor=SYSTEM).label
    prod, staging = (
        training.train(
            actor=SYSTEM, family="popularity", dataset=data, model="rec", params={"shrinkage": s}
        ).version.version
        for s in (5.0, 0.0)
    )
    registry.update_model(actor=SYSTEM, name="rec", settings={"gates": {}})
    registry.promote(
        actor=SYSTEM, model="rec", version=prod, stage="production", reason="test promotion"
    )
    registry.promote(
        actor=SYSTEM, model="rec", version=staging, stage="staging", reason="test promotion"
    )
    shadow.set_rate(actor=SYSTEM, model="rec", rate=1.0)
    bodies = []
    with (
        running_api(sqlite_backend.env, KEY) as base,
        httpx.Client(base_url=base, headers={"X-API-Key": KEY}, timeout=30) as c,
    ):
        rng = np.random.default_rng(1)
        for i in range(40):
            ratings = [int(x) for x in rng.choice([0, 0, 0, 2, 4, 5], 29)]
            body = {"ratings": ratings, "lat": 40.42, "lng": -3.70, "k": 5, "user_id": f"u{i}"}
            r = c.post("/recommend", json=body)
            assert r.status_code == 200 and r.json()["variant"] == "production"
            bodies.append((body, r.json()))
        wait_for(
            lambda: shadow.summary("rec").requests == 40,
            timeout=30,
            what="40 shadow scores",
        )
        state = c.get("/health").json()["shadow"]
        assert state["sent"] == 40 and sum(state["dropped"].values()) == 0
    s = shadow.summary("rec")
    assert s.shadow_version == staging and s.production_versions == [prod] and s.errors == 0
    assert 0 <= s.overlap_mean <= 1 and s.latency_p50_ms > 0
    # Each stored comparison is that of the staging version's own recommendation.
    body, served = bodies[0]
    expected = predict.recommend(
        "rec", staging, [body["ratings"]], lat=body["lat"], lng=body["lng"], k=5
    )
    c = shadow.compare(
        [p["place_id"] for p in served["places"]],
        [p["category"] for p in served["places"]],
        [p.place_id for p in expected],
        [p.category for p in expected],
        5,
    )
    row = shadow.score_of(served["request_id"])
    assert row is not None
    assert (row.overlap, row.gained, row.lost) == (c.overlap, c.gained, c.lost)
    # Shadow scoring is no served traffic: the log and the rollups hold production only.
    assert monitoring.count_logs("rec") == 40
    assert {b.requests for b in monitoring.traffic("rec", since=row.ts, variant="canary")} <= {0}
