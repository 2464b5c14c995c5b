"""The ``/recommend`` response body, joined from JSON pieces encoded once per catalogue.

A response lists up to ``k`` places of seven fields each; building a dictionary a place for
orjson cost more than the Python glue around the ranking. A place's id, name and coordinates
never change, so each place's JSON is encoded when the catalogue is first served, as a
template with slots for the category, score and distance of a request, filled by one bytes
``%`` each. The bytes are those ``orjson.dumps`` writes for the same dictionaries (a test holds
them equal), field order included.
"""

from __future__ import annotations

import threading

import orjson

from core.data.catalogue import Catalogue
from core.data.categories import CATEGORIES
from core.serving.ranking import Ranked


class PlacePieces:
    """Each place's JSON object as a template with three slots: category, score, distance."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self.templates = [
            orjson.dumps({"place_id": p, "name": n})[:-1].replace(b"%", b"%%")
            + b',"category":%s,"score":%s,"distance_m":%s,"lat":'
            + orjson.dumps(lat)
            + b',"lng":'
            + orjson.dumps(lng)
            + b"}"
            for p, n, lat, lng in zip(
                catalogue.place_ids.tolist(),
                catalogue.names.tolist(),
                catalogue.lat.tolist(),
                catalogue.lng.tolist(),
                strict=True,
            )
        ]
        self.categories = [orjson.dumps(c) for c in CATEGORIES]

    def body(self, head: dict[str, str], ranked: Ranked) -> bytes:
        """``head``'s fields, then ``"places"``: the ranked places, best first."""
        # orjson writes an array of floats as it writes each float, and no float's JSON
        # holds a comma
        scores = orjson.dumps(ranked.scores, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1]
        distances = orjson.dumps(ranked.distances_m, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1]
        templates, categories = self.templates, self.categories
        places = b",".join(
            [
                templates[row] % (categories[category], score, distance)
                for row, category, score, distance in zip(
                    ranked.indices.tolist(),
                    ranked.categories.tolist(),
                    scores.split(b","),
                    distances.split(b","),
                    strict=False,  # an empty ranking splits into one empty piece
                )
            ]
        )
        return orjson.dumps(head)[:-1] + b',"places":[' + places + b"]}"


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
