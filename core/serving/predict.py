"""Recommendations from a registered version: verified load, cached, then NumPy only.

A version's files are hashed against the registry before anything is unpickled; the loaded
model is kept per process (keyed by its folder and metadata hash, re-verified if a file's
size or time changes), so a preview or a request costs one forward pass and one vectorised
ranking, never a ``model.predict``.
"""

from __future__ import annotations

import json
import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core import registry
from core.data import catalogue as catalogue_module
from core.data.categories import CATEGORIES, MAX_RATING, MIN_RATING, N_CATEGORIES
from core.errors import BadInput
from core.families import family_class
from core.families.base import Family
from core.registry import artifacts
from core.registry.artifacts import METADATA_FILE
from core.registry.entities import VersionInfo
from core.serving import ranking

CACHE_SIZE = 16


@dataclass(frozen=True)
class Recommendation:
    place_id: str
    name: str
    category: str
    score: float
    distance_m: float
    lat: float
    lng: float
    rating: float
    reviews: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LoadedVersion:
    version: VersionInfo
    model: Family
    config: ranking.RankingConfig
    fingerprint: tuple[tuple[str, int, int], ...]


_cache: OrderedDict[tuple[str, str], LoadedVersion] = OrderedDict()
_lock = threading.Lock()


def _fingerprint(folder: Path, files: dict[str, str]) -> tuple[tuple[str, int, int], ...]:
    out = []
    for name in sorted(files):
        st = (folder / name).stat()
        out.append((name, st.st_size, st.st_mtime_ns))
    return tuple(out)


def warm_up() -> None:
    """Load (or compile) the request path's compiled code now (the ranking and the
    autoencoders' forward pass), so that a server's first request does not pay for it."""
    from core.families.dense_kernel import predict_one

    ranking.warm_up()
    ones = np.ones(N_CATEGORIES)
    sizes = np.array([N_CATEGORIES, N_CATEGORIES], dtype=np.int64)
    predict_one(ones, ones, ones * 0, np.zeros(N_CATEGORIES**2), ones * 0, sizes, sizes * 0)


def load_version(info: VersionInfo) -> LoadedVersion:
    """The model of ``info``, verified against its SHA-256 on first load and on any change."""
    key = (str(artifacts.root() / info.artifact_dir), info.files.get(METADATA_FILE, ""))
    with _lock:
        hit = _cache.get(key)
    if hit is not None:
        folder = artifacts.root() / info.artifact_dir
        try:
            if _fingerprint(folder, info.files) == hit.fingerprint:
                with _lock:
                    _cache.move_to_end(key)
                return hit
        except OSError:
            pass
        with _lock:
            _cache.pop(key, None)
    folder = registry.verified_dir(info)
    metadata = json.loads((folder / METADATA_FILE).read_text(encoding="utf-8"))
    model = family_class(info.family).load(folder, metadata)
    config = ranking.RankingConfig.from_settings(registry.get_model(info.model).settings)
    loaded = LoadedVersion(info, model, config, _fingerprint(folder, info.files))
    with _lock:
        _cache[key] = loaded
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return loaded


def load(model: str, version: str | None = None) -> LoadedVersion:
    """A version by number, or the production version when ``version`` is None."""
    info = registry.get_version(model, version) if version else registry.get_version(model)
    return load_version(info)


def clear_cache() -> None:
    with _lock:
        _cache.clear()


def check_ratings(prefs: Any, *, what: str = "prefs") -> np.ndarray:
    """An (n × 29) float matrix of ratings in 0–5, or BadInput naming what is wrong."""
    try:
        arr = np.asarray(prefs)
    except ValueError:  # NumPy's word for rows of different lengths
        raise BadInput(f"{what} must be lists of {N_CATEGORIES} numbers of equal length") from None
    if arr.dtype.kind not in "iuf":  # text ("4"), true/false, objects, or nested unevenly
        raise BadInput(f"{what} must be numbers, got {_kind(arr)}")
    arr = arr.astype(np.float64, copy=False)
    single = arr.ndim == 1
    matrix = arr[None, :] if single else arr
    if matrix.ndim != 2 or matrix.shape[1] != N_CATEGORIES:
        got = arr.shape[-1] if arr.ndim else 0
        raise BadInput(f"{what} must hold {N_CATEGORIES} ratings (one per category), got {got}")
    bad = ~np.isfinite(matrix)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise BadInput(
            f"{what}: rating of {CATEGORIES[col]!r} is not a finite number"
            + ("" if single else f" (user {row})")
        )
    out = (matrix < MIN_RATING) | (matrix > MAX_RATING)
    if out.any():
        row, col = np.argwhere(out)[0]
        raise BadInput(
            f"{what}: rating of {CATEGORIES[col]!r} is {matrix[row, col]:g}, outside 0–5"
            + ("" if single else f" (user {row})")
        )
    return matrix


def _kind(arr: np.ndarray) -> str:
    return {"U": "text", "S": "text", "b": "true/false"}.get(arr.dtype.kind, "mixed values")


