"""The ranking's inner loop, compiled with Numba: the API's hot path.

``core.serving.ranking`` validates its inputs and calls :func:`rank_places`. One compiled pass does
the arithmetic of the Planwise ranking in the same order as the array-at-a-time NumPy version
it replaced (so the same scores and distances, bit for bit, and the same places in the same
order as the row-by-row Planwise recommender). Most of a request used to go on the exact
haversine and the category walk of hundreds of places that could never make the list; the
pass now bounds each candidate's score cheaply first and computes the exact figures only for
the few that can still be among a category's best.

Only this module and ``core.families.dense_kernel`` import Numba, lazily: the first call of
a process loads the compiled code from the cache beside the file (compiling it, a few
seconds, when there is none).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from core.data.catalogue import SpatialLayout
from core.data.categories import MAX_RATING, N_CATEGORIES
from core.serving.ranking import EARTH_RADIUS_M

LAT, LNG, LAT_RAD, LNG_RAD, COS_LAT, RATING, REVIEW_TERM = (
    SpatialLayout.COLUMNS.index(name)
    for name in ("lat", "lng", "lat_rad", "lng_rad", "cos_lat", "rating", "review_term")
)
APPROXIMATE_UP_TO = 1e-3  # relative error bound beyond which every distance is exact


@njit(cache=True, nogil=True, inline="always")
def _haversine(lat_rad: float, lng_rad: float, cos_lat: float, lat1: float, lng1: float,
               cos1: float) -> float:  # fmt: skip
    """The exact distance, as ``core.serving.ranking.distances_m`` computes it."""
    s_lat = math.sin((lat_rad - lat1) / 2.0)
    s_lng = math.sin((lng_rad - lng1) / 2.0)
    a = s_lat * s_lat + cos1 * cos_lat * (s_lng * s_lng)
    return 2.0 * EARTH_RADIUS_M * math.asin(math.sqrt(min(a, 1.0)))


@njit(cache=True, nogil=True)
def rank_places(
    rows: np.ndarray,
    strip_start: np.ndarray,
    lng_min: float,
    strip_degrees: float,
    columns: np.ndarray,
    masks: np.ndarray,
    final: np.ndarray,
    lat0: float,
    lng0: float,
    radius_m: float,
    w_distance: float,
    w_rating: float,
    w_reviews: float,
    w_category: float,
    half_lat: float,
    half_lng: float,
    k: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Catalogue rows, scores, categories and distances of the top ``k`` places.

    Candidates are the places of the lat/lng box (``half_lat``/``half_lng`` hold the whole
    circle), found by a binary search in each strip of longitude the box touches; the exact
    haversine then decides who is inside. A place stands for its best-scored category (the
    first in category order among equals); equal scores are broken by catalogue row.

    Exactness of the pruning: the equirectangular distance ``d~`` is within a factor
    ``1 ± eps`` of the haversine for angles this small (sin x ≤ x, asin y ≤ y(1 + y²)), so
    a place is surely in or out unless ``d~`` is within ``eps`` of the radius (then the exact
    distance decides), and its score lies in a known interval. Only a category's first
    ``depth`` places (``depth`` as in the round robin) can be listed; a place whose upper
    bound is below the ``depth``-th best lower bound of its category is beaten by that many
    places for certain, and is dropped before its exact score is computed.
    """
    for c in range(N_CATEGORIES):
        if not math.isfinite(final[c]):
            raise ValueError("category scores must be finite numbers (no NaN or infinity)")
    lat_col, lng_col = columns[LAT], columns[LNG]
    lat_rad, lng_rad, cos_lat = columns[LAT_RAD], columns[LNG_RAD], columns[COS_LAT]
    rating, review_term = columns[RATING], columns[REVIEW_TERM]
    n_strips = len(strip_start) - 1

    preference = np.argsort(-final, kind="mergesort")
    bits = np.empty(N_CATEGORIES, dtype=np.uint32)
    for position in range(N_CATEGORIES):
        bits[position] = np.uint32(1) << np.uint32(preference[position])

    lat1, lng1 = math.radians(lat0), math.radians(lng0)
    cos1 = math.cos(lat1)
    x_max = 0.5 * math.radians(max(half_lat, half_lng))
    eps = 4.0 * x_max * x_max + 1e-9
    approximate = eps <= APPROXIMATE_UP_TO

    if lng0 - half_lng < -180.0 or lng0 + half_lng > 180.0:
        first_strip, last_strip = 0, n_strips - 1  # the box wraps: every strip
    else:
        first_strip = int(math.floor((lng0 - half_lng - lng_min) / strip_degrees)) - 1
        last_strip = int(math.floor((lng0 + half_lng - lng_min) / strip_degrees)) + 1
        first_strip, last_strip = max(first_strip, 0), min(last_strip, n_strips - 1)

    capacity = 0
    for strip in range(first_strip, last_strip + 1):
        capacity += strip_start[strip + 1] - strip_start[strip]
    at = np.empty(capacity, dtype=np.int64)  # layout position
    best = np.empty(capacity, dtype=np.int64)
    dist = np.empty(capacity, dtype=np.float64)  # exact where ``exact``, else d~
    exact = np.empty(capacity, dtype=np.bool_)
    low = np.empty(capacity, dtype=np.float64)
    high = np.empty(capacity, dtype=np.float64)
    counts = np.zeros(N_CATEGORIES, dtype=np.int64)
    m = 0
    for strip in range(first_strip, last_strip + 1):
        begin, end = strip_start[strip], strip_start[strip + 1]
        lats = lat_col[begin:end]
        lo = begin + np.searchsorted(lats, lat0 - half_lat)
        hi = begin + np.searchsorted(lats, lat0 + half_lat, side="right")
        for j in range(lo, hi):
            apart = abs(lng_col[j] - lng0)
            if min(apart, 360.0 - apart) > half_lng:  # across the antimeridian too
                continue
            mask = masks[j]
            if mask == 0:
                continue
            position = 0
            while (mask & bits[position]) == 0:
                position += 1
            category = preference[position]
            category_score = final[category] / MAX_RATING
            if category_score <= 0.0:  # after the division: a subnormal score counts as 0
                continue
            d_lng = lng_rad[j] - lng1
            known = True
            if approximate and abs(d_lng) < 1.0:
                x_lat, x_lng = (lat_rad[j] - lat1) / 2.0, d_lng / 2.0
                d = (
                    2.0
                    * EARTH_RADIUS_M
                    * math.sqrt(x_lat * x_lat + cos1 * cos_lat[j] * (x_lng * x_lng))
                )
                if d * (1.0 - eps) > radius_m:
                    continue
                known = d * (1.0 + eps) >= radius_m  # on the edge: let the exact one decide
                d_near, d_far = d * (1.0 - eps), d * (1.0 + eps)
            if known:
                d = _haversine(lat_rad[j], lng_rad[j], cos_lat[j], lat1, lng1, cos1)
                if d > radius_m:
                    continue
                d_near = d_far = d
            rest = w_rating * rating[j] / 5.0 + w_reviews * review_term[j]
            rest += w_category * category_score
            near = w_distance * (1.0 - d_near / radius_m)
            far = w_distance * (1.0 - d_far / radius_m)
            # Rounding of the exact score is a few ulps of its largest term: 1e-12 is ample.
            slack = 1e-300 + 1e-12 * (
                2.0 * abs(w_distance)
                + abs(w_rating * rating[j])
                + abs(w_reviews * review_term[j])
                + abs(w_category * category_score)
            )
            at[m], best[m], dist[m], exact[m] = j, category, d, known
            low[m] = min(near, far) + rest - slack
            high[m] = max(near, far) + rest + slack
            counts[category] += 1
            m += 1

    want = min(k, m)
    depth = _depth(counts, want)
    # The depth-th best lower bound of each category (-inf while it has fewer places).
    floor = np.empty((N_CATEGORIES, max(depth, 1)), dtype=np.float64)
    filled = np.zeros(N_CATEGORIES, dtype=np.int64)
    for i in range(m):
        c, value = best[i], low[i]
        n = filled[c]
        if n == depth and value <= floor[c, depth - 1]:
            continue
        pos = min(n, depth - 1)
        while pos > 0 and floor[c, pos - 1] < value:
            floor[c, pos] = floor[c, pos - 1]
            pos -= 1
        floor[c, pos] = value
        filled[c] = min(n + 1, depth)

    kept_rows = np.empty(m, dtype=np.int64)
    kept_best = np.empty(m, dtype=np.int64)
    kept_score = np.empty(m, dtype=np.float64)
    kept_dist = np.empty(m, dtype=np.float64)
    n_kept = 0
    for i in range(m):
        c = best[i]
        if filled[c] == depth and high[i] < floor[c, depth - 1]:
            continue
        j = at[i]
        d = dist[i]
        if not exact[i]:
            d = _haversine(lat_rad[j], lng_rad[j], cos_lat[j], lat1, lng1, cos1)
        kept_rows[n_kept], kept_best[n_kept], kept_dist[n_kept] = rows[j], c, d
        kept_score[n_kept] = (
            w_distance * (1.0 - d / radius_m)
            + w_rating * rating[j] / 5.0
            + w_reviews * review_term[j]
            + w_category * (final[c] / MAX_RATING)
        )
        n_kept += 1
    picked = _round_robin(kept_score[:n_kept], kept_best[:n_kept], kept_rows[:n_kept], want, depth)
    return kept_rows[picked], kept_score[picked], kept_best[picked], kept_dist[picked]


