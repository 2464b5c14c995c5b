"""Evidence-based rollout end to end: a real API process serves, a real worker decides.

Simulated users send requests and click the first place they are shown with a probability
that depends on the arm that served them (the click model). A canary 20 % better in
click-through is declared better by the A/B readout and rolled forward to production by the
worker; a canary that fails a share of its requests breaks its error-rate guardrail and is
rolled back by the worker within the plan's first step, with an alert (sent to the webhook)
and audit events, and once the share is back at 0 no request fails.
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from core import registry, rollout, training
from core.accounts.auth import SYSTEM
from core.data import datasets
from core.data.generator import generate_users
from core.monitoring import alerts
from core.rollout import ab
from tests.conftest import PROJECT_ROOT, RegistryEnv
from tests.fixtures.api import KEY, free_port
from tests.fixtures.workers import Workers, wait_for

BODY = {"lat": 40.4168, "lng": -3.7038, "k": 5}
CTR = {"production": 0.5, "canary": 0.6}  # the canary is 20 % better
SWITCH_LAG = dt.timedelta(seconds=3)  # the API's registry poll and a version load, with slack


@dataclass
class Traffic:
    """Client threads sending requests and clicks until stopped; every response kept."""

    base: str
    ctr: dict[str, dict[str, float]]  # version -> variant -> click probability
    responses: list[tuple[dt.datetime, int, str | None, str | None]] = field(default_factory=list)
    pace_s: float = 0.02  # per client and request: the API's feedback writer keeps up
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def client(self, seed: int) -> None:
        rnd = random.Random(seed)
        with httpx.Client(base_url=self.base, headers={"X-API-Key": KEY}, timeout=30) as c:
            while not self.stop.wait(self.pace_s):
                ratings = [rnd.choice([0, 0, 0, 3, 4, 5]) for _ in range(29)]
                ratings[0] = 5
                body = {**BODY, "ratings": ratings, "user_id": f"u{rnd.getrandbits(40)}"}
                try:
                    r = c.post("/recommend", json=body)
                except httpx.HTTPError as exc:
                    self.responses.append((dt.datetime.now(dt.UTC), -1, None, repr(exc)))
                    continue
                at = dt.datetime.now(dt.UTC)
                if r.status_code != 200:
                    self.responses.append((at, r.status_code, None, None))
                    continue
                data = r.json()
                self.responses.append((at, 200, data["version"], data["variant"]))
                p = self.ctr.get(data["version"], {}).get(data["variant"], 0.5)
                if data["places"] and rnd.random() < p:
                    fb = c.post(
                        "/feedback",
                        json={
                            "request_id": data["request_id"],
                            "place_id": data["places"][0]["place_id"],
                        },
                    )
                    assert fb.status_code == 202

    def start(self, n: int = 3) -> None:
        self.stop.clear()
        self.threads = [threading.Thread(target=self.client, args=(i,)) for i in range(n)]
        for t in self.threads:
            t.start()

    def halt(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)


class _Hooks(http.server.BaseHTTPRequestHandler):
    """The alert webhook's receiver: keeps every JSON body posted to it."""

    received: list[dict[str, object]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        length = int(self.headers.get("Content-Length", 0))
        self.received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, object]]]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hooks)
    _Hooks.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", _Hooks.received
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def served(
    sqlite_backend: RegistryEnv, tmp_path: Path, webhook: tuple[str, list[dict[str, object]]]
) -> Iterator[dict[str, object]]:
    """Three popularity versions (production, a better one, a broken one), an API process
    that breaks the third, and a worker process that runs rollouts every half second."""
    path = tmp_path / "users.csv"
    generate_users(400, seed=3).to_csv(path, index=False)
    data = datasets.ingest(path, name="users", actor=SYSTEM).label
    versions = [
        training.train(
            actor=SYSTEM, family="popularity", dataset=data, model="rec", params={"shrinkage": s}
        ).version.version
        for s in (5.0, 2.0, 9.0)
    ]
    # Popularity versions barely differ offline: the live evidence is what this is about.
    registry.update_model(
        actor=SYSTEM, name="rec", settings={"gates": {}, "ab": {"tau": 0.05, "click_delay_s": 3}}
    )
    registry.promote(
        actor=SYSTEM, model="rec", version=versions[0], stage="production", reason="test promotion"
    )
    port = free_port()
    base_env = {k: v for k, v in os.environ.items() if k != "DATABASE_SCHEMA"}
    env = {
        **base_env,
        **sqlite_backend.env,
        "API_KEYS": KEY,
        "FAULTY_VERSION": versions[2],
        "FAULTY_RATE": "0.3",
        "PYTHONUNBUFFERED": "1",
        "ALERT_WEBHOOK_URL": webhook[0],
    }
    api_log = tmp_path / "api.log"
    with open(api_log, "wb") as fh:
        api = subprocess.Popen(
            [sys.executable, "-m", "tests.api.faulty_api", "--port", str(port)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    workers = Workers(env, tmp_path)
    try:
        workers.start("--rollout", "0.5", "--monitor", "3600")
        base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                r = httpx.get(f"{base}/health", headers={"X-API-Key": KEY})
                return bool(r.json().get("serving"))
            except httpx.HTTPError:
                return False

        wait_for(up, timeout=60, what="the API to serve", logs=api_log.read_text)
        yield {
            "base": base,
            "versions": versions,
            "workers": workers,
            "api_log": api_log,
            "hooks": webhook[1],
        }
    finally:
        workers.stop_all()
        api.terminate()
        api.wait(30)


@pytest.mark.slow
def test_better_canary_rolls_forward_and_broken_one_rolls_back(served):
    base, versions = served["base"], served["versions"]
    workers = served["workers"]
    prod, better, broken = versions  # type: ignore[misc]
    logs = lambda: workers.logs() + Path(served["api_log"]).read_text()[-3000:]  # noqa: E731

    # 1. The better canary: declared better, then rolled forward to production.
    registry.promote(
        actor=SYSTEM, model="rec", version=better, stage="staging", reason="test promotion"
    )
    traffic = Traffic(
        base, {prod: {"production": CTR["production"]}, better: {"canary": CTR["canary"]}}
    )
    plan = rollout.start(
        actor=SYSTEM,
        model="rec",
        steps=[0.5, 1.0],
        min_soak_s=2,
        min_requests=300,
        thresholds={"require_better": True},
    )
    traffic.start()
    try:
        wait_for(
            lambda: rollout.current("rec").status == "completed",
            timeout=75,
            what="the better canary to be rolled forward",
            logs=lambda: (
                f"{rollout.current('rec')}\n{rollout.events(plan.id)}\n"
                f"{ab.readout('rec', since=plan.created_at).as_json()}\n{logs()}"
            ),
        )
    finally:
        traffic.halt()
    assert registry.get_model("rec").production == better
    trail = rollout.events(plan.id)
    assert [e.action for e in trail] == ["start", "advance", "complete"]
    assert trail[-1].figures["decision"] == "better"
    assert trail[-1].figures["difference"]["ci"][0] > 0
    assert all(status == 200 for _, status, _, _ in traffic.responses)

    # 2. The broken canary: its error rate breaks the guardrail, rolled back within step 1.
    registry.promote(
        actor=SYSTEM, model="rec", version=broken, stage="staging", reason="test promotion"
    )
    traffic = Traffic(base, {better: {"production": 0.5}, broken: {"canary": 0.5}})
    plan = rollout.start(
        actor=SYSTEM,
        model="rec",
        steps=[0.3, 0.6, 1.0],
        min_soak_s=60,
        min_requests=100,
        thresholds={"max_error_rate": 0.05},
    )
    traffic.start()
    try:
        ended = wait_for(
            lambda: (p := rollout.current("rec")) is not None and not p.live and p,
            timeout=60,
            what="the broken canary to be rolled back",
            logs=logs,
        )
        rolled_back_at = dt.datetime.now(dt.UTC)
        time.sleep(SWITCH_LAG.total_seconds() + 2)  # traffic goes on past the switch
    finally:
        traffic.halt()
    assert ended.status == "rolled_back" and ended.step == 0, ended
    assert registry.get_model("rec").canary_share == 0.0
    assert registry.get_model("rec").production == better
    trail = rollout.events(plan.id)
    assert [e.action for e in trail] == ["start", "rollback"]
    assert trail[-1].figures["canary"]["error_rate"] > 0.05
    assert "error_rate" in trail[-1].message
    (alert,) = [a for a in alerts.list_alerts("rec") if a.kind == "rollout"]
    assert alert.version == broken and alert.status == "open"
    assert alert.webhook is not None and alert.webhook.startswith("sent")
    hooks = served["hooks"]
    sent = [h for h in hooks if h["kind"] == "rollout"]  # type: ignore[union-attr]
    assert [(h["version"], h["subject"]) for h in sent] == [(broken, f"rollout #{plan.id}")]
    statuses = {status for _, status, _, _ in traffic.responses}
    assert statuses <= {200, 500}, statuses  # the broken version's own failures, nothing else
    after = [r for r in traffic.responses if r[0] > rolled_back_at + SWITCH_LAG]
    assert after and all(status == 200 and version == better for _, status, version, _ in after)
