"""Quality of a version on held-out data, in the figures the dashboard compares.

Rating accuracy (RMSE, MAE on held-out ratings), ranking quality of the categories
(precision, recall, F1 and NDCG at 5 and 10, a held-out rating ≥ 4 counting as "liked"), and
what users actually see: the catalogue coverage and the category diversity of the place lists
the Planwise ranking builds from the model's scores.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core.data import catalogue as catalogue_module
from core.data.splits import Split
from core.families.base import Family
from core.serving import ranking

LIKED = 4.0
KS = (5, 10)
PLACE_SAMPLE = 300


def rating_metrics(pred: np.ndarray, truth: np.ndarray, hidden: np.ndarray) -> dict[str, float]:
    err = pred[hidden] - truth[hidden]
    if err.size == 0:
        return {}
    return {"rmse": float(np.sqrt(np.mean(err**2))), "mae": float(np.mean(np.abs(err)))}


def ranking_metrics(
    pred: np.ndarray, truth: np.ndarray, visible: np.ndarray, hidden: np.ndarray
) -> dict[str, float]:
    relevant = hidden & (truth >= LIKED)
    users = np.flatnonzero(relevant.any(axis=1))
    if len(users) == 0:
        return {}
    scores = np.where(visible[users], -np.inf, pred[users])
    order = np.argsort(-scores, axis=1, kind="stable")
    rel = relevant[users]
    n_rel = rel.sum(axis=1)
    out: dict[str, float] = {}
    for k in KS:
        top = order[:, :k]
        hits = np.take_along_axis(rel, top, axis=1)
        n_hits = hits.sum(axis=1)
        precision = n_hits / k
        recall = n_hits / n_rel
        f1 = np.where(n_hits > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0)
        discounts = 1.0 / np.log2(np.arange(2, k + 2))
        dcg = (hits * discounts).sum(axis=1)
        idcg = np.cumsum(discounts)[np.minimum(n_rel, k) - 1]
        out[f"precision@{k}"] = float(precision.mean())
        out[f"recall@{k}"] = float(recall.mean())
        out[f"f1@{k}"] = float(f1.mean())
        out[f"ndcg@{k}"] = float((dcg / idcg).mean())
    return out


def place_metrics(
    finals: np.ndarray, *, seed: int, k: int = 10, config: ranking.RankingConfig | None = None
) -> dict[str, float]:
    """Coverage and diversity of the place lists for a sample of users at catalogue places."""
    cat = catalogue_module.load()
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(finals), size=min(PLACE_SAMPLE, len(finals)), replace=False)
    at = rng.choice(len(cat), size=len(rows), replace=True)
    lists = ranking.rank_batch(
        cat, finals[rows], cat.lat[at], cat.lng[at], k, config or ranking.DEFAULT_CONFIG
    )
    shown = [r for r in lists if len(r.indices)]
    if not shown:
        return {f"coverage@{k}": 0.0, f"diversity@{k}": 0.0}
    unique = len(set(np.concatenate([r.indices for r in shown]).tolist()))
    return {
        f"coverage@{k}": unique / len(cat),
        f"diversity@{k}": float(np.mean([len(set(r.categories.tolist())) / k for r in shown])),
    }


RATED_BUCKETS = ((1, 3, "1–3 ratings (cold start)"), (4, 7, "4–7 ratings"), (8, 29, "8+ ratings"))


def slice_labels(truth: np.ndarray, visible: np.ndarray) -> dict[str, np.ndarray]:
    """Each test user's bucket in every slicing: ratings they gave, their taste segment."""
    from core.data.generator import taste_segment

    n_rated = visible.sum(axis=1)
    rated = np.empty(len(truth), dtype=object)
    for low, high, label in RATED_BUCKETS:
        rated[(n_rated >= low) & (n_rated <= high)] = label
    return {"ratings given": rated, "taste segment": taste_segment(truth)}


