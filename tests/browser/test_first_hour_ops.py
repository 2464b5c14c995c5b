"""The rest of the first hour in Chromium: an admin manages accounts (each account's own role,
confirmation before a change, the last admin protected, disable and enable again); an operator
promotes with a canary and rolls back twice, the second time past the version just rolled back
from, never back to it."""

from __future__ import annotations

import re

import pytest

from core import registry
from core.accounts import auth
from tests.browser.conftest import Server
from tests.fixtures.browser import (
    VIEWPORT,
    WAIT_MS,
    choose,
    open_page,
    settled,
    shoot,
    sign_in,
)
from tests.fixtures.dashboard import MODEL

pytestmark = pytest.mark.browser


def _change_box(page, label: str, option: str) -> None:
    """Pick ``option`` in the "Change an account" panel's box ``label`` (the new-account form
    beside it has a box of the same name, and comes first on the page)."""
    box = page.get_by_test_id("stSelectbox").filter(has=page.get_by_text(label, exact=True))
    box.last.click()
    page.get_by_role("option", name=option, exact=True).first.click()
    settled(page)


def _confirm(page, question: str | re.Pattern[str]) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_text(question)).to_be_visible()
    page.get_by_role("button", name="Confirm", exact=True).click()
    settled(page)


def _admin_manages_accounts(page) -> None:
    from playwright.sync_api import expect

    open_page(page, "Users")
    choose(page, "Account", "victor")
    expect(page.get_by_text("victor is viewer")).to_be_visible()
    _change_box(page, "Role", "auditor")
    page.get_by_role("button", name="Set role…").click()
    settled(page)
    assert auth.get_user("victor").role == "viewer"  # nothing changes before the confirmation
    _confirm(page, "Change victor from viewer to auditor?")
    expect(page.get_by_text("victor is now auditor (was viewer).")).to_be_visible()
    assert auth.get_user("victor").role == "auditor"

    # The only admin cannot demote themselves: core refuses, the page says why.
    choose(page, "Account", "admin")
    expect(page.get_by_text("admin is admin")).to_be_visible()
    _change_box(page, "Role", "viewer")
    page.get_by_role("button", name="Set role…").click()
    settled(page)
    _confirm(page, "Change admin from admin to viewer?")
    expect(page.get_by_text(re.compile("last active admin"))).to_be_visible()
    assert auth.get_user("admin").role == "admin"

    # Disable an account, then enable it again.
    choose(page, "Account", "victor")
    page.get_by_role("button", name="Disable account…").click()
    settled(page)
    _confirm(page, re.compile("Disable victor"))
    expect(page.get_by_text(re.compile("victor is disabled"))).to_be_visible()
    assert auth.get_user("victor").disabled
    page.get_by_role("button", name="Enable account…").click()
    settled(page)
    _confirm(page, "Enable victor again?")
    expect(page.get_by_text("victor is enabled again.")).to_be_visible()
    assert not auth.get_user("victor").disabled
    shoot(page, "users")


def _promote(page, version: str, stage: str, reason: str) -> None:
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Promote").click()
    settled(page)
    choose(page, "Version", version)
    page.get_by_test_id("stRadio").get_by_text(stage, exact=True).click()
    settled(page)
    box = page.get_by_placeholder("why this version")
    box.fill(reason)
    box.press("Enter")
    settled(page)
    page.get_by_role("button", name="Review gates").click()
    settled(page)
    expect(page.get_by_text(f"Reason: {reason}")).to_be_visible()
    page.get_by_role("button", name="Confirm promotion").click()
    expect(page.get_by_text(f"{MODEL}@{version} is now in {stage}")).to_be_visible()
    settled(page)


def _roll_back(page, current: str, target: str, reason: str) -> None:
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Roll back").click()
    settled(page)
    expect(page.get_by_text(f"Production goes back from {current} to {target}")).to_be_visible()
    why = page.get_by_placeholder("what went wrong")
    why.fill(reason)
    why.press("Enter")
    settled(page)
    page.get_by_role("button", name="Roll back production").click()
    expect(page.get_by_text(f"Rolled back {MODEL} from {current} to {target}")).to_be_visible()
    settled(page)


def _operator_promotes_with_a_canary_and_rolls_back_twice(page, server: Server) -> None:
    from playwright.sync_api import expect

    populated = server.populated
    first, second = populated.previous_production, populated.production
    newest = populated.candidate
    open_page(page, "Deploy")

    # The newest version goes to staging, and a quarter of the traffic goes to it.
    _promote(page, newest, "staging", "newest lists for a canary")
    assert registry.get_model(MODEL).staging == newest
    page.get_by_role("tab", name="Canary and audit").click()
    settled(page)
    slider = page.get_by_role("slider").first
    slider.focus()
    for _ in range(15):  # 10 % → 25 %, one point a key press
        slider.press("ArrowRight")
    settled(page)
    expect(page.get_by_test_id("stSliderThumbValue").first).to_have_text("25")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text(f"{MODEL}: canary share 25%")).to_be_visible()
    assert registry.get_model(MODEL).canary_share == pytest.approx(0.25)
    expect(page.get_by_text("canary share 25% of traffic")).to_be_visible()

    # Then to production, and back twice: the second rollback goes past the version just
    # rolled back from (the newest) to the one before, never back to it.
    _promote(page, newest, "production", "the canary held up")
    assert registry.get_model(MODEL).production == newest
    _roll_back(page, newest, second, "users complain about the newest lists")
    assert registry.get_model(MODEL).production == second
    _roll_back(page, second, first, "the older lists were better still")
    assert registry.get_model(MODEL).production == first
    page.get_by_role("tab", name="Roll back").click()
    settled(page)
    expect(page.get_by_text(f"Production goes back from {first} to {newest}")).to_have_count(0)
    shoot(page, "rollback")

    rollbacks = [(e.version, e.actor) for e in registry.timeline(MODEL) if e.action == "rollback"]
    assert rollbacks[:2] == [(first, "olga"), (second, "olga")]


def test_admin_accounts_and_operator_canary_and_two_rollbacks(
    server: Server, chromium: str
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium)
        try:
            for user, flow in [
                ("admin", lambda page: _admin_manages_accounts(page)),
                ("olga", lambda page: _operator_promotes_with_a_canary_and_rolls_back_twice(
                    page, server
                )),
            ]:  # fmt: skip
                context = browser.new_context(viewport=VIEWPORT)
                page = context.new_page()
                page.set_default_timeout(WAIT_MS)
                try:
                    page.goto(server.url)
                    sign_in(page, user)
                    sync_api.expect(page.get_by_text("Signed in as")).to_be_visible()
                    settled(page)
                    flow(page)
                except Exception:
                    page.screenshot(path=str(server.registry.root / f"failure-{user}.png"))
                    print(server.log.read_text()[-5000:])
                    raise
                finally:
                    context.close()
        finally:
            browser.close()
