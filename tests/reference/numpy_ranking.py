"""The array-at-a-time NumPy ranking that ``core.serving.ranking_kernel`` replaced.

Kept as an independent oracle for what the row-by-row Planwise original cannot express:
another radius, other weights, another category mapping. Same operations in the same order,
so the kernel must agree with it bit for bit.
"""

from __future__ import annotations

import math

import numpy as np

from core.data.catalogue import Catalogue
from core.data.categories import MAX_RATING, N_CATEGORIES
from core.serving.ranking import DEFAULT_CONFIG, EARTH_RADIUS_M, Ranked, RankingConfig, distances_m


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
    order = np.argsort(catalogue.lat, kind="stable")
    lats = catalogue.lat[order]
    band = order[np.searchsorted(lats, lat - dlat) : np.searchsorted(lats, lat + dlat, "right")]
    apart = np.abs(catalogue.lng[band] - lng)
    inside = np.minimum(apart, 360.0 - apart) <= dlng  # across the antimeridian too
    return np.sort(band[inside])  # file order: ties are broken in it


def rank_numpy(
    catalogue: Catalogue,
    final: np.ndarray,
    lat: float,
    lng: float,
    k: int = 10,
    config: RankingConfig = DEFAULT_CONFIG,
) -> Ranked:
    """Top-``k`` places for one user's final category scores (0–5) at (lat, lng)."""
    final = np.asarray(final, dtype=np.float64)
    assert final.shape == (N_CATEGORIES,)
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
