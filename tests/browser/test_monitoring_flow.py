"""The monitoring pages in a real browser, after a few days of simulated traffic with a
drift episode: drift over time, serving health, one logged request, and the model report."""

from __future__ import annotations

import pytest

from core import registry
from core.accounts.auth import SYSTEM
from core.data.generator import DriftEpisode
from core.demo import simulate
from tests.browser.conftest import Server
from tests.fixtures.browser import VIEWPORT, WAIT_MS, open_page, settled, shoot, sign_in
from tests.fixtures.dashboard import MODEL

pytestmark = pytest.mark.browser


def test_drift_monitoring_explorer_and_report(server: Server, chromium: str) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    expect = sync_api.expect
    # Eighty requests a day: the monitoring job judges this model by day.
    registry.update_model(
        actor=SYSTEM,
        name=MODEL,
        settings={"monitor_window_minutes": 24 * 60, "monitor_min_rows": 50},
    )
    simulate.simulate(actor=SYSTEM, model=MODEL, days=5, users_per_day=80, drift=DriftEpisode(3))

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium)
        page = browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(WAIT_MS)
        try:
            page.goto(server.url)
            sign_in(page, "olga")
            expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()
            expect(page.get_by_text("Serving health, last 24 hours")).to_be_visible()
            expect(page.get_by_text(f"Open alerts on {MODEL}")).to_be_visible()

            open_page(page, "Data drift")
            expect(page.get_by_text("Drift share (latest)")).to_be_visible()
            expect(page.locator(".js-plotly-plot").first).to_be_visible()
            shoot(page, "data-drift")

            open_page(page, "Monitoring")
            expect(page.get_by_text("Open alerts", exact=True)).to_be_visible()
            assert page.locator(".js-plotly-plot").count() >= 4
            shoot(page, "monitoring")

            open_page(page, "Request explorer")
            expect(page.get_by_text("Page 1 · 50 requests, newest first")).to_be_visible()
            expect(page.get_by_role("heading", name="One request")).to_be_visible()
            settled(page)
            shoot(page, "request-explorer")

            open_page(page, "Slices & report", "Slices and model report")
            expect(page.get_by_text("Quality by slice against production")).to_be_visible()
            page.get_by_role("button", name="Build the report").click()
            expect(page.get_by_role("button", name="Download report.html")).to_be_visible(
                timeout=120_000
            )
            settled(page)
            shoot(page, "slices-and-report")
        finally:
            browser.close()
