"""A straightforward, row-by-row Planwise recommender written from DESIGN.md's description.

Independent of ``core.serving.ranking`` on purpose (plain Python over DataFrame rows, the Keras
model
called directly, scikit-learn's scaler), so the tests compare two implementations of the
description rather than one with itself. ``bench/`` times it as the per-row reference.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
PLANWISE = ROOT / "data" / "planwise"


def load_categories() -> tuple[list[str], dict[str, list[str]]]:
    raw = json.loads((PLANWISE / "categories.json").read_text(encoding="utf-8"))
    return list(raw["categories"]), raw["category_to_place_types"]


def load_places() -> pd.DataFrame:
    return pd.read_csv(PLANWISE / "madrid_places.csv")


def haversine(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dphi = math.radians(lat2 - lat1)
    dlmb = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dlmb / 2) ** 2
    return 2 * 6371000 * math.asin(math.sqrt(a))


def predict_final(model: Any, scaler: Any, prefs: list[float], mask: list[bool]) -> list[float]:
    x = scaler.transform(np.array([prefs], dtype=float))
    out = np.clip(np.asarray(model(x)), 0, 1)
    predicted = scaler.inverse_transform(out)[0]
    return [prefs[i] if mask[i] else float(predicted[i]) for i in range(len(prefs))]


def rank_places(
    places: pd.DataFrame,
    final: list[float],
    lat: float,
    lng: float,
    k: int = 10,
    radius: float = 2000.0,
) -> list[tuple[str, str, float]]:
    categories, mapping = load_categories()
    reviews_all = pd.to_numeric(places["user_ratings_total"], errors="coerce")
    max_reviews = float(reviews_all.max())
    scored = []
    for _, row in places.iterrows():
        d = haversine(lat, lng, float(row["lat"]), float(row["lng"]))
        if d > radius:
            continue
        types = (
            {t.strip().lower() for t in str(row["types"]).split(",")}
            if isinstance(row["types"], str)
            else set()
        )
        best_category, best = None, 0.0
        for i, category in enumerate(categories):
            if types & {t.lower() for t in mapping[category]}:
                value = final[i] / 5
                if value > best:
                    best, best_category = value, category
        if best_category is None:
            continue
        rating = 0.0 if pd.isna(row["rating"]) else float(row["rating"])
        reviews = 0.0 if pd.isna(row["user_ratings_total"]) else float(row["user_ratings_total"])
        score = (
            0.1 * (1 - d / radius)
            + 0.2 * rating / 5
            + 0.2 * math.log(1 + reviews) / math.log(1 + max_reviews)
            + 0.5 * best
        )
        scored.append((str(row["place_id"]), best_category, score))
    scored.sort(key=lambda item: item[2], reverse=True)
    groups: dict[str, list[tuple[str, str, float]]] = {}
    for item in scored:
        groups.setdefault(item[1], []).append(item)
    result: list[tuple[str, str, float]] = []
    turn = 0
    while len(result) < k and any(turn < len(g) for g in groups.values()):
        for group in groups.values():
            if turn < len(group) and len(result) < k:
                result.append(group[turn])
        turn += 1
    return result


def recommend(
    model: Any,
    scaler: Any,
    places: pd.DataFrame,
    prefs: list[float],
    mask: list[bool],
    lat: float,
    lng: float,
    k: int = 10,
) -> list[tuple[str, str, float]]:
    return rank_places(places, predict_final(model, scaler, prefs, mask), lat, lng, k)
