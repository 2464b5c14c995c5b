"""Texts a client sends that the database cannot store, against the real API process.

``"user_id": "evil\\u0000"`` was answered 200 and then stalled the prediction log on
PostgreSQL for good (every later record queued behind its batch), while /health said "ok".
Now every client text is refused at the API's edge (422 naming the field, counted in
/metrics), the requests after it are all logged, and /health tells the public only whether
the service is alive, the details (log backlog, errors) only with the key.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from core import monitoring, registry
from core.accounts.auth import SYSTEM
from core.training import legacy
from tests.conftest import LEGACY_MODEL, PROJECT_ROOT

LEGACY = LEGACY_MODEL
KEY = {"X-API-Key": "edge-key"}
BODY = {"ratings": [5, 0, 0, 4] + [0] * 25, "lat": 40.4168, "lng": -3.7038, "k": 5}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _until(predicate, timeout: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: not reached in {timeout:.0f} s"
        time.sleep(0.1)


@pytest.fixture
def api(backend) -> Iterator[str]:  # noqa: ANN001
    v = legacy.import_legacy(
        actor=SYSTEM,
        model_file=LEGACY / "autoencoder.h5",
        scaler_file=LEGACY / "scaler.save",
        name="autoencoder",
    )
    registry.promote(actor=SYSTEM, model="autoencoder", version=v.version, stage="production")
    port = _free_port()
    env = {**os.environ, **backend.env, "API_KEYS": "edge-key"}
    server = subprocess.Popen(
        [sys.executable, "-m", "api", "--port", str(port)],
        cwd=PROJECT_ROOT,
        env=env,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"

    def serving() -> bool:
        try:
            return bool(httpx.get(f"{base}/health", headers=KEY).json().get("serving"))
        except httpx.HTTPError:
            return False

    try:
        _until(serving, 90, "the API serving")
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


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
        odd = c.post("/recommend", json=BODY | {"user_id": "=HYPERLINK(\"x\")\t\u001b"})
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
