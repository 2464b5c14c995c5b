"""Accounts, password hashing, lockout and role checks."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from core import auth
from core.auth import SYSTEM, Actor
from core.db import UserRow, transaction
from core.errors import AlreadyExists, AuthenticationFailed, BadInput, PermissionDenied


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
