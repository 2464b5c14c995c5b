"""The main flows in a real browser: sign in, every page, a preview, promote and roll back.

Screenshots of the pages go to ``docs/screenshots/`` (linked from the README), so the
pictures there always show the dashboard as it is.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core import registry
from core.registry import audit
from tests.browser.conftest import Server
from tests.conftest import PROJECT_ROOT
from tests.dashboard.builders import MODEL, PASSWORDS

pytestmark = pytest.mark.browser

SHOTS = PROJECT_ROOT / "docs" / "screenshots"
WAIT_MS = 30_000
VIEWPORT = {"width": 1440, "height": 1400}


def _shoot(page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    _settled(page)
    # Pictures show a page from its top, whatever was scrolled to while driving it.
    page.evaluate(
        "() => document.querySelectorAll('*').forEach(e => { if (e.scrollTop) e.scrollTop = 0; })"
    )
    page.wait_for_timeout(200)
    page.screenshot(path=str(path))
    return path


def _settled(page) -> None:
    """Wait until Streamlit finished the current run (its status widget disappears)."""
    page.wait_for_timeout(300)
    page.get_by_test_id("stStatusWidget").wait_for(state="hidden", timeout=WAIT_MS)
    page.wait_for_timeout(300)


def _open(page, title: str, heading: str | None = None) -> None:
    from playwright.sync_api import expect

    link = page.get_by_test_id("stSidebarNavLink").filter(has_text=title)
    more = page.get_by_test_id("stSidebarNavViewButton")
    if not link.count() and more.count() and "more" in more.inner_text().lower():
        more.click()  # Streamlit folds a long navigation behind "View more"
    link.click()
    expect(page.get_by_role("heading", name=heading or title, level=1)).to_be_visible(
        timeout=WAIT_MS
    )
    _settled(page)


def _choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the selectbox labelled ``label``."""
    box = page.get_by_test_id("stSelectbox").filter(has=page.get_by_text(label, exact=True))
    box.first.click()
    page.get_by_role("option", name=option, exact=False).first.click()
    _settled(page)


def _sign_in(page, user: str) -> None:
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password", exact=True).fill(PASSWORDS[user])
    page.get_by_role("button", name="Sign in").click()


def test_sign_in_browse_preview_promote_and_roll_back(server: Server, chromium: str) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    expect = sync_api.expect
    populated = server.populated

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium)
        page = browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(WAIT_MS)
        try:
            page.goto(server.url)

            _sign_in(page, "olga")
            sidebar = page.get_by_test_id("stSidebar")
            expect(sidebar.get_by_text("Signed in as")).to_be_visible()
            expect(sidebar.get_by_text("operator", exact=True)).to_be_visible()
            expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()
            expect(page.get_by_text("Recent stage changes")).to_be_visible()
            _shoot(page, "overview")

            # Models: the table and a version's page.
            _open(page, "Models")
            expect(page.get_by_text(re.compile(r"Versions 1–\d+ of \d+"))).to_be_visible()
            _choose(page, "Version", f"{MODEL}@{populated.candidate}")
            expect(
                page.get_by_role("heading", name=f"{MODEL}@{populated.candidate}")
            ).to_be_visible()
            page.get_by_role("tab", name="Training").click()
            expect(page.get_by_text("Training history")).to_be_visible()
            _shoot(page, "models")

            # Compare: metrics and the ranked-list difference, computed on the server.
            _open(page, "Compare", "Compare versions")
            expect(page.get_by_text(re.compile("Mean overlap@10"))).to_be_visible()
            _shoot(page, "compare")

            # Preview: the production list for a user from the dataset, beside the map.
            _open(page, "Preview", "Preview recommendations")
            _choose(page, "Model", MODEL)
            _settled(page)
            # The map's caption moved up a place: until Streamlit drops the run's stale
            # elements, the old copy may still be on the page beside the new one.
            expect(page.get_by_text("No rating given yet")).to_have_count(1)
            expect(page.get_by_text("No rating given yet")).to_be_visible()
            page.get_by_role("button", name="Random user").click()
            _settled(page)
            ratings_of = page.get_by_text(re.compile(r"Ratings of .+ from madrid@1"))
            expect(ratings_of).to_have_count(1)
            expect(ratings_of).to_be_visible()
            expect(page.get_by_text("No rating given yet")).to_have_count(0)
            expect(page.get_by_text(re.compile(r"\d+ places in \d+ categories"))).to_be_visible()
            expect(page.get_by_text(f"{MODEL}@{populated.production}").first).to_be_visible()
            # The candidate beside production, each with its list and its places on the map.
            page.get_by_test_id("stMultiSelect").first.click()
            page.get_by_role("option", name=f"{MODEL}@{populated.candidate}").click()
            page.keyboard.press("Escape")
            _settled(page)
            expect(page.get_by_text(re.compile(r"\d+ of \d+ places also in"))).to_be_visible()
            _shoot(page, "preview")

            # Audit: the stratified sample, its warnings, and a verdict.
            _open(page, "Audit", "Audit a version")
            expect(page.get_by_text("By taste segment")).to_be_visible()
            page.get_by_test_id("stRadio").get_by_text("Approve").click()  # no default verdict
            page.get_by_placeholder("What you checked").fill("lists look right")
            page.get_by_role("button", name="Record verdict").click()
            expect(page.get_by_text(re.compile("Recorded: approve"))).to_be_visible()
            _shoot(page, "audit")
            assert [v.auditor for v in audit.verdicts(MODEL, populated.candidate)] == ["olga"]

            # Deploy: promote the candidate to production through the gate confirmation.
            _open(page, "Deploy")
            _choose(page, "Version", populated.candidate)
            page.get_by_test_id("stRadio").get_by_text("production", exact=True).click()
            reason = page.get_by_placeholder("why this version")
            reason.fill("best lists in the audit")
            reason.press("Enter")
            _settled(page)
            page.get_by_role("button", name="Review gates").click()
            expect(page.get_by_text(re.compile("metrics gate"))).to_be_visible()
            expect(page.get_by_role("button", name="Confirm promotion")).to_be_enabled()
            _shoot(page, "deploy")
            page.get_by_role("button", name="Confirm promotion").click()
            expect(
                page.get_by_text(f"{MODEL}@{populated.candidate} is now in production")
            ).to_be_visible()
            assert registry.get_model(MODEL).production == populated.candidate
            _settled(page)

            # Roll back in one step, with a reason. Choosing the tab reruns the page (its
            # panel is drawn then): a reason typed during that run would be lost with the
            # widget it went into.
            page.get_by_role("tab", name="Roll back").click()
            _settled(page)
            why = page.get_by_placeholder("what went wrong")
            why.fill("users complain about the lists")
            why.press("Enter")
            _settled(page)
            expect(why).to_have_value("users complain about the lists")
            page.get_by_role("button", name="Roll back production").click()
            expect(page.get_by_text(re.compile(r"Rolled back recsys from"))).to_be_visible()
            assert registry.get_model(MODEL).production == populated.production

            changes = [
                (e.action, e.version, e.actor)
                for e in registry.timeline(MODEL)
                if e.action in ("promote", "rollback")
            ][:2]
            assert changes == [
                ("rollback", populated.production, "olga"),
                ("promote", populated.candidate, "olga"),
            ]
        except Exception:
            page.screenshot(path=str(server.registry.root / "failure.png"))
            print(server.log.read_text()[-5000:])
            raise
        finally:
            browser.close()
