"""The database password never shows: not on a bad URL, not in the API's or the worker's
output, not in the dashboard, not in an error message (``postgres://user:pw@host/db`` is what
many hosts hand out, and logs are read by more people than the database's owners)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from core.config import get_settings, mask_url, redact, reset_settings
from core.errors import ConfigError
from tests.conftest import PROJECT_ROOT

SECRET = "Sup3rSecretPw"
BAD_URLS = [
    f"mysql://user:{SECRET}@db.example:3306/registry",  # an unsupported scheme
    f"postgresql+psycopg://user:{SECRET}@127.0.0.1:notaport/registry",  # unparsable
]


def test_a_bad_url_is_named_without_its_password(monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_URL", BAD_URLS[0])
    reset_settings()
    try:
        with pytest.raises(ConfigError) as caught:
            get_settings()
    finally:
        reset_settings()
    assert "user:***@db.example" in str(caught.value)
    assert SECRET not in str(caught.value)
    assert caught.value.__suppress_context__  # pydantic's message is not printed under it


def test_mask_url_and_redact(monkeypatch) -> None:
    assert mask_url(f"postgres://u:{SECRET}@h:5432/db") == "postgres://u:***@h:5432/db"
    assert SECRET not in mask_url(f"postgresql+psycopg://u:{SECRET}@h:xx/db")
    assert SECRET not in mask_url(f"postgresql+psycopg://u@h/db?password={SECRET}&a=1")
    monkeypatch.setenv("DATABASE_URL", f"postgresql+psycopg://u:{SECRET}@h/db")
    assert redact(f"failed: {SECRET} at postgresql+psycopg://u:{SECRET}@h/db") == (
        "failed: *** at postgresql+psycopg://u:***@h/db"
    )


def test_postgres_scheme_is_accepted(monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://u@127.0.0.1/db")
    reset_settings()
    try:
        assert get_settings().database_url == "postgresql+psycopg://u@127.0.0.1/db"
        assert SECRET not in repr(get_settings())
    finally:
        reset_settings()


def _run(module: str, url: str, tmp_path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "ARTIFACTS_DIR": str(tmp_path / "models"),
        "DATA_DIR": str(tmp_path / "data"),
        "API_KEYS": "k",
    }
    env.pop("DATABASE_SCHEMA", None)
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("module", ["api", "jobs.worker"])
@pytest.mark.parametrize("url", BAD_URLS[:1])
def test_api_and_worker_print_a_bad_url_masked(tmp_path, module, url) -> None:
    done = _run(module, url, tmp_path, *(["--port", "1"] if module == "api" else []))
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "user:***@db.example" in output, output[-2000:]
    assert SECRET not in output


def test_the_dashboard_shows_a_bad_url_masked(monkeypatch) -> None:
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("DATABASE_URL", BAD_URLS[0])
    reset_settings()
    try:
        at = AppTest.from_file(str(PROJECT_ROOT / "dashboard" / "app.py"), default_timeout=60)
        at.run()
        shown = " ".join(
            str(getattr(e, "value", "")) + str(getattr(e, "message", ""))
            for kind in ("exception", "error", "markdown", "caption", "warning", "text")
            for e in getattr(at, kind)
        )
    finally:
        reset_settings()
    assert SECRET not in shown
