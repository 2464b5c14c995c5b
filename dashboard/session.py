"""Who is signed in to this browser.

A sign-in opens a session in ``core.accounts.sessions`` and the browser keeps a signed cookie
naming it
(``planwise_session``), so a reload, a new tab or a shared link finds the user still signed
in. The cookie is read from the request that opened this tab (``st.context.cookies``) and
checked with the server at every click: signing out, a disabled account, a changed password,
idle time and the absolute lifetime all end it there, whatever the browser still holds. Only
the user name and the cookie's value are kept in the tab's state, never in the URL, and every
run re-reads the account, so a role change takes effect at the next click.

Streamlit cannot set a cookie from Python; a tiny inline component (``st.components.v2``,
Streamlit's own, no iframe) writes ``document.cookie`` in the browser. See docs/security.md.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import streamlit as st

from core.accounts import auth, sessions
from core.accounts.auth import Actor
from core.errors import NotFound, PermissionDenied

log = logging.getLogger(__name__)

USER_KEY = "session_username"
COOKIE_KEY = "session_cookie"  # this tab's cookie value, as issued or as read at connection
DEAD_KEY = "session_dead_cookie"  # a cookie this tab already found ended: not asked again
EXPIRED_KEY = "session_expired"
MAX_AGE_KEY = "session_cookie_max_age"

ROLE_ABILITIES: dict[str, str] = {
    "viewer": "A viewer can look at everything and change nothing.",
    "auditor": "An auditor can also record audit verdicts on versions.",
    "operator": "An operator can also promote, roll back, retrain and set canary shares.",
    "admin": "An admin can also manage user accounts.",
}

_NOTICES: dict[str, str] = {
    "expired": "Your session reached its {hours:g}-hour limit; sign in again.",
    "disabled": "This account was disabled; ask an admin.",
    "password changed": "The account's password was changed; sign in with the new one.",
    "account changed": "The account was changed by an admin; sign in again.",
}

# Writes (or, with an empty value, deletes) the session cookie in the browser. SameSite=Strict:
# never sent with requests that other sites start; Secure when the dashboard is served over
# https. JavaScript must write it, so it cannot be HttpOnly; see docs/security.md.
_COOKIE_JS = """
export default function ({ data }) {
  if (!data || !data.name) return;
  const parts = [data.name + "=" + (data.value || ""), "Path=/", "SameSite=Strict"];
  parts.push("Max-Age=" + (data.value ? data.max_age : 0));
  if (window.location.protocol === "https:") parts.push("Secure");
  document.cookie = parts.join("; ");
}
"""
_cookie_writer = st.components.v2.component("planwise_session_cookie", js=_COOKIE_JS)


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
    """Check the password with ``core`` and open a session; raises
    :class:`core.errors.CoreError` when refused."""
    actor = auth.authenticate(username.strip(), password)
    issued = sessions.start(actor.username)
    st.session_state[USER_KEY] = actor.username
    st.session_state[COOKIE_KEY] = issued.cookie
    st.session_state[MAX_AGE_KEY] = issued.max_age_s
    st.session_state.pop(DEAD_KEY, None)
    log.info("user %s signed in", actor.username)
    return current() or SignedIn(actor, False)


def password_changed(username: str) -> None:
    """After users change their own password: every other browser of the account is signed
    out, and this one goes on with a new session (the old ones carry the old password's
    stamp and would end at the next click anyway)."""
    sessions.end_sessions(username, "password changed")
    issued = sessions.start(username)
    st.session_state[COOKIE_KEY] = issued.cookie
    st.session_state[MAX_AGE_KEY] = issued.max_age_s


def _forget() -> None:
    for key in list(st.session_state.keys()):
        del st.session_state[key]


def sign_out() -> None:
    """End every session of the account (each browser is signed out at its next click)."""
    username = st.session_state.get(USER_KEY)
    cookie = st.session_state.get(COOKIE_KEY) or _browser_cookie()
    if username:
        sessions.end_sessions(username, "signed out")
    _forget()
    if cookie:
        st.session_state[DEAD_KEY] = cookie


def expired_notice() -> str | None:
    """Why the last session ended, once: the sign-in page shows it."""
    return st.session_state.pop(EXPIRED_KEY, None)


def _browser_cookie() -> str | None:
    try:
        value = dict(st.context.cookies).get(sessions.COOKIE_NAME)
    except Exception:  # no browser connection (bare script runs)
        return None
    return value if isinstance(value, str) and value else None


def _notice(reason: str) -> str | None:
    if reason == "idle":
        minutes = sessions.idle_limit().total_seconds() / 60
        return f"You were signed out after {minutes:g} minutes without activity."
    template = _NOTICES.get(reason)
    hours = sessions.ABSOLUTE_LIFETIME.total_seconds() / 3600
    return None if template is None else template.format(hours=hours)


def current() -> SignedIn | None:
    """The signed-in account, or None (also when its session was ended on the server, sat idle
    for longer than ``SESSION_IDLE_MINUTES`` or outlived its lifetime: a dashboard left open on
    a shared screen must not keep an operator's rights)."""
    cookie = st.session_state.get(COOKIE_KEY) or _browser_cookie()
    if not cookie or cookie == st.session_state.get(DEAD_KEY):
        if st.session_state.get(USER_KEY):
            _forget()
        return None
    resumed = sessions.resume(cookie)
    if not resumed.ok:
        was = st.session_state.get(USER_KEY) or resumed.username
        _forget()
        st.session_state[DEAD_KEY] = cookie
        if resumed.ended is not None and (notice := _notice(resumed.ended)):
            st.session_state[EXPIRED_KEY] = notice
        log.info("session of %s ended: %s", was, resumed.ended or "unknown cookie")
        return None
    username = resumed.username
    assert username is not None
    st.session_state[USER_KEY] = username
    st.session_state[COOKIE_KEY] = cookie
    try:
        info = auth.get_user(username)
    except NotFound:
        _forget()
        return None
    return SignedIn(Actor(info.username, info.role), info.must_change_password)


def keep_cookie() -> None:
    """Write this tab's session cookie into the browser (or delete an ended one).

    Mounted on every run of a tab that signed in: should one run's element be replaced before
    the browser ran it, the next run writes it again; the same value again costs nothing.
    """
    cookie = st.session_state.get(COOKIE_KEY)
    if cookie:
        max_age = st.session_state.get(MAX_AGE_KEY)
        if max_age is None:  # the browser sent it: it has it already
            return
        data = {"name": sessions.COOKIE_NAME, "value": cookie, "max_age": int(max_age)}
    elif _browser_cookie() or st.session_state.get(DEAD_KEY):
        data = {"name": sessions.COOKIE_NAME, "value": "", "max_age": 0}
    else:
        return
    _cookie_writer(data=data, key="session_cookie_writer", height=0)


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
