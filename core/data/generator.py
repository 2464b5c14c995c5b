"""A seeded generator of realistic Planwise users.

The original rating data is private, so the product makes its own: each user leans towards
one or two taste archetypes (culture, food, nightlife, nature, ...), rates the categories they
care about (plus a few at random), and rates liked categories high and the rest low. A drift
episode (``summer`` by default) shifts tastes from a given day on, so drift detection and
retraining have something real to find.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core.data.categories import CATEGORIES
from core.errors import BadInput

ARCHETYPES: dict[str, dict[str, float]] = {
    "culture": {
        "museums": 1.0,
        "art galleries": 0.9,
        "monuments": 0.8,
        "theatres": 0.7,
        "tourist attractions": 0.6,
        "music halls": 0.5,
        "cafes": 0.3,
    },
    "foodie": {
        "restaurants": 1.0,
        "burger/pizza shops": 0.7,
        "bakeries": 0.8,
        "cafes": 0.7,
        "market": 0.6,
        "farmer market": 0.6,
        "juice bars": 0.4,
    },
    "nightlife": {
        "pubs/bars": 1.0,
        "dance clubs": 0.9,
        "music halls": 0.7,
        "burger/pizza shops": 0.5,
        "restaurants": 0.4,
    },
    "nature": {
        "parks": 1.0,
        "nature": 1.0,
        "gardens": 0.8,
        "view points": 0.6,
        "zoo": 0.4,
        "juice bars": 0.3,
    },
    "family": {
        "amusement parks": 1.0,
        "zoo": 0.9,
        "parks": 0.7,
        "malls": 0.5,
        "swimming pools": 0.5,
        "burger/pizza shops": 0.5,
        "supermarket": 0.3,
    },
    "shopper": {
        "malls": 1.0,
        "market": 0.6,
        "supermarket": 0.5,
        "cafes": 0.5,
        "beauty & spas": 0.5,
        "local services": 0.4,
    },
    "wellness": {
        "beauty & spas": 1.0,
        "juice bars": 0.8,
        "resorts": 0.7,
        "swimming pools": 0.6,
        "gardens": 0.5,
        "hotels/other lodgings": 0.4,
    },
    "tourist": {
        "tourist attractions": 1.0,
        "monuments": 0.8,
        "view points": 0.8,
        "hotels/other lodgings": 0.7,
        "museums": 0.6,
        "restaurants": 0.5,
        "beaches": 0.3,
    },
}
ARCHETYPE_SHARE = {
    "culture": 0.16,
    "foodie": 0.18,
    "nightlife": 0.12,
    "nature": 0.12,
    "family": 0.1,
    "shopper": 0.1,
    "wellness": 0.08,
    "tourist": 0.14,
}

# The summer episode: beaches, swimming pools and view points up; museums down.
SUMMER_SHIFT = {"beaches": 0.9, "swimming pools": 0.8, "view points": 0.6, "museums": -0.9}


@dataclass(frozen=True)
class DriftEpisode:
    """From ``start_day`` on, add ``shift`` to the affinities (and so the ratings)."""

    start_day: int
    shift: dict[str, float] = field(default_factory=lambda: dict(SUMMER_SHIFT))
    strength: float = 1.0

    def __post_init__(self) -> None:
        unknown = set(self.shift) - set(CATEGORIES)
        if unknown:
            raise BadInput(f"drift episode names unknown categories: {sorted(unknown)}")


def _affinity_matrix() -> tuple[list[str], np.ndarray]:
    names = list(ARCHETYPES)
    mat = np.zeros((len(names), len(CATEGORIES)))
    index = {c: i for i, c in enumerate(CATEGORIES)}
    for a, name in enumerate(names):
        for cat, value in ARCHETYPES[name].items():
            mat[a, index[cat]] = value
    return names, mat


def generate_users(
    n: int,
    *,
    seed: int = 0,
    days: int = 30,
    start: dt.datetime | None = None,
    drift: DriftEpisode | None = None,
    id_prefix: str = "u",
) -> pd.DataFrame:
    """``n`` users: ``user_id``, ``timestamp`` (UTC, over ``days``) and the 29 ratings."""
    if n < 1:
        raise BadInput(f"number of users must be at least 1, got {n}")
    if days < 1:
        raise BadInput(f"days must be at least 1, got {days}")
    rng = np.random.default_rng(seed)
    start = start or dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    names, aff = _affinity_matrix()
    shares = np.array([ARCHETYPE_SHARE[a] for a in names])
    shares /= shares.sum()

    primary = rng.choice(len(names), size=n, p=shares)
    secondary = rng.choice(len(names), size=n, p=shares)
    mix = rng.uniform(0.0, 0.45, size=n)[:, None]
    taste = (1 - mix) * aff[primary] + mix * aff[secondary]
    taste += rng.normal(0.0, 0.12, size=taste.shape)  # personal quirks

    offsets = np.sort(rng.uniform(0, days * 86400.0, size=n))
    if drift is not None:
        drifting = offsets >= drift.start_day * 86400.0
        shift = np.zeros(len(CATEGORIES))
        for cat, value in drift.shift.items():
            shift[CATEGORIES.index(cat)] = value * drift.strength
        taste[drifting] += shift

    # Which categories each user rates: mostly the ones they care about, some at random.
    n_rated = np.clip(rng.poisson(6, size=n) + 2, 2, 20)
    interest = np.clip(np.abs(taste), 0.02, None) + 0.08
    keys = rng.random(taste.shape) ** (1.0 / interest)  # weighted sampling without replacement
    order = np.argsort(-keys, axis=1)
    rated = np.zeros(taste.shape, dtype=bool)
    ranks = np.argsort(order, axis=1)
    rated[ranks < n_rated[:, None]] = True

    raw = 1.6 + 3.6 * taste + rng.normal(0.0, 0.55, size=taste.shape)
    ratings = np.clip(np.rint(raw), 1, 5)
    ratings[~rated] = 0.0

    frame = pd.DataFrame(ratings, columns=list(CATEGORIES))
    frame.insert(0, "timestamp", pd.to_datetime(start) + pd.to_timedelta(offsets, unit="s"))
    width = max(6, len(str(n)))
    frame.insert(0, "user_id", [f"{id_prefix}{seed}-{i:0{width}d}" for i in range(n)])
    return frame


def taste_segment(ratings: np.ndarray) -> np.ndarray:
    """The archetype whose affinity best matches each user's ratings (for slicing)."""
    names, aff = _affinity_matrix()
    centred = np.where(ratings > 0, ratings - 3.0, 0.0)
    return np.asarray(names)[np.argmax(centred @ aff.T, axis=1)]
