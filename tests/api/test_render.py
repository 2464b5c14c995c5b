"""The response joined from pieces is, byte for byte, what orjson writes for the same fields."""

from __future__ import annotations

import numpy as np
import orjson
import pandas as pd
import pytest

from api import render
from core.data import catalogue
from core.data.categories import CATEGORIES, N_CATEGORIES
from core.serving import ranking


def _reference(head: dict, cat: catalogue.Catalogue, ranked: ranking.Ranked) -> bytes:
    at = ranked.indices
    places = [
        {
            "place_id": p,
            "name": n,
            "category": CATEGORIES[c],
            "score": s,
            "distance_m": d,
            "lat": la,
            "lng": ln,
        }
        for p, n, c, s, d, la, ln in zip(
            cat.place_ids[at].tolist(),
            cat.names[at].tolist(),
            ranked.categories.tolist(),
            ranked.scores.tolist(),
            ranked.distances_m.tolist(),
            cat.lat[at].tolist(),
            cat.lng[at].tolist(),
            strict=True,
        )
    ]
    return orjson.dumps({**head, "places": places})


@pytest.mark.parametrize("seed", range(4))
def test_the_joined_body_is_what_orjson_writes(seed: int) -> None:
    cat = catalogue.load()
    pieces = render.pieces_for(cat)
    rng = np.random.default_rng(seed)
    head = {
        "request_id": "0190-x",
        "model": 'a "quoted" model',
        "version": "1.2.0",
        "variant": "canary",
    }
    lists = 0
    for _ in range(150):
        final = rng.uniform(0, 5, N_CATEGORIES)
        final[rng.random(N_CATEGORIES) < 0.3] = 0.0
        place = rng.integers(len(cat))
        lat = float(cat.lat[place] + rng.uniform(-0.01, 0.01))
        lng = float(cat.lng[place] + rng.uniform(-0.01, 0.01))
        ranked = ranking.rank(cat, final, lat, lng, int(rng.integers(1, 101)))
        lists += len(ranked.indices) > 0
        assert pieces.body(head, ranked) == _reference(head, cat, ranked)
    assert lists > 100  # most of them ranked places, not empty lists


def test_no_place_in_reach_is_an_empty_list() -> None:
    cat = catalogue.load()
    ranked = ranking.rank(cat, np.full(N_CATEGORIES, 3.0), 10.0, 10.0, 10)  # far from Madrid
    assert len(ranked.indices) == 0
    head = {"request_id": "r", "model": "m", "version": "1.0.0", "variant": "production"}
    assert render.pieces_for(cat).body(head, ranked) == _reference(head, cat, ranked)
    assert orjson.loads(render.pieces_for(cat).body(head, ranked))["places"] == []


def test_the_pieces_follow_the_catalogue_served() -> None:
    """A catalogue replaced in the process gets pieces of its own, not the last one's."""
    served = catalogue.load()
    assert render.pieces_for(served) is render.pieces_for(served)
    frame = pd.read_csv(catalogue.CATALOGUE_FILE).iloc[::-1].head(500).reset_index(drop=True)
    frame["name"] = [f'Café "{i}%" \\ ñ %s' if i % 2 else n for i, n in enumerate(frame["name"])]
    smaller = catalogue.from_frame(frame)
    pieces = render.pieces_for(smaller)
    assert pieces.catalogue is smaller and len(pieces.templates) == len(smaller) == 500
    ranked = ranking.rank(smaller, np.full(N_CATEGORIES, 3.0), *_somewhere(smaller), 20)
    head = {"request_id": "r", "model": "m", "version": "1.0.0", "variant": "production"}
    assert pieces.body(head, ranked) == _reference(head, smaller, ranked)
    assert render.pieces_for(served).catalogue is served


def _somewhere(cat: catalogue.Catalogue) -> tuple[float, float]:
    return float(cat.lat[0]), float(cat.lng[0])
