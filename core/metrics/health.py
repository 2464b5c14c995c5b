"""Recommendation health without labels: what the served lists say about a model.

Clicks arrive late and sparsely; the lists themselves are there at once. From the places each
logged response recommended (and the category each matched) this module computes, per window:

- ``coverage``: the share of the catalogue recommended at least once;
- ``mean_popularity``: the mean popularity percentile of recommended places (0 = the least
  reviewed place of the catalogue, 1 = the most reviewed), the *popularity bias*;
- ``gini``: the Gini coefficient of exposure over the whole catalogue (0 = every place shown
  equally often, 1 = one place shown every time);
- ``novelty``: the mean self-information −log2(p) of recommended places, with p a place's
  share of the catalogue's reviews (+1 each): higher means less obvious places;
- ``diversity``: intra-list diversity, the share of pairs of places in one list whose
  categories differ, averaged over lists;
- ``personalisation``: 1 − the mean cosine similarity between two users' lists (0 = everyone
  gets the same list);
- ``churn`` (new production versions): per user, the share of their previous list that the
  new version no longer shows, for users served by both.

The definitions are those of Evidently's legacy recommender metrics (``PopularityBias``,
``NoveltyMetric``, ``DiversityMetric``, ``PersonalizationMetric``), computed here in NumPy
because Evidently's need a relevance label per item and the interaction history of training,
which a served list does not have, and because a report per window would cost a hundred times
the monitoring job's budget (a day of hourly windows for 20 models in a minute of CPU). Pairwise
figures are computed in O(places shown), not O(users²) (see :func:`personalisation`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

# Name → (label, higher is better); the one place the pages and gates read them from.
METRICS: dict[str, tuple[str, bool]] = {
    "coverage": ("Catalogue coverage", True),
    "mean_popularity": ("Popularity bias (mean popularity percentile)", False),
    "gini": ("Gini of exposure", False),
    "novelty": ("Novelty (bits)", True),
    "diversity": ("Intra-list category diversity", True),
    "personalisation": ("Personalisation", True),
    "churn": ("List churn against the previous production version", False),
}


@dataclass(frozen=True, eq=False)
class ItemStats:
    """What the health figures need of the catalogue, computed once per catalogue."""

    index: Mapping[str, int]
    popularity_percentile: np.ndarray
    self_information: np.ndarray

    @functools.cached_property
    def lookup(self) -> pd.Index:
        """Place ids → positions, vectorised (a window maps tens of thousands at once)."""
        return pd.Index(list(self.index))

    @property
    def size(self) -> int:
        return len(self.popularity_percentile)


def item_stats(place_ids: Sequence[str], reviews: np.ndarray) -> ItemStats:
    """Popularity percentile and self-information of each place, from its review count."""
    reviews = np.nan_to_num(np.asarray(reviews, dtype=float), nan=0.0).clip(min=0)
    n = len(reviews)
    order = np.argsort(reviews, kind="stable")
    ranks = np.empty(n, dtype=float)
    ranks[order] = np.arange(n)
    # Tied review counts share the mean of their ranks, so equal places get equal scores.
    _, inverse, counts = np.unique(reviews, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    percentile = (sums / counts)[inverse] / max(n - 1, 1)
    share = (reviews + 1) / (reviews + 1).sum()
    return ItemStats({p: i for i, p in enumerate(place_ids)}, percentile, -np.log2(share))


def gini(counts: np.ndarray) -> float:
    """Gini coefficient of non-negative counts (0 when everything is equal or empty)."""
    x = np.sort(np.asarray(counts, dtype=float))
    n, total = len(x), x.sum()
    if n == 0 or total == 0:
        return 0.0
    cum = np.cumsum(x)
    return float((n + 1 - 2 * (cum / total).sum()) / n)


def diversity(categories: Sequence[Sequence[str]]) -> float:
    """Mean share of pairs of places in a list whose categories differ (lists of ≥ 2).

    One pass for the whole window: each (list, category) pair is counted once with
    ``np.unique``, and a list's same-category pairs are the sum of c·(c−1)/2 over its counts.
    """
    sizes = np.fromiter((len(c) for c in categories), dtype=np.int64, count=len(categories))
    keep = sizes >= 2
    if not keep.any():
        return math.nan
    flat = [c for cats, k in zip(categories, keep, strict=True) if k for c in cats]
    kept = sizes[keep]
    _, codes = np.unique(np.asarray(flat, dtype=object).astype(str), return_inverse=True)
    lists = np.repeat(np.arange(len(kept)), kept)
    key = lists * (int(codes.max()) + 1) + codes
    unique_keys, counts = np.unique(key, return_counts=True)
    owner = unique_keys // (int(codes.max()) + 1)
    same = np.bincount(owner, weights=counts * (counts - 1) / 2, minlength=len(kept))
    pairs = kept * (kept - 1) / 2
    return float(np.mean(1.0 - same / pairs))


def personalisation(lists: Sequence[np.ndarray], n_items: int) -> float:
    """1 − the mean cosine similarity of two different users' lists.

    Each list is a unit vector over places (1/√k on its k places); the sum over pairs of their
    dot products is (‖Σv‖² − Σ‖v‖²) / 2, so all pairs cost one pass over the places shown.
    """
    sizes = np.fromiter((len(lst) for lst in lists), dtype=np.int64, count=len(lists))
    flat = np.concatenate(list(lists)) if len(lists) else np.zeros(0, dtype=np.int64)
    return _personalisation(flat.astype(np.int64), sizes, n_items)


def _personalisation(codes: np.ndarray, sizes: np.ndarray, n_items: int) -> float:
    nonempty = sizes > 0
    n = int(nonempty.sum())
    if n < 2:
        return math.nan
    weights = np.repeat(1.0 / np.sqrt(np.where(nonempty, sizes, 1)), sizes)
    total = np.bincount(codes, weights=weights, minlength=n_items)
    pair_sum = (float(total @ total) - n) / 2
    return float(1.0 - pair_sum / (n * (n - 1) / 2))


def churn(previous: Mapping[str, Sequence[str]], current: Mapping[str, Sequence[str]]) -> float:
    """Mean share of a user's previous list missing from their current one (shared users)."""
    shared = [u for u in current if u in previous and previous[u]]
    if not shared:
        return math.nan
    lost = [1.0 - len(set(previous[u]) & set(current[u])) / len(previous[u]) for u in shared]
    return float(np.mean(lost))


