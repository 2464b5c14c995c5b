"""The model report as a reviewer opens it: a local file in Chromium, with the network cut.

Every request the page makes other than the file itself is recorded and refused, so a chart
library or font fetched from a CDN fails the test instead of silently working online.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core import registry, training
from core.accounts.auth import SYSTEM
from core.review import report
from tests.fixtures.browser import SHOTS, VIEWPORT
from tests.fixtures.data import ingest_generated
from tests.fixtures.families import ColdStartBroken

pytestmark = pytest.mark.browser


def test_the_report_renders_offline_and_flags_the_worse_slice(
    sqlite_backend, chromium: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playwright.sync_api import sync_playwright

    users = ingest_generated(sqlite_backend.root, n=3000, seed=3)
    prod = training.train(actor=SYSTEM, family="svd", dataset=users).version
    registry.promote(
        actor=SYSTEM, model="svd", version=prod.version, stage="production", reason="test promotion"
    )
    monkeypatch.setattr(training, "family_class", lambda name: ColdStartBroken)
    cand = training.train(actor=SYSTEM, family="svd", dataset=users).version
    out = tmp_path / "report.html"
    summary = report.write("svd", cand.version, out)
    assert summary["worse_slices"]

    outside: list[str] = []

    def refuse(route) -> None:
        outside.append(route.request.url)
        route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.route(lambda url: not url.startswith(("file://", "data:", "blob:")), refuse)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(out.as_uri())
            page.wait_for_load_state("load")
            page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=30_000)
            assert page.locator("h1").inner_text() == cand.label
            headings = page.locator("h2").all_inner_texts()
            for expected in ("Lineage", "Per-slice quality", "Audit verdicts", "Stage timeline"):
                assert expected in headings
            assert page.locator(".js-plotly-plot").count() >= 2  # slices and the map at least
            assert page.locator("tr.flag").filter(has_text="cold start").count() >= 1
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / "model-report.png"))
        finally:
            browser.close()
    assert outside == [], f"the report fetched from the network: {outside}"
    assert errors == []
