"""Registering an existing Planwise Keras autoencoder (``.h5`` + joblib scaler) as a version.

The files are checked before anything is registered: the model must be a plain dense
autoencoder over the 29 categories and the scaler a fitted MinMaxScaler over 29 columns. The
metadata is honest about where they came from: the Keras version and backend read from the
``.h5``, the scikit-learn version the scaler was pickled with, and any warning loading it
raised. Given a dataset, the version is also evaluated on it (it was not trained on it, so the
figures are a fair test) next to the popularity baseline.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core import registry
from core.accounts.auth import Actor, require
from core.data import datasets, splits
from core.errors import BadInput
from core.families import autoencoder as ae
from core.families import dense_numpy
from core.families.popularity import Popularity
from core.registry import artifacts
from core.registry.entities import VersionInfo
from core.training import evaluation

DEFAULT_NAME = "planwise"


def _read_scaler(path: Path) -> tuple[Any, list[str], str | None]:
    """The scaler, the warnings unpickling raised, and the scikit-learn version that wrote it."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            scaler = ae.joblib.load(path)
        except Exception as exc:  # noqa: BLE001 - any unpickling failure is bad input
            raise BadInput(f"{path.name} is not a joblib-pickled scaler: {exc}") from exc
    messages = sorted({str(w.message).split("\n")[0] for w in caught})
    written_by = next(
        (
            str(w.message.original_sklearn_version)
            for w in caught
            if hasattr(w.message, "original_sklearn_version")
        ),
        importlib.metadata.version("scikit-learn"),  # no warning: written by this version
    )
    return scaler, messages, written_by


def import_legacy(
    *,
    actor: Actor,
    model_file: Path,
    scaler_file: Path,
    name: str = DEFAULT_NAME,
    dataset: str | None = None,
    description: str = "",
    seed: int = 0,
    extra_metadata: Mapping[str, Any] | None = None,
) -> VersionInfo:
    """``extra_metadata`` adds lineage from where the files came (MLflow, an upload)."""
    require(actor, "operate", "import models")
    for path, what in ((model_file, "--model-file"), (scaler_file, "--scaler")):
        if not path.is_file():
            raise BadInput(f"{what} {path} does not exist")
    if model_file.suffix.lower() not in (".h5", ".hdf5", ".keras"):
        raise BadInput(f"--model-file must be a Keras .h5 or .keras file, got {model_file.name!r}")
    net = dense_numpy.read(model_file)
    net.check_autoencoder(model_file.name)
    scaler, scaler_warnings, pickled_with = _read_scaler(scaler_file)
    minmax = dense_numpy.MinMax.from_sklearn(scaler, scaler_file.name)

    model = ae.Autoencoder.__new__(ae.Autoencoder)
    model.params = {"hidden_layers": net.hidden_layers}
    model.net, model.scaler, model.minmax = net, scaler, minmax

    metrics: dict[str, float] = {}
    baseline: dict[str, float] = {}
    info = None
    if dataset is not None:
        info = datasets.resolve(dataset)
        ratings = datasets.ratings_matrix(datasets.load_users(info))
        split = splits.split_users(ratings, seed=seed)
        metrics = evaluation.evaluate(model, ratings, split, seed=seed)
        base = Popularity()
        base.fit(
            ae.FitData(
                ratings[split.train], ratings[split.train] > 0, ratings[:0], ratings[:0] > 0
            ),
            seed=seed,
        )
        baseline = evaluation.evaluate(base, ratings, split, seed=seed)

    keras_file = ae.LEGACY_MODEL_FILE if model_file.suffix.lower() != ".keras" else ae.MODEL_FILE
    extra = {
        "framework": "tensorflow",
        "framework_version": net.keras_version or "unknown",
        "framework_note": f"Keras {net.keras_version} on {net.backend or 'unknown backend'}, "
        "as recorded in the model file",
        "input_shape": [net.input_size],
        "imported_from": {
            "model_file": model_file.name,
            "model_sha256": artifacts.sha256_file(model_file),
            "scaler_file": scaler_file.name,
            "scaler_sha256": artifacts.sha256_file(scaler_file),
        },
        "libraries": {
            "keras (model file)": net.keras_version or "unknown",
            "scikit-learn (scaler pickle)": pickled_with or "unknown",
        },
        "import_warnings": scaler_warnings,
        "activations": [layer.activation for layer in net.layers],
        "baseline": baseline,
        "evaluated_on": None if info is None else info.label,
        **dict(extra_metadata or {}),
    }
    with artifacts.staging_dir() as staged:
        shutil.copyfile(model_file, staged / keras_file)
        shutil.copyfile(scaler_file, staged / ae.SCALER_FILE)
        return registry.register_version(
            actor=actor,
            model=name,
            family="autoencoder",
            staged_dir=staged,
            metrics=metrics,
            hyperparameters={"hidden_layers": net.hidden_layers},
            dataset_id=None,
            description=description or f"Imported Planwise autoencoder {model_file.name}",
            metadata=extra,
            bump="major",
        )
