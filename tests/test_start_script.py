"""The README's start command, run as a new user runs it: install, first-start demo, serving.

``bash scripts/start.sh`` on an empty data folder must bootstrap the demo, then answer on the
dashboard and the API; a second start must reuse what is there; Ctrl-C (SIGINT to the process
group, as a terminal sends it) must stop every process it started.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT
from tests.fixtures.api import free_port

pytestmark = pytest.mark.slow
START_TIMEOUT = 300.0


def _get(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.read() if response.status == 200 else None
    except OSError:
        return None


def _start(tmp: Path, log: Path) -> tuple[subprocess.Popen[bytes], int, int]:
    port, api_port = free_port(), free_port()
    env = dict(
        os.environ,
        DATABASE_URL=f"sqlite:///{tmp / 'registry.db'}",
        ARTIFACTS_DIR=str(tmp / "models"),
        DATA_DIR=str(tmp / "data"),
        PORT=str(port),
        API_PORT=str(api_port),
    )
    for name in ("API_KEYS", "API_MODEL"):
        env.pop(name, None)
    proc = subprocess.Popen(
        ["bash", "scripts/start.sh"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, as in a terminal
    )
    return proc, port, api_port


def _wait_serving(proc: subprocess.Popen[bytes], port: int, api_port: int, log: Path) -> dict:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"start.sh exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        health = _get(f"http://127.0.0.1:{api_port}/health")
        if health and _get(f"http://127.0.0.1:{port}/_stcore/health"):
            return json.loads(health)
        time.sleep(1)
    pytest.fail(f"nothing answered within {START_TIMEOUT:.0f} s:\n{log.read_text()[-4000:]}")


def _interrupt(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("start.sh did not stop on Ctrl-C")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return  # nothing of the group is left
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    pytest.fail("processes started by start.sh outlived Ctrl-C")


def test_start_bootstraps_the_demo_once_and_serves(tmp_path: Path) -> None:
    log = tmp_path / "start.log"
    proc, port, api_port = _start(tmp_path, log)
    try:
        assert _wait_serving(proc, port, api_port, log) == {"status": "ok"}  # bare, public
        key = (tmp_path / "data" / "api-key").read_text().strip()
        with urllib.request.urlopen(
            urllib.request.Request(
                f"http://127.0.0.1:{api_port}/health", headers={"X-API-Key": key}
            ),
            timeout=10,
        ) as response:
            health = json.loads(response.read())
        assert health["status"] == "ok"
        assert {"autoencoder", "svd", "embeddings"} <= set(health["serving"])
        request = urllib.request.Request(
            f"http://127.0.0.1:{api_port}/recommend",
            data=json.dumps({"ratings": [5] + [0] * 28, "lat": 40.4138, "lng": -3.6921}).encode(),
            headers={"Content-Type": "application/json", "X-API-Key": key},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.loads(response.read())["places"]
    finally:
        _interrupt(proc)
    first = log.read_text()
    assert "first start: bootstrapping the demo" in first

    proc, port, api_port = _start(tmp_path, log)
    try:
        _wait_serving(proc, port, api_port, log)
    finally:
        _interrupt(proc)
    again = log.read_text()[len(first) :]
    assert "bootstrapping the demo" not in again