def per_user_ndcg5(
    pred: np.ndarray, truth: np.ndarray, visible: np.ndarray, hidden: np.ndarray
) -> np.ndarray:
    """NDCG@5 of each user (NaN for a user with no held-out liked category)."""
    relevant = hidden & (truth >= LIKED)
    scores = np.where(visible, -np.inf, pred)
    top = np.argsort(-scores, axis=1, kind="stable")[:, :5]
    hits = np.take_along_axis(relevant, top, axis=1)
    discounts = 1.0 / np.log2(np.arange(2, 7))
    n_rel = relevant.sum(axis=1)
    idcg = np.cumsum(discounts)[np.clip(np.minimum(n_rel, 5) - 1, 0, 4)]
    return np.where(n_rel > 0, (hits * discounts).sum(axis=1) / idcg, np.nan)


def slice_cells(
    pred: np.ndarray, truth: np.ndarray, visible: np.ndarray, hidden: np.ndarray
) -> list[dict[str, Any]]:
    """Sums per cell of the cross of all slicings, so any union of cells can be re-aggregated.

    Comparing versions slice by slice needs this: when a regression sits in one slice, the
    cells of that slice are set aside and the other slicings are judged on the rest.
    """
    labels = slice_labels(truth, visible)
    ndcg = per_user_ndcg5(pred, truth, visible, hidden)
    sq = np.where(hidden, (pred - truth) ** 2, 0.0)
    keys = list(labels)
    combos: dict[tuple[str, ...], list[int]] = {}
    for i, combo in enumerate(zip(*(labels[k] for k in keys), strict=True)):
        combos.setdefault(tuple(str(c) for c in combo), []).append(i)
    cells = []
    for combo, rows_list in sorted(combos.items()):
        rows = np.asarray(rows_list)
        ranked = rows[~np.isnan(ndcg[rows])]
        cells.append(
            {
                **dict(zip(keys, combo, strict=True)),
                "users": len(rows),
                "rank_users": len(ranked),
                "ndcg@5_sum": round(float(ndcg[ranked].sum()), 6),
                "sse": round(float(sq[rows].sum()), 6),
                "n_ratings": int(hidden[rows].sum()),
            }
        )
    return cells


def slice_metrics(
    pred: np.ndarray, truth: np.ndarray, visible: np.ndarray, hidden: np.ndarray
) -> dict[str, dict[str, dict[str, float]]]:
    """Rating and ranking metrics per bucket of each slicing, with the users it holds."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for slicing, labels in slice_labels(truth, visible).items():
        buckets: dict[str, dict[str, float]] = {}
        for label in sorted({str(x) for x in labels if x is not None}):
            rows = labels == label
            m: dict[str, float] = {"users": float(rows.sum())}
            m.update(rating_metrics(pred[rows], truth[rows], hidden[rows]))
            m.update(ranking_metrics(pred[rows], truth[rows], visible[rows], hidden[rows]))
            buckets[label] = {k: round(float(v), 6) for k, v in m.items()}
        out[slicing] = buckets
    return out


def evaluate(
    model: Family,
    ratings: np.ndarray,
    split: Split,
    *,
    seed: int = 0,
    config: ranking.RankingConfig | None = None,
    places: bool = True,
    with_slices: bool = False,
) -> dict[str, Any]:
    """Metrics of ``model`` on the split's test users (with ``__slices__`` if asked)."""
    truth = ratings[split.test]
    inputs = np.where(split.visible, truth, 0.0)
    pred = model.predict(inputs, split.visible)
    metrics: dict[str, Any] = {}
    metrics.update(rating_metrics(pred, truth, split.hidden))
    metrics.update(ranking_metrics(pred, truth, split.visible, split.hidden))
    if with_slices:
        metrics["__slices__"] = {  # type: ignore[assignment]
            "marginals": slice_metrics(pred, truth, split.visible, split.hidden),
            "cells": slice_cells(pred, truth, split.visible, split.hidden),
        }
    if places:
        metrics.update(
            place_metrics(
                ranking.final_scores(inputs, split.visible, pred), seed=seed, config=config
            )
        )
    slices = metrics.pop("__slices__", None)
    out: dict[str, Any] = {k: round(float(v), 6) for k, v in metrics.items()}
    if with_slices:
        out["__slices__"] = slices
    return out
