"""Texts a client sends that the database cannot store, against the real API process.

``"user_id": "evil\\u0000"`` was answered 200 and then stalled the prediction log on
PostgreSQL for good (every later record queued behind its batch), while /health said "ok".
Now every client text is refused at the API's edge (422 naming the field, counted in
/metrics), the requests after it are all logged, and /health tells the public only whether
the service is alive, the details (log backlog, errors) only with the key.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from core import monitoring
from tests.fixtures.api import running_api

KEY = {"X-API-Key": "edge-key"}
BODY = {"ratings": [5, 0, 0, 4] + [0] * 25, "lat": 40.4168, "lng": -3.7038, "k": 5}


def _until(predicate, timeout: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: not reached in {timeout:.0f} s"
        time.sleep(0.1)


@pytest.fixture
def api(backend, legacy_in_production) -> Iterator[str]:  # noqa: ANN001
    legacy_in_production()
    with running_api(backend.env, KEY["X-API-Key"], timeout=90) as base:
        yield base


def test_unstorable_texts_are_refused_and_every_later_request_is_logged(api) -> None:
    with httpx.Client(base_url=api, headers=KEY) as c:
        r = c.post("/recommend", json=BODY | {"user_id": "evil\u0000"})
        assert r.status_code == 422, r.text
        assert r.json()["detail"][0]["loc"] == ["body", "user_id"]
        assert "NUL" in r.json()["detail"][0]["msg"]
        lone = json.dumps(BODY)[:-1] + ', "user_id": "\\ud800"}'  # a lone surrogate's escape
        assert c.post("/recommend", content=lone).status_code == 422
        assert c.post("/recommend", json=BODY | {"user_id": "u" * 129}).status_code == 422
        assert c.post("/recommend", json=BODY | {"model": "a\u0000"}).status_code == 422
        feedback = {"request_id": "r\u0000", "place_id": "p"}
        assert c.post("/feedback", json=feedback).status_code == 422
        served = [c.post("/recommend", json=BODY | {"user_id": f"u{i}"}) for i in range(20)]
        assert all(r.status_code == 200 for r in served)
        # Control and formula characters are stored as sent (made safe where exported).
        odd = c.post("/recommend", json=BODY | {"user_id": '=HYPERLINK("x")\t\u001b'})
        assert odd.status_code == 200
        _until(lambda: monitoring.count_logs("autoencoder") == 21, 30, "all 21 requests logged")
        metrics = c.get("/metrics").text
        assert 'planwise_invalid_requests_total{path="/recommend"} 4.0' in metrics
        assert 'planwise_invalid_requests_total{path="/feedback"} 1.0' in metrics
        assert "planwise_prediction_log_refused_total 0.0" in metrics
        health = c.get("/health").json()
        assert health["status"] == "ok" and health["log"]["draining"]
        assert health["log"]["pending"] == 0
    assert monitoring.refusals().total == 0  # nothing reached the database unstorable


def test_health_is_bare_without_the_key(api) -> None:
    public = httpx.get(f"{api}/health")
    assert public.status_code == 200 and public.json() == {"status": "ok"}
    wrong = httpx.get(f"{api}/health", headers={"X-API-Key": "nope"})
    assert wrong.json() == {"status": "ok"}
    detail = httpx.get(f"{api}/health", headers=KEY).json()
    assert detail["serving"] == {"autoencoder": "1.0.0"}
    assert set(detail) == {"status", "problems", "serving", "errors", "log", "shadow"}
