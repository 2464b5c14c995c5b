"""Dashboard sign-in sessions: a signed cookie that names a row of ``dashboard_sessions``.

A browser keeps only ``<random id>.<signature>``; the row (found by the SHA-256 of the id, so a
copy of the database yields no usable cookie) says whose session it is, when it was last used
and when it ends. Every click resumes the session through :func:`resume`, which ends it when
it sat idle too long, outlived its absolute lifetime, was ended by :func:`end_sessions`
(sign-out, a disabled account, a new password), or when the account's password changed since
the session began (the row keeps a stamp of the password hash, so a password changed by any
path ends the session even if that path forgot to call :func:`end_sessions`).

The rule lives here, not in the dashboard: the cookie is only a name, the server decides.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from itsdangerous import BadSignature, Signer
from sqlalchemy import delete, select, update

from core.config import get_settings
from core.db import transaction, utcnow
from core.db.tables import SessionRow, UserRow
from core.errors import NotFound

COOKIE_NAME = "planwise_session"
# However active, a session ends this long after sign-in: a stolen cookie has a bounded life.
ABSOLUTE_LIFETIME = dt.timedelta(hours=12)
# last_seen is written at most this often, so a busy page does not write on every click.
TOUCH_EVERY = dt.timedelta(seconds=30)
# Ended and expired rows are deleted this long after they stopped counting.
KEEP_ENDED = dt.timedelta(days=7)

EndReason = Literal[
    "signed out", "idle", "expired", "disabled", "password changed", "account changed", "unknown"
]


@dataclass(frozen=True)
class Issued:
    """A new session: the cookie's value and how long the browser may keep it."""

    cookie: str
    username: str
    expires_at: dt.datetime

    @property
    def max_age_s(self) -> int:
        return max(0, int((self.expires_at - utcnow()).total_seconds()))


@dataclass(frozen=True)
class Resumed:
    """The outcome of presenting a cookie: whose session it is, or why it ended (or None when
    the cookie named nothing this server knows: forged, from another deployment, purged)."""

    username: str | None
    ended: EndReason | None = None

    @property
    def ok(self) -> bool:
        return self.username is not None and self.ended is None


def idle_limit() -> dt.timedelta:
    return dt.timedelta(minutes=get_settings().session_idle_minutes)


def _key() -> bytes:
    """The signing key: ``SESSION_SECRET``, or one generated once beside the data (mode 0600)."""
    configured = os.environ.get("SESSION_SECRET", "").strip()
    if configured:
        return configured.encode()
    path: Path = get_settings().data_root / "session-key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it between the check and the open
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(32))
    return path.read_text().strip().encode()


def _signer() -> Signer:
    return Signer(_key(), salt="planwise-dashboard-session")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _stamp(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()


def start(username: str, *, now: dt.datetime | None = None) -> Issued:
    """Open a session for an account that just proved its password."""
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    with transaction() as s:
        user = s.scalar(select(UserRow).where(UserRow.username == username))
        if user is None or user.disabled:
            raise NotFound(f"no enabled account {username!r} to open a session for")
        s.execute(
            delete(SessionRow).where(
                SessionRow.username == username,
                (SessionRow.ended_at < now - KEEP_ENDED) | (SessionRow.expires_at < now),
            )
        )
        expires = now + ABSOLUTE_LIFETIME
        s.add(
            SessionRow(
                token_hash=_hash(token),
                username=username,
                auth_stamp=_stamp(user.password_hash),
                created_at=now,
                last_seen_at=now,
                expires_at=expires,
            )
        )
    return Issued(_signer().sign(token).decode(), username, expires)


def resume(cookie: str, *, now: dt.datetime | None = None) -> Resumed:
    """Check a cookie at a click: the account it signs in, or why its session has ended."""
    now = now or utcnow()
    try:
        token = _signer().unsign(cookie.encode()).decode()
    except (BadSignature, UnicodeError):
        return Resumed(None)
    token_hash = _hash(token)
    # A read first: most clicks change nothing, and a write would queue behind other writers.
    with transaction(write=False) as s:
        row = s.scalar(select(SessionRow).where(SessionRow.token_hash == token_hash))
        if row is None:
            return Resumed(None)
        if row.ended_at is not None:
            return Resumed(row.username, row.end_reason or "signed out")  # type: ignore[arg-type]
        user = s.scalar(select(UserRow).where(UserRow.username == row.username))
        reason: EndReason | None = None
        if user is None:
            reason = "unknown"
        elif user.disabled:
            reason = "disabled"
        elif _stamp(user.password_hash) != row.auth_stamp:
            reason = "password changed"
        elif now >= row.expires_at:
            reason = "expired"
        elif now - row.last_seen_at > idle_limit():
            reason = "idle"
        username, stale = row.username, now - row.last_seen_at >= TOUCH_EVERY
    if reason is not None:
        with transaction() as s:
            s.execute(
                update(SessionRow)
                .where(SessionRow.token_hash == token_hash, SessionRow.ended_at.is_(None))
                .values(ended_at=now, end_reason=reason)
            )
        return Resumed(username, reason)
    if stale:
        with transaction() as s:
            s.execute(
                update(SessionRow)
                .where(SessionRow.token_hash == token_hash, SessionRow.last_seen_at < now)
                .values(last_seen_at=now)
            )
    return Resumed(username)


def end_sessions(username: str, reason: EndReason = "account changed") -> int:
    """End every open session of an account; its browsers are signed out at their next click.

    Account changes call this: signing out, disabling the account, changing or resetting its
    password. Returns how many sessions were open.
    """
    now = utcnow()
    with transaction() as s:
        result = s.execute(
            update(SessionRow)
            .where(SessionRow.username == username, SessionRow.ended_at.is_(None))
            .values(ended_at=now, end_reason=reason)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


def open_sessions(username: str, *, now: dt.datetime | None = None) -> int:
    """How many sessions of this account would still be accepted (for the Users page)."""
    now = now or utcnow()
    with transaction(write=False) as s:
        rows = s.scalars(
            select(SessionRow).where(
                SessionRow.username == username,
                SessionRow.ended_at.is_(None),
                SessionRow.expires_at > now,
            )
        ).all()
        return sum(1 for r in rows if now - r.last_seen_at <= idle_limit())
