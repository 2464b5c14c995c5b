"""Sign-in, sessions and passwords, and what each role is offered, under AppTest.

Who may see and do what: a wrong password, an idle or ended session, the first start's
one-time password, and the actions each role finds (or is refused by core) on the pages.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re

import pytest

from core import registry
from core.accounts import auth
from core.accounts.auth import SYSTEM
from tests.dashboard.conftest import (
    PAGES,
    assert_clean,
    new_app,
    open_page,
    plain,
    sign_in,
    submit,
)
from tests.fixtures.dashboard import MODEL, PASSWORDS


def _sidebar_text(at) -> str:
    return " ".join(m.value for m in [*at.sidebar.markdown, *at.sidebar.caption])


# ------------------------------------------------------------------------ sign-in


def test_good_password_signs_in_and_shows_who_and_role(dash_registry) -> None:
    at = sign_in("olga")
    assert_clean(at)
    text = _sidebar_text(at)
    assert "olga" in text and "operator" in text
    assert "An operator can also promote" in text
    assert at.title[0].value == "Overview"


def test_the_sign_in_page_has_the_browser_load_the_charts_unseen(dash_registry) -> None:
    """The first chart a browser draws loads and sets up Plotly (0.45 s and more); the sign-in
    page draws a small one that nobody sees while the person types, and the pages do not."""
    at = new_app().run()
    warm = [c for c in at.get("plotly_chart") if "ui_chart_warm_up" in c.proto.id]
    assert len(warm) == 1
    figure = json.loads(warm[0].proto.spec)
    assert {t["type"] for t in figure["data"]} == {"scatter", "bar"}
    assert all(t["opacity"] == 0 for t in figure["data"]), "nothing to see"
    assert figure["layout"]["height"] <= 10
    at.text_input(key="sign_in_username").input("olga")
    at.text_input(key="sign_in_password").input(PASSWORDS["olga"])
    submit(at, "sign_in_form")
    assert at.title[0].value == "Overview"
    assert not [c for c in at.get("plotly_chart") if "ui_chart_warm_up" in c.proto.id]


def test_bad_password_is_refused_and_stays_on_sign_in(dash_registry) -> None:
    at = sign_in("olga", "not-the-password")
    assert not at.exception
    assert any("wrong user name or password" in plain(e.value) for e in at.error)
    assert at.title[0].value == "Planwise Monitor"
    assert "olga" not in _sidebar_text(at)
    # The password field is emptied after a failed attempt.
    assert at.text_input(key="sign_in_password").value == ""


def test_unknown_user_gets_the_same_message(dash_registry) -> None:
    at = sign_in("nobody", "whatever-password")
    assert any("wrong user name or password" in plain(e.value) for e in at.error)


def test_sign_out_returns_to_sign_in(dash_registry) -> None:
    at = sign_in("victor")
    at.button(key="app_sign_out").click().run()
    assert at.title[0].value == "Planwise Monitor"
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(PAGES["overview"])


def test_an_idle_session_is_signed_out_with_a_notice(
    dash_registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import update

    from core.config import reset_settings
    from core.db import transaction, utcnow
    from core.db.tables import SessionRow

    def last_seen(minutes_ago: float) -> None:
        with transaction() as s:
            s.execute(
                update(SessionRow).values(last_seen_at=utcnow() - dt.timedelta(minutes=minutes_ago))
            )

    monkeypatch.setenv("SESSION_IDLE_MINUTES", "30")
    reset_settings()
    at = sign_in("olga")
    last_seen(29)  # still active
    at.run()
    assert at.title[0].value == "Overview"
    last_seen(31)
    at.run()
    assert at.title[0].value == "Planwise Monitor"
    assert any("signed out after 30 minutes without activity" in i.value for i in at.info)
    assert "olga" not in _sidebar_text(at)
    at.run()  # the notice is shown once
    assert not any("without activity" in i.value for i in at.info)


def test_sessions_end_on_the_server_at_the_next_click(dash_registry) -> None:
    """Sign-out in one tab, a disabled account or a new password: every other tab of the
    account is signed out at its next click, with the reason."""
    from sqlalchemy import update

    from core.accounts import sessions
    from core.db import transaction
    from core.db.tables import UserRow

    first, second = sign_in("olga"), sign_in("olga")
    first.button(key="app_sign_out").click().run()
    assert first.title[0].value == "Planwise Monitor"
    second.run()
    assert second.title[0].value == "Planwise Monitor"
    assert "olga" not in _sidebar_text(second)

    tab = sign_in("ana")
    auth.change_password(actor=SYSTEM, username="ana", new_password="a-new-password-22")
    tab.run()
    assert tab.title[0].value == "Planwise Monitor"
    assert any("password was changed" in i.value for i in tab.info)

    tab = sign_in("victor")
    with transaction() as s:
        s.execute(update(UserRow).where(UserRow.username == "victor").values(disabled=True))
    tab.run()
    assert any("disabled" in i.value for i in tab.info)

    tab = sign_in("admin")
    assert sessions.end_sessions("admin") == 1
    tab.run()
    assert tab.title[0].value == "Planwise Monitor"


def test_first_start_admin_must_change_one_time_password(
    sqlite_backend, caplog: pytest.LogCaptureFixture
) -> None:
    """No account at all: the dashboard creates admin, logs its password, forces a change."""
    with caplog.at_level(logging.WARNING, logger="dashboard.cache"):
        at = new_app().run()
    found = re.search(r"one-time password: (\S+)", caplog.text)
    assert found, "the first start must print the admin's one-time password"
    one_time = found.group(1)
    assert one_time not in str(at.main), "the password is never shown in a browser"

    at = sign_in("admin", one_time)
    assert_clean(at)
    assert at.title[0].value == "Change password"
    assert any("one-time password" in plain(w.value) for w in at.warning)
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(PAGES["deploy"])  # the other pages are not offered yet

    at.text_input(key="account_old").input(one_time)
    at.text_input(key="account_new").input("a-brand-new-password")
    at.text_input(key="account_repeat").input("a-brand-new-password")
    submit(at, "account_form")
    assert_clean(at)
    assert any("Password changed" in plain(s.value) for s in at.success)
    assert not auth.get_user("admin").must_change_password
    at.switch_page(PAGES["deploy"]).run()
    assert_clean(at)
    assert at.title[0].value == "Deploy"


def test_password_change_with_mismatch_is_refused(dash_registry) -> None:
    at = sign_in("victor")
    at.switch_page(PAGES["account"]).run()
    at.text_input(key="account_old").input("viewer-password-1")
    at.text_input(key="account_new").input("something-long-1")
    at.text_input(key="account_repeat").input("something-long-2")
    submit(at, "account_form")
    assert any("differ" in plain(e.value) for e in at.error)


def test_admin_creates_an_account_that_must_change_its_password(dash_registry) -> None:
    at = sign_in("admin")
    at.switch_page(PAGES["users"]).run()
    at.text_input(key="users_new_name").input("rosa")
    at.selectbox(key="users_new_role").select("auditor")
    at.text_input(key="users_new_password").input("one-time-password-1")
    submit(at, "users_create_form")
    assert_clean(at)
    info = auth.get_user("rosa")
    assert (info.role, info.must_change_password) == ("auditor", True)


# ------------------------------------------------------------------------ roles


def test_viewer_is_offered_no_action(populated) -> None:
    at = sign_in("victor")
    open_page(at, "deploy")
    assert_clean(at)
    keys = {b.key for b in at.button}
    assert not keys & {"deploy_review", "deploy_rollback", "deploy_save"}
    assert any("viewer" in plain(i.value) for i in at.info)
    open_page(at, "audit")
    assert_clean(at)
    assert not at.text_area, "viewers get no verdict form"
    with pytest.raises(ValueError):
        at.switch_page(PAGES["users"])  # admins only


def test_auditor_may_record_verdicts_but_not_deploy(populated) -> None:
    at = sign_in("ana")
    open_page(at, "audit")
    assert at.text_area(key="audit_comment")
    open_page(at, "deploy")
    assert not {b.key for b in at.button} & {"deploy_review", "deploy_rollback"}


def test_a_role_taken_away_meanwhile_is_refused_by_core(populated) -> None:
    """The page offered the action; the click comes after the role changed: core refuses."""
    at = sign_in("olga")
    open_page(at, "deploy")
    at.text_input(key="deploy_rollback_reason").input("bad lists")
    auth.set_role(actor=SYSTEM, username="olga", role="viewer")
    at.button(key="deploy_rollback").click().run()
    assert not at.exception
    assert any("may not roll back" in plain(e.value) for e in at.error)
    assert registry.get_model(MODEL).production == populated.production
    # And the page no longer offers it.
    assert not [b for b in at.button if b.key == "deploy_rollback"]
