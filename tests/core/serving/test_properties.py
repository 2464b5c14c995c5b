"""Property-based tests: ranking invariants and all-or-nothing ingest on generated input."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.accounts.auth import SYSTEM
from core.data import catalogue, datasets
from core.data.categories import CATEGORIES
from core.data.generator import generate_users
from core.errors import BadInput
from core.serving import ranking
from tests.conftest import tree_snapshot
from tests.fixtures.registry import registry_dump
from tests.reference import numpy_ranking

CAT = catalogue.load()
LAT0, LAT1, LNG0, LNG1 = catalogue.madrid_bounds()
scores = st.lists(
    st.sampled_from([0.0, 0.5, 1.0, 2.0, 2.5, 3.0, 4.0, 4.5, 5.0]), min_size=29, max_size=29
)


@given(
    final=scores,
    lat=st.floats(LAT0 - 0.02, LAT1 + 0.02),
    lng=st.floats(LNG0 - 0.02, LNG1 + 0.02),
    k=st.integers(1, 100),
    radius=st.sampled_from([300.0, 1000.0, 2000.0, 5000.0]),
)
@settings(max_examples=150, deadline=None)
def test_ranking_invariants(final, lat, lng, k, radius):
    final = np.asarray(final)
    config = ranking.RankingConfig(radius_m=radius)
    got = ranking.rank(CAT, final, lat, lng, k, config)
    n = len(got.indices)
    assert n <= k and len(set(got.indices.tolist())) == n
    assert (got.distances_m <= radius).all()
    assert all(final[c] > 0 for c in got.categories)  # a category must score above 0
    # Round-robin: the i-th place of a category comes after the (i-1)-th of every category
    # that still had places, and within a category scores never increase.
    seen: dict[int, list[float]] = {}
    for c, s in zip(got.categories.tolist(), got.scores.tolist(), strict=True):
        seen.setdefault(c, []).append(s)
    for values in seen.values():
        assert values == sorted(values, reverse=True)
    full = ranking.rank(CAT, final, lat, lng, 100, config)
    if len(full.indices) < 100:  # the whole candidate list: check the round-robin against it
        available = {c: int((full.categories == c).sum()) for c in set(full.categories.tolist())}
        top = max((len(v) for v in seen.values()), default=0)
        for c, values in seen.items():
            # fewer than the busiest category only if this one ran out of places
            assert len(values) >= top - 1 or len(values) == available[c]
    # Every place within the radius whose types match a positive category was a candidate:
    # with k large enough, nothing that qualifies is left out.
    if k == 100 and n < 100:
        d = ranking.distances_m(CAT, lat, lng)
        member = CAT.membership()
        qualifies = (d <= radius) & (member & (final > 0)).any(axis=1)
        assert n == int(qualifies.sum())


MAPPINGS = (
    None,
    # fewer categories with places, and one place type standing for several categories
    {"museums": ("museum", "art_gallery"), "cafes": ("cafe",), "parks": ("park", "cafe")},
)


@given(
    final=st.lists(
        st.one_of(st.floats(0.0, 5.0), st.sampled_from([0.0, 5e-324, 1e-310, 5.0])),
        min_size=29,
        max_size=29,
    ),
    lat=st.floats(LAT0 - 0.02, LAT1 + 0.02),
    lng=st.floats(LNG0 - 0.02, LNG1 + 0.02),
    k=st.integers(1, 100),
    radius=st.floats(50.0, 20_000.0),
    weights=st.lists(st.floats(-1.0, 2.0), min_size=4, max_size=4),
    mapping=st.sampled_from(MAPPINGS),
)
@settings(max_examples=200, deadline=None)
def test_compiled_ranking_equals_the_numpy_one_bit_for_bit(
    final, lat, lng, k, radius, weights, mapping
):
    """Any radius, weights (negative too) and category mapping: same places, same order,
    same scores and distances to the last bit as the array-at-a-time NumPy ranking."""
    config = ranking.RankingConfig(radius, *weights, mapping=mapping)
    got = ranking.rank(CAT, np.asarray(final), lat, lng, k, config)
    expected = numpy_ranking.rank_numpy(CAT, np.asarray(final), lat, lng, k, config)
    for name in ("indices", "categories", "scores", "distances_m"):
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name), name)


@given(
    lat=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.just(91.0)),
    k=st.integers(-5, 200),
)
@settings(max_examples=60, deadline=None)
def test_bad_locations_and_k_are_refused(lat, k):
    final = np.full(29, 3.0)
    ok = math.isfinite(lat) and -90 <= lat <= 90 and 1 <= k <= 100
    if ok:
        ranking.rank(CAT, final, lat, -3.7, k)
    else:
        with pytest.raises(BadInput):
            ranking.rank(CAT, final, lat, -3.7, k)


DEFECTS = (
    "text",
    "nan",
    "inf",
    "range",
    "duplicate_id",
    "no_rating",
    "missing_column",
    "extra_blank_header",
)


@given(
    defect=st.sampled_from(DEFECTS),
    row=st.integers(0, 39),
    col=st.sampled_from(list(CATEGORIES)),
    seed=st.integers(0, 10_000),
)
@settings(max_examples=16, deadline=None, suppress_health_check=list(HealthCheck))
def test_defective_users_files_are_refused_and_change_nothing(
    sqlite_backend, tmp_path_factory, defect, row, col, seed
):
    frame = generate_users(40, seed=seed)
    frame = frame.astype({c: object for c in CATEGORIES})
    if defect == "text":
        frame.loc[row, col] = "five"
    elif defect == "nan":
        frame.loc[row, col] = float("nan")
    elif defect == "inf":
        frame.loc[row, col] = float("inf")
    elif defect == "range":
        frame.loc[row, col] = 7
    elif defect == "duplicate_id":
        frame.loc[row, "user_id"] = frame.loc[(row + 1) % 40, "user_id"]
    elif defect == "no_rating":
        frame.loc[row, list(CATEGORIES)] = 0
    elif defect == "missing_column":
        frame = frame.drop(columns=[col])
    elif defect == "extra_blank_header":
        frame[""] = 1
    path = Path(tmp_path_factory.mktemp("bad")) / "users.csv"
    frame.to_csv(path, index=False)
    before = registry_dump(), tree_snapshot(sqlite_backend.root / "data")
    with pytest.raises(BadInput) as info:
        datasets.ingest(path, name="users", actor=SYSTEM)
    message = str(info.value)
    if defect in ("text", "nan", "inf", "range", "missing_column"):
        assert col in message
    assert (registry_dump(), tree_snapshot(sqlite_backend.root / "data")) == before


def test_a_clean_file_round_trips(sqlite_backend, tmp_path):
    frame = generate_users(50, seed=1)
    path = tmp_path / "users.parquet"
    frame.to_parquet(path)
    info = datasets.ingest(path, name="users", actor=SYSTEM)
    back = datasets.load_users(info)
    pd.testing.assert_frame_equal(
        back[list(CATEGORIES)].astype(float), frame[list(CATEGORIES)].astype(float)
    )
