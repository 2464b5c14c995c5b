"""The session rule of ``core.accounts.sessions``: survives clicks, ends on sign-out, disable, a new
password, idle time and its absolute lifetime; on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import update

from core.accounts import auth, sessions
from core.accounts.auth import SYSTEM
from core.db import transaction, utcnow
from core.db.tables import UserRow
from core.errors import BadInput, NotFound
from tests.conftest import RegistryEnv
from tests.fixtures.dashboard import create_accounts


@pytest.fixture
def accounts(backend: RegistryEnv) -> RegistryEnv:
    create_accounts()
    return backend


def test_a_cookie_resumes_its_session_and_a_forged_one_does_not(accounts: RegistryEnv) -> None:
    issued = sessions.start("olga")
    assert sessions.resume(issued.cookie) == sessions.Resumed("olga")
    assert sessions.resume(issued.cookie).ok
    token, _, signature = issued.cookie.rpartition(".")
    assert not sessions.resume(f"{token}.{signature[::-1]}").ok
    assert sessions.resume("garbage") == sessions.Resumed(None)
    assert 0 < issued.max_age_s <= sessions.ABSOLUTE_LIFETIME.total_seconds()


def test_end_sessions_signs_out_every_browser_of_the_account(accounts: RegistryEnv) -> None:
    first, second = sessions.start("olga"), sessions.start("olga")
    other = sessions.start("ana")
    assert sessions.open_sessions("olga") == 2
    assert sessions.end_sessions("olga", "signed out") == 2
    assert sessions.resume(first.cookie) == sessions.Resumed("olga", "signed out")
    assert sessions.resume(second.cookie).ended == "signed out"
    assert sessions.resume(other.cookie).ok
    assert sessions.open_sessions("olga") == 0


def test_a_disabled_account_or_a_new_password_ends_its_sessions(accounts: RegistryEnv) -> None:
    olga, ana = sessions.start("olga"), sessions.start("ana")
    # Without any call to end_sessions: the rule itself looks at the account.
    with transaction() as s:
        s.execute(update(UserRow).where(UserRow.username == "olga").values(disabled=True))
    assert sessions.resume(olga.cookie).ended == "disabled"
    auth.change_password(actor=SYSTEM, username="ana", new_password="another-password-9")
    assert sessions.resume(ana.cookie).ended == "password changed"
    # A session begun after the change is fine.
    assert sessions.resume(sessions.start("ana").cookie).ok


def test_idle_and_absolute_expiry(accounts: RegistryEnv) -> None:
    start = utcnow()
    issued = sessions.start("victor", now=start)
    idle = sessions.idle_limit()
    # Clicks within the idle limit keep it alive, past the idle limit's sum.
    t = start
    for _ in range(3):
        t += idle - dt.timedelta(minutes=1)
        assert sessions.resume(issued.cookie, now=t).ok
    assert sessions.resume(issued.cookie, now=t + idle + dt.timedelta(seconds=1)).ended == "idle"

    busy = sessions.start("victor", now=start)
    t = start
    while t + idle / 2 < start + sessions.ABSOLUTE_LIFETIME:
        t += idle / 2
        assert sessions.resume(busy.cookie, now=t).ok
    late = start + sessions.ABSOLUTE_LIFETIME + dt.timedelta(seconds=1)
    assert sessions.resume(busy.cookie, now=late).ended == "expired"


def test_no_session_for_a_disabled_or_unknown_account(accounts: RegistryEnv) -> None:
    with pytest.raises(NotFound):
        sessions.start("nobody")


def test_review_gates_refuses_a_move_that_cannot_happen(backend: RegistryEnv) -> None:
    """ "Review gates" for staging → staging showed green gates, then the promotion failed:
    the preview refuses what the promotion refuses, before any gate is shown."""
    from core import registry
    from tests.fixtures.registry import register_dummy

    v = register_dummy("m").version
    registry.promote(actor=SYSTEM, model="m", version=v, stage="staging", reason="test promotion")
    with pytest.raises(BadInput, match="already in staging"):
        registry.preview_gates("m", v, "staging")
    registry.promote(
        actor=SYSTEM, model="m", version=v, stage="production", reason="test promotion"
    )
    with pytest.raises(BadInput, match="instead of demoting"):
        registry.preview_gates("m", v, "staging")
