"""Accounts, password hashing, lockout and role checks."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from core import auth
from core.auth import SYSTEM, Actor
from core.db import UserRow, transaction
from core.errors import AlreadyExists, AuthenticationFailed, BadInput, PermissionDenied
from tests.conftest import PROJECT_ROOT


def test_first_start_creates_one_admin_with_a_one_time_password(backend) -> None:
    password = auth.ensure_admin()
    assert password and len(password) >= 12
    assert auth.ensure_admin() is None
    actor = auth.authenticate("admin", password)
    assert actor == Actor("admin", "admin")
    assert auth.get_user("admin").must_change_password
    with transaction(write=False) as s:
        stored = s.scalar(select(UserRow.password_hash).where(UserRow.username == "admin"))
    assert password not in stored and stored.startswith("$argon2")


def test_users_roles_and_password_changes(backend) -> None:
    auth.create_user(actor=SYSTEM, username="ana", password="correct horse", role="auditor")
    with pytest.raises(AlreadyExists):
        auth.create_user(actor=SYSTEM, username="ana", password="correct horse", role="viewer")
    with pytest.raises(PermissionDenied, match="needs the admin role"):
        auth.create_user(
            actor=Actor("ana", "auditor"), username="bob", password="0123456789", role="admin"
        )
    with pytest.raises(BadInput, match="at least 10"):
        auth.create_user(actor=SYSTEM, username="bob", password="short", role="viewer")
    with pytest.raises(BadInput, match="unknown role"):
        auth.create_user(actor=SYSTEM, username="bob", password="0123456789", role="god")
    ana = auth.authenticate("ana", "correct horse")
    assert ana.can("audit") and not ana.can("operate")
    auth.change_password(
        actor=ana, username="ana", new_password="battery staple", old_password="correct horse"
    )
    assert auth.authenticate("ana", "battery staple").role == "auditor"
    auth.set_role(actor=SYSTEM, username="ana", role="operator")
    assert auth.actor_for("ana").can("operate")


def test_wrong_passwords_lock_the_account_for_a_while(backend) -> None:
    auth.create_user(actor=SYSTEM, username="ops", password="0123456789", role="operator")
    with pytest.raises(AuthenticationFailed, match="wrong user name or password"):
        auth.authenticate("nobody", "0123456789")
    now = dt.datetime.now(dt.UTC)
    for _ in range(auth.MAX_FAILED_LOGINS):
        with pytest.raises(AuthenticationFailed):
            auth.authenticate("ops", "guess", now=now)
    with pytest.raises(AuthenticationFailed, match="too many failed sign-ins"):
        auth.authenticate("ops", "0123456789", now=now)
    later = now + auth.LOCKOUT + dt.timedelta(seconds=1)
    assert auth.authenticate("ops", "0123456789", now=later).username == "ops"


def test_parallel_wrong_passwords_lock_the_account_like_sequential_ones(backend) -> None:
    """14 guesses at once: exactly MAX_FAILED_LOGINS are checked, the rest meet the lock."""
    auth.create_user(actor=SYSTEM, username="ops", password="0123456789", role="operator")
    guesses = 14
    start = threading.Barrier(guesses)

    def guess(n: int) -> str:
        start.wait()
        try:
            auth.authenticate("ops", f"wrong guess {n}")
        except AuthenticationFailed as exc:
            return str(exc)
        return "signed in"

    with ThreadPoolExecutor(guesses) as pool:
        outcomes = list(pool.map(guess, range(guesses)))
    checked = [o for o in outcomes if o == "wrong user name or password"]
    locked = [o for o in outcomes if o.startswith("too many failed sign-ins")]
    assert (len(checked), len(locked)) == (auth.MAX_FAILED_LOGINS, guesses - len(checked))
    with pytest.raises(AuthenticationFailed, match="too many failed sign-ins"):
        auth.authenticate("ops", "0123456789")
    assert auth.get_user("ops").locked_until is not None


def test_parallel_guesses_from_separate_processes_are_counted_too(backend) -> None:
    auth.create_user(actor=SYSTEM, username="ops", password="0123456789", role="operator")
    code = (
        "import sys\n"
        "from core import auth\n"
        "from core.errors import AuthenticationFailed\n"
        "try:\n"
        "    auth.authenticate('ops', 'wrong guess')\n"
        "except AuthenticationFailed as exc:\n"
        "    print(exc)\n"
    )
    env = {**os.environ, **backend.env}
    if backend.backend == "sqlite":
        env.pop("DATABASE_SCHEMA", None)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    outputs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert outputs.count("wrong user name or password") == auth.MAX_FAILED_LOGINS, outputs
    assert sum(o.startswith("too many failed sign-ins") for o in outputs) == 3, outputs
    with pytest.raises(AuthenticationFailed, match="too many failed sign-ins"):
        auth.authenticate("ops", "0123456789")


@pytest.mark.parametrize(
    ("password", "message"),
    [
        (" " * 10, "empty or only spaces"),
        ("\t\n  \t  \n\t ", "empty or only spaces"),
        ("", "empty or only spaces"),
        ("  short  ok  ", "at least 10 characters"),
        pytest.param("x" * (auth.MAX_PASSWORD_LENGTH + 1), "at most", id="huge"),
    ],
)
def test_blank_short_and_huge_passwords_are_refused(backend, password: str, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        auth.create_user(actor=SYSTEM, username="bob", password=password, role="viewer")
    auth.create_user(actor=SYSTEM, username="bob", password="a fine passphrase", role="viewer")
    with pytest.raises(BadInput, match=message):
        auth.change_password(actor=SYSTEM, username="bob", new_password=password)
    assert auth.authenticate("bob", "a fine passphrase").username == "bob"
