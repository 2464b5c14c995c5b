"""Per-account API tokens for automation (the management API, a CI pipeline).

A token belongs to one account and carries a role no higher than the account's: a CI job that
only needs to register and promote gets an operator token even when an admin issues it for
themself. The role a request acts with is the lower of the token's and the account's role
*now*, so demoting or disabling an account takes effect on its tokens at once.

Tokens are 32 random bytes: only their SHA-256 is stored (a slow password hash adds nothing to
a secret with 256 bits of entropy, and a lookup by hash needs no scan). The secret is shown
once, when it is issued. Issuing and revoking are an admin's; every token row keeps who issued
it, who revoked it and when, and is never deleted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select

from core.accounts.auth import Actor, require
from core.db import transaction, utcnow
from core.db.rows import Plain
from core.db.tables import MAX_LABEL, ROLES, TokenRow, UserRow
from core.errors import AuthenticationFailed, BadInput, NotFound

PREFIX = "pwm_"
MAX_DAYS = 3650
# A token's last use is written at most this often: not a write per request.
TOUCH_EVERY = dt.timedelta(minutes=1)


class TokenInfo(Plain):
    """A token as listed: never its secret, nor its hash."""

    id: int
    username: str
    role: str
    label: str
    hint: str
    created_at: dt.datetime
    created_by: str
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    revoked_by: str | None
    last_used_at: dt.datetime | None

    def state(self, now: dt.datetime | None = None) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= (now or utcnow()):
            return "expired"
        return "active"

    def as_dict(self) -> dict[str, object]:
        """The fields, ``username`` as ``user``, with the token's ``state`` after its hint."""
        out: dict[str, object] = {}
        for name, value in super().as_dict().items():
            out["user" if name == "username" else name] = value
            if name == "hint":
                out["state"] = self.state()
        return out


@dataclass(frozen=True)
class IssuedToken:
    info: TokenInfo
    secret: str  # shown once


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _lower(a: str, b: str) -> str:
    return a if ROLES.index(a) <= ROLES.index(b) else b


def issue(
    *,
    actor: Actor,
    username: str,
    role: str | None = None,
    expires_days: int | None = None,
    label: str = "",
) -> IssuedToken:
    """A new token for ``username``, with ``role`` (default: the account's own role)."""
    require(actor, "admin", "issue API tokens")
    if role is not None and role not in ROLES:
        raise BadInput(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    if expires_days is not None and not 1 <= expires_days <= MAX_DAYS:
        raise BadInput(f"--expires-days must be from 1 to {MAX_DAYS}, got {expires_days}")
    if len(label) > MAX_LABEL:
        raise BadInput(f"a token's label has at most {MAX_LABEL} characters")
    secret = PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    with transaction() as s:
        user = s.scalar(select(UserRow).where(UserRow.username == username))
        if user is None:
            raise NotFound(f"unknown user {username!r}")
        if user.disabled:
            raise BadInput(f"user {username!r} is disabled; enable it before issuing a token")
        granted = role or user.role
        if ROLES.index(granted) > ROLES.index(user.role):
            raise BadInput(
                f"a token cannot hold more than its account: {username!r} is {user.role}, "
                f"not {granted}"
            )
        row = TokenRow(
            username=username,
            role=granted,
            label=label,
            token_hash=digest(secret),
            hint=secret[: len(PREFIX) + 4],
            created_at=now,
            created_by=actor.username,
            expires_at=None if expires_days is None else now + dt.timedelta(days=expires_days),
        )
        s.add(row)
        s.flush()
        return IssuedToken(TokenInfo.of(row), secret)


def list_tokens(*, actor: Actor, username: str | None = None) -> list[TokenInfo]:
    require(actor, "admin", "list API tokens")
    stmt = select(TokenRow).order_by(TokenRow.id)
    if username is not None:
        stmt = stmt.where(TokenRow.username == username)
    with transaction(write=False) as s:
        return [TokenInfo.of(r) for r in s.scalars(stmt).all()]


def revoke(*, actor: Actor, token_id: int) -> TokenInfo:
    """Revoke a token; the next request that carries it is refused."""
    require(actor, "admin", "revoke API tokens")
    with transaction() as s:
        row = s.get(TokenRow, token_id, with_for_update=True)
        if row is None:
            raise NotFound(f"unknown token {token_id}")
        if row.revoked_at is not None:
            raise BadInput(f"token {token_id} was already revoked by {row.revoked_by}")
        row.revoked_at = utcnow()
        row.revoked_by = actor.username
        s.flush()
        return TokenInfo.of(row)


def authenticate(secret: str, *, now: dt.datetime | None = None) -> Actor:
    """The actor a request carrying ``secret`` acts as; refused if the token is unknown,
    revoked or expired, or its account is disabled or gone."""
    refused = AuthenticationFailed("invalid, expired or revoked token")
    if not secret or not secret.startswith(PREFIX) or len(secret) > 128:
        raise refused
    now = now or utcnow()
    hashed = digest(secret)
    with transaction(write=False) as s:
        found = s.execute(
            select(
                TokenRow.id,
                TokenRow.role,
                TokenRow.expires_at,
                TokenRow.revoked_at,
                TokenRow.last_used_at,
                UserRow.username,
                UserRow.role,
                UserRow.disabled,
            )
            .join(UserRow, UserRow.username == TokenRow.username)
            .where(TokenRow.token_hash == hashed)
        ).one_or_none()
    if found is None:
        raise refused
    token_id, token_role, expires_at, revoked_at, last_used, username, user_role, disabled = found
    if revoked_at is not None or disabled or (expires_at is not None and expires_at <= now):
        raise refused
    if last_used is None or now - last_used >= TOUCH_EVERY:
        with transaction() as s:
            row = s.get(TokenRow, token_id)
            if row is not None:
                row.last_used_at = now
    return Actor(username, _lower(token_role, user_role))
