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
from sqlalchemy import func, select

from core.db import ROLES, UserRow, transaction, utcnow
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
_USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{2,64}$")
_hasher = PasswordHasher()


@dataclass(frozen=True)
class Actor:
    """Who is acting, as the core sees it; interfaces obtain one by signing in."""

    username: str
    role: str

    def can(self, permission: Permission) -> bool:
        return ROLES.index(self.role) >= ROLES.index(_NEEDS[permission])


@dataclass(frozen=True)
class UserInfo:
    username: str
    role: str
    must_change_password: bool
    disabled: bool
    created_at: dt.datetime


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


def _to_info(row: UserRow) -> UserInfo:
    return UserInfo(row.username, row.role, row.must_change_password, row.disabled, row.created_at)


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise BadInput(f"password must have at least {MIN_PASSWORD_LENGTH} characters")


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
        return _to_info(row)


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
    """Check a password; after repeated failures the account is locked for a while."""
    now = now or utcnow()
    with transaction() as s:
        row = s.scalar(select(UserRow).where(UserRow.username == username))
        if row is None or row.disabled:
            # Hash anyway so timing does not reveal which user names exist.
            _hasher.hash(password)
            raise AuthenticationFailed("wrong user name or password")
        if row.locked_until is not None and row.locked_until > now:
            raise AuthenticationFailed(
                f"too many failed sign-ins; try again after {row.locked_until:%H:%M:%S} UTC"
            )
        try:
            _hasher.verify(row.password_hash, password)
        except (VerificationError, InvalidHashError):
            row.failed_logins += 1
            if row.failed_logins >= MAX_FAILED_LOGINS:
                row.locked_until = now + LOCKOUT
                row.failed_logins = 0
            ok = False
        else:
            row.failed_logins = 0
            row.locked_until = None
            if _hasher.check_needs_rehash(row.password_hash):
                row.password_hash = _hasher.hash(password)
            ok = True
        actor = Actor(row.username, row.role)
    if not ok:
        raise AuthenticationFailed("wrong user name or password")
    return actor


def change_password(
    *, actor: Actor, username: str, new_password: str, old_password: str | None = None
) -> None:
    """Users change their own password (knowing the old one); admins reset anyone's."""
    _check_password(new_password)
    if actor.username != username:
        require(actor, "admin", "change another user's password")
    elif old_password is not None:
        authenticate(username, old_password)
    with transaction() as s:
        row = s.scalar(select(UserRow).where(UserRow.username == username))
        if row is None:
            raise NotFound(f"unknown user {username!r}")
        row.password_hash = _hasher.hash(new_password)
        row.must_change_password = actor.username != username
        row.failed_logins = 0
        row.locked_until = None


def set_role(*, actor: Actor, username: str, role: Role) -> UserInfo:
    require(actor, "admin", "manage users")
    if role not in ROLES:
        raise BadInput(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    with transaction() as s:
        row = s.scalar(select(UserRow).where(UserRow.username == username))
        if row is None:
            raise NotFound(f"unknown user {username!r}")
        row.role = role
        return _to_info(row)


def get_user(username: str) -> UserInfo:
    with transaction(write=False) as s:
        row = s.scalar(select(UserRow).where(UserRow.username == username))
        if row is None:
            raise NotFound(f"unknown user {username!r}")
        return _to_info(row)


def actor_for(username: str) -> Actor:
    """The actor of an existing, enabled account (the CLI's ``--user``)."""
    info = get_user(username)
    if info.disabled:
        raise PermissionDenied(f"user {username!r} is disabled")
    return Actor(info.username, info.role)


def list_users(*, actor: Actor) -> list[UserInfo]:
    require(actor, "admin", "list users")
    with transaction(write=False) as s:
        return [_to_info(r) for r in s.scalars(select(UserRow).order_by(UserRow.username))]
