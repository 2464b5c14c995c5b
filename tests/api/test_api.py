"""The recommendation API as a client meets it, on a real registry."""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient

from core import monitoring, registry, training
from core.accounts.auth import SYSTEM
from core.registry import artifacts
from core.serving import predict
from tests.fixtures.data import ingest_generated

KEY = {"X-API-Key": "test-key"}
BODY = {"ratings": [5, 0, 0, 4] + [0] * 25, "lat": 40.4168, "lng": -3.7038, "k": 5}


@pytest.fixture
def served(backend, monkeypatch, legacy_in_production):
    monkeypatch.setenv("API_KEYS", "other-key,test-key")
    monkeypatch.setattr("api.serving.POLL_SECONDS", 0.1)
    from core.config import reset_settings

    reset_settings()
    legacy_in_production()
    from api.app import create_app

    app = create_app()
    with TestClient(app) as client:
        client.backend = backend  # type: ignore[attr-defined]
        yield client


def _wait(predicate, timeout: float = 10.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_recommend_logs_and_feedback(served):
    r = served.post("/recommend", json=BODY, headers=KEY)
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["model"], out["version"], out["variant"]) == ("autoencoder", "1.0.0", "production")
    expected = predict.recommend(
        "autoencoder", None, BODY["ratings"], lat=BODY["lat"], lng=BODY["lng"], k=5
    )
    assert [p["place_id"] for p in out["places"]] == [e.place_id for e in expected]
    assert (
        served.post(
            "/feedback",
            json={"request_id": out["request_id"], "place_id": out["places"][0]["place_id"]},
            headers=KEY,
        ).status_code
        == 202
    )
    served.app.state.logger.flush()
    assert monitoring.count_logs("autoencoder") == 1
    s = monitoring.summary("autoencoder")
    assert s.requests == 1 and s.click_through == 1.0
    metrics = served.get("/metrics").text
    assert (
        'planwise_requests_total{model="autoencoder",status="ok",variant="production",'
        'version="1.0.0"} 1.0' in metrics
    )
    assert served.get("/health", headers=KEY).json()["serving"] == {"autoencoder": "1.0.0"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ratings": [1] * 28}, "ratings"),
        ({"ratings": [1] * 28 + [6]}, "ratings"),
        ({"lat": 100}, "lat"),
        ({"lng": "west"}, "lng"),
        ({"k": 0}, "k"),
        ({"mask": [True]}, "mask"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_bodies_get_422_naming_the_field(served, change, field):
    r = served.post("/recommend", json=BODY | change, headers=KEY)
    assert r.status_code == 422
    assert any(field in [str(p) for p in e["loc"]] for e in r.json()["detail"])


def test_nan_rating_is_refused(served):
    raw = json.dumps(BODY | {"ratings": [float("nan")] + [1] * 28})
    r = served.post("/recommend", content=raw, headers=KEY | {"Content-Type": "application/json"})
    assert r.status_code == 422


def test_api_key_is_required(served):
    assert served.post("/recommend", json=BODY).status_code == 401
    assert served.post("/recommend", json=BODY, headers={"X-API-Key": "nope"}).status_code == 401
    assert served.get("/models").status_code == 401
    assert served.get("/health").status_code == 200


def test_canary_split_is_sticky_and_switches_follow_the_registry(served):
    ref = ingest_generated(served.backend.root, n=400)
    cand = training.train(
        actor=SYSTEM,
        family="transfer",
        dataset=ref,
        parent=("autoencoder", "1.0.0"),
        params={"epochs": 1},
    ).version
    registry.promote(
        actor=SYSTEM,
        model="autoencoder",
        version=cand.version,
        stage="staging",
        reason="test promotion",
    )
    registry.update_model(actor=SYSTEM, name="autoencoder", canary_share=0.5)
    # Staging and the share are two registry changes; the poller may serve one before the other.
    _wait(
        lambda: (
            {
                k: v
                for k, v in served.get("/models", headers=KEY).json()[0].items()
                if k in ("canary", "canary_share")
            }
            == {"canary": cand.version, "canary_share": 0.5}
        )
    )
    variants = {}
    for user in range(40):
        got = {
            served.post("/recommend", json=BODY | {"user_id": f"u{user}"}, headers=KEY).json()[
                "variant"
            ]
            for _ in range(3)
        }
        assert len(got) == 1  # sticky
        variants[user] = got.pop()
    assert 5 < sum(v == "canary" for v in variants.values()) < 35

    # A version whose files fail verification is never served; the previous one keeps serving.
    catalog = served.app.state.catalog
    catalog.stop()  # drive the switch by hand, to tamper between promotion and loading
    registry.promote(
        actor=SYSTEM,
        model="autoencoder",
        version=cand.version,
        stage="production",
        reason="test promotion",
    )
    target = artifacts.root() / cand.artifact_dir / "model.keras"
    target.write_bytes(target.read_bytes()[:-10])
    predict.clear_cache()
    catalog.refresh()
    health = served.get("/health", headers=KEY).json()
    assert "kept the previous versions" in health["errors"]["autoencoder"]
    assert served.post("/recommend", json=BODY, headers=KEY).json()["version"] == "1.0.0"


def test_resources_are_sampled_and_exported(served):
    import datetime as dt

    from core.monitoring import resources

    sample = resources.Sampler("api").record()
    assert sample.rss_mb > 10 and sample.peak_rss_mb >= sample.rss_mb * 0.5
    frame = resources.history(since=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5))
    assert list(frame["kind"]) == ["api"] and frame["rss_mb"].iloc[0] > 10
    metrics = served.get("/metrics").text
    assert "process_resident_memory_bytes" in metrics and "process_cpu_seconds_total" in metrics


def test_a_body_in_several_messages_reads_whole_and_a_disconnect_is_noticed() -> None:
    import asyncio

    from starlette.requests import ClientDisconnect, Request

    from api import direct

    def request(*messages: dict) -> Request:
        queue = list(messages)

        async def receive() -> dict:
            return queue.pop(0)

        return Request({"type": "http", "method": "POST", "headers": []}, receive)

    parts = [b'{"a":', b" 1", b"}"]
    chunked = request(
        *({"type": "http.request", "body": p, "more_body": i < 2} for i, p in enumerate(parts))
    )
    assert asyncio.run(direct.read_body(chunked)) == b'{"a": 1}'
    one = request({"type": "http.request", "body": b"{}"})
    assert asyncio.run(direct.read_body(one)) == b"{}"
    gone = request(
        {"type": "http.request", "body": b"{", "more_body": True}, {"type": "http.disconnect"}
    )
    with pytest.raises(ClientDisconnect):
        asyncio.run(direct.read_body(gone))
