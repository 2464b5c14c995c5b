"""A new user's first hour in Chromium, for each role: sign in, reload, a shared link in a new
tab, sign-out everywhere, audit and preview; the pictures in ``docs/screenshots/`` come from
here and from test_dashboard.py."""

from __future__ import annotations

import re

import pytest

from core import auth
from core.auth import SYSTEM
from tests.browser.conftest import Server
from tests.browser.test_dashboard import VIEWPORT, WAIT_MS, _settled, _shoot, _sign_in
from tests.dashboard.builders import MODEL

pytestmark = pytest.mark.browser


def _heading(page, name: str):
    return page.get_by_role("heading", name=name, level=1)


def _signed_in_as(page, user: str):
    return page.get_by_test_id("stSidebar").get_by_text(re.compile(f"Signed in as {user}"))


def test_sessions_survive_reload_new_tab_and_shared_links(server: Server, chromium: str) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    expect = sync_api.expect
    link = f"{server.url}/compare?model={MODEL}"

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium)
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        try:
            # A shared link opened signed out: sign in at that address, land on that page.
            page.goto(link)
            expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
            _sign_in(page, "olga")
            expect(_heading(page, "Compare versions")).to_be_visible()
            assert page.url == link
            expect(_signed_in_as(page, "olga")).to_be_visible()
            _settled(page)
            # The cookie names the session; nothing of it is in the URL.
            cookie = next(c for c in context.cookies() if c["name"] == "planwise_session")
            assert cookie["sameSite"] == "Strict" and cookie["value"] not in page.url

            # A reload keeps the user signed in, on the same page and query.
            page.reload()
            expect(_heading(page, "Compare versions")).to_be_visible()
            expect(_signed_in_as(page, "olga")).to_be_visible()
            assert page.url == link

            # A new tab with another link: signed in already.
            other = context.new_page()
            other.set_default_timeout(WAIT_MS)
            other.goto(f"{server.url}/audit")
            expect(_heading(other, "Audit a version")).to_be_visible()
            expect(_signed_in_as(other, "olga")).to_be_visible()

            # Signing out in one tab ends the other's session at its next click.
            page.get_by_role("button", name="Sign out").click()
            expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
            other.get_by_test_id("stSidebarNavLink").filter(has_text="Overview").click()
            expect(other.get_by_role("heading", name="Sign in")).to_be_visible()
            # ... and a reload does not bring it back.
            page.reload()
            expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

            # A new password set by an admin signs the account out at its next click.
            _sign_in(page, "olga")
            expect(_signed_in_as(page, "olga")).to_be_visible()
            auth.change_password(actor=SYSTEM, username="olga", new_password="brand-new-pass-1")
            page.get_by_test_id("stSidebarNavLink").filter(has_text="Models").click()
            expect(page.get_by_text("password was changed")).to_be_visible()
        except Exception:
            page.screenshot(path=str(server.registry.root / "failure.png"))
            print(server.log.read_text()[-5000:])
            raise
        finally:
            browser.close()
