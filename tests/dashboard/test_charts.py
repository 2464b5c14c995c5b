"""Figures the pages draw, built directly: each must be a figure plotly accepts."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from dashboard import charts


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
