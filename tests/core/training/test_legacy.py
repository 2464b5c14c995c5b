"""Importing the legacy Planwise model, and every way its files can be wrong."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import joblib
import numpy as np
import pytest

from core.accounts.auth import SYSTEM
from core.errors import BadInput
from core.serving import predict
from core.training import legacy
from tests.conftest import LEGACY_MODEL, tree_snapshot
from tests.fixtures.registry import registry_dump

LEGACY = LEGACY_MODEL


def test_import_records_honest_metadata(backend):
    v = legacy.import_legacy(
        actor=SYSTEM, model_file=LEGACY / "autoencoder.h5", scaler_file=LEGACY / "scaler.save"
    )
    assert (v.model, v.version, v.family, v.stage) == (
        "planwise",
        "1.0.0",
        "autoencoder",
        "candidate",
    )
    meta = v.metadata
    assert meta["framework_version"] == "2.13.1"
    assert meta["libraries"]["scikit-learn (scaler pickle)"] == "1.3.2"
    assert any("1.3.2" in w for w in meta["import_warnings"])
    assert meta["hyperparameters"]["hidden_layers"] == [14]
    assert set(v.files) == {"model.h5", "scaler.save", "metadata.json"}
    loaded = predict.load_version(v)
    assert loaded.model.net.input_size == 29


def _copy_h5_with(tmp: Path, edit) -> Path:  # noqa: ANN001
    target = tmp / "model.h5"
    shutil.copyfile(LEGACY / "autoencoder.h5", target)
    with h5py.File(target, "r+") as f:
        edit(f)
    return target


def _narrow_output(f: h5py.File) -> None:
    import json

    cfg = json.loads(f.attrs["model_config"])
    cfg["config"]["layers"][-1]["config"]["units"] = 10
    f.attrs["model_config"] = json.dumps(cfg)
    g = f["model_weights/dense_1/dense_1"]
    kernel, bias = np.asarray(g["kernel:0"])[:, :10], np.asarray(g["bias:0"])[:10]
    del g["kernel:0"], g["bias:0"]
    g["kernel:0"], g["bias:0"] = kernel, bias


def _conv_layer(f: h5py.File) -> None:
    import json

    cfg = json.loads(f.attrs["model_config"])
    cfg["config"]["layers"].insert(1, {"class_name": "Conv1D", "config": {"name": "c"}})
    f.attrs["model_config"] = json.dumps(cfg)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("not_hdf5", "not a readable HDF5"),
        ("no_config", "without a Keras model configuration"),
        ("narrow", "maps 29 inputs to 10 outputs"),
        ("conv", "has a Conv1D layer"),
        ("bad_scaler", "not a joblib-pickled scaler"),
        ("wrong_scaler", "not a fitted MinMaxScaler"),
        ("missing", "does not exist"),
    ],
)
def test_bad_files_are_refused_and_nothing_registered(backend, tmp_path, case, message):
    model_file, scaler_file = LEGACY / "autoencoder.h5", LEGACY / "scaler.save"
    if case == "not_hdf5":
        model_file = tmp_path / "model.h5"
        model_file.write_text("user_id,museums\n1,5\n")
    elif case == "no_config":
        model_file = _copy_h5_with(tmp_path, lambda f: f.attrs.__delitem__("model_config"))
    elif case == "narrow":
        model_file = _copy_h5_with(tmp_path, _narrow_output)
    elif case == "conv":
        model_file = _copy_h5_with(tmp_path, _conv_layer)
    elif case == "bad_scaler":
        scaler_file = tmp_path / "scaler.save"
        scaler_file.write_bytes(b"\x80\x04garbage")
    elif case == "wrong_scaler":
        scaler_file = tmp_path / "scaler.save"
        joblib.dump({"scale": [1.0] * 29}, scaler_file)
    elif case == "missing":
        scaler_file = tmp_path / "absent.save"
    before = registry_dump(), tree_snapshot(backend.artifacts)
    with pytest.raises(BadInput, match=message):
        legacy.import_legacy(actor=SYSTEM, model_file=model_file, scaler_file=scaler_file)
    assert (registry_dump(), tree_snapshot(backend.artifacts)) == before


def test_a_file_dropped_beside_an_imported_model_is_an_integrity_failure(backend):
    """An imported version lists model.h5; a model.keras put in its folder afterwards was never
    hashed. It must not be loaded, and integrity (the gate, ``check``) names it."""
    from core import registry
    from core.errors import ArtifactIntegrityError, GateFailed
    from core.families.autoencoder import Autoencoder
    from core.registry import artifacts

    v = legacy.import_legacy(
        actor=SYSTEM, model_file=LEGACY / "autoencoder.h5", scaler_file=LEGACY / "scaler.save"
    )
    folder = artifacts.root() / v.artifact_dir
    (folder / "model.keras").write_bytes(b"PK\x03\x04 a network nobody registered")
    predict.clear_cache()

    with pytest.raises(ArtifactIntegrityError, match=r"model\.keras, not among the files"):
        predict.load_version(v)
    assert artifacts.check(v.artifact_dir, v.files) == {
        "metadata.json": "ok",
        "model.h5": "ok",
        "model.keras": "unlisted",
        "scaler.save": "ok",
    }
    with pytest.raises(GateFailed, match=r"model\.keras"):
        registry.promote(
            actor=SYSTEM,
            model=v.model,
            version=v.version,
            stage="production",
            reason="test promotion",
        )
    assert registry.get_version(v.model, v.version).stage == "candidate"

    # The loader itself takes the file the version lists, whatever else is on disk.
    loaded = Autoencoder.load(folder, v.metadata)
    assert loaded.net.input_size == 29

    (folder / "model.keras").unlink()
    assert predict.load_version(v).model.net.input_size == 29
