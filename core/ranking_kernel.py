"""The ranking's inner loop, compiled with Numba: the API's hot path.

``core.ranking`` validates its inputs and calls :func:`rank_places`. NumPy spent most of a
request on the overhead of some forty array calls over a thousand nearby places; one compiled
pass does the same arithmetic in the same order (so the same scores, bit for bit, and the same
places and order as the row-by-row Planwise recommender) in about a fifth of the time.
Only this module imports Numba, lazily: the first call of a process loads the compiled code
from the cache beside this file (compiling it, a few seconds, when there is none).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from core.categories import MAX_RATING, N_CATEGORIES
from core.ranking import EARTH_RADIUS_M


@njit(cache=True, nogil=True)
def rank_places(
    by_latitude: np.ndarray,
    sorted_lat: np.ndarray,
    lng: np.ndarray,
    lat_rad: np.ndarray,
    lng_rad: np.ndarray,
    cos_lat: np.ndarray,
    rating: np.ndarray,
    review_term: np.ndarray,
    member_start: np.ndarray,
    member_category: np.ndarray,
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
    """Positions, scores, categories and distances of the top ``k`` places.

    Candidates come from the latitude band (two binary searches) and the longitude window
    (``half_lat``/``half_lng`` hold the whole circle); the exact haversine then decides. A
    place stands for its best-scored category (the first in category order among equals);
    ties between places are broken in file order, so candidates are visited in that order.
    """
    n_places = len(lng)
    lo = np.searchsorted(sorted_lat, lat0 - half_lat)
    hi = np.searchsorted(sorted_lat, lat0 + half_lat, side="right")
    in_box = np.zeros(n_places, dtype=np.uint8)
    first, last = n_places, -1
    for j in range(lo, hi):
        row = by_latitude[j]
        apart = abs(lng[row] - lng0)
        if min(apart, 360.0 - apart) <= half_lng:  # across the antimeridian too
            in_box[row] = 1
            first, last = min(first, row), max(last, row)

    preference = np.argsort(-final, kind="mergesort")
    rank_of = np.empty(N_CATEGORIES, dtype=np.int64)
    for position in range(N_CATEGORIES):
        rank_of[preference[position]] = position

    lat1, lng1 = math.radians(lat0), math.radians(lng0)
    cos1 = math.cos(lat1)
    size = max(last - first + 1, 0)
    cand = np.empty(size, dtype=np.int64)
    best = np.empty(size, dtype=np.int64)
    score = np.empty(size, dtype=np.float64)
    dist = np.empty(size, dtype=np.float64)
    m = 0
    for row in range(first, last + 1):
        if not in_box[row]:
            continue
        s_lat = math.sin((lat_rad[row] - lat1) / 2.0)
        s_lng = math.sin((lng_rad[row] - lng1) / 2.0)
        a = s_lat * s_lat + cos1 * cos_lat[row] * (s_lng * s_lng)
        d = 2.0 * EARTH_RADIUS_M * math.asin(math.sqrt(min(a, 1.0)))
        if d > radius_m:
            continue
        category, category_rank = -1, N_CATEGORIES
        for q in range(member_start[row], member_start[row + 1]):
            c = member_category[q]
            if rank_of[c] < category_rank:
                category, category_rank = c, rank_of[c]
        if category < 0:
            continue
        category_score = final[category] / MAX_RATING
        if category_score <= 0.0:  # after the division: a subnormal score counts as 0
            continue
        cand[m], best[m], dist[m] = row, category, d
        score[m] = (
            w_distance * (1.0 - d / radius_m)
            + w_rating * rating[row] / 5.0
            + w_reviews * review_term[row]
            + w_category * category_score
        )
        m += 1
    picked = _round_robin(score[:m], best[:m], min(k, m))
    return cand[picked], score[picked], best[picked], dist[picked]


@njit(cache=True, nogil=True)
def _round_robin(score: np.ndarray, category: np.ndarray, want: int) -> np.ndarray:
    """The first ``want`` candidates in round-robin order: every category's best, categories
    in the order of their best, then every category's second best, and so on.

    Equal scores keep candidate order. Only a category's first ``depth`` places can be
    reached, so each category keeps a short sorted list instead of the whole list being
    sorted.
    """
    m = len(score)
    counts = np.zeros(N_CATEGORIES, dtype=np.int64)
    for i in range(m):
        counts[category[i]] += 1
    depth, reached = 0, 0
    while reached < want:
        depth += 1
        reached = 0
        for c in range(N_CATEGORIES):
            reached += min(counts[c], depth)
    top = np.empty((N_CATEGORIES, max(depth, 1)), dtype=np.int64)
    filled = np.zeros(N_CATEGORIES, dtype=np.int64)
    for i in range(m):
        c, s, n = category[i], score[i], filled[category[i]]
        pos = n
        while pos > 0 and score[top[c, pos - 1]] < s:
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
            if score[other] > score[head] or (score[other] == score[head] and other < head):
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
