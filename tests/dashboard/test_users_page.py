"""The Users page: each account's own role, confirmed changes, disabling, the last admin kept.

The role box showed "viewer" whatever account was picked and "Set role" acted at once, so one
click demoted the only admin to viewer.
"""

from __future__ import annotations

from core.accounts import auth
from tests.dashboard.conftest import assert_clean, open_page, plain, sign_in


def _pick(at, name: str):  # noqa: ANN001, ANN202
    return at.selectbox(key="users_pick").select(name).run()


def test_the_role_box_starts_at_the_picked_accounts_role(dash_registry) -> None:
    at = sign_in("admin")
    open_page(at, "users", model=None)
    assert_clean(at)
    for name, role in (("olga", "operator"), ("ana", "auditor"), ("admin", "admin")):
        _pick(at, name)
        assert at.selectbox(key=f"users_role_{name}").value == role
        assert at.button(key="users_set_role").disabled, "nothing to change yet"


def test_a_role_change_waits_for_confirmation(dash_registry) -> None:
    at = sign_in("admin")
    open_page(at, "users", model=None)
    _pick(at, "olga")
    at.selectbox(key="users_role_olga").select("viewer").run()
    at.button(key="users_set_role").click().run()
    assert auth.get_user("olga").role == "operator", "not before confirming"
    assert any("from operator to viewer" in plain(w.value).replace("*", "") for w in at.warning)
    at.button(key="users_cancel").click().run()
    assert auth.get_user("olga").role == "operator"
    at.selectbox(key="users_role_olga").select("viewer").run()
    at.button(key="users_set_role").click().run()
    at.button(key="users_confirm").click().run()
    assert_clean(at)
    assert auth.get_user("olga").role == "viewer"
    assert any("olga is now viewer (was operator)" in plain(s.value) for s in at.success)


def test_the_only_admin_cannot_demote_or_disable_itself(dash_registry) -> None:
    at = sign_in("admin")
    open_page(at, "users", model=None)
    _pick(at, "admin")
    at.selectbox(key="users_role_admin").select("viewer").run()
    at.button(key="users_set_role").click().run()
    at.button(key="users_confirm").click().run()
    assert any("last active admin" in plain(e.value) for e in at.error)
    at.button(key="users_toggle_disabled").click().run()
    at.button(key="users_confirm").click().run()
    assert any("last active admin" in plain(e.value) for e in at.error)
    info = auth.get_user("admin")
    assert (info.role, info.disabled) == ("admin", False)


def test_a_disabled_account_cannot_sign_in_until_enabled(dash_registry) -> None:
    at = sign_in("admin")
    open_page(at, "users", model=None)
    _pick(at, "victor")
    at.button(key="users_toggle_disabled").click().run()
    assert not auth.get_user("victor").disabled, "not before confirming"
    at.button(key="users_confirm").click().run()
    assert_clean(at)
    assert auth.get_user("victor").disabled
    victor = sign_in("victor")
    assert any("wrong user name or password" in plain(e.value) for e in victor.error)
    _pick(at, "victor")
    assert at.button(key="users_toggle_disabled").label == "Enable account…"
    at.button(key="users_toggle_disabled").click().run()
    at.button(key="users_confirm").click().run()
    assert not auth.get_user("victor").disabled
    assert auth.authenticate("victor", "viewer-password-1").username == "victor"
