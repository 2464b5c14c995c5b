"""``core.review.comparison``: metric deltas, user samples and ranked-list differences.

The list measures are pure functions of ranked lists, checked here on hand-made lists; the
registry-backed parts run on SQLite with stand-in versions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from core import registry
from core.accounts.auth import SYSTEM
from core.data.categories import CATEGORIES
from core.data.generator import generate_users
from core.errors import BadInput
from core.metrics import direction
from core.review import comparison
from core.review.comparison import NEIGHBOURHOODS
from tests.fixtures.registry import register_dummy


@dataclass(frozen=True)
class Item:
    place_id: str
    name: str
    category: str
    score: float = 0.5


def items(*specs: str) -> list[Item]:
    """``"p1:cafes"`` → an item with that place id and category."""
    out = []
    for spec in specs:
        pid, _, category = spec.partition(":")
        out.append(Item(pid, f"place {pid}", category or "cafes"))
    return out


# ------------------------------------------------------------------------ overlap and diff


def test_overlap_at_k() -> None:
    assert comparison.overlap_at_k(["a", "b", "c"], ["c", "b", "a"], 3) == 1.0
    assert comparison.overlap_at_k(["a", "b"], ["c", "d"], 2) == 0.0
    assert comparison.overlap_at_k(["a", "b", "x"], ["a", "b", "y"], 2) == 1.0  # only top-k
    # A version that returns fewer places is not rewarded for it.
    assert comparison.overlap_at_k(["a", "b", "c", "d"], ["a", "b"], 4) == 0.5
    assert comparison.overlap_at_k([], [], 5) == 1.0
    with pytest.raises(BadInput, match="k must be at least 1"):
        comparison.overlap_at_k(["a"], ["a"], 0)


def test_list_diff_counts_gains_losses_mix_and_short_lists() -> None:
    lists_a = [items("1:cafes", "2:parks", "3:museums"), items("1:cafes", "4:parks")]
    lists_b = [items("1:cafes", "5:museums", "3:museums"), items("1:cafes", "5:museums")]
    diff = comparison.list_diff(lists_a, lists_b, 3, label_a="A", label_b="B")

    assert diff.overlap == [pytest.approx(2 / 3), pytest.approx(1 / 2)]
    assert diff.mean_overlap == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert diff.identical_share == 0.0
    assert [(p.place_id, p.users) for p in diff.gained] == [("5", 2)]
    assert [(p.place_id, p.users) for p in diff.lost] == [("2", 1), ("4", 1)]
    assert diff.short_lists == {"A": 1, "B": 1}
    assert sum(diff.category_mix["A"].values()) == pytest.approx(1.0)
    assert diff.category_mix["B"]["museums"] == pytest.approx(3 / 5)
    mix = diff.mix_frame()
    assert set(mix["version"]) == {"A", "B"}
    order = [c for c in CATEGORIES if c in set(mix["category"])]
    assert list(dict.fromkeys(mix["category"])) == order, "categories in model order"


def test_list_diff_refuses_lists_for_different_users() -> None:
    with pytest.raises(BadInput, match="2 and 1 users"):
        comparison.list_diff([items("1"), items("2")], [items("1")], 5)


def test_category_mix_counts_only_the_top_k() -> None:
    mix = comparison.category_mix([items("1:cafes", "2:parks", "3:parks")], 2)
    assert mix == {"cafes": 0.5, "parks": 0.5}
    assert comparison.category_mix([[]], 3) == {}


# ------------------------------------------------------------------------ metrics


def test_metric_directions() -> None:
    assert direction.higher_is_better("ndcg@5")
    assert direction.higher_is_better("coverage@10")
    assert not direction.higher_is_better("rmse")
    assert not direction.higher_is_better("validation_loss")
    assert comparison.numeric_metrics({"a": 1, "b": "x", "c": True, "d": float("nan")}) == {
        "a": 1.0
    }


def test_compare_metrics_adds_the_references_and_takes_deltas(sqlite_backend) -> None:
    prod = register_dummy("m", metrics={"ndcg@5": 0.5, "rmse": 1.0})
    cand = register_dummy("m", metrics={"ndcg@5": 0.6, "rmse": 0.9, "extra": 3})
    base = register_dummy("pop", metrics={"ndcg@5": 0.3, "rmse": 1.2})
    mc = comparison.compare_metrics([cand], production=prod, baseline=base)
    assert list(mc.values.index) == [cand.label, prod.label, base.label]
    assert mc.vs_production is not None and mc.vs_baseline is not None
    assert mc.vs_production.loc[cand.label, "ndcg@5"] == pytest.approx(0.1)
    assert mc.vs_baseline.loc[cand.label, "rmse"] == pytest.approx(-0.3)
    assert np.isnan(mc.vs_production.loc[prod.label, "extra"])
    assert mc.directions["rmse"] is False
    long = mc.long()
    assert set(long.columns) == {"version", "metric", "value"}
    assert len(long) == 7  # the missing "extra" values are dropped

    alone = comparison.compare_metrics([cand])
    assert alone.vs_production is None and alone.production is None


def test_metric_trend_is_in_version_order_and_baseline_prefers_production(sqlite_backend) -> None:
    for i in range(11):
        register_dummy("m", family="svd", metrics={"ndcg@5": i / 10})
    trend = comparison.metric_trend("m")
    assert list(trend["version"][-2:]) == ["1.9.0", "1.10.0"], "semver order, not text"
    assert list(trend["ndcg@5"]) == pytest.approx([i / 10 for i in range(11)])

    assert comparison.find_baseline() is None
    first = register_dummy("pop")
    register_dummy("pop")
    assert comparison.find_baseline().version == "1.1.0", "the newest without a production"
    registry.promote(
        actor=SYSTEM,
        model="pop",
        version=first.version,
        stage="production",
        reason="test promotion",
    )
    assert comparison.find_baseline().version == first.version


# ------------------------------------------------------------------------ samples


def test_sample_users_is_seeded_and_placed_in_madrid() -> None:
    frame = generate_users(50, seed=3)
    a = comparison.sample_users(frame, 20, seed=7, source="gen")
    b = comparison.sample_users(frame, 20, seed=7, source="gen")
    assert a.user_ids == b.user_ids and len(a) == 20
    assert a.prefs.shape == (20, len(CATEGORIES))
    assert (a.masks == (a.prefs > 0)).all()
    assert set(a.places) <= set(NEIGHBOURHOODS)
    assert all(
        NEIGHBOURHOODS[p] == (la, ln) for p, la, ln in zip(a.places, a.lats, a.lngs, strict=True)
    )
    assert len(comparison.sample_users(frame, 500, seed=1)) == 50
    record = a.describe()
    assert record["users"] == 20 and record["source"] == "gen"
    with pytest.raises(BadInput, match="at least 1"):
        comparison.sample_users(frame, 0)
    with pytest.raises(BadInput, match="no users"):
        comparison.sample_users(frame.iloc[:0], 5)


def test_locations_are_spread_evenly() -> None:
    _, _, places = comparison.assign_locations(len(NEIGHBOURHOODS) * 3, seed=0)
    assert set(pd.Series(places).value_counts()) == {3}
    with pytest.raises(BadInput, match="unknown neighbourhood"):
        comparison.assign_locations(3, seed=0, neighbourhoods=["Atlantis"])
