"""User accounts (admins only): create accounts, change roles, disable, reset passwords.

Every change that takes rights away (a role change, disabling) is a two-step action: the page
says what will happen to whom, and only "Confirm" does it. The rules (the last active admin
can be neither demoted nor disabled, the password policy) are core's; this page shows them.
"""

from __future__ import annotations

from typing import Any, get_args

import pandas as pd
import streamlit as st

from core.accounts import auth, sessions
from core.errors import BadInput, CoreError
from dashboard import session, ui

ROLES = get_args(auth.Role)
PENDING = "users_pending"

actor = session.actor()
st.title("Users")
ui.show_flash()
if not actor.can("admin"):
    st.info("Only admins manage user accounts.")
    st.stop()


def _create() -> str:
    state = st.session_state
    name = state.get("users_new_name", "").strip()
    password, state["users_new_password"] = state.get("users_new_password", ""), ""
    auth.create_user(
        actor=session.acting(),
        username=name,
        password=password,
        role=state["users_new_role"],
        must_change_password=True,
    )
    return f"Created user {name}; they choose their own password at first sign-in."


def _ask(change: dict[str, Any]) -> None:
    st.session_state[PENDING] = change


def _cancel() -> None:
    st.session_state.pop(PENDING, None)


def _apply(change: dict[str, Any]) -> str:
    """Carry out the confirmed change, if the account is still as the page showed it."""
    st.session_state.pop(PENDING, None)
    name = change["user"]
    current = auth.get_user(name)
    if (current.role, current.disabled) != (change["was_role"], change["was_disabled"]):
        raise BadInput(f"{name}'s account changed since the page showed it; look again")
    if change["kind"] == "role":
        info = auth.set_role(actor=session.acting(), username=name, role=change["role"])
        return f"{name} is now {info.role} (was {change['was_role']})."
    info = auth.set_disabled(actor=session.acting(), username=name, disabled=change["disable"])
    if info.disabled:
        return f"{name} is disabled: they cannot sign in, and their open sessions have ended."
    return f"{name} is enabled again."


def _reset() -> str:
    state = st.session_state
    name = state["users_pick"]
    password, state["users_reset"] = state.get("users_reset", ""), ""
    auth.change_password(actor=session.acting(), username=name, new_password=password)
    return f"Password of {name} reset; they must change it at next sign-in."


try:
    accounts = auth.list_users(actor=actor)
except CoreError as exc:
    ui.error(exc)
    st.stop()
by_name = {u.username: u for u in accounts}


def _state(u: auth.UserInfo) -> str:
    if u.disabled:
        return "disabled"
    if u.must_change_password:
        return "must change password"
    return "active"


st.dataframe(
    pd.DataFrame(
        [
            {
                "user": u.username,
                "role": u.role,
                "state": _state(u),
                "open sessions": sessions.open_sessions(u.username),
                "created": ui.when(u.created_at),
            }
            for u in accounts
        ]
    ),
    hide_index=True,
    key="users_table",
)

left, right = st.columns(2)
with left, st.form("users_create_form"):
    st.subheader("New account")
    st.text_input("User name", key="users_new_name")
    st.selectbox("Role", ROLES, key="users_new_role", index=0)
    st.text_input(
        "One-time password",
        type="password",
        key="users_new_password",
        help=f"At least {auth.MIN_PASSWORD_LENGTH} characters besides spaces at either end; "
        "the user replaces it at first sign-in.",
    )
    st.form_submit_button("Create account", on_click=ui.act, args=(_create,))

with right, st.container(border=True):
    st.subheader("Change an account")
    pick = st.selectbox("Account", list(by_name), key="users_pick")
    picked = by_name.get(pick) if pick else None
    pending = st.session_state.get(PENDING)
    if picked is not None and pending is not None and pending["user"] != picked.username:
        _cancel()
        pending = None
    if picked is None:
        ui.empty_state("No account to change.")
    elif pending is not None:
        if pending["kind"] == "role":
            question = (
                f"Change **{ui.md(picked.username)}** from **{ui.md(pending['was_role'])}** to "
                f"**{ui.md(pending['role'])}**? {session.ROLE_ABILITIES[pending['role']]}"
            )
        elif pending["disable"]:
            question = (
                f"Disable **{ui.md(picked.username)}** ({ui.md(picked.role)})? They can no "
                "longer sign in, and every open session of theirs ends."
            )
        else:
            question = f"Enable **{ui.md(picked.username)}** again?"
        st.warning(question)
        b = st.columns(2)
        b[0].button(
            "Confirm",
            key="users_confirm",
            type="primary",
            on_click=ui.act,
            args=(lambda: _apply(pending),),
        )
        b[1].button("Cancel", key="users_cancel", on_click=_cancel)
    else:
        st.caption(f"{ui.md(picked.username)} is **{ui.md(picked.role)}**, {_state(picked)}.")
        # One role box per account, starting at that account's role: a box that always
        # started at "viewer" turned a click on "Set role" into a demotion.
        role = st.selectbox(
            "Role",
            ROLES,
            index=ROLES.index(picked.role),
            key=f"users_role_{picked.username}",
        )
        st.button(
            "Set role…",
            key="users_set_role",
            disabled=role == picked.role,
            help="Choose another role first." if role == picked.role else None,
            on_click=_ask,
            args=(
                {
                    "kind": "role",
                    "user": picked.username,
                    "role": role,
                    "was_role": picked.role,
                    "was_disabled": picked.disabled,
                },
            ),
        )
        toggle = {
            "kind": "disabled",
            "user": picked.username,
            "disable": not picked.disabled,
            "was_role": picked.role,
            "was_disabled": picked.disabled,
        }
        st.button(
            "Enable account…" if picked.disabled else "Disable account…",
            key="users_toggle_disabled",
            on_click=_ask,
            args=(toggle,),
        )
        st.text_input("New one-time password", type="password", key="users_reset")
        st.button("Reset password", key="users_reset_button", on_click=ui.act, args=(_reset,))