@njit(cache=True, nogil=True)
def _depth(counts: np.ndarray, want: int) -> int:
    """How many places of each category the round robin can reach for ``want`` places."""
    depth, reached = 0, 0
    while reached < want:
        depth += 1
        reached = 0
        for c in range(N_CATEGORIES):
            reached += min(counts[c], depth)
    return depth


@njit(cache=True, nogil=True, inline="always")
def _before(score_a: float, row_a: int, score_b: float, row_b: int) -> bool:
    """Whether place a goes before place b: the higher score, then the earlier row."""
    return score_a > score_b or (score_a == score_b and row_a < row_b)


@njit(cache=True, nogil=True)
def _round_robin(
    score: np.ndarray, category: np.ndarray, row: np.ndarray, want: int, depth: int
) -> np.ndarray:
    """The first ``want`` candidates in round-robin order: every category's best, categories
    in the order of their best, then every category's second best, and so on.

    Equal scores go in catalogue row order. Only a category's first ``depth`` places can be
    reached, so each category keeps a short sorted list instead of the whole list being
    sorted.
    """
    m = len(score)
    top = np.empty((N_CATEGORIES, max(depth, 1)), dtype=np.int64)
    filled = np.zeros(N_CATEGORIES, dtype=np.int64)
    for i in range(m):
        c, s, r, n = category[i], score[i], row[i], filled[category[i]]
        pos = n
        while pos > 0 and _before(s, r, score[top[c, pos - 1]], row[top[c, pos - 1]]):
            pos -= 1
        if pos >= depth:
            continue
        for j in range(min(n, depth - 1), pos, -1):
            top[c, j] = top[c, j - 1]
        top[c, pos] = i
        filled[c] = min(n + 1, depth)

    groups = np.empty(N_CATEGORIES, dtype=np.int64)
    n_groups = 0
    for c in range(N_CATEGORIES):
        if filled[c] == 0:
            continue
        head, pos = top[c, 0], n_groups
        while pos > 0:
            other = top[groups[pos - 1], 0]
            if _before(score[other], row[other], score[head], row[head]):
                break
            groups[pos] = groups[pos - 1]
            pos -= 1
        groups[pos] = c
        n_groups += 1

    out = np.empty(want, dtype=np.int64)
    o, turn = 0, 0
    while o < want:
        for g in range(n_groups):
            c = groups[g]
            if turn < filled[c] and o < want:
                out[o] = top[c, turn]
                o += 1
        turn += 1
    return out
