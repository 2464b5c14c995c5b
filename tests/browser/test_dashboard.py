"""The main flows in a real browser: sign in, every page, a preview, promote and roll back.

Screenshots of the pages go to ``docs/screenshots/`` (linked from the README), so the
pictures there always show the dashboard as it is.
"""

from __future__ import annotations

import re

import pytest

from core import registry
from core.registry import audit
from tests.browser.conftest import Server
from tests.fixtures.browser import VIEWPORT, WAIT_MS, choose, open_page, settled, shoot, sign_in
from tests.fixtures.dashboard import MODEL

pytestmark = pytest.mark.browser


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
            # While a person types, the browser loads the charts' library and draws with it.
            warm_up = page.locator(".st-key-ui_chart_warm_up")
            expect(warm_up.locator(".js-plotly-plot .main-svg").first).to_be_attached()
            box = warm_up.bounding_box()
            assert box is not None and box["height"] <= 20, "a strip nobody notices"

            sign_in(page, "olga")
            sidebar = page.get_by_test_id("stSidebar")
            expect(sidebar.get_by_text("Signed in as")).to_be_visible()
            expect(sidebar.get_by_text("operator", exact=True)).to_be_visible()
            expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()
            expect(page.get_by_text("Recent stage changes")).to_be_visible()
            shoot(page, "overview")

            # Models: the table and a version's page.
            open_page(page, "Models")
            expect(page.get_by_text(re.compile(r"Versions 1–\d+ of \d+"))).to_be_visible()
            choose(page, "Version", f"{MODEL}@{populated.candidate}")
            expect(
                page.get_by_role("heading", name=f"{MODEL}@{populated.candidate}")
            ).to_be_visible()
            page.get_by_role("tab", name="Training").click()
            expect(page.get_by_text("Training history")).to_be_visible()
            shoot(page, "models")

            # Compare: metrics and the ranked-list difference, computed on the server.
            open_page(page, "Compare", "Compare versions")
            expect(page.get_by_text(re.compile("Mean overlap@10"))).to_be_visible()
            shoot(page, "compare")

            # Preview: the production list for a user from the dataset, beside the map.
            open_page(page, "Preview", "Preview recommendations")
            choose(page, "Model", MODEL)
            settled(page)
            # The map's caption moved up a place: until Streamlit drops the run's stale
            # elements, the old copy may still be on the page beside the new one.
            expect(page.get_by_text("No rating given yet")).to_have_count(1)
            expect(page.get_by_text("No rating given yet")).to_be_visible()
            page.get_by_role("button", name="Random user").click()
            settled(page)
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
            settled(page)
            expect(page.get_by_text(re.compile(r"\d+ of \d+ places also in"))).to_be_visible()
            shoot(page, "preview")

            # Audit: the stratified sample, its warnings, and a verdict.
            open_page(page, "Audit", "Audit a version")
            expect(page.get_by_text("By taste segment")).to_be_visible()
            page.get_by_test_id("stRadio").get_by_text("Approve").click()  # no default verdict
            page.get_by_placeholder("What you checked").fill("lists look right")
            page.get_by_role("button", name="Record verdict").click()
            expect(page.get_by_text(re.compile("Recorded: approve"))).to_be_visible()
            shoot(page, "audit")
            assert [v.auditor for v in audit.verdicts(MODEL, populated.candidate)] == ["olga"]

            # Deploy: promote the candidate to production through the gate confirmation.
            open_page(page, "Deploy")
            choose(page, "Version", populated.candidate)
            page.get_by_test_id("stRadio").get_by_text("production", exact=True).click()
            reason = page.get_by_placeholder("why this version")
            reason.fill("best lists in the audit")
            reason.press("Enter")
            settled(page)
            page.get_by_role("button", name="Review gates").click()
            expect(page.get_by_text(re.compile("metrics gate"))).to_be_visible()
            expect(page.get_by_role("button", name="Confirm promotion")).to_be_enabled()
            shoot(page, "deploy")
            page.get_by_role("button", name="Confirm promotion").click()
            expect(
                page.get_by_text(f"{MODEL}@{populated.candidate} is now in production")
            ).to_be_visible()
            assert registry.get_model(MODEL).production == populated.candidate
            settled(page)

            # Roll back in one step, with a reason. Choosing the tab reruns the page (its
            # panel is drawn then): a reason typed during that run would be lost with the
            # widget it went into.
            page.get_by_role("tab", name="Roll back").click()
            settled(page)
            why = page.get_by_placeholder("what went wrong")
            why.fill("users complain about the lists")
            why.press("Enter")
            settled(page)
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
