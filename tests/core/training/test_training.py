"""Training, evaluation and the model families, as the CLI, dashboard and worker use them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core import registry, training
from core.accounts.auth import SYSTEM, Actor
from core.data import datasets, splits
from core.data.generator import generate_users
from core.errors import ArtifactIntegrityError, BadInput, PermissionDenied
from core.registry import artifacts, provenance
from core.serving import predict
from core.training import evaluation
from tests.conftest import tree_snapshot
from tests.fixtures.data import ingest_generated
from tests.fixtures.registry import registry_dump


def test_splits_are_seeded_disjoint_and_hide_known_ratings():
    ratings = datasets.ratings_matrix(generate_users(500, seed=2))
    a = splits.split_users(ratings, seed=3)
    b = splits.split_users(ratings, seed=3)
    assert np.array_equal(a.test, b.test) and np.array_equal(a.hidden, b.hidden)
    assert not set(a.train) & set(a.test) and not set(a.valid) & set(a.test)
    assert len(a.train) + len(a.valid) + len(a.test) == 500
    known = ratings[a.test] > 0
    assert (a.hidden <= known).all() and not (a.hidden & a.visible).any()
    assert (a.hidden.sum(axis=1) >= 1).all() and (a.visible.sum(axis=1) >= 1).all()


def test_ranking_metrics_on_known_cases():
    truth = np.zeros((1, 29))
    truth[0, :3] = 5
    hidden = truth > 0
    visible = np.zeros_like(hidden)
    perfect = np.linspace(5, 0, 29)[None, :]
    worst = perfect[:, ::-1]
    good = evaluation.ranking_metrics(perfect, truth, visible, hidden)
    bad = evaluation.ranking_metrics(worst, truth, visible, hidden)
    assert good["ndcg@5"] == pytest.approx(1.0) and good["recall@5"] == 1.0
    assert good["precision@5"] == pytest.approx(3 / 5)
    assert bad["ndcg@10"] == 0.0 and bad["f1@10"] == 0.0
    rm = evaluation.rating_metrics(np.full((1, 29), 4.0), truth, hidden)
    assert rm == {"rmse": pytest.approx(1.0), "mae": pytest.approx(1.0)}


def test_every_learned_family_beats_the_baseline(sqlite_backend):
    ref = ingest_generated(sqlite_backend.root, n=4000)
    base = training.train(actor=SYSTEM, family="popularity", dataset=ref)
    results = {"popularity": base}
    for family, params in (("svd", {}), ("embeddings", {}), ("autoencoder", {"epochs": 12})):
        results[family] = training.train(actor=SYSTEM, family=family, dataset=ref, params=params)
    floor = base.metrics["ndcg@5"]
    for family, result in results.items():
        m = result.metrics
        for key in (
            "rmse",
            "mae",
            "precision@5",
            "recall@10",
            "f1@5",
            "ndcg@10",
            "coverage@10",
            "diversity@10",
        ):
            assert key in m and np.isfinite(m[key]), (family, key)
        if family != "popularity":
            assert m["ndcg@5"] > floor, (family, m["ndcg@5"], floor)
            assert result.baseline["ndcg@5"] == pytest.approx(floor)
    ae = results["autoencoder"].version
    assert ae.stage == "candidate" and ae.dataset is not None and ae.dataset.label == ref
    assert set(ae.files) >= {"model.keras", "scaler.save", "metadata.json"}
    history = ae.metadata["history"]
    assert len(history["loss"]) == len(history["val_loss"]) >= 1
    assert ae.metadata["framework"] == "tensorflow" and ae.metadata["input_shape"] == [29]


def test_transfer_records_parent_and_freezes_encoder(sqlite_backend):
    first = ingest_generated(sqlite_backend.root, n=1500, seed=1)
    parent = training.train(
        actor=SYSTEM, family="autoencoder", dataset=first, params={"epochs": 2}
    ).version
    second = ingest_generated(sqlite_backend.root, n=800, seed=2, name="summer")
    child = training.train(
        actor=SYSTEM,
        family="transfer",
        dataset=second,
        parent=(parent.model, parent.version),
        params={"epochs": 2, "freeze_encoder": "true"},
    ).version
    assert child.model == parent.model and child.parent == (parent.model, parent.version)
    assert (
        child.family == "transfer" and child.metadata["parent_version"]["version"] == parent.version
    )
    before = predict.load_version(parent).model.net.layers
    after = predict.load_version(child).model.net.layers
    bottleneck = int(np.argmin([layer.kernel.shape[1] for layer in before[:-1]]))
    for i in range(bottleneck + 1):
        np.testing.assert_array_equal(before[i].kernel, after[i].kernel)
    assert not np.array_equal(before[-1].kernel, after[-1].kernel)


def test_cross_validation_is_stored(sqlite_backend):
    ref = ingest_generated(sqlite_backend.root, n=600)
    result = training.train(actor=SYSTEM, family="svd", dataset=ref, folds=3)
    cv = result.version.metadata["cross_validation"]
    assert cv["ndcg@5"]["std"] >= 0 and 0 < cv["ndcg@5"]["mean"] <= 1


@pytest.mark.parametrize(
    ("family", "params", "message"),
    [
        ("forest", {}, "unknown family 'forest'"),
        ("svd", {"rnak": "3"}, "unknown hyperparameter"),
        ("svd", {"rank": "many"}, "rank='many' is not a valid int"),
        ("svd", {"rank": "40"}, "rank must be"),
        ("autoencoder", {"dropout_rate": "1.5"}, "dropout_rate"),
        ("autoencoder", {"learning_rate": "nan"}, "learning_rate"),
        ("transfer", {}, "needs a parent"),
    ],
)
def test_bad_training_requests_change_nothing(backend, family, params, message):
    ref = ingest_generated(backend.root, n=300)
    before = registry_dump(), tree_snapshot(backend.artifacts)
    with pytest.raises(BadInput, match=message):
        training.train(actor=SYSTEM, family=family, dataset=ref, params=params)
    assert (registry_dump(), tree_snapshot(backend.artifacts)) == before


@pytest.mark.parametrize(
    ("family", "message"),
    [
        ("svd", "the svd family is not trained from a parent; drop --parent"),
        ("transfer", "is a popularity version; a transfer version fine-tunes autoencoder or"),
    ],
)
def test_a_parent_the_family_cannot_use_is_refused(backend, family, message):
    ref = ingest_generated(backend.root, n=300)
    base = training.train(actor=SYSTEM, family="popularity", dataset=ref).version
    before = registry_dump(), tree_snapshot(backend.artifacts)
    with pytest.raises(BadInput, match=message):
        training.train(actor=SYSTEM, family=family, dataset=ref, parent=(base.model, base.version))
    assert (registry_dump(), tree_snapshot(backend.artifacts)) == before


def test_unknown_dataset_and_role_are_refused(backend):
    with pytest.raises(Exception, match="dataset"):
        training.train(actor=SYSTEM, family="popularity", dataset="nope@3")
    with pytest.raises(PermissionDenied):
        training.train(actor=Actor("vera", "viewer"), family="popularity", dataset="x")


def test_trained_versions_serve_and_tampering_is_refused(backend):
    ref = ingest_generated(backend.root, n=500)
    v = training.train(actor=SYSTEM, family="svd", dataset=ref).version
    registry.promote(
        actor=SYSTEM, model="svd", version=v.version, stage="production", reason="test promotion"
    )
    prefs = [0.0] * 29
    prefs[0] = 5
    items = predict.recommend("svd", None, prefs, lat=40.4168, lng=-3.7038, k=7)
    assert len(items) == 7 and all(i.distance_m <= 2000 for i in items)
    assert items == predict.recommend("svd", v.version, prefs, lat=40.4168, lng=-3.7038, k=7)
    target = artifacts.root() / v.artifact_dir / "model.npz"
    target.write_bytes(target.read_bytes() + b"\0")
    with pytest.raises(ArtifactIntegrityError, match="model.npz"):
        predict.recommend("svd", None, prefs, lat=40.4168, lng=-3.7038)
    meta = json.loads((artifacts.root() / v.artifact_dir / "metadata.json").read_text())
    assert meta["files"]["model.npz"] == v.files["model.npz"]


def test_a_version_trained_outside_a_checkout_records_the_given_code_revision(
    backend, tmp_path, monkeypatch
):
    """A container holds no ``.git``: the revision its image was built from comes in through
    ``CODE_REVISION`` (deploy/Dockerfile passes the build argument on), else 'unknown'."""
    monkeypatch.setattr(provenance, "PROJECT_ROOT", tmp_path)  # no checkout here
    monkeypatch.delenv("CODE_REVISION", raising=False)
    provenance.code_revision.cache_clear()
    try:
        assert provenance.code_revision() == "unknown"
        provenance.code_revision.cache_clear()
        monkeypatch.setenv("CODE_REVISION", "3f2c1e9")
        ref = ingest_generated(backend.root, n=300)
        v = training.train(actor=SYSTEM, family="popularity", dataset=ref).version
        assert v.metadata["code_revision"] == "3f2c1e9"
        meta = json.loads((artifacts.root() / v.artifact_dir / "metadata.json").read_text())
        assert meta["code_revision"] == "3f2c1e9"
    finally:
        provenance.code_revision.cache_clear()


def test_the_image_passes_its_build_revision_to_the_processes():
    from tests.conftest import PROJECT_ROOT

    lines = [
        line.strip()
        for line in (PROJECT_ROOT / "deploy" / "Dockerfile").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    arg = next(i for i, line in enumerate(lines) if line.startswith("ARG CODE_REVISION"))
    env = next(i for i, line in enumerate(lines) if "CODE_REVISION=${CODE_REVISION}" in line)
    assert lines[env].startswith("ENV ") and arg < env
