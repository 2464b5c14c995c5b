"""Cached rankings of Preview, Compare and Audit: lists of explicit versions, kept long.

A version number names fixed files, so its lists never change; callers pass a number, never
"production" (it moves).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from core.errors import CoreError
from core.review import comparison
from core.review.audit_review import AuditReview
from core.review.comparison import ListDiff, UserSample
from dashboard.cache.cached import RESULT_TTL, cached
from dashboard.cache.registry import users

log = logging.getLogger(__name__)


class VersionFailed(CoreError):
    """A registered version could not be loaded or run (shown on the page like a core error)."""


@contextlib.contextmanager
def _running(what: str) -> Iterator[None]:
    """Turn an unexpected failure of a model into a message, so one damaged version does not
    take a whole page down; the traceback goes to the log."""
    try:
        yield
    except CoreError:
        raise
    except Exception as exc:
        log.exception("%s failed", what)
        raise VersionFailed(
            f"{what} failed ({type(exc).__name__}: {exc}); the version's files may be damaged "
            "or written by an incompatible library version"
        ) from exc


@cached(ttl=RESULT_TTL, max_entries=512)
def recommend(
    model: str,
    number: str,
    prefs: Sequence[float],
    lat: float,
    lng: float,
    k: int,
) -> list[Any]:
    """One user's list from an explicit version number (never "production": it moves)."""
    from core.serving import predict

    ratings = tuple(float(p) for p in prefs)
    mask = [p > 0 for p in ratings]
    with _running(f"ranking with {model}@{number}"):
        return list(
            predict.recommend(
                model, number, ratings, mask=mask, lat=float(lat), lng=float(lng), k=k
            )
        )


@cached(ttl=RESULT_TTL, max_entries=512)
def predicted_categories(model: str, number: str, prefs: Sequence[float]) -> np.ndarray:
    from core.serving import predict

    ratings = [tuple(float(p) for p in prefs)]
    with _running(f"predicting with {model}@{number}"):
        out = predict.predict_categories(model, number, np.asarray(ratings, dtype=np.float64))
    return np.asarray(out, dtype=np.float64)[0]


def _sample(source: str, n: int, seed: int, *, stratified: bool) -> UserSample:
    from core.review import audit_review

    frame = users(source, generated_n=max(n * 10, 500), seed=seed)
    if stratified:
        return audit_review.stratified_sample(frame, n, seed=seed, source=source)
    return comparison.sample_users(frame, n, seed=seed, source=source)


@cached(ttl=RESULT_TTL, max_entries=32, spinner="Ranking places for the sample…")
def list_diff(label_a: str, label_b: str, source: str, n: int, k: int, seed: int) -> ListDiff:
    """The ranked-list difference of two versions given as ``model@version``."""
    model_a, _, number_a = label_a.partition("@")
    model_b, _, number_b = label_b.partition("@")
    sample = _sample(source, n, seed, stratified=False)
    with _running(f"ranking with {label_a} and {label_b}"):
        return comparison.compare_lists(model_a, number_a, number_b, sample, k=k, model_b=model_b)


@cached(ttl=RESULT_TTL, max_entries=16, spinner="Ranking places for the sample…")
def audit_review(
    model: str, number: str, source: str, per_segment: int, k: int, seed: int
) -> AuditReview:
    from core.review import audit_review as review

    sample = _sample(source, per_segment, seed, stratified=True)
    with _running(f"ranking with {model}@{number}"):
        return review.review(model, number, sample, k=k)
