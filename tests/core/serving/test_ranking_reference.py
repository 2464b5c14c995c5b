"""`recommend` on the legacy model and the real catalogue equals the row-by-row reference."""

from __future__ import annotations

import warnings

import joblib
import numpy as np
import pytest

from core.accounts.auth import SYSTEM
from core.data import catalogue
from core.data.categories import CATEGORIES
from core.serving import predict, ranking
from core.training import legacy
from tests.conftest import LEGACY_MODEL
from tests.reference import planwise as ref

LEGACY = LEGACY_MODEL


@pytest.fixture(scope="module")
def keras_model():
    keras = pytest.importorskip("keras")
    return keras.models.load_model(LEGACY / "autoencoder.h5", compile=False)


@pytest.fixture(scope="module")
def scaler():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return joblib.load(LEGACY / "scaler.save")


@pytest.fixture(scope="module")
def places():
    return ref.load_places()


def _users(n: int, seed: int) -> list[tuple[list[float], list[bool], float, float, int]]:
    rng = np.random.default_rng(seed)
    lat0, lat1, lng0, lng1 = catalogue.madrid_bounds()
    users = []
    for _ in range(n):
        rated = rng.random(29) < rng.uniform(0.05, 0.7)
        prefs = np.where(rated, rng.integers(1, 6, 29), 0).astype(float)
        if rng.random() < 0.3:  # fractional ratings too, as the sliders give
            prefs = np.where(rated, np.round(rng.uniform(0.5, 5, 29), 1), 0.0)
        mask = rated if rng.random() < 0.8 else rng.random(29) < 0.5
        lat, lng = rng.uniform(lat0, lat1), rng.uniform(lng0, lng1)
        users.append(
            (prefs.tolist(), mask.tolist(), float(lat), float(lng), int(rng.integers(1, 21)))
        )
    return users


def test_legacy_recommend_matches_reference(sqlite_backend, keras_model, scaler, places):
    v = legacy.import_legacy(
        actor=SYSTEM, model_file=LEGACY / "autoencoder.h5", scaler_file=LEGACY / "scaler.save"
    )
    compared = nonempty = 0
    for prefs, mask, lat, lng, k in _users(60, seed=7):
        expected = ref.recommend(keras_model, scaler, places, prefs, mask, lat, lng, k)
        got = predict.recommend(v.model, v.version, prefs, mask=mask, lat=lat, lng=lng, k=k)
        assert [r.place_id for r in got] == [e[0] for e in expected], (prefs, mask, lat, lng, k)
        assert [r.category for r in got] == [e[1] for e in expected]
        np.testing.assert_allclose(
            [r.score for r in got], [e[2] for e in expected], atol=1e-6
        )  # float32 forward passes
        compared += 1
        nonempty += bool(expected)
    assert compared == 60 and nonempty > 30


def test_batch_equals_single_and_reference_in_the_centre(
    sqlite_backend, keras_model, scaler, places
):
    """Dense central locations (hundreds of candidates, many ties between categories)."""
    v = legacy.import_legacy(
        actor=SYSTEM, model_file=LEGACY / "autoencoder.h5", scaler_file=LEGACY / "scaler.save"
    )
    rng = np.random.default_rng(11)
    users = _users(25, seed=3)
    lats = [40.4168 + rng.normal(0, 0.004) for _ in users]
    lngs = [-3.7038 + rng.normal(0, 0.004) for _ in users]
    prefs = np.array([u[0] for u in users])
    masks = np.array([u[1] for u in users])
    batch = predict.recommend_batch(v.model, v.version, prefs, lats, lngs, 10, masks)
    for i, u in enumerate(users):
        expected = ref.recommend(keras_model, scaler, places, u[0], u[1], lats[i], lngs[i], 10)
        assert [r.place_id for r in batch[i]] == [e[0] for e in expected]
        single = predict.recommend(v.model, v.version, u[0], mask=u[1], lat=lats[i], lng=lngs[i])
        # float32 matrix products of one row and of a batch may differ in the last bits
        # (BLAS picks kernels by shape); the places and their order may not.
        assert [r.place_id for r in single] == [r.place_id for r in batch[i]]
        assert [r.score for r in single] == pytest.approx([r.score for r in batch[i]], rel=1e-6)


def test_ranking_engine_equals_reference_on_given_scores(places):
    """Steps 2–5 alone, with integer scores that tie across categories and places."""
    cat = catalogue.load()
    rng = np.random.default_rng(5)
    for _ in range(15):
        final = rng.integers(0, 6, 29).astype(float)
        lat, lng = 40.42 + rng.normal(0, 0.01), -3.70 + rng.normal(0, 0.01)
        got = ranking.rank(cat, final, lat, lng, 15)
        expected = ref.rank_places(places, final.tolist(), lat, lng, 15)
        assert cat.place_ids[got.indices].tolist() == [e[0] for e in expected]
        assert [CATEGORIES[c] for c in got.categories] == [e[1] for e in expected]


def test_round_robin_interleaves_categories():
    cat = catalogue.load()
    final = np.zeros(29)
    final[CATEGORIES.index("museums")] = 5
    final[CATEGORIES.index("cafes")] = 4
    got = ranking.rank(cat, final, 40.4138, -3.6921, 6)  # by the Prado
    names = [CATEGORIES[c] for c in got.categories]
    assert names[:2] in (["museums", "cafes"], ["cafes", "museums"])
    assert names[0::2] == [names[0]] * 3 and names[1::2] == [names[1]] * 3


def test_nothing_in_radius_and_custom_config():
    cat = catalogue.load()
    final = np.full(29, 3.0)
    assert len(ranking.rank(cat, final, 0.0, 0.0, 10).indices) == 0  # Gulf of Guinea
    wide = ranking.RankingConfig(radius_m=50_000)
    assert len(ranking.rank(cat, final, 40.0, -3.7, 10, wide).indices) == 10


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prefs": [1.0] * 28}, "29 ratings"),
        ({"prefs": [1.0] * 28 + [6.0]}, "outside 0–5"),
        ({"prefs": [1.0] * 28 + [float("nan")]}, "not a finite number"),
        ({"prefs": [1.0] * 28 + ["x"]}, "must be numbers"),
        ({"lat": 95.0}, "latitude"),
        ({"lng": float("inf")}, "lng must be a finite"),
        ({"k": 0}, "k must be an integer"),
        ({"mask": [True] * 3}, "mask"),
    ],
)
def test_bad_input_is_named(sqlite_backend, kwargs, message):
    v = legacy.import_legacy(
        actor=SYSTEM, model_file=LEGACY / "autoencoder.h5", scaler_file=LEGACY / "scaler.save"
    )
    args = {"prefs": [3.0] * 29, "lat": 40.4, "lng": -3.7, "k": 5} | kwargs
    with pytest.raises(Exception, match=message) as info:
        predict.recommend(v.model, v.version, args.pop("prefs"), **args)
    assert type(info.value).__name__ == "BadInput"
