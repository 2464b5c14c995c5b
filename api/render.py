"""The ``/recommend`` response body, joined from JSON pieces encoded once per catalogue.

A response lists up to ``k`` places of seven fields each; building a dictionary a place for
orjson cost more than the Python glue around the ranking. A place's id, name and coordinates
never change, so the opening and closing piece of each place are encoded when the catalogue
is first served, and a response joins them around the category, score and distance of the
request. The bytes are those ``orjson.dumps`` writes for the same dictionaries (a test holds
them equal), field order included.
"""

from __future__ import annotations

import threading

import orjson

from core.catalogue import Catalogue
from core.categories import CATEGORIES
from core.ranking import Ranked


class PlacePieces:
    """Each place's constant JSON, around the slot for its category, score and distance."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self.heads = [
            orjson.dumps({"place_id": p, "name": n})[:-1] + b',"category":'
            for p, n in zip(catalogue.place_ids.tolist(), catalogue.names.tolist(), strict=True)
        ]
        self.tails = [
            b',"lat":' + orjson.dumps(lat) + b',"lng":' + orjson.dumps(lng) + b"}"
            for lat, lng in zip(catalogue.lat.tolist(), catalogue.lng.tolist(), strict=True)
        ]
        self.categories = [orjson.dumps(c) + b',"score":' for c in CATEGORIES]

    def body(self, head: dict[str, str], ranked: Ranked) -> bytes:
        """``head``'s fields, then ``"places"``: the ranked places, best first."""
        parts = [orjson.dumps(head)[:-1], b',"places":[']
        if len(ranked.indices):
            # orjson writes a list of floats exactly as it writes each one; no float's JSON
            # holds a comma
            scores = orjson.dumps(ranked.scores, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1]
            distances = orjson.dumps(ranked.distances_m, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1]
            heads, tails, categories = self.heads, self.tails, self.categories
            for n, (row, category, score, distance) in enumerate(
                zip(
                    ranked.indices.tolist(),
                    ranked.categories.tolist(),
                    scores.split(b","),
                    distances.split(b","),
                    strict=True,
                )
            ):
                if n:
                    parts.append(b",")
                parts += (heads[row], categories[category], score, b',"distance_m":')
                parts += (distance, tails[row])
        parts.append(b"]}")
        return b"".join(parts)


_pieces: PlacePieces | None = None
_lock = threading.Lock()


def pieces_for(catalogue: Catalogue) -> PlacePieces:
    """The pieces of this catalogue, encoded on first use (about 10 ms) and whenever a
    different catalogue object is served."""
    global _pieces
    pieces = _pieces
    if pieces is None or pieces.catalogue is not catalogue:
        with _lock:
            if _pieces is None or _pieces.catalogue is not catalogue:
                _pieces = PlacePieces(catalogue)
            pieces = _pieces
    return pieces
