"""The Planwise ranking of DESIGN.md over the catalogue.

Step 1 (the model's category scores) happens in ``core.serving.predict``; this module takes the
final
29 scores of a user, checks them, and hands steps 2–5 (distance, each place's winning
category, the score, the round-robin over categories) to the compiled pass of
``core.serving.ranking_kernel``. The result is the same list the row-by-row original produced.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.data.catalogue import Catalogue
from core.data.categories import CATEGORIES, N_CATEGORIES
from core.errors import BadInput

EARTH_RADIUS_M = 6_371_000.0
MAX_K = 100


def final_scores(prefs: np.ndarray, mask: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Planwise step 1's last line: the user's own ratings where given, predictions elsewhere."""
    return np.where(mask, prefs, predicted)


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
    """Haversine distance in metres from (lat, lng) to every place (or to ``rows``).

    Sine and arcsine come from the C library, as in the compiled ranking and in the original
    Planwise code: NumPy's vectorised ``sin``/``arcsin`` differ from them in the last bit
    for about one distance in ten thousand.
    """
    lat1 = math.radians(lat)
    lat_rad = catalogue.lat_rad if rows is None else catalogue.lat_rad[rows]
    lng_rad = catalogue.lng_rad if rows is None else catalogue.lng_rad[rows]
    cos_lat = catalogue.cos_lat if rows is None else catalogue.cos_lat[rows]
    dlat = lat_rad - lat1
    dlng = lng_rad - math.radians(lng)
    a = _libm_sin(dlat / 2.0) ** 2 + math.cos(lat1) * cos_lat * _libm_sin(dlng / 2.0) ** 2
    return 2.0 * EARTH_RADIUS_M * _libm_asin(np.sqrt(np.minimum(a, 1.0)))


def _libm(function: Any) -> Any:
    each = np.frompyfunc(function, 1, 1)
    return lambda x: np.asarray(each(x), dtype=np.float64)


_libm_sin, _libm_asin = _libm(math.sin), _libm(math.asin)


def _window(lat: float, radius_m: float) -> tuple[float, float]:
    """Half-sizes in degrees of a lat/lng box that holds the whole circle (1 % margin): two
    comparisons per place rule most of the catalogue out before any trigonometry."""
    half_lat = math.degrees(radius_m / EARTH_RADIUS_M) * 1.01
    cos_edge = math.cos(math.radians(min(abs(lat) + half_lat, 89.9)))
    half_lng = math.degrees(radius_m / (EARTH_RADIUS_M * cos_edge)) * 1.01
    return half_lat, min(half_lng, 360.0)


_kernel: Any = None


def _rank_places() -> Any:
    """The compiled kernel, imported on first use so that Numba stays out of import paths
    that never rank."""
    global _kernel
    if _kernel is None:
        from core.serving.ranking_kernel import rank_places

        _kernel = rank_places
    return _kernel


def warm_up() -> None:
    """Load (or compile) the kernel now, so that a server's first request does not pay it."""
    from core.data import catalogue as catalogue_module

    rank(catalogue_module.load(), np.full(N_CATEGORIES, 3.0), 40.4168, -3.7038)


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
    final = np.ascontiguousarray(final, dtype=np.float64)
    if final.shape != (N_CATEGORIES,):
        raise BadInput(f"expected {N_CATEGORIES} category scores, got shape {final.shape}")
    layout = catalogue.layout
    half_lat, half_lng = _window(lat, config.radius_m)
    try:
        rows, scores, categories, dist = _rank_places()(
            layout.rows,
            layout.strip_start,
            layout.lng_min,
            layout.strip_degrees,
            layout.columns,
            catalogue.category_masks(config.mapping),
            final,
            float(lat),
            float(lng),
            config.radius_m,
            config.w_distance,
            config.w_rating,
            config.w_reviews,
            config.w_category,
            half_lat,
            half_lng,
            int(k),
        )
    except ValueError as exc:  # the kernel checks that the scores are finite
        raise BadInput(str(exc)) from None
    return Ranked(rows, scores, categories, dist)


def rank_batch(
    catalogue: Catalogue,
    finals: np.ndarray,
    lats: Sequence[float] | np.ndarray,
    lngs: Sequence[float] | np.ndarray,
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
