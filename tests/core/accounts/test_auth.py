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

from core.accounts import auth
from core.accounts.auth import SYSTEM, Actor
from core.db import transaction
from core.db.tables import UserRow
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
        "from core.accounts import auth\n"
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


def test_the_last_active_admin_can_be_neither_demoted_nor_disabled(backend) -> None:
    auth.create_user(actor=SYSTEM, username="root", password="0123456789", role="admin")
    auth.create_user(actor=SYSTEM, username="olga", password="0123456789", role="operator")
    for change in (
        lambda: auth.set_role(actor=SYSTEM, username="root", role="viewer"),
        lambda: auth.set_disabled(actor=SYSTEM, username="root", disabled=True),
    ):
        with pytest.raises(BadInput, match="last active admin"):
            change()
    assert auth.get_user("root").role == "admin" and not auth.get_user("root").disabled
    auth.set_role(actor=SYSTEM, username="olga", role="admin")
    auth.set_disabled(actor=SYSTEM, username="root", disabled=True)
    # A disabled admin does not count: olga is now the last active one.
    with pytest.raises(BadInput, match="cannot make viewer of 'olga'"):
        auth.set_role(actor=SYSTEM, username="olga", role="viewer")
    auth.set_role(actor=SYSTEM, username="root", role="viewer")  # disabled: not counted


def test_two_admins_demoting_each_other_at_once_leave_one_admin(backend) -> None:
    for name in ("ann", "ben"):
        auth.create_user(actor=SYSTEM, username=name, password="0123456789", role="admin")
    start = threading.Barrier(2)

    def demote(pair: tuple[str, str]) -> str:
        me, other = pair
        start.wait()
        try:
            auth.set_role(actor=Actor(me, "admin"), username=other, role="viewer")
        except BadInput as exc:
            return str(exc)
        return "done"

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(demote, [("ann", "ben"), ("ben", "ann")]))
    assert sorted(o == "done" for o in outcomes) == [False, True], outcomes
    roles = sorted(auth.get_user(n).role for n in ("ann", "ben"))
    assert roles == ["admin", "viewer"]


def test_a_disabled_account_cannot_sign_in_and_its_sessions_end(backend) -> None:
    from core.accounts import sessions

    auth.create_user(actor=SYSTEM, username="ana", password="0123456789", role="auditor")
    cookie = sessions.start("ana").cookie
    assert sessions.open_sessions("ana") == 1
    with pytest.raises(PermissionDenied, match="needs the admin role"):
        auth.set_disabled(actor=Actor("ana", "auditor"), username="ana", disabled=True)
    auth.set_disabled(actor=SYSTEM, username="ana", disabled=True)
    assert sessions.open_sessions("ana") == 0
    assert sessions.resume(cookie).ended == "disabled"
    with pytest.raises(AuthenticationFailed, match="wrong user name or password"):
        auth.authenticate("ana", "0123456789")
    with pytest.raises(PermissionDenied, match="disabled"):
        auth.actor_for("ana")
    auth.set_disabled(actor=SYSTEM, username="ana", disabled=False)
    assert auth.authenticate("ana", "0123456789").role == "auditor"
    assert sessions.resume(cookie).ended == "disabled", "an ended session stays ended"
    # A reset password ends the sessions too and must be changed at the next sign-in.
    sessions.start("ana")
    password = auth.reset_password(actor=SYSTEM, username="ana")
    assert sessions.open_sessions("ana") == 0
    assert auth.authenticate("ana", password).username == "ana"
    assert auth.get_user("ana").must_change_password
