"""Figures the pages draw, built directly: each must be a figure plotly accepts."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from dashboard import backdrop, charts
from tests.dashboard.conftest import picture_alpha


def _places(n: int) -> list[SimpleNamespace]:
    return [
        SimpleNamespace(
            name=f"place {i}",
            category="parks",
            score=1.0 - i / 10,
            distance_m=100.0 * i,
            lat=40.4168 + i / 1000,
            lng=-3.7038 - i / 1000,
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("tiles", [False, True], ids=["plain plot", "street map"])
def test_the_preview_map_is_drawn_with_and_without_tiles(tiles: bool) -> None:
    """The street map (a browser that reaches the tile servers) raised: its markers take no
    outline, which the plain plot's numbered places have."""
    background = (np.array([40.41, 40.42]), np.array([-3.70, -3.71]))
    fig = charts.places_map(
        _places(10), lat=40.4168, lng=-3.7038, background=background, tiles=tiles
    )
    placed = [t for t in fig.data if t.name == "places by rank"]
    assert [str(x) for x in placed[0].text] == [str(r) for r in range(1, 11)]
    assert fig.to_json()


def test_without_tiles_the_catalogue_is_one_picture_behind_the_marks() -> None:
    """As thousands of markers the catalogue cost the browser ~0.25 s per map and visit; as
    one picture nothing. It still shows every place of the frame, and the legend names it."""
    rng = np.random.default_rng(0)
    lat, lng = 40.4168, -3.7038
    background = (lat + rng.uniform(-0.05, 0.05, 3000), lng + rng.uniform(-0.06, 0.06, 3000))
    fig = charts.places_map(_places(10), lat=lat, lng=lng, background=background, height=400)
    assert all(len(t.x) <= 72 for t in fig.data), "no trace of thousands of points"
    assert "catalogue" in [t.name for t in fig.data], "the legend still names the background"
    (image,) = fig.layout.images
    assert (image.xref, image.yref, image.layer) == ("x", "y", "below")
    assert image.x < lng < image.x + image.sizex and image.y - image.sizey < lat < image.y
    alpha = picture_alpha(image.source)
    assert alpha.shape == (600, 600)
    # The frame (1.25 radii each way, half as far again around it) holds ~900 of the 3,000
    # places: the picture is neither blank nor a grey sheet.
    assert 0.005 < (alpha > 0).mean() < 0.2


def test_a_backdrop_dot_sits_where_its_place_is() -> None:
    frame = backdrop.Frame(west=-3.8, east=-3.6, south=40.3, north=40.5, pixels=200)
    uri = backdrop.picture(
        np.array([40.45, 40.9]), np.array([-3.75, -3.7]), frame, radius_px=2.0, opacity=1.0
    )
    alpha = picture_alpha(uri)
    # (40.45, -3.75) is a quarter of the way from the north and from the west edge; the
    # second place is outside the frame.
    lit = np.argwhere(alpha > 0)
    assert lit.min(axis=0).tolist() >= [46, 46] and lit.max(axis=0).tolist() <= [53, 53]
    assert alpha[50, 50] == 255 and alpha[49, 49] == 255
    assert (alpha > 0).sum() < 30, "one dot of radius 2"


def test_on_a_street_map_the_catalogue_stays_markers() -> None:
    """Tiles come with their own drawing (a map layer), which the picture would not follow."""
    background = (np.array([40.41, 40.42, 40.43]), np.array([-3.70, -3.71, -3.72]))
    fig = charts.places_map(_places(3), lat=40.4168, lng=-3.7038, background=background, tiles=True)
    (catalogue,) = [t for t in fig.data if t.name == "catalogue"]
    assert catalogue.type == "scattermap" and len(catalogue.lat) == 3
    assert not fig.layout.images


def test_metric_bars_draw_a_panel_per_metric_and_a_colour_per_version() -> None:
    """Each metric on its own scale; one trace per panel (a trace per version and panel took
    the browser twice as long to draw), the versions named once in the legend."""
    import pandas as pd

    metrics = ["ndcg@10", "precision@10", "recall@10", "coverage", "rmse"]
    versions = ["m@1.0.0", "m@1.1.0", "m@1.2.0"]
    long = pd.DataFrame(
        [
            {"version": v, "metric": m, "value": (i + 1) * (j + 1) / 10}
            for i, v in enumerate(versions)
            for j, m in enumerate(metrics)
        ]
    )
    fig = charts.metric_bars(long)
    panels = [t for t in fig.data if not t.showlegend and t.showlegend is not None]
    assert len(panels) == len(metrics) and len(fig.data) == len(metrics) + len(versions)
    assert [a.text for a in fig.layout.annotations] == metrics
    assert len({(t.xaxis, t.yaxis) for t in panels}) == len(metrics), "a panel each"
    assert not any(getattr(fig.layout, f"yaxis{i or ''}").matches for i in range(6))
    colours = {tuple(t.marker.color) for t in panels}
    assert len(colours) == 1 and len(set(next(iter(colours)))) == len(versions)
    assert [t.name for t in fig.data if t.showlegend is not False] == versions
