"""Slices, the request explorer and the model report on real trained versions and logs."""

from __future__ import annotations

import csv
import datetime as dt
import io

import numpy as np
import pytest

from core import monitoring, registry, training
from core.accounts.auth import SYSTEM
from core.data.categories import CATEGORIES
from core.errors import BadInput, NotFound
from core.monitoring import explorer
from core.review import report, slices
from tests.fixtures.data import ingest_generated
from tests.fixtures.families import ColdStartBroken

COLD = ("ratings given", "1–3 ratings (cold start)")


@pytest.fixture
def two_versions(sqlite_backend, monkeypatch):
    ref = ingest_generated(sqlite_backend.root, n=5000, seed=3)
    prod = training.train(actor=SYSTEM, family="svd", dataset=ref).version
    registry.promote(
        actor=SYSTEM, model="svd", version=prod.version, stage="production", reason="test promotion"
    )
    monkeypatch.setattr(training, "family_class", lambda name: ColdStartBroken)
    cand = training.train(
        actor=SYSTEM, family="svd", dataset=ref, description="<script>alert(1)</script>"
    ).version
    return prod, cand


def test_a_cold_start_regression_flags_exactly_that_slice(two_versions):
    prod, cand = two_versions
    rows = slices.compare_versions(cand)
    assert slices.flagged(rows) == [COLD]
    by_key = {(r.slicing, r.bucket): r for r in rows}
    assert by_key[COLD].delta < -0.1
    assert {r.slicing for r in rows} == {"ratings given", "taste segment"}
    assert slices.flagged(slices.compare_versions(prod, cand)) == []  # the other way round
    html, summary = report.build("svd", cand.version)
    assert summary["worse_slices"] == [COLD] and summary["integrity_ok"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
    assert "1–3 ratings (cold start)" in html and "Stage timeline" in html


def test_registry_text_is_escaped_and_only_the_figures_are_html(two_versions):
    """Descriptions and verdict comments are user input: shown as text, never run. The plotly
    figures are the report's only markup from outside the template."""
    from core.accounts.auth import Actor
    from core.registry import audit

    _, cand = two_versions
    audit.record_verdict(
        actor=Actor("olga", "operator"),
        model="svd",
        version=cand.version,
        verdict="reject",
        comment='<img src=x onerror="alert(2)"> worse on cold start',
    )
    html, summary = report.build("svd", cand.version)
    assert summary["verdicts"] == 1
    assert "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=" in html
    assert html.count("<script>alert") == 0
    assert html.count('class="plotly-graph-div"') == 2  # the slices and the map
    assert '<script type="text/javascript">' in html  # plotly's own, inlined once


def test_report_command_and_bad_input(two_versions, tmp_path):
    _, cand = two_versions
    out = report.write("svd", cand.version, tmp_path / "r.html")
    assert out["bytes"] > 100_000 and (tmp_path / "r.html").read_text().startswith("<!DOCTYPE")
    with pytest.raises(NotFound):
        report.build("svd", "9.9.9")


def _records(n: int, start: dt.datetime) -> list[monitoring.PredictionRecord]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        ratings = [0.0] * 29
        ratings[i % 29] = 5.0
        out.append(
            monitoring.PredictionRecord(
                model="m" if i % 3 else "other",
                version="1.0.0",
                variant="canary" if i % 5 == 0 else "production",
                ratings=ratings,
                k=3,
                places=[f"p{i}", "=HYPERLINK()"],
                categories=["=1+1", "cafes"],
                scores=[0.5, 0.4],
                latency_ms=float(rng.uniform(0.1, 20)),
                lat=40.41 + (i % 7) * 0.01,
                lng=-3.7,
                predicted=[1.0] * 29,
                error="boom" if i % 11 == 0 else None,
                ts=start + dt.timedelta(minutes=7 * i),
            )
        )
    return out


def test_explorer_pages_filters_exports(backend):
    start = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    records = _records(300, start)
    monitoring.write_batch(records)
    flt = explorer.RequestFilter(model="m", status="ok", min_latency_ms=5.0, rated=("museums",))
    expected = {
        r.request_id
        for r in records
        if r.model == "m"
        and r.error is None
        and r.latency_ms >= 5.0
        and r.ratings[CATEGORIES.index("museums")] > 0
    }
    seen, cursor = [], None
    while True:
        page = explorer.page(flt, before_id=cursor, size=3)
        seen += [i.request_id for i in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert set(seen) == expected and len(seen) == len(expected) == explorer.count(flt) > 0
    window = explorer.RequestFilter(start=start, end=start + dt.timedelta(hours=2))
    assert explorer.count(window) == sum(r.ts < start + dt.timedelta(hours=2) for r in records)
    monitoring.record_feedback(records[1].request_id, "p1")
    detail = explorer.get(records[1].request_id)
    assert (
        detail.request["places"] == ["p1", "=HYPERLINK()"]
        and detail.feedback[0]["place_id"] == "p1"
    )
    text = "".join(explorer.export_csv(explorer.RequestFilter(model="m")))
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) == 1 + sum(r.model == "m" for r in records)
    assert all(not cell.startswith("=") for row in rows[1:] for cell in row)
    with pytest.raises(BadInput, match="unknown category"):
        explorer.page(explorer.RequestFilter(rated=("casinos",)))
    with pytest.raises(NotFound):
        explorer.get("nope")


def test_traffic_slices(backend):
    start = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)  # a Monday
    monitoring.write_batch(_records(300, start))
    by_hour = slices.traffic_by_time_slice(
        "m", "hour of day", since=start, until=start + dt.timedelta(days=3)
    )
    assert by_hour["requests"].sum() == 200 and set(by_hour["bucket"]) <= set(range(24))
    by_day = slices.traffic_by_time_slice(
        None, "day of week", since=start, until=start + dt.timedelta(days=3)
    )
    assert list(by_day["bucket"]) == ["Mon", "Tue"]
    area = slices.traffic_by_area("m", since=start, until=start + dt.timedelta(days=3))
    assert area["requests"].sum() == 200 and len(area) >= 4
    with pytest.raises(BadInput):
        slices.traffic_by_time_slice("m", "moon phase", since=start)
