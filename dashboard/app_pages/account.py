"""The signed-in account: its role, and changing its password (forced after a one-time one)."""

from __future__ import annotations

import streamlit as st

from core.accounts import auth
from core.errors import CoreError
from dashboard import session, ui

user = session.current()
if user is None:
    st.stop()


def _change() -> None:
    old = st.session_state.get("account_old", "")
    new = st.session_state.get("account_new", "")
    repeat = st.session_state.get("account_repeat", "")
    for key in ("account_old", "account_new", "account_repeat"):
        st.session_state[key] = ""  # passwords never outlive the click
    if new != repeat:
        ui.flash("error", "The two new passwords differ.")
        return
    if new == old:
        ui.flash("error", "Choose a password different from the current one.")
        return
    who = session.current()  # as of the click, not as of the drawing
    if who is None:
        ui.flash("error", "You are signed out; sign in again.")
        return
    try:
        auth.change_password(
            actor=who.actor, username=who.username, new_password=new, old_password=old
        )
    except CoreError as exc:
        ui.flash("error", str(exc))
        return
    session.password_changed(who.username)
    ui.flash(
        "success", "Password changed. Other browsers signed in to this account are signed out."
    )


st.title("Change password" if user.must_change_password else "Account")
ui.show_flash()
if user.must_change_password:
    st.warning(
        "You signed in with a one-time password. Choose your own password to continue; "
        "the other pages open once it is changed.",
        icon=":material/key:",
    )
else:
    st.markdown(f"Signed in as **{ui.md(user.username)}** {ui.badge(user.role)}")
    st.write(session.ROLE_ABILITIES.get(user.role, ""))

with st.form("account_form", border=True):
    st.subheader("New password")
    st.text_input(
        "Current password", type="password", key="account_old", autocomplete="current-password"
    )
    st.text_input(
        "New password",
        type="password",
        key="account_new",
        autocomplete="new-password",
        help=f"At least {auth.MIN_PASSWORD_LENGTH} characters.",
    )
    st.text_input(
        "Repeat the new password",
        type="password",
        key="account_repeat",
        autocomplete="new-password",
    )
    st.form_submit_button("Change password", type="primary", on_click=_change)
