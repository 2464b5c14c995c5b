"""A new user's first hour in Chromium, for each role: sign in, reload, a shared link in a new
tab, sign-out everywhere, audit and preview; the pictures in ``docs/screenshots/`` come from
here and from test_dashboard.py."""

from __future__ import annotations

import re
import time

import pytest

from core.accounts import auth
from core.accounts.auth import SYSTEM
from tests.browser.conftest import Server
from tests.fixtures.browser import VIEWPORT, WAIT_MS, settled, shoot, sign_in
from tests.fixtures.dashboard import MODEL, ROLES

pytestmark = pytest.mark.browser


def _sign_in_when_ready(page, user: str) -> None:
    """Sign in once the first run drew the form (typing into the page's first skeleton was
    lost when a busy server drew the form again)."""
    from playwright.sync_api import expect

    for attempt in range(2):
        expect(page.get_by_role("button", name="Sign in")).to_be_visible()
        settled(page)
        sign_in(page, user)
        signed_in = _signed_in_as(page, user)
        try:
            expect(signed_in).to_be_visible()
            return
        except AssertionError:
            # A server this busy may drop the tab's connection; the new one starts afresh.
            if attempt or not page.get_by_role("button", name="Sign in").count():
                raise


def _cookie_written(context) -> None:
    """Wait until the browser holds the session cookie (the page writes it after sign-in)."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while not any(c["name"] == "planwise_session" for c in context.cookies()):
        assert time.monotonic() < deadline, "the session cookie was never written"
        time.sleep(0.1)


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
            _sign_in_when_ready(page, "olga")
            expect(_heading(page, "Compare versions")).to_be_visible()
            assert page.url == link
            expect(_signed_in_as(page, "olga")).to_be_visible()
            settled(page)
            _cookie_written(context)
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
            sign_in(page, "olga")
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


def _nav(page, title: str) -> None:
    link = page.get_by_test_id("stSidebarNavLink").filter(has_text=title)
    more = page.get_by_test_id("stSidebarNavViewButton")
    if not link.count() and more.count() and "more" in more.inner_text().lower():
        more.click()
    link.first.click()


def test_first_hour_of_each_role(server: Server, chromium: str) -> None:
    """admin, auditor, operator and viewer: a shared link to Preview signs in to that page, a
    reload keeps it, the maps are there offline with ranked markers and each version on its
    own, places show their types, and the Audit page flags the catch-all categories; who may
    record a verdict must choose it (no default)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    expect = sync_api.expect
    populated = server.populated
    link = f"{server.url}/preview?model={MODEL}"

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium)
        try:
            for user, role in [
                ("admin", "admin"),
                *((u, r) for u, r in ROLES.items() if u != "admin"),
            ]:
                context = browser.new_context(viewport=VIEWPORT)
                page = context.new_page()
                page.set_default_timeout(WAIT_MS)
                try:
                    page.goto(link)
                    _sign_in_when_ready(page, user)
                    expect(_heading(page, "Preview recommendations")).to_be_visible()
                    expect(_signed_in_as(page, user)).to_be_visible()
                    sidebar = page.get_by_test_id("stSidebar")
                    expect(sidebar.locator(".stMarkdownBadge", has_text=role).first).to_be_visible()
                    settled(page)
                    _cookie_written(context)
                    page.reload()
                    expect(_heading(page, "Preview recommendations")).to_be_visible()
                    assert page.url.endswith(f"/preview?model={MODEL}")

                    # Offline (as here): the catalogue's places draw the city; ranks numbered.
                    maps = page.get_by_test_id("stPlotlyChart")
                    expect(maps.first.locator(".textpoint", has_text="10").first).to_be_attached()
                    # The places as one picture under the marks, not thousands of markers.
                    expect(maps.first.locator(".imagelayer image")).to_have_count(1)
                    expect(maps.first.locator(".scatterlayer .point")).to_have_count(11)
                    expect(page.get_by_text("does not reach the map tiles")).to_be_visible()
                    expect(page.get_by_text("its types").first).to_be_attached()
                    if role == "operator":
                        page.get_by_test_id("stMultiSelect").first.click()
                        page.get_by_role("option", name=f"{MODEL}@{populated.candidate}").click()
                        page.keyboard.press("Escape")
                        settled(page)
                        expect(
                            page.get_by_text(f"{MODEL}@{populated.candidate} · ").first
                        ).to_be_visible()
                        expect(maps).to_have_count(3)  # two maps and the category scores
                        shoot(page, "preview")

                    _nav(page, "Audit")
                    expect(_heading(page, "Audit a version")).to_be_visible()
                    settled(page)
                    expect(page.get_by_text("Model configuration:")).to_be_visible()
                    expect(
                        page.get_by_text(re.compile("music halls.+establishment"))
                    ).to_be_visible()
                    if role == "viewer":
                        expect(page.get_by_text("can read audits")).to_be_visible()
                        continue
                    button = page.get_by_role("button", name="Record verdict")
                    page.get_by_placeholder("What you checked").fill("lists look right")
                    button.click()
                    expect(page.get_by_text("choose Approve or Reject")).to_be_visible()
                    if role == "auditor":
                        page.get_by_test_id("stRadio").get_by_text("Approve").click()
                        page.get_by_placeholder("What you checked").fill("lists look right")
                        button.click()
                        expect(page.get_by_text(re.compile("Recorded: approve"))).to_be_visible()
                        shoot(page, "audit")
                except Exception:
                    page.screenshot(path=str(server.registry.root / f"failure-{user}.png"))
                    print(server.log.read_text()[-5000:])
                    raise
                finally:
                    context.close()
        finally:
            browser.close()
