"""The Planwise ranking of DESIGN.md, vectorised over the catalogue.

Step 1 (the model's category scores) happens in ``core.predict``; this module takes the final
29 scores of a user and does steps 2–5 with array operations: haversine to every place at
once, the winning category per place as an arg-max over a masked matrix, one stable sort and
the round-robin over categories as a lexicographic sort on (turn, group order). The result is
the same list the row-by-row original produced, without a Python loop over places.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.catalogue import Catalogue
from core.categories import CATEGORIES, MAX_RATING, N_CATEGORIES
from core.errors import BadInput

EARTH_RADIUS_M = 6_371_000.0
MAX_K = 100


@dataclass(frozen=True)
class RankingConfig:
    """Weights, radius and category mapping; a model may override any of them."""

    radius_m: float = 2000.0
    w_distance: float = 0.1
    w_rating: float = 0.2
    w_reviews: float = 0.2
    w_category: float = 0.5
    mapping: Mapping[str, tuple[str, ...]] | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.radius_m) and self.radius_m > 0):
            raise BadInput(
                f"ranking radius must be a positive number of metres, got {self.radius_m}"
            )
        for name in ("w_distance", "w_rating", "w_reviews", "w_category"):
            value = getattr(self, name)
            if not math.isfinite(value):
                raise BadInput(f"ranking weight {name} must be finite, got {value}")
        if self.mapping is not None:
            unknown = set(self.mapping) - set(CATEGORIES)
            if unknown:
                raise BadInput(f"ranking mapping names unknown categories: {sorted(unknown)}")

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | None) -> RankingConfig:
        """The config of a model's ``settings["ranking"]`` (missing keys keep the defaults)."""
        raw = dict((settings or {}).get("ranking") or {})
        known = {"radius_m", "w_distance", "w_rating", "w_reviews", "w_category", "mapping"}
        unknown = set(raw) - known
        if unknown:
            raise BadInput(f"unknown ranking settings: {sorted(unknown)}")
        if "mapping" in raw and raw["mapping"] is not None:
            raw["mapping"] = {c: tuple(v) for c, v in raw["mapping"].items()}
        try:
            for key in known - {"mapping"}:
                if key in raw:
                    raw[key] = float(raw[key])
        except (TypeError, ValueError) as exc:
            raise BadInput(f"ranking settings must be numbers: {exc}") from exc
        return cls(**raw)


DEFAULT_CONFIG = RankingConfig()


@dataclass(frozen=True)
class Ranked:
    """Positions in the catalogue of the top-k places, with their scores and categories."""

    indices: np.ndarray
    scores: np.ndarray
    categories: np.ndarray  # index into CATEGORIES
    distances_m: np.ndarray


def check_location(lat: float, lng: float) -> None:
    if not (isinstance(lat, int | float) and isinstance(lng, int | float)):
        raise BadInput(f"location must be numbers, got lat={lat!r}, lng={lng!r}")
    if not (math.isfinite(lat) and -90.0 <= lat <= 90.0):
        raise BadInput(f"latitude must be a finite number in [-90, 90], got {lat}")
    if not (math.isfinite(lng) and -180.0 <= lng <= 180.0):
        raise BadInput(f"longitude must be a finite number in [-180, 180], got {lng}")


def check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise BadInput(f"k must be an integer from 1 to {MAX_K}, got {k!r}")


def distances_m(
    catalogue: Catalogue, lat: float, lng: float, rows: np.ndarray | None = None
) -> np.ndarray:
    """Haversine distance in metres from (lat, lng) to every place (or to ``rows``)."""
    lat1 = math.radians(lat)
    lat_rad = catalogue.lat_rad if rows is None else catalogue.lat_rad[rows]
    lng_rad = catalogue.lng_rad if rows is None else catalogue.lng_rad[rows]
    cos_lat = catalogue.cos_lat if rows is None else catalogue.cos_lat[rows]
    dlat = lat_rad - lat1
    dlng = lng_rad - math.radians(lng)
    a = np.sin(dlat / 2.0) ** 2 + math.cos(lat1) * cos_lat * np.sin(dlng / 2.0) ** 2
    return 2.0 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(a, 1.0)))


def _box(catalogue: Catalogue, lat: float, lng: float, radius_m: float) -> np.ndarray:
    """Rows inside a lat/lng box that holds the whole circle (with a 1 % margin).

    Two comparisons per place instead of the trigonometry; the exact haversine then runs
    on the few hundred rows left, so the result is the same as over the whole catalogue.
    """
    dlat = math.degrees(radius_m / EARTH_RADIUS_M) * 1.01
    cos_edge = math.cos(math.radians(min(abs(lat) + dlat, 89.9)))
    dlng = math.degrees(radius_m / (EARTH_RADIUS_M * cos_edge)) * 1.01
    if dlng >= 180.0:
        return np.arange(len(catalogue))
    order, lats = catalogue.by_latitude
    band = order[np.searchsorted(lats, lat - dlat) : np.searchsorted(lats, lat + dlat, "right")]
    apart = np.abs(catalogue.lng[band] - lng)
    inside = np.minimum(apart, 360.0 - apart) <= dlng  # across the antimeridian too
    return np.sort(band[inside])  # file order: ties are broken in it


