"""Accounts, roles and the permission check every write in ``core`` goes through.

Roles are ordered: ``viewer`` < ``auditor`` < ``operator`` < ``admin``; each may do what the
ones before it may. The check lives here, not in the interfaces, so a page that forgets to
hide a button still cannot change anything. Passwords are stored as Argon2id hashes.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core.accounts import sessions
from core.db import transaction, utcnow
from core.db.rows import Plain
from core.db.tables import ROLES, UserRow
from core.errors import AlreadyExists, AuthenticationFailed, BadInput, NotFound, PermissionDenied

Role = Literal["viewer", "auditor", "operator", "admin"]
Permission = Literal["read", "audit", "operate", "admin"]

# The least role that holds each permission.
_NEEDS: dict[str, str] = {
    "read": "viewer",
    "audit": "auditor",
    "operate": "operator",
    "admin": "admin",
}
MAX_FAILED_LOGINS = 5
LOCKOUT = dt.timedelta(minutes=5)
MIN_PASSWORD_LENGTH = 10
# Argon2 hashes whatever it is given: a megabyte "password" would cost seconds of CPU per try.
MAX_PASSWORD_LENGTH = 1024
_USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{2,64}$")
_hasher = PasswordHasher()


@dataclass(frozen=True)
class Actor:
    """Who is acting, as the core sees it; interfaces obtain one by signing in."""

    username: str
    role: str

    def can(self, permission: Permission) -> bool:
        return ROLES.index(self.role) >= ROLES.index(_NEEDS[permission])


class UserInfo(Plain):
    """An account as interfaces see it (never the password hash).

    Dashboard sessions are :mod:`core.accounts.sessions`' business; the account changes here that
    must end them (disabling, a changed or reset password) call
    :func:`core.accounts.sessions.end_sessions`.
    """

    username: str
    role: str
    must_change_password: bool
    disabled: bool
    created_at: dt.datetime
    locked_until: dt.datetime | None = None


# The scheduled worker and the local command line act as this account (the shell that runs
# them already holds the database credentials).
SYSTEM = Actor("system", "admin")


def require(actor: Actor, permission: Permission, action: str) -> None:
    """Raise :class:`PermissionDenied` unless ``actor`` holds ``permission``."""
    if actor.role not in ROLES:
        raise PermissionDenied(f"unknown role {actor.role!r} for user {actor.username!r}")
    if not actor.can(permission):
        raise PermissionDenied(
            f"user {actor.username!r} ({actor.role}) may not {action}; "
            f"it needs the {_NEEDS[permission]} role"
        )


def check_password_policy(password: str) -> None:
    """The one password rule: long enough once surrounding blanks are ignored, not absurdly long.

    Ten spaces are ten characters, but no secret: blanks around a password (often pasted by
    accident) do not count towards its length.
    """
    if not isinstance(password, str) or not password.strip():
        raise BadInput("password must not be empty or only spaces")
    if len(password.strip()) < MIN_PASSWORD_LENGTH:
        raise BadInput(
            f"password must have at least {MIN_PASSWORD_LENGTH} characters "
            "(not counting spaces at either end)"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise BadInput(f"password must have at most {MAX_PASSWORD_LENGTH} characters")


_check_password = check_password_policy


def create_user(
    *, actor: Actor, username: str, password: str, role: Role, must_change_password: bool = False
) -> UserInfo:
    require(actor, "admin", "manage users")
    if not _USERNAME.match(username):
        raise BadInput(f"invalid user name {username!r}: use 2-64 letters, digits or ._@-")
    if role not in ROLES:
        raise BadInput(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    _check_password(password)
    with transaction() as s:
        if s.scalar(select(UserRow.id).where(UserRow.username == username)) is not None:
            raise AlreadyExists(f"user {username!r} already exists")
        row = UserRow(
            username=username,
            password_hash=_hasher.hash(password),
            role=role,
            must_change_password=must_change_password,
        )
        s.add(row)
        s.flush()
        return UserInfo.of(row)


def ensure_admin() -> str | None:
    """Create the first admin account if there is no user at all.

    Returns its one-time password (the caller prints it once), or None when users exist.
    """
    password = secrets.token_urlsafe(12)
    with transaction() as s:
        if s.scalar(select(func.count()).select_from(UserRow)):
            return None
        s.add(
            UserRow(
                username="admin",
                password_hash=_hasher.hash(password),
                role="admin",
                must_change_password=True,
            )
        )
    return password


def authenticate(username: str, password: str, *, now: dt.datetime | None = None) -> Actor:
    """Check a password; after repeated failures the account is locked for a while.

    Each attempt first *reserves* one of the account's ``MAX_FAILED_LOGINS`` tries with a single
    ``UPDATE ... SET failed_logins = failed_logins + 1 ... RETURNING`` that only matches an
    enabled, unlocked account with a try left. The database applies these one at a time, so
    N attempts in parallel are counted exactly like N in a row: at most ``MAX_FAILED_LOGINS``
    passwords are ever checked before the lock, whatever the timing. The (slow) hash check
    runs outside any transaction, so sign-ins never hold the database's write lock; a right
    password gives the try back, the try that used up the last one locks the account.
    """
    now = now or utcnow()
    with transaction() as s:
        reserved = s.execute(
            update(UserRow)
            .where(
                UserRow.username == username,
                UserRow.disabled.is_(False),
                (UserRow.locked_until.is_(None)) | (UserRow.locked_until <= now),
                UserRow.failed_logins < MAX_FAILED_LOGINS,
            )
            .values(failed_logins=UserRow.failed_logins + 1)
            .returning(UserRow.id, UserRow.failed_logins, UserRow.password_hash, UserRow.role)
        ).one_or_none()
        if reserved is None:
            blocked = s.execute(
                select(UserRow.disabled, UserRow.locked_until).where(UserRow.username == username)
            ).one_or_none()
    if reserved is None:
        if blocked is not None and not blocked.disabled:
            until = blocked.locked_until if blocked.locked_until is not None else now + LOCKOUT
            raise AuthenticationFailed(
                f"too many failed sign-ins; try again after {until:%H:%M:%S} UTC"
            )
        # Unknown or disabled: hash anyway so timing does not reveal which accounts exist.
        _hasher.hash(password)
        raise AuthenticationFailed("wrong user name or password")
    user_id, attempts, password_hash, role = reserved
    try:
        _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        if attempts >= MAX_FAILED_LOGINS:
            with transaction() as s:
                s.execute(
                    update(UserRow)
                    .where(UserRow.id == user_id)
                    .values(locked_until=now + LOCKOUT, failed_logins=0)
                )
        raise AuthenticationFailed("wrong user name or password") from None
    with transaction() as s:
        values: dict[str, object] = {"failed_logins": 0, "locked_until": None}
        if _hasher.check_needs_rehash(password_hash):
            values["password_hash"] = _hasher.hash(password)
        s.execute(update(UserRow).where(UserRow.id == user_id).values(**values))
    return Actor(username, role)


def change_password(
    *, actor: Actor, username: str, new_password: str, old_password: str | None = None
) -> None:
    """Users change their own password (knowing the old one); admins reset anyone's.

    Every session of the account ends.
    """
    _check_password(new_password)
    if actor.username != username:
        require(actor, "admin", "change another user's password")
    elif old_password is not None:
        authenticate(username, old_password)
    with transaction() as s:
        row = _user_row(s, username)
        row.password_hash = _hasher.hash(new_password)
        row.must_change_password = actor.username != username
        row.failed_logins = 0
        row.locked_until = None
    sessions.end_sessions(username, "password changed")


def reset_password(*, actor: Actor, username: str) -> str:
    """Give an account a new random one-time password (returned once, never stored in clear).

    The recovery path when nobody knows a password: the user must choose a new one at the
    next sign-in, and every open session of the account ends.
    """
    require(actor, "admin", "reset passwords")
    password = secrets.token_urlsafe(12)
    with transaction() as s:
        row = _user_row(s, username)
        row.password_hash = _hasher.hash(password)
        row.must_change_password = True
        row.failed_logins = 0
        row.locked_until = None
    sessions.end_sessions(username, "password changed")
    return password


def _user_row(s: Session, username: str, *, lock: bool = False) -> UserRow:
    stmt = select(UserRow).where(UserRow.username == username)
    if lock:
        stmt = stmt.with_for_update()
    row = s.scalar(stmt)
    if row is None:
        raise NotFound(f"unknown user {username!r}")
    return row


def _lock_admins(s: Session) -> set[int]:
    """Lock the active admins' rows, in one order (``FOR UPDATE`` on PostgreSQL; SQLite's
    write transaction already serialises writers).

    Every account change takes these locks first, before the account's own row, so two admins
    demoting each other at once queue instead of deadlocking, and the second one sees the
    first one's change.
    """
    return set(
        s.scalars(
            select(UserRow.id)
            .where(UserRow.role == "admin", UserRow.disabled.is_(False))
            .order_by(UserRow.id)
            .with_for_update()
        ).all()
    )


def _keep_an_admin(admins: set[int], row: UserRow, action: str) -> None:
    """Refuse to leave the registry without an active admin (nobody could manage accounts)."""
    if row.role == "admin" and not row.disabled and admins <= {row.id}:
        raise BadInput(
            f"cannot {action} {row.username!r}: it is the last active admin; "
            "make another account admin first"
        )


def set_role(*, actor: Actor, username: str, role: Role) -> UserInfo:
    require(actor, "admin", "manage users")
    if role not in ROLES:
        raise BadInput(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    with transaction() as s:
        admins = _lock_admins(s)
        row = _user_row(s, username, lock=True)
        if role != "admin":
            _keep_an_admin(admins, row, f"make {role} of")
        row.role = role
        return UserInfo.of(row)


def set_disabled(*, actor: Actor, username: str, disabled: bool) -> UserInfo:
    """Disable an account (it cannot sign in, and its sessions end) or enable it again."""
    require(actor, "admin", "manage users")
    with transaction() as s:
        admins = _lock_admins(s)
        row = _user_row(s, username, lock=True)
        if disabled and not row.disabled:
            _keep_an_admin(admins, row, "disable")
        row.disabled = disabled
        if not disabled:
            row.failed_logins = 0
            row.locked_until = None
        info = UserInfo.of(row)
    if disabled:
        sessions.end_sessions(username, "disabled")
    return info


def get_user(username: str) -> UserInfo:
    with transaction(write=False) as s:
        return UserInfo.of(_user_row(s, username))


def actor_for(username: str) -> Actor:
    """The actor of an existing, enabled account (the CLI's ``--user``)."""
    info = get_user(username)
    if info.disabled:
        raise PermissionDenied(f"user {username!r} is disabled")
    return Actor(info.username, info.role)


def list_users(*, actor: Actor) -> list[UserInfo]:
    require(actor, "admin", "list users")
    with transaction(write=False) as s:
        return [UserInfo.of(r) for r in s.scalars(select(UserRow).order_by(UserRow.username))]
