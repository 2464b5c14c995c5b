"""Drift verdicts: Evidently's own, pinned per column type, and right about a known shift."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.data.categories import CATEGORIES
from core.data.generator import DriftEpisode, generate_users
from core.errors import BadInput
from core.monitoring import drift
from tests.fixtures.drift import SHIFTED, shifted

CATS = list(CATEGORIES)
TOP = "top category"


def with_top_category(frame: pd.DataFrame) -> pd.DataFrame:
    """A categorical column like the prediction log's: each user's favourite category."""
    out = frame.copy()
    out[TOP] = np.asarray(CATS)[np.argmax(frame[CATS].to_numpy(), axis=1)]
    return out


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return generate_users(4000, seed=11)


@pytest.fixture(scope="module")
def current() -> pd.DataFrame:
    return generate_users(4000, seed=12)


# ------------------------------------------------------------------------ a known shift


def test_a_shifted_copy_flags_exactly_the_shifted_categories(reference) -> None:
    result = drift.compute(reference, shifted(reference), numeric=CATS)
    assert set(result.drifted_columns) == set(SHIFTED)
    for column, d in result.columns.items():
        assert d.method == "wasserstein" and d.threshold == drift.THRESHOLD
        if column not in SHIFTED:
            assert d.score == 0.0  # the same values
    assert result.drift_share == pytest.approx(3 / 29)
    assert not result.dataset_drift


def test_a_shift_in_new_users_flags_the_shifted_categories_and_not_the_others(
    reference, current
) -> None:
    """Independent samples: the others differ by sampling noise only, well below threshold."""
    calm = drift.compute(reference, current, numeric=CATS)
    assert calm.drifted_columns == []
    assert max(d.score for d in calm.columns.values()) < 0.8 * drift.THRESHOLD
    result = drift.compute(reference, shifted(current), numeric=CATS)
    assert set(result.drifted_columns) == set(SHIFTED)
    assert min(result.columns[c].score for c in SHIFTED) > drift.THRESHOLD


def test_the_summer_episode_stands_out(reference) -> None:
    """The four categories of the episode score highest, and alone reach the alert threshold.

    Other categories move a little too (users who care about beaches rate fewer other
    categories), which the per-column test may flag; the feature alert (0.3) does not.
    """
    summer = generate_users(4000, seed=13, drift=DriftEpisode(0))
    result = drift.compute(reference, summer, numeric=CATS)
    episode = {"beaches", "swimming pools", "view points", "museums"}
    ranked = sorted(result.columns, key=lambda c: -result.columns[c].score)
    assert set(ranked[:4]) == episode
    assert {c for c, d in result.columns.items() if d.score >= 0.3} == episode


# ------------------------------------------------------------------------ Evidently agrees


def test_verdicts_agree_with_evidentlys_full_report() -> None:
    """All 29 ratings and a categorical column: three categories shifted, the rest not."""
    ref = with_top_category(generate_users(1000, seed=21))
    cur = with_top_category(shifted(generate_users(1000, seed=22)))
    fast = drift.compute(ref, cur, numeric=CATS, categorical=[TOP])
    full = drift.compute(ref, cur, numeric=CATS, categorical=[TOP], full_report=True)
    _assert_same(fast, full)
    assert {c for c in fast.drifted_columns if c != TOP} == set(SHIFTED)
    assert fast.columns[TOP].method == "jensenshannon"


def test_verdicts_agree_below_evidentlys_size_switch() -> None:
    """300 and 250 rows: Evidently's default would use K-S and chi-square here; ours may not."""
    columns = ["beaches", "museums", "zoo", "bakeries", "cafes"]
    ref = with_top_category(generate_users(300, seed=23))
    cur = with_top_category(shifted(generate_users(250, seed=24), dict.fromkeys(columns, 3)))
    fast = drift.compute(ref, cur, numeric=columns, categorical=[TOP])
    full = drift.compute(ref, cur, numeric=columns, categorical=[TOP], full_report=True)
    _assert_same(fast, full)
    assert {d.method for c, d in full.columns.items() if c != TOP} == {"wasserstein"}
    assert set(columns) <= set(fast.drifted_columns)
    assert fast.dataset_drift


def _assert_same(fast: drift.DriftResult, full: drift.DriftResult) -> None:
    assert list(fast.columns) == list(full.columns)
    for column in fast.columns:
        a, b = fast.columns[column], full.columns[column]
        assert (a.drifted, a.method, a.threshold) == (b.drifted, b.method, b.threshold), column
        assert a.score == pytest.approx(b.score, rel=1e-9, abs=1e-12), column
    assert fast.drift_share == full.drift_share
    assert fast.dataset_drift == full.dataset_drift