def rank(
    catalogue: Catalogue,
    final: np.ndarray,
    lat: float,
    lng: float,
    k: int = 10,
    config: RankingConfig = DEFAULT_CONFIG,
) -> Ranked:
    """Top-``k`` places for one user's final category scores (0–5) at (lat, lng)."""
    check_k(k)
    check_location(lat, lng)
    final = np.asarray(final, dtype=np.float64)
    if final.shape != (N_CATEGORIES,):
        raise BadInput(f"expected {N_CATEGORIES} category scores, got shape {final.shape}")
    if not np.isfinite(final).all():
        raise BadInput("category scores must be finite numbers (no NaN or infinity)")
    near = _box(catalogue, lat, lng, config.radius_m)
    near_dist = distances_m(catalogue, lat, lng, near)
    within = near_dist <= config.radius_m
    cand, dist = near[within], near_dist[within]
    member = catalogue.membership(config.mapping)[cand]
    # Each place stands for its highest-scored category, the first in category order among
    # equals: the first member column once the columns are sorted that way.
    preference = np.argsort(-final, kind="stable")
    best = preference[member[:, preference].argmax(axis=1)]
    best_score = np.where(member[np.arange(len(cand)), best], final[best] / MAX_RATING, -np.inf)
    keep = best_score > 0.0
    cand, best, best_score, dist = cand[keep], best[keep], best_score[keep], dist[keep]
    score = (
        config.w_distance * (1.0 - dist / config.radius_m)
        + config.w_rating * catalogue.rating[cand] / 5.0
        + config.w_reviews * catalogue.review_term[cand]
        + config.w_category * best_score
    )
    order = np.argsort(-score, kind="stable")
    picked = order[_round_robin(best[order], k)]
    return Ranked(cand[picked], score[picked], best[picked], dist[picked])


def _round_robin(categories: np.ndarray, k: int) -> np.ndarray:
    """Positions (into the sorted list) of the first ``k`` in round-robin order over category
    groups: every group's best, groups in order of first appearance, then every group's
    second best, and so on.

    Each (turn, group) pair names exactly one position, so the first ``k`` are the ``k``
    smallest of ``turn × 29 + group``: a partial sort, where a full lexsort of a thousand
    candidates cost more than the rest of the ranking.
    """
    n = len(categories)
    if n == 0:
        return np.zeros(0, dtype=np.intp)
    cats = categories.astype(np.uint8)  # small integers: NumPy's stable sort is a radix sort
    by_group = np.argsort(cats, kind="stable")
    counts = np.bincount(cats, minlength=N_CATEGORIES)
    starts = np.cumsum(counts) - counts
    turn = np.empty(n, dtype=np.intp)
    turn[by_group] = np.arange(n) - np.repeat(starts, counts)
    present = np.flatnonzero(counts)
    first_seen = by_group[starts[present]]  # a stable sort keeps each group's first in front
    group_order = np.empty(N_CATEGORIES, dtype=np.intp)
    group_order[present[np.argsort(first_seen)]] = np.arange(len(present))
    key = turn * N_CATEGORIES + group_order[cats]
    if k < n:
        top = np.argpartition(key, k - 1)[:k]
        return top[np.argsort(key[top])]
    return np.argsort(key)


def rank_batch(
    catalogue: Catalogue,
    finals: np.ndarray,
    lats: Sequence[float],
    lngs: Sequence[float],
    k: int | Sequence[int] = 10,
    config: RankingConfig = DEFAULT_CONFIG,
) -> list[Ranked]:
    """:func:`rank` for many users; the model's forward pass was already batched."""
    finals = np.asarray(finals, dtype=np.float64)
    if finals.ndim != 2 or finals.shape[1] != N_CATEGORIES:
        raise BadInput(f"expected a (users × {N_CATEGORIES}) matrix, got shape {finals.shape}")
    n = len(finals)
    if len(lats) != n or len(lngs) != n:
        raise BadInput(f"{n} users but {len(lats)} latitudes and {len(lngs)} longitudes")
    ks = [k] * n if isinstance(k, int) else list(k)
    if len(ks) != n:
        raise BadInput(f"{n} users but {len(ks)} values of k")
    return [
        rank(catalogue, finals[i], float(lats[i]), float(lngs[i]), ks[i], config) for i in range(n)
    ]