def check_mask(mask: Any, ratings: np.ndarray, *, what: str = "mask") -> np.ndarray:
    """Which ratings the users gave, (n × 29) booleans; None means those above 0."""
    if mask is None:
        return ratings > 0
    try:
        arr = np.asarray(mask)
    except ValueError:  # rows of different lengths
        raise BadInput(f"{what} must hold {N_CATEGORIES} true/false values per user") from None
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.shape != ratings.shape:
        got = arr.shape[-1] if arr.ndim else type(mask).__name__
        raise BadInput(f"{what} must hold {N_CATEGORIES} true/false values per user, got {got}")
    if arr.dtype != bool:
        if arr.dtype.kind not in "iuf" or not np.isin(arr, (0, 1)).all():
            raise BadInput(f"{what} values must be true/false (or 1/0)")
        arr = arr.astype(bool)
    return arr


def predict_categories(
    model: str, version: str | None, ratings: Any, mask: Any = None
) -> np.ndarray:
    """The model's predicted category scores (n × 29) before the user's own ratings are kept."""
    matrix = check_ratings(ratings)
    known = check_mask(mask, matrix)
    return load(model, version).model.predict(matrix, known)


def _columns(cat: catalogue_module.Catalogue, ranked: ranking.Ranked) -> list[list[Any]]:
    """The fields of :class:`Recommendation`, a list each. One gather and one ``tolist`` per
    column: indexing NumPy arrays element by element cost more than the ranking itself."""
    at = ranked.indices
    return [
        cat.place_ids[at].tolist(),
        cat.names[at].tolist(),
        [CATEGORIES[c] for c in ranked.categories.tolist()],
        ranked.scores.tolist(),
        ranked.distances_m.tolist(),
        cat.lat[at].tolist(),
        cat.lng[at].tolist(),
        cat.rating[at].tolist(),
        cat.reviews[at].tolist(),
    ]


def _items(cat: catalogue_module.Catalogue, ranked: ranking.Ranked) -> list[Recommendation]:
    return [Recommendation(*fields) for fields in zip(*_columns(cat, ranked), strict=True)]


def recommend_loaded(
    loaded: LoadedVersion,
    prefs: np.ndarray,
    mask: np.ndarray,
    lats: Sequence[float],
    lngs: Sequence[float],
    k: int | Sequence[int],
) -> list[list[Recommendation]]:
    """Batched step 1 (one forward pass for all users), then the ranking per user."""
    cat = catalogue_module.load()
    # The raw ratings go to the model, as in Planwise; ``mask`` says which ones to keep.
    finals = ranking.final_scores(prefs, mask, loaded.model.predict(prefs, mask))
    ranked = ranking.rank_batch(cat, finals, lats, lngs, k, loaded.config)
    return [_items(cat, r) for r in ranked]


def rank_one(
    loaded: LoadedVersion, prefs: np.ndarray, mask: np.ndarray, lat: float, lng: float, k: int
) -> tuple[catalogue_module.Catalogue, ranking.Ranked, np.ndarray]:
    """One validated user (``prefs`` and ``mask`` of 29): the catalogue, its ranked rows, and
    the model's predicted scores for the log. The request path: no batch machinery, and no
    object or list per place (the caller takes the columns it needs).
    """
    predicted = loaded.model.predict_one(prefs, mask)
    final = ranking.final_scores(prefs, mask, predicted)
    cat = catalogue_module.load()
    return cat, ranking.rank(cat, final, lat, lng, k, loaded.config), predicted


def _coordinate(value: Any, name: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError, OverflowError):
        raise BadInput(f"{name} must be a number, got {repr(value)[:40]}") from None
    if not math.isfinite(out):
        raise BadInput(f"{name} must be a finite number, got {value!r}")
    return out


def recommend(
    model: str,
    version: str | None,
    prefs: Any,
    *,
    mask: Any = None,
    lat: float,
    lng: float,
    k: int = 10,
) -> list[Recommendation]:
    """One user's top-``k`` places at (lat, lng) from a version (None = production)."""
    ratings = check_ratings(prefs)
    if len(ratings) != 1:
        raise BadInput("recommend takes one user's ratings; use recommend_batch for many")
    known = check_mask(mask, ratings)
    ranking.check_k(k)
    lat_f, lng_f = _coordinate(lat, "lat"), _coordinate(lng, "lng")
    ranking.check_location(lat_f, lng_f)
    return recommend_loaded(load(model, version), ratings, known, [lat_f], [lng_f], k)[0]


def recommend_batch(
    model: str,
    version: str | None,
    prefs: Any,
    lats: Sequence[float],
    lngs: Sequence[float],
    k: int | Sequence[int] = 10,
    masks: Any = None,
) -> list[list[Recommendation]]:
    ratings = check_ratings(prefs)
    known = check_mask(masks, ratings)
    lat_f = [_coordinate(v, "lat") for v in lats]
    lng_f = [_coordinate(v, "lng") for v in lngs]
    for a, b in zip(lat_f, lng_f, strict=False):
        ranking.check_location(a, b)
    for kk in [k] if isinstance(k, int) else k:
        ranking.check_k(kk)
    return recommend_loaded(load(model, version), ratings, known, lat_f, lng_f, k)
