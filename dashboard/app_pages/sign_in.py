"""Sign in with a registry account (roles: viewer, auditor, operator, admin)."""

from __future__ import annotations

import streamlit as st

from core.errors import CoreError
from dashboard import session, ui


def _submit() -> None:
    username = st.session_state.get("sign_in_username", "")
    password = st.session_state.get("sign_in_password", "")
    if not username or not password:
        ui.flash("error", "Enter your user name and password.")
        return
    try:
        session.sign_in(username, password)
    except CoreError as exc:
        ui.flash("error", str(exc))
    finally:
        st.session_state["sign_in_password"] = ""


st.title("Planwise Monitor")
st.write("Model management and monitoring for the Planwise place recommenders.")
_, middle, _ = st.columns([1, 2, 1])
with middle:
    ui.show_flash()
    if notice := session.expired_notice():
        st.info(notice, icon=":material/timer_off:")
    with st.form("sign_in_form", border=True):
        st.subheader("Sign in")
        st.text_input("User name", key="sign_in_username", autocomplete="username")
        st.text_input(
            "Password", type="password", key="sign_in_password", autocomplete="current-password"
        )
        st.form_submit_button("Sign in", type="primary", on_click=_submit, width="stretch")
    st.caption(
        "First start: the one-time password of the `admin` account was printed in the terminal "
        "that ran `python -m core init` (or started the dashboard). Sign in with it and choose "
        "a new password. Ask an admin for an account."
    )
ui.load_charts_early()
