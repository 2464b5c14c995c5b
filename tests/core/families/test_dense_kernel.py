"""One user's compiled forward pass against the NumPy batch pass it stands in for."""

from __future__ import annotations

import numpy as np
import pytest

from core.families import autoencoder, dense_numpy
from core.families.dense_numpy import ACTIVATIONS, DenseLayer, DenseNet
from tests.conftest import LEGACY_MODEL

LEGACY = LEGACY_MODEL


def _users(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ratings = np.where(rng.random((n, 29)) < 0.4, rng.integers(1, 6, (n, 29)), 0).astype(float)
    ratings[::3] = np.round(rng.uniform(0, 5, (len(ratings[::3]), 29)), 1)  # slider values
    return ratings, ratings > 0


def _model(net: DenseNet) -> autoencoder.Autoencoder:
    model = autoencoder.Autoencoder.__new__(autoencoder.Autoencoder)
    model.net = net
    model.scaler = autoencoder.load_scaler(LEGACY / "scaler.save")
    model.minmax = dense_numpy.MinMax.from_sklearn(model.scaler)
    return model


def test_legacy_model_one_user_equals_the_batch_bit_for_bit():
    model = _model(dense_numpy.read(LEGACY / "autoencoder.h5"))
    ratings, mask = _users(3000, seed=1)
    batch = model.predict(ratings, mask)
    one = np.array([model.predict_one(r, m) for r, m in zip(ratings, mask, strict=True)])
    np.testing.assert_array_equal(one, batch)
    assert ((one >= 0) & (one <= 5)).all()


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_every_activation_agrees(activation):
    """A 29 → 11 → 7 → 29 net with the activation under test in the middle."""
    rng = np.random.default_rng(3)
    shapes = [(29, 11, "relu"), (11, 7, activation), (7, 29, "sigmoid")]
    layers = tuple(
        DenseLayer(
            f"dense_{i}",
            rng.normal(0, 0.7, (n_in, n_out)).astype(np.float32),
            rng.normal(0, 0.3, n_out).astype(np.float32),
            act,
        )
        for i, (n_in, n_out, act) in enumerate(shapes)
    )
    model = _model(DenseNet(layers))
    ratings, mask = _users(500, seed=2)
    batch = model.predict(ratings, mask)
    one = np.array([model.predict_one(r, m) for r, m in zip(ratings, mask, strict=True)])
    np.testing.assert_array_equal(one, batch)
