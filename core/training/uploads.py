"""Registering a version from model files made elsewhere (a CI job, an MLflow run).

The files must prove what they claim before anything is registered: an autoencoder goes
through :func:`core.training.legacy.import_legacy` (a plain dense stack over the 29 categories and a
fitted MinMaxScaler); any other family is loaded by the family's own loader and must predict
29 finite scores. Families other than the autoencoder are accepted only in their pickle-free
formats (``model.npz`` + ``params.json``, ``model.json``): a file that arrives over the network
is never unpickled unless it is an autoencoder's scaler, which ``import-legacy`` accepts too.
Given a dataset, the version is evaluated on it next to the popularity baseline, as a training
would be, so the gates compare like with like.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from core import registry
from core.accounts.auth import Actor, require
from core.data import datasets, splits
from core.data.categories import N_CATEGORIES
from core.errors import ArtifactIntegrityError, BadInput
from core.families import family_class, fine_tunes_from
from core.registry import artifacts, semver
from core.registry.entities import VersionInfo
from core.training import evaluation

_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_PICKLES = (".joblib", ".pkl", ".pickle", ".save")
RESERVED = ("metadata.json",)
MAX_FILES = 8


def _check_names(files: Mapping[str, Path]) -> None:
    if not files:
        raise BadInput("no model files were given")
    if len(files) > MAX_FILES:
        raise BadInput(f"at most {MAX_FILES} model files, got {len(files)}")
    for name, path in files.items():
        if not _FILE_NAME.match(name) or name in RESERVED:
            raise BadInput(f"file name {name!r} is not allowed (letters, digits, ._- only)")
        if not Path(path).is_file():
            raise BadInput(f"file {name} was not received")


def register_files(
    *,
    actor: Actor,
    model: str,
    family: str,
    files: Mapping[str, Path],
    dataset: str | None = None,
    description: str = "",
    metadata: Mapping[str, Any] | None = None,
    bump: semver.Bump = "minor",
    seed: int = 0,
) -> VersionInfo:
    """Check ``files`` as a ``family`` model and register them as a candidate of ``model``."""
    require(actor, "operate", "register model versions")
    _check_names(files)
    if family == "autoencoder" or "autoencoder" in fine_tunes_from(family):
        # A fine-tuned autoencoder is uploaded as the autoencoder network it is.
        return _autoencoder(actor, model, files, dataset, description, metadata)
    cls = family_class(family)  # an unknown family is named here
    pickled = sorted(n for n in files if n.lower().endswith(_PICKLES))
    if pickled:
        raise BadInput(
            f"{', '.join(pickled)}: a {family} version is uploaded as model.npz + params.json "
            "(or model.json for popularity), never as a pickle"
        )
    with tempfile.TemporaryDirectory(prefix="upload-check-") as tmp:
        folder = Path(tmp)
        for name, path in files.items():
            shutil.copyfile(path, folder / name)
        listing = {name: artifacts.sha256_file(folder / name) for name in files}
        try:
            instance = cls.load(folder, {"files": listing, "hyperparameters": {}})
            scores = instance.predict(
                np.zeros((2, N_CATEGORIES)), np.zeros((2, N_CATEGORIES), bool)
            )
        except (BadInput, ArtifactIntegrityError) as exc:
            raise BadInput(f"the files are not a loadable {family} model: {exc}") from exc
        except Exception as exc:  # noqa: BLE001 - any failure of foreign files is bad input
            raise BadInput(
                f"the files are not a loadable {family} model: {type(exc).__name__}: {exc}"
            ) from exc
        if np.shape(scores) != (2, N_CATEGORIES) or not np.isfinite(scores).all():
            raise BadInput(f"the {family} model does not predict {N_CATEGORIES} finite scores")
        metrics, baseline, evaluated_on = _evaluate(instance, dataset, seed)
        extra = {
            "framework": cls.framework,
            "input_shape": [N_CATEGORIES],
            "uploaded_files": listing,
            "baseline": baseline,
            "evaluated_on": evaluated_on,
            **dict(metadata or {}),
        }
        with artifacts.staging_dir() as staged:
            for name in files:
                shutil.copyfile(folder / name, staged / name)
            return registry.register_version(
                actor=actor,
                model=model,
                family=family,
                staged_dir=staged,
                metrics=metrics,
                hyperparameters=dict(getattr(instance, "params", {}) or {}),
                description=description or f"Uploaded {family} model",
                metadata=extra,
                bump=bump,
            )


def _evaluate(
    instance: Any, dataset: str | None, seed: int
) -> tuple[dict[str, float], dict[str, float], str | None]:
    if dataset is None:
        return {}, {}, None
    from core.families.base import FitData
    from core.families.popularity import Popularity

    info = datasets.resolve(dataset)
    ratings = datasets.ratings_matrix(datasets.load_users(info))
    split = splits.split_users(ratings, seed=seed)
    metrics = evaluation.evaluate(instance, ratings, split, seed=seed)
    base = Popularity()
    train = ratings[split.train]
    base.fit(FitData(train, train > 0, ratings[:0], ratings[:0] > 0), seed=seed)
    return metrics, evaluation.evaluate(base, ratings, split, seed=seed), info.label


def _autoencoder(
    actor: Actor,
    model: str,
    files: Mapping[str, Path],
    dataset: str | None,
    description: str,
    metadata: Mapping[str, Any] | None,
) -> VersionInfo:
    from core.training import legacy

    nets = [n for n in files if n.lower().endswith((".keras", ".h5", ".hdf5"))]
    if len(nets) != 1 or "scaler.save" not in files or len(files) != 2:
        raise BadInput(
            "an autoencoder is uploaded as two files: the Keras model (.keras or .h5) and "
            "scaler.save (the fitted MinMaxScaler, joblib)"
        )
    with tempfile.TemporaryDirectory(prefix="upload-ae-") as tmp:
        # The importer judges a file by its suffix: keep the uploaded names.
        net = Path(tmp) / nets[0]
        scaler = Path(tmp) / "scaler.save"
        shutil.copyfile(files[nets[0]], net)
        shutil.copyfile(files["scaler.save"], scaler)
        return legacy.import_legacy(
            actor=actor,
            model_file=net,
            scaler_file=scaler,
            name=model,
            dataset=dataset,
            description=description or f"Uploaded autoencoder {nets[0]}",
            extra_metadata=metadata,
        )
