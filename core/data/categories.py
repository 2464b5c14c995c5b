"""The 29 Planwise preference categories, in model input order.

Every users file, every model input and every prediction uses this order; the list is read
from ``data/planwise/categories.json`` (copied from the Planwise project) so there is one
source of truth.
"""

from __future__ import annotations

import functools
import json

from core.config import PROJECT_ROOT

CATEGORIES_FILE = PROJECT_ROOT / "data" / "planwise" / "categories.json"
N_CATEGORIES = 29
MIN_RATING = 0.0
MAX_RATING = 5.0


@functools.cache
def _load() -> dict[str, object]:
    data: dict[str, object] = json.loads(CATEGORIES_FILE.read_text(encoding="utf-8"))
    return data


def categories() -> tuple[str, ...]:
    listed = _load()["categories"]
    assert isinstance(listed, list), "categories.json must hold a list of categories"
    cats = tuple(str(c) for c in listed)
    assert len(cats) == N_CATEGORIES, "categories.json must list 29 categories"
    return cats


def category_to_place_types() -> dict[str, tuple[str, ...]]:
    mapping = _load()["category_to_place_types"]
    return {c: tuple(mapping[c]) for c in categories()}  # type: ignore[index]


CATEGORIES: tuple[str, ...] = categories()