def test_the_method_does_not_change_with_the_sample_size(reference, current) -> None:
    for n in (50, 999, 1001, 4000):
        result = drift.compute(
            with_top_category(reference.head(n)),
            with_top_category(current.head(n)),
            numeric=CATS,
            categorical=[TOP],
        )
        assert {d.method for c, d in result.columns.items() if c != TOP} == {"wasserstein"}, n
        assert result.columns[TOP].method == "jensenshannon"
        assert {d.threshold for d in result.columns.values()} == {drift.THRESHOLD}


def test_html_report(reference) -> None:
    result = drift.compute(
        reference.head(500), shifted(reference.head(500)), numeric=["beaches", "parks"], html=True
    )
    assert result.html is not None and len(result.html) > 100_000
    assert "beaches" in result.html
    assert result.drifted_columns == ["beaches"]


# ------------------------------------------------------------------------ sampling, summaries


def test_large_inputs_are_sampled_with_a_documented_seeded_rule(reference, current) -> None:
    first = drift.compute(reference, current, numeric=CATS, sample_rows=1000)
    again = drift.compute(reference, current, numeric=CATS, sample_rows=1000)
    assert (first.n_reference, first.n_current) == (1000, 1000)
    assert first.as_dict() == again.as_dict()
    assert "4000 → 1000 reference rows" in first.sampling and "seeds 0 and 1" in first.sampling
    other = drift.compute(reference, current, numeric=CATS, sample_rows=1000, seed=5)
    assert other.as_dict()["columns"] != first.as_dict()["columns"]
    small = drift.compute(reference.head(300), current.head(200), numeric=CATS)
    assert (small.n_reference, small.n_current) == (300, 200)


def test_summaries_hold_both_sides_histograms(reference, current) -> None:
    ref = with_top_category(reference.head(600))
    cur = with_top_category(current.head(400))
    ref["score"] = np.linspace(0, 1, len(ref))
    cur["score"] = np.linspace(0.5, 1.5, len(cur))
    result = drift.compute(ref, cur, numeric=["museums", "score"], categorical=[TOP])
    museums = result.summaries["museums"]
    assert museums["kind"] == "discrete" and museums["values"] == [0, 1, 2, 3, 4, 5]
    assert museums["reference"] == [int((ref["museums"] == v).sum()) for v in range(6)]
    assert sum(museums["current"]) == 400
    score = result.summaries["score"]
    assert score["kind"] == "numeric" and len(score["edges"]) == drift.HIST_BINS + 1
    assert (sum(score["reference"]), sum(score["current"])) == (600, 400)
    top = result.summaries[TOP]
    assert top["kind"] == "categorical" and top["values"] == sorted(top["values"])
    assert sum(top["current"]) == 400
    assert result.columns["score"].drifted


def test_as_dict_is_the_documented_json(reference, current) -> None:
    out = drift.compute(reference.head(200), current.head(200), numeric=["zoo"]).as_dict()
    assert {"columns", "drift_share", "dataset_drift"} <= set(out)
    assert set(out["columns"]["zoo"]) == {"drifted", "method", "score", "threshold"}
    assert isinstance(out["columns"]["zoo"]["drifted"], bool)


# ------------------------------------------------------------------------ bad input


def test_bad_input_names_the_problem(reference) -> None:
    ref = reference.head(100)
    text = ref.astype({"zoo": object})
    text.loc[text.index[4], "zoo"] = "many"
    infinite = ref.astype({"zoo": float})
    infinite.loc[infinite.index[2], "zoo"] = np.inf
    cases = [
        ((ref.head(0), ref), {"numeric": ["zoo"]}, "reference data has no rows"),
        ((ref, ref.head(0)), {"numeric": ["zoo"]}, "current data has no rows"),
        ((ref, ref.drop(columns=["zoo"])), {"numeric": ["zoo"]}, "lacks the column(s) 'zoo'"),
        ((ref, text), {"numeric": ["zoo"]}, "'zoo' of the current data holds text, e.g. 'many'"),
        ((text, ref), {"numeric": ["zoo"]}, "'zoo' of the reference data holds text"),
        ((ref, infinite), {"numeric": ["zoo"]}, "infinite"),
        ((ref, ref), {"numeric": ["zoo", "zoo"]}, "listed twice"),
        ((ref, ref), {}, "no columns"),
    ]
    for frames, kwargs, message in cases:
        with pytest.raises(BadInput) as caught:
            drift.compute(*frames, **kwargs)
        assert message in str(caught.value), (message, str(caught.value))
