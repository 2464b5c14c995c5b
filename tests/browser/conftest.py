"""A real ``streamlit run`` of the dashboard over a populated registry, and Chromium to drive it.

Chromium is Debian's (``apt-get install chromium``, done by ``scripts/install.sh``); the
Playwright package only drives it. Without it the browser tests are skipped, except under CI
where they must run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT, RegistryEnv
from tests.fixtures.api import free_port
from tests.fixtures.dashboard import Populated, create_accounts, populate

START_TIMEOUT = 60.0
ASSERT_TIMEOUT_MS = 30_000


@dataclass(frozen=True)
class Server:
    url: str
    registry: RegistryEnv
    populated: Populated
    log: Path


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"streamlit exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    pytest.fail(f"streamlit did not answer within {START_TIMEOUT:.0f} s:\n{log.read_text()}")


@pytest.fixture
def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        message = "Debian's chromium is not installed (bash scripts/install.sh --dev)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    # Assertions wait as long as the tests' page actions do: under the whole suite this
    # 2-core machine took longer than Playwright's default 5 s to rerun a page after a click.
    pytest.importorskip("playwright.sync_api").expect.set_options(timeout=ASSERT_TIMEOUT_MS)
    return path


@pytest.fixture
def server(sqlite_backend: RegistryEnv, tmp_path: Path) -> Iterator[Server]:
    """``streamlit run dashboard/app.py`` on a free port, over a freshly populated registry."""
    create_accounts()
    populated = populate(tmp_path)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "streamlit.log"
    env = {**os.environ, **sqlite_backend.env, "PYTHONUNBUFFERED": "1"}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                "dashboard/app.py",
                "--server.headless",
                "true",
                "--server.port",
                str(port),
                "--server.address",
                "127.0.0.1",
            ],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_healthy(url, proc, log)
        yield Server(url, sqlite_backend, populated, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
