"""``python -m core users``: the accounts' recovery path, as an operator's shell meets it."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from core.accounts import auth
from core.config import reset_settings
from tests.conftest import PROJECT_ROOT


def _with_stdin(cli, text: str, *args: str) -> subprocess.CompletedProcess[str]:  # noqa: F811
    return subprocess.run(
        [sys.executable, "-m", "core", *args],
        cwd=PROJECT_ROOT,
        env=cli.env,
        input=text,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _refused(proc: subprocess.CompletedProcess[str], message: str) -> None:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_users_commands_manage_accounts_and_keep_an_admin(
    cli,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cli("init", check=True)
    added = _with_stdin(
        cli,
        "correct horse battery\n",
        "users",
        "add",
        "ana",
        "--role",
        "auditor",
        "--password-stdin",
    )
    assert added.returncode == 0, added.stderr
    _refused(
        _with_stdin(
            cli, " " * 12 + "\n", "users", "add", "bob", "--role", "viewer", "--password-stdin"
        ),
        "password must not be empty or only spaces",
    )
    listed = {
        u["username"]: u for u in json.loads(cli("users", "list", "--json", check=True).stdout)
    }
    assert {n: u["role"] for n, u in listed.items()} == {"admin": "admin", "ana": "auditor"}
    assert listed["ana"]["must_change_password"] and not listed["ana"]["disabled"]

    _refused(cli("users", "set-role", "admin", "viewer"), "it is the last active admin")
    _refused(cli("users", "disable", "admin"), "it is the last active admin")
    _refused(cli("users", "set-role", "ghost", "admin"), "unknown user 'ghost'")
    assert cli("users", "set-role", "ana", "admin", check=True).stdout.strip() == "ana is now admin"
    assert cli("users", "disable", "admin", check=True).stdout.strip() == "admin is disabled"
    _refused(cli("users", "list", "--user", "admin"), "user 'admin' is disabled")
    _refused(cli("users", "disable", "ana"), "it is the last active admin")
    assert cli("users", "enable", "admin", check=True).stdout.strip() == "admin is enabled"

    reset = cli("users", "reset-password", "ana", check=True)
    found = re.fullmatch(r"new one-time password for ana: (\S+)\n", reset.stdout)
    assert found, reset.stdout
    for key, value in cli.env.items():
        monkeypatch.setenv(key, value)
    if "DATABASE_SCHEMA" not in cli.env:
        monkeypatch.delenv("DATABASE_SCHEMA", raising=False)
    reset_settings()
    try:
        assert auth.authenticate("ana", found.group(1)).role == "admin"
        assert auth.get_user("ana").must_change_password
    finally:
        reset_settings()
