"""The Madrid places catalogue, held as column arrays for the vectorised ranking.

The CSV is read once per process; everything the ranking needs per place (coordinates in
radians, the rating and review terms of the score, which categories the place can stand for)
is computed here so a ranking call only does arithmetic on arrays.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from core.config import PROJECT_ROOT
from core.data.categories import CATEGORIES, category_to_place_types
from core.errors import BadInput

CATALOGUE_FILE = PROJECT_ROOT / "data" / "planwise" / "madrid_places.csv"
REQUIRED_COLUMNS = ("place_id", "name", "lat", "lng", "types", "rating", "user_ratings_total")


def place_types(cell: object) -> frozenset[str]:
    """A place's types: its comma-separated ``types``, trimmed and lower-cased."""
    if not isinstance(cell, str):
        return frozenset()
    return frozenset(t.strip().lower() for t in cell.split(",") if t.strip())


STRIP_DEGREES = 0.005  # ~440 m of longitude in Madrid: a 2 km circle spans about ten strips
MAX_STRIPS = 4096


@dataclass(frozen=True, eq=False)
class SpatialLayout:
    """The places reordered for the ranking's candidate search: cut into strips of longitude,
    and by latitude within each strip, with the per-place columns the score needs in that
    order. The places inside a lat/lng box are then a binary search per strip, read in
    sequence, instead of a random walk over a latitude band that spans the whole city.
    ``rows`` maps a position back to the catalogue row (file order, which breaks ties).
    """

    rows: np.ndarray  # int64: catalogue row of each position
    strip_start: np.ndarray  # int64, n_strips + 1: first position of each strip
    lng_min: float
    strip_degrees: float
    columns: np.ndarray  # float64 (COLUMNS × places), each in layout order

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "lat",
        "lng",
        "lat_rad",
        "lng_rad",
        "cos_lat",
        "rating",
        "review_term",
    )

    @classmethod
    def of(cls, cat: Catalogue) -> SpatialLayout:
        n = len(cat)
        lng_min = float(cat.lng.min()) if n else 0.0
        span = float(cat.lng.max()) - lng_min if n else 0.0
        width = max(STRIP_DEGREES, span / MAX_STRIPS)
        n_strips = max(1, math.floor(span / width) + 1)
        strip = np.minimum(np.floor((cat.lng - lng_min) / width), n_strips - 1).astype(np.int64)
        rows = np.lexsort((np.arange(n), cat.lat, strip)).astype(np.int64)
        strip_start = np.searchsorted(strip[rows], np.arange(n_strips + 1)).astype(np.int64)
        source = np.stack([getattr(cat, name) for name in cls.COLUMNS])
        columns = np.ascontiguousarray(source[:, rows])
        return cls(rows, strip_start, lng_min, width, columns)


@dataclass(frozen=True, eq=False)
class Catalogue:
    """Column arrays of the places, in file order (the order ties are broken in)."""

    place_ids: np.ndarray
    names: np.ndarray
    lat: np.ndarray
    lng: np.ndarray
    lat_rad: np.ndarray
    lng_rad: np.ndarray
    cos_lat: np.ndarray
    rating: np.ndarray  # 0 where missing
    reviews: np.ndarray  # 0 where missing
    review_term: np.ndarray  # ln(1 + reviews) / ln(1 + max reviews)
    types: tuple[frozenset[str], ...]
    frame: pd.DataFrame
    _default_membership: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.place_ids)

    @functools.cached_property
    def layout(self) -> SpatialLayout:
        """The places in strips of longitude, by latitude within a strip (see SpatialLayout)."""
        return SpatialLayout.of(self)

    def category_masks(self, mapping: Mapping[str, Sequence[str]] | None = None) -> np.ndarray:
        """Each place's categories as a bit mask (bit ``c`` for category ``c``), in the order
        of :attr:`layout`: the ranking tests a user's categories best first and stops at the
        first one a place belongs to, instead of walking every category of every place."""
        member = self.membership(mapping)
        key = id(member)  # one matrix per mapping, kept for the life of the catalogue
        cached = self._masks_cache.get(key)
        if cached is None:
            bits = (member.astype(np.uint32) << np.arange(len(CATEGORIES), dtype=np.uint32)).sum(
                axis=1, dtype=np.uint32
            )
            cached = self._masks_cache[key] = np.ascontiguousarray(bits[self.layout.rows])
        return cached

    @functools.cached_property
    def _masks_cache(self) -> dict[int, np.ndarray]:
        return {}

    @functools.cached_property
    def _membership_cache(self) -> dict[tuple[tuple[str, tuple[str, ...]], ...], np.ndarray]:
        return {}

    def membership(self, mapping: Mapping[str, Sequence[str]] | None = None) -> np.ndarray:
        """Boolean (places × 29): whether a place's types intersect a category's types."""
        if mapping is None and self._default_membership is not None:
            return self._default_membership
        default = mapping is None
        mapping = mapping or category_to_place_types()
        key = tuple((c, tuple(sorted(t.lower() for t in mapping.get(c, ())))) for c in CATEGORIES)
        cached = self._membership_cache.get(key)
        if cached is not None:
            return cached
        vocabulary = sorted(set().union(*self.types))
        index = {t: i for i, t in enumerate(vocabulary)}
        has_type = np.zeros((len(self), len(vocabulary)), dtype=bool)
        for row, types in enumerate(self.types):
            has_type[row, [index[t] for t in types]] = True
        cat_types = np.zeros((len(vocabulary), len(CATEGORIES)), dtype=bool)
        for col, (_, wanted) in enumerate(key):
            for t in wanted:
                if t in index:
                    cat_types[index[t], col] = True
        member = (has_type.astype(np.int32) @ cat_types.astype(np.int32)) > 0
        member.setflags(write=False)
        self._membership_cache[key] = member
        if default:
            object.__setattr__(self, "_default_membership", member)
        return member


