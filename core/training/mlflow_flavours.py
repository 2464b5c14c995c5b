"""An MLflow model's folder made a version of this registry, by its flavour.

A Keras autoencoder goes through :func:`core.training.legacy.import_legacy` (the dense-stack
and scaler checks); a scikit-learn ``TruncatedSVD``/``PCA`` (optionally after a
``SimpleImputer`` that treats 0 as "not rated") becomes an ``svd`` version through
:func:`core.training.uploads.register_files`. :func:`core.training.mlflow_sync.import_mlflow`
fetches the folder and its lineage and picks the flavour; ``mlflow`` is imported only when used.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from core.accounts.auth import Actor
from core.data.categories import N_CATEGORIES
from core.errors import BadInput
from core.registry.entities import VersionInfo


def download(uri: str, into: Path, **where: str) -> Path:
    import mlflow.artifacts

    return Path(mlflow.artifacts.download_artifacts(dst_path=str(into), tracking_uri=uri, **where))


def import_keras(
    actor: Actor,
    uri: str,
    local: Path,
    flavour: Mapping[str, Any],
    run_id: str | None,
    tmp: Path,
    name: str,
    dataset: str | None,
    description: str,
    lineage: dict[str, Any],
) -> VersionInfo:
    from core.registry import artifacts
    from core.training import legacy

    if flavour.get("save_exported_model"):
        raise BadInput("the Keras model was saved as an exported SavedModel; log it as .keras")
    data = local / str(flavour.get("data", "data"))
    candidates = sorted(data.glob("*.keras")) + sorted(data.glob("*.h5"))
    if not candidates:
        raise BadInput(f"the Keras model's folder {data.name}/ holds no .keras or .h5 file")
    scaler = local / "scaler.save"
    if not scaler.is_file() and run_id:
        with contextlib.suppress(Exception):  # absent: said below
            scaler = download(uri, tmp / "run", run_id=run_id, artifact_path="scaler.save")
    if not scaler.is_file():
        raise BadInput(
            "the MLflow model has no scaler: log the fitted MinMaxScaler as the run's artifact "
            "scaler.save (joblib), as Planwise autoencoders are served with it"
        )
    lineage["files"] = {
        candidates[0].name: artifacts.sha256_file(candidates[0]),
        "scaler.save": artifacts.sha256_file(scaler),
    }
    return legacy.import_legacy(
        actor=actor,
        model_file=candidates[0],
        scaler_file=scaler,
        name=name,
        dataset=dataset,
        description=description,
        extra_metadata={"mlflow": lineage},
    )


def svd_arrays(estimator: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The ``svd`` family's arrays and parameters of a fitted scikit-learn model.

    Accepted: ``TruncatedSVD`` or ``PCA`` (not whitened) over the 29 categories, alone or after
    a ``SimpleImputer(missing_values=0, strategy="mean")``; an unknown rating is filled with the
    imputer's mean (0 without one) and projected once, as ``inverse_transform(transform(x))``
    computes in MLflow, so both copies give the same scores.
    """
    from sklearn.decomposition import PCA, TruncatedSVD
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline

    steps = list(estimator.steps) if isinstance(estimator, Pipeline) else [(None, estimator)]
    steps = [(n, s) for n, s in steps if s not in (None, "passthrough")]
    means = np.zeros(N_CATEGORIES)
    if len(steps) == 2 and isinstance(steps[0][1], SimpleImputer):
        imputer = steps[0][1]
        if imputer.missing_values != 0 or imputer.strategy != "mean":
            raise BadInput("the SimpleImputer must treat 0 as missing with strategy='mean'")
        stats = np.asarray(imputer.statistics_, dtype=np.float64)
        if stats.shape != (N_CATEGORIES,) or not np.isfinite(stats).all():
            raise BadInput(
                "the SimpleImputer does not keep 29 finite category means "
                "(a category nobody rated needs keep_empty_features=True)"
            )
        means = stats
        steps = steps[1:]
    if len(steps) != 1 or not isinstance(steps[0][1], TruncatedSVD | PCA):
        kinds = ", ".join(type(s).__name__ for _, s in steps)
        raise BadInput(
            f"a scikit-learn model must be TruncatedSVD or PCA (optionally after a "
            f"SimpleImputer), got {kinds}"
        )
    solver = steps[0][1]
    if isinstance(solver, PCA) and solver.whiten:
        raise BadInput("a whitened PCA cannot be served as an svd version")
    components = np.asarray(getattr(solver, "components_", np.empty(0)), dtype=np.float64)
    if components.ndim != 2 or components.shape[1] != N_CATEGORIES:
        raise BadInput(f"the model is not fitted over the {N_CATEGORIES} categories")
    offset = (
        np.asarray(solver.mean_, dtype=np.float64)
        if isinstance(solver, PCA)
        else np.zeros(N_CATEGORIES)
    )
    rank = int(components.shape[0])
    params = {"rank": rank, "solver": "truncated_svd", "impute_rounds": 1, "fold_in_rounds": 1}
    return {"means": means, "components": components, "offset": offset}, params


def import_sklearn(
    actor: Actor,
    local: Path,
    name: str,
    dataset: str | None,
    description: str,
    lineage: dict[str, Any],
) -> VersionInfo:
    import mlflow.sklearn

    from core.families.base import save_arrays
    from core.training import uploads

    try:
        estimator = mlflow.sklearn.load_model(str(local))
    except Exception as exc:  # noqa: BLE001 - an unreadable model is bad input
        raise BadInput(f"the scikit-learn model cannot be loaded: {exc}") from exc
    arrays, params = svd_arrays(estimator)
    lineage["estimator"] = type(estimator).__name__
    with tempfile.TemporaryDirectory(prefix="mlflow-svd-") as tmp:
        save_arrays(Path(tmp), arrays, {"params": params})
        return uploads.register_files(
            actor=actor,
            model=name,
            family="svd",
            files={p.name: p for p in Path(tmp).iterdir()},
            dataset=dataset,
            description=description,
            metadata={"mlflow": lineage, "framework": "scikit-learn"},
            bump="major",
        )
