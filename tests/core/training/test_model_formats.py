"""Plain-array families (SVD, embeddings) are stored without pickle; older pickled versions
still load, but only after their SHA-256 matched the registry."""

from __future__ import annotations

import pickle

import joblib
import numpy as np
import pytest

from core import registry, training
from core.accounts.auth import SYSTEM
from core.errors import ArtifactIntegrityError
from core.families.embeddings import Embeddings
from core.families.svd import SVD
from core.registry import artifacts
from core.serving import predict
from tests.fixtures.data import ingest_generated

PREFS = [5.0] + [0.0] * 28
MADRID = {"lat": 40.4168, "lng": -3.7038}


def _no_unpickling(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a model file was unpickled")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(joblib, "load", refuse)


@pytest.mark.parametrize("family", ["svd", "embeddings"])
def test_a_new_version_folder_holds_no_pickle(backend, family, monkeypatch) -> None:
    ref = ingest_generated(backend.root, n=500)
    v = training.train(actor=SYSTEM, family=family, dataset=ref).version
    folder = artifacts.root() / v.artifact_dir
    assert set(v.files) == {"model.npz", "params.json", "metadata.json"}
    for path in folder.iterdir():
        assert not path.read_bytes().startswith(b"\x80"), f"{path.name} is a pickle"
    with np.load(folder / "model.npz", allow_pickle=False) as npz:
        assert all(npz[name].dtype != object for name in npz.files)

    expected = predict.recommend(v.model, v.version, PREFS, **MADRID)
    predict.clear_cache()
    _no_unpickling(monkeypatch)
    assert predict.recommend(v.model, v.version, PREFS, **MADRID) == expected


def test_an_old_pickled_version_loads_only_after_its_hash_matched(backend) -> None:
    """A version saved before the arrays moved to .npz (``model.joblib``) keeps serving."""
    ref = ingest_generated(backend.root, n=500)
    new = training.train(actor=SYSTEM, family="svd", dataset=ref).version
    model = predict.load_version(new).model
    assert isinstance(model, SVD)
    with artifacts.staging_dir() as staged:
        joblib.dump(
            {
                "params": model.params,
                "means": model.means,
                "components": model.components,
                "offset": model.offset,
            },
            staged / "model.joblib",
        )
        old = registry.register_version(
            actor=SYSTEM, model="svd", family="svd", staged_dir=staged, version="0.9.0"
        )
    assert set(old.files) == {"model.joblib", "metadata.json"}
    assert predict.recommend("svd", "0.9.0", PREFS, **MADRID) == predict.recommend(
        "svd", new.version, PREFS, **MADRID
    )

    # Edited: refused before joblib ever opens it.
    predict.clear_cache()
    target = artifacts.root() / old.artifact_dir / "model.joblib"
    target.write_bytes(target.read_bytes() + b"\0")
    with pytest.raises(ArtifactIntegrityError, match="model.joblib was modified"):
        predict.load_version(old)


def test_arrays_with_objects_are_refused(tmp_path) -> None:
    """``allow_pickle=False``: an .npz holding an object array cannot smuggle a pickle in."""
    model = Embeddings()
    np.savez(tmp_path / "model.npz", category_vectors=np.array([object()], dtype=object))
    (tmp_path / "params.json").write_text('{"params": {}, "gain": 1.0}')
    files = {"model.npz": "x", "params.json": "y"}
    with pytest.raises(ArtifactIntegrityError, match="cannot be read"):
        type(model).load(tmp_path, {"files": files})
