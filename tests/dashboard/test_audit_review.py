"""``core.review.audit_review``: the stratified sample an auditor sees and the automatic
warnings."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from core import training
from core.accounts.auth import SYSTEM
from core.data.categories import CATEGORIES
from core.data.generator import generate_users
from core.errors import BadInput
from core.review import audit_review
from core.review.audit_review import Thresholds
from core.review.comparison import UserSample
from tests.fixtures.dashboard import ingest_users


@dataclass(frozen=True)
class Item:
    place_id: str
    name: str
    category: str
    score: float = 0.5
    distance_m: float = 100.0


def sample(prefs: list[dict[str, float]], places: list[str], segments=None) -> UserSample:
    matrix = np.zeros((len(prefs), len(CATEGORIES)))
    for row, ratings in enumerate(prefs):
        for category, value in ratings.items():
            matrix[row, CATEGORIES.index(category)] = value
    n = len(prefs)
    return UserSample(
        [f"u{i}" for i in range(n)],
        matrix,
        np.zeros(n),
        np.zeros(n),
        places,
        "test",
        0,
        list(segments or []),
    )


def lst(*categories: str, prefix: str = "p") -> list[Item]:
    return [Item(f"{prefix}{i}", f"{prefix}{i}", c) for i, c in enumerate(categories)]


def kinds(findings, severity: str = "warning") -> set[str]:
    return {f.kind for f in findings if f.severity == severity}


def test_stratified_sample_draws_every_segment() -> None:
    frame = generate_users(400, seed=2)
    frame.loc[frame.index[:3], list(CATEGORIES)] = 0  # three users rated nothing
    s = audit_review.stratified_sample(frame, 4, seed=1, source="gen")
    counts = {seg: s.segments.count(seg) for seg in set(s.segments)}
    assert counts[audit_review.NO_RATINGS] == 3
    assert len(counts) >= 6 and max(counts.values()) == 4
    again = audit_review.stratified_sample(frame, 4, seed=1, source="gen")
    assert again.user_ids == s.user_ids, "seeded"
    assert s.describe()["segments"] == counts
    with pytest.raises(BadInput, match="at least 1"):
        audit_review.stratified_sample(frame, 0)


def test_dominant_category_and_categories_never_shown() -> None:
    liked = {"museums": 5, "cafes": 3}
    s = sample([liked, liked, {"parks": 4}], ["Sol", "Retiro", "Atocha"])
    lists = [lst("cafes", "cafes", "parks"), lst("cafes", "parks", "cafes"), lst("cafes")]
    findings = audit_review.find_warnings(s, lists, 3)
    assert "dominant_category" in kinds(findings)
    dominant = next(f for f in findings if f.kind == "dominant_category")
    assert dominant.figures["category"] == "cafes"
    never = next(
        f for f in findings if f.kind == "category_never_recommended" and f.severity == "warning"
    )
    assert never.figures["categories"] == {"museums": 2}, "liked by two users, never shown"
    assert "category_never_recommended" in kinds(findings, "info")
    assert "short_lists" in kinds(findings)
    assert findings[0].severity == "warning", "warnings come first"


def test_empty_single_category_and_identical_lists() -> None:
    s = sample([{"cafes": 5}] * 4, ["Sol"] * 4)
    same = lst("parks", "parks")
    findings = audit_review.find_warnings(s, [same, same, same, []], 2)
    assert {"empty_lists", "single_category_lists", "not_personalised"} <= kinds(findings)

    varied = [lst("cafes", "parks", prefix=f"u{i}-") for i in range(4)]
    quiet = audit_review.find_warnings(s, varied, 2, Thresholds(dominant_share=0.6))
    assert not kinds(quiet) - {"category_never_recommended"}


def test_a_segment_served_worse_than_the_rest_is_flagged() -> None:
    s = sample(
        [{"cafes": 5}, {"cafes": 5}, {"museums": 5}, {"museums": 5}],
        ["Sol", "Retiro", "Sol", "Retiro"],
        segments=["foodie", "foodie", "culture", "culture"],
    )
    lists = [lst("cafes", "cafes", prefix=f"a{i}") for i in range(4)]
    findings = audit_review.find_warnings(s, lists, 2)
    underserved = [f for f in findings if f.kind == "segment_underserved"]
    assert [f.figures["segment"] for f in underserved] == ["culture"]
    summary = audit_review.segment_summary(s, lists, 2)
    assert list(summary["segment"]) == ["foodie", "culture"]
    assert list(summary["liked-category share"]) == [1.0, 0.0]


def test_lists_must_match_the_sample() -> None:
    s = sample([{"cafes": 5}], ["Sol"])
    with pytest.raises(BadInput, match="lists for 2 users"):
        audit_review.find_warnings(s, [[], []], 5)


def test_review_of_a_trained_version(sqlite_backend, tmp_path) -> None:
    ds = ingest_users(tmp_path)
    version = training.train(actor=SYSTEM, family="svd", dataset=ds.label, model="m").version
    from core.data import datasets

    s = audit_review.stratified_sample(datasets.load_users(ds), 3, seed=0, source=ds.label)
    review = audit_review.review("m", version.version, s, k=5)
    assert len(review.lists) == len(s)
    assert all(len(x) == 5 for x in review.lists)
    frame = review.user_frame(0)
    assert list(frame.columns) == ["rank", "place", "category", "score", "distance (m)"]
    record = review.record()
    assert record["users"] == len(s) and record["k"] == 5
    assert all(w["severity"] == "warning" for w in record["warnings"])
    assert set(review.liked_categories(0)) <= set(CATEGORIES)
