"""User accounts (admins only): create accounts, change roles, reset passwords."""

from __future__ import annotations

from typing import get_args

import pandas as pd
import streamlit as st

from core import auth
from core.errors import CoreError
from dashboard import session, ui

ROLES = get_args(auth.Role)

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


def _set_role() -> str:
    state = st.session_state
    auth.set_role(actor=session.acting(), username=state["users_pick"], role=state["users_role"])
    return f"{state['users_pick']} is now {state['users_role']}."


def _reset() -> str:
    state = st.session_state
    password, state["users_reset"] = state.get("users_reset", ""), ""
    auth.change_password(
        actor=session.acting(), username=state["users_pick"], new_password=password
    )
    return f"Password of {state['users_pick']} reset; they must change it at next sign-in."


try:
    accounts = auth.list_users(actor=actor)
except CoreError as exc:
    ui.error(exc)
    st.stop()

st.dataframe(
    pd.DataFrame(
        [
            {
                "user": u.username,
                "role": u.role,
                "must change password": u.must_change_password,
                "disabled": u.disabled,
                "created": u.created_at,
            }
            for u in accounts
        ]
    ),
    hide_index=True,
)

left, right = st.columns(2)
with left, st.form("users_create_form"):
    st.subheader("New account")
    st.text_input("User name", key="users_new_name")
    st.selectbox("Role", ROLES, key="users_new_role")
    st.text_input(
        "One-time password",
        type="password",
        key="users_new_password",
        help=f"At least {auth.MIN_PASSWORD_LENGTH} characters; the user replaces it at first "
        "sign-in.",
    )
    st.form_submit_button("Create account", on_click=ui.act, args=(_create,))

with right, st.container(border=True):
    st.subheader("Change an account")
    st.selectbox("Account", [u.username for u in accounts], key="users_pick")
    st.selectbox("Role", ROLES, key="users_role")
    st.button("Set role", key="users_set_role", on_click=ui.act, args=(_set_role,))
    st.text_input("New one-time password", type="password", key="users_reset")
    st.button("Reset password", key="users_reset_button", on_click=ui.act, args=(_reset,))
