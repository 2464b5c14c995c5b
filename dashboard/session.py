"""Who is signed in to this browser session.

The session keeps only the user name. Every run re-reads the account from the registry, so a
role change or a disabled account takes effect at the next click, and the role shown is
always the one ``core`` will check.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import streamlit as st

from core import auth
from core.auth import Actor
from core.config import get_settings
from core.errors import NotFound, PermissionDenied

log = logging.getLogger(__name__)

USER_KEY = "session_username"
SEEN_KEY = "session_last_seen"
EXPIRED_KEY = "session_expired"

ROLE_ABILITIES: dict[str, str] = {
    "viewer": "A viewer can look at everything and change nothing.",
    "auditor": "An auditor can also record audit verdicts on versions.",
    "operator": "An operator can also promote, roll back, retrain and set canary shares.",
    "admin": "An admin can also manage user accounts.",
}


@dataclass(frozen=True)
class SignedIn:
    """The signed-in account as of this run."""

    actor: Actor
    must_change_password: bool

    @property
    def username(self) -> str:
        return self.actor.username

    @property
    def role(self) -> str:
        return self.actor.role


def sign_in(username: str, password: str) -> SignedIn:
    """Check the password with ``core``; raises :class:`core.errors.CoreError` when refused."""
    actor = auth.authenticate(username.strip(), password)
    st.session_state[USER_KEY] = actor.username
    st.session_state[SEEN_KEY] = time.monotonic()
    log.info("user %s signed in", actor.username)
    return current() or SignedIn(actor, False)


def sign_out() -> None:
    for key in list(st.session_state.keys()):
        del st.session_state[key]


def expired_notice() -> str | None:
    """Why the last session ended, once: the sign-in page shows it."""
    return st.session_state.pop(EXPIRED_KEY, None)


def current() -> SignedIn | None:
    """The signed-in account, or None (also when it was disabled or removed meanwhile, or the
    session sat idle for longer than ``SESSION_IDLE_MINUTES``: a dashboard left open on a
    shared screen must not keep an operator's rights)."""
    username = st.session_state.get(USER_KEY)
    if not username:
        return None
    idle_limit = get_settings().session_idle_minutes
    now = time.monotonic()
    last = st.session_state.get(SEEN_KEY, now)
    if now - last > idle_limit * 60:
        sign_out()
        st.session_state[EXPIRED_KEY] = (
            f"You were signed out after {idle_limit:g} minutes without activity."
        )
        log.info("session of %s expired after %.0f s idle", username, now - last)
        return None
    st.session_state[SEEN_KEY] = now
    try:
        info = auth.get_user(username)
    except NotFound:
        info = None
    if info is None or info.disabled:
        sign_out()
        return None
    return SignedIn(Actor(info.username, info.role), info.must_change_password)


def acting() -> Actor:
    """The actor for a write, read from the registry at the moment of the write.

    Widget callbacks must use this rather than an actor captured when the page was drawn: the
    account's role may have changed in between, and ``core`` checks the role it is given.
    """
    user = current()
    if user is None:
        raise PermissionDenied("you are signed out; sign in again")
    if user.must_change_password:
        raise PermissionDenied("change your one-time password first")
    return user.actor


def actor() -> Actor:
    """The acting user for a page that only runs when someone is signed in."""
    user = current()
    if user is None:  # app.py routes anonymous sessions to the sign-in page only
        st.stop()
    return user.actor
