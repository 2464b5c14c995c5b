"""Charts and words as people read them: no "None", no raw field names or UUIDs where words are
expected, shares as percentages, plurals, legends clear of the axis labels, and a model report
whose charts keep their colours and labels wherever it is built."""

from __future__ import annotations

import json
import re

import plotly.io as pio
import pytest

from tests.dashboard.conftest import assert_clean, open_page, sign_in
from tests.fixtures.dashboard import MODEL


def test_the_model_report_keeps_its_colours_and_labels(populated, monkeypatch) -> None:
    from core.review import report

    # The process that builds the report may have another default (a dark or a host's theme).
    monkeypatch.setattr(pio.templates, "default", "plotly_dark")
    html, _ = report.build(MODEL, populated.candidate)
    assert "rgb(17,17,17)" not in html, "the report's charts follow the host's template"
    assert '"type":"bar"' in html and '"orientation":"h"' in html, "slice names stay whole"
    assert html.count('"template":') >= 2 and '"color":"#1565c0"' in html, "own colours"


def _figures(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def test_legends_sit_clear_of_tilted_or_long_axis_labels(populated) -> None:
    at = sign_in("victor")
    open_page(at, "preview")
    at.slider(key="preview_r_15").set_value(5).run()
    assert_clean(at)
    scores = next(f for f in _figures(at) if "Predicted" in str(f["layout"].get("title")))
    legend = scores["layout"]["legend"]
    assert legend.get("orientation") == "h" and legend.get("y", 0) >= 1, legend


@pytest.mark.parametrize("page", ["audit"])
def test_no_none_and_counted_words(populated, page: str) -> None:
    at = sign_in("ana")
    open_page(at, page)
    assert_clean(at)
    texts = [m.value for m in [*at.markdown, *at.caption, *at.info, *at.warning]]
    assert not [t for t in texts if re.search(r"\b1 categories\b|\bNone\b", t)]


def test_service_resources_keep_a_line_when_samples_cover_little_of_the_period(
    dash_registry,
) -> None:
    """Half an hour of samples over a 30-day period: drawn in buckets that leave a line."""
    import datetime as dt

    from sqlalchemy import insert

    from core.db import transaction, utcnow
    from core.db.tables import ResourceSampleRow
    from dashboard.cache import insight as insight_cache

    now = utcnow()
    with transaction() as s:
        s.execute(
            insert(ResourceSampleRow),
            [
                {
                    "ts": now - dt.timedelta(seconds=15 * i),
                    "kind": "api",
                    "host": "h",
                    "pid": 1,
                    "cpu": 0.1,
                    "rss_mb": 100.0 + i,
                    "peak_rss_mb": 200.0,
                }
                for i in range(120)
            ],
        )
    usage = insight_cache.resource_usage(30)
    assert len(usage) >= insight_cache.RESOURCE_POINTS
    assert usage["ts"].nunique() == len(usage)