def from_frame(frame: pd.DataFrame, *, subject: str = "catalogue") -> Catalogue:
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise BadInput(f"{subject} lacks the columns {', '.join(missing)}")
    coords = frame[["lat", "lng"]].apply(pd.to_numeric, errors="coerce")
    bad = coords.isna().any(axis=1) | ~np.isfinite(coords.to_numpy()).all(axis=1)
    if bad.any():
        raise BadInput(
            f"{subject}: lat/lng not numeric in {int(bad.sum())} rows, "
            f"e.g. place {frame['place_id'][bad].iloc[0]!r}"
        )
    lat = coords["lat"].to_numpy(dtype=np.float64)
    lng = coords["lng"].to_numpy(dtype=np.float64)
    rating = pd.to_numeric(frame["rating"], errors="coerce").fillna(0.0).to_numpy(np.float64)
    reviews = (
        pd.to_numeric(frame["user_ratings_total"], errors="coerce").fillna(0.0).to_numpy(np.float64)
    )
    max_reviews = float(reviews.max()) if len(reviews) else 0.0
    denominator = math.log(1.0 + max_reviews)
    review_term = np.log1p(reviews) / denominator if denominator > 0 else np.zeros_like(reviews)
    lat_rad = np.radians(lat)
    return Catalogue(
        place_ids=frame["place_id"].astype(str).to_numpy(),
        names=frame["name"].astype(str).to_numpy(),
        lat=lat,
        lng=lng,
        lat_rad=lat_rad,
        lng_rad=np.radians(lng),
        cos_lat=np.cos(lat_rad),
        rating=rating,
        reviews=reviews,
        review_term=review_term,
        types=tuple(place_types(t) for t in frame["types"]),
        frame=frame,
    )


@functools.cache
def load(path: Path = CATALOGUE_FILE) -> Catalogue:
    """The catalogue of ``path`` (the shipped Madrid catalogue by default), read once."""
    if not path.is_file():
        raise BadInput(f"catalogue file {path} does not exist")
    frame = pd.read_csv(path, dtype={"place_id": str, "name": str, "types": str})
    return from_frame(frame, subject=f"catalogue {path.name}")


def madrid_bounds() -> tuple[float, float, float, float]:
    """(min lat, max lat, min lng, max lng) of the catalogue: where a location makes sense."""
    c = load()
    return float(c.lat.min()), float(c.lat.max()), float(c.lng.min()), float(c.lng.max())


# A category whose place types cover this share of the catalogue or more says nothing about a
# place: its label on a recommendation misleads (the Prado shown as a "music hall").
CATCH_ALL_SHARE = 0.9


@dataclass(frozen=True)
class CatchAllCategory:
    """A category of a model's mapping that matches almost every place of the catalogue."""

    category: str
    share: float  # of the catalogue's places that the category's types match
    types: tuple[str, ...]  # the category's place types
    generic: tuple[str, ...]  # those of its types that the places carry almost everywhere

    @property
    def message(self) -> str:
        return (
            f"Category '{self.category}' matches {self.share:.1%} of the catalogue's places "
            f"through the place type{'s' if len(self.generic) > 1 else ''} "
            f"{', '.join(self.generic) or ', '.join(self.types)}: its places are labelled "
            f"'{self.category}' whatever they are. Map it to narrower types in the model's "
            "ranking settings."
        )


def catch_all_categories(
    mapping: Mapping[str, Sequence[str]] | None = None,
    *,
    catalogue: Catalogue | None = None,
    threshold: float = CATCH_ALL_SHARE,
) -> list[CatchAllCategory]:
    """Categories of ``mapping`` (the shipped one by default) that match at least
    ``threshold`` of the places: a finding about a model's configuration, not its lists."""
    cat = catalogue if catalogue is not None else load()
    mapping = mapping or category_to_place_types()
    if not len(cat):
        return []
    shares = cat.membership(mapping).mean(axis=0)
    counts: dict[str, int] = {}
    for types in cat.types:
        for t in types:
            counts[t] = counts.get(t, 0) + 1
    found = []
    for col, category in enumerate(CATEGORIES):
        share = float(shares[col])
        if share >= threshold:
            mapped = tuple(mapping.get(category, ()))
            generic = tuple(t for t in mapped if counts.get(t, 0) / len(cat) >= threshold)
            found.append(CatchAllCategory(category, share, mapped, generic))
    return found


@functools.cache
def _types_by_id(path: Path) -> dict[str, tuple[str, ...]]:
    cat = load(path)
    return {pid: tuple(sorted(t)) for pid, t in zip(cat.place_ids, cat.types, strict=True)}


def types_of(place_id: str, path: Path = CATALOGUE_FILE) -> tuple[str, ...]:
    """A place's own types (sorted), shown beside the category it was recommended for."""
    return _types_by_id(path).get(str(place_id), ())


def own_types_label(place_id: str, path: Path = CATALOGUE_FILE) -> str:
    """The place's types without the ones nearly every place has (``establishment``,
    ``point_of_interest``): what tells an expert what the place is."""
    types = types_of(place_id, path)
    specific = [t for t in types if t not in _generic_types(path)]
    return ", ".join(specific or types) or "—"


@functools.cache
def _generic_types(path: Path) -> frozenset[str]:
    cat = load(path)
    counts: dict[str, int] = {}
    for types in cat.types:
        for t in types:
            counts[t] = counts.get(t, 0) + 1
    n = max(1, len(cat))
    return frozenset(t for t, c in counts.items() if c / n >= CATCH_ALL_SHARE)
