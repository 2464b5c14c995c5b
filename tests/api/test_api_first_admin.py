"""The API started first on an empty database prints the admin's one-time password.

Whichever process starts first creates the ``admin`` account; the worker and the dashboard
logged its password, the API dropped it, leaving an account nobody could sign in to.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from core.accounts import auth
from tests.conftest import PROJECT_ROOT
from tests.fixtures.api import free_port

PASSWORD = re.compile(r"created user 'admin' with one-time password: (\S+)")


def test_api_started_first_prints_the_one_time_password(sqlite_backend, tmp_path: Path) -> None:
    log = tmp_path / "api.log"
    env = {**os.environ, **sqlite_backend.env, "API_KEYS": "k"}
    env.pop("DATABASE_SCHEMA", None)
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "api", "--port", str(free_port())],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 90
            found = None
            while found is None and server.poll() is None and time.monotonic() < deadline:
                found = PASSWORD.search(log.read_text(errors="replace"))
                time.sleep(0.1)
        finally:
            server.terminate()
            server.wait(timeout=30)
    assert found is not None, log.read_text(errors="replace")[-2000:]
    assert auth.authenticate("admin", found.group(1)).role == "admin"
    assert auth.get_user("admin").must_change_password