def figures(
    places: Sequence[Sequence[str]],
    categories: Sequence[Sequence[str]],
    stats: ItemStats,
) -> dict[str, Any]:
    """The label-free figures of a window's served lists (NaN where a figure is undefined)."""
    sizes = np.fromiter((len(lst) for lst in places), dtype=np.int64, count=len(places))
    flat = [p for lst in places for p in lst]
    codes = stats.lookup.get_indexer(flat) if flat else np.zeros(0, dtype=np.int64)
    known = codes >= 0  # a place that left the catalogue since it was served is not counted
    if not known.all():
        owner = np.repeat(np.arange(len(places)), sizes)
        sizes = np.bincount(owner[known], minlength=len(places))
    shown = codes[known]
    counts = np.bincount(shown, minlength=stats.size)
    out: dict[str, Any] = {
        "lists": len(places),
        "places_shown": int(len(shown)),
        "distinct_places": int((counts > 0).sum()),
        "coverage": float((counts > 0).sum() / stats.size) if stats.size else math.nan,
        "mean_popularity": float(stats.popularity_percentile[shown].mean())
        if len(shown)
        else math.nan,
        "gini": gini(counts),
        "novelty": float(stats.self_information[shown].mean()) if len(shown) else math.nan,
        "diversity": diversity(categories),
        "personalisation": _personalisation(shown, sizes, stats.size),
    }
    return out


def clean(values: Mapping[str, Any]) -> dict[str, Any]:
    """NaN as None, so the figures survive JSON (PostgreSQL's JSON refuses NaN)."""
    return {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in values.items()
    }
