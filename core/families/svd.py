"""Matrix factorisation of the user × category matrix with the unknowns imputed, not zeroed.

A rating of 0 means "not rated", so factorising the raw matrix would teach the model that
unrated categories are hated. Instead the unknowns start at the category means and are
replaced by the low-rank reconstruction for a few rounds (hard impute); a new user is folded
in the same way. ``TruncatedSVD`` does the factorisation; NMF is the alternative solver.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from core.data.categories import N_CATEGORIES
from core.errors import ArtifactIntegrityError, BadInput
from core.families.base import (
    ARRAYS_FILE,
    Family,
    FitData,
    Progress,
    clip_ratings,
    load_arrays,
    no_progress,
    save_arrays,
)


class SVD(Family):
    name = "svd"
    defaults: ClassVar[dict[str, Any]] = {
        "rank": 8,
        "solver": "truncated_svd",
        "impute_rounds": 8,
        "fold_in_rounds": 8,
    }

    means: np.ndarray
    components: np.ndarray  # rank × 29 (rows orthonormal for the SVD solver)
    offset: np.ndarray

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None:
        if not 1 <= params["rank"] < N_CATEGORIES:
            raise BadInput(f"rank must be from 1 to {N_CATEGORIES - 1}, got {params['rank']}")
        if params["solver"] not in {"truncated_svd", "nmf"}:
            raise BadInput(f"solver must be truncated_svd or nmf, got {params['solver']!r}")
        for key in ("impute_rounds", "fold_in_rounds"):
            if not 1 <= params[key] <= 100:
                raise BadInput(f"{key} must be from 1 to 100, got {params[key]}")

    def fit(self, data: FitData, *, seed: int, progress: Progress = no_progress) -> dict[str, Any]:
        from sklearn.decomposition import NMF, TruncatedSVD

        x, known = data.train, data.train_mask
        counts = np.maximum(known.sum(axis=0), 1)
        self.means = np.where(known, x, 0.0).sum(axis=0) / counts
        filled = np.where(known, x, self.means)
        rounds = self.params["impute_rounds"]
        history: dict[str, list[float]] = {"loss": [], "val_loss": []}
        for r in range(rounds):
            if self.params["solver"] == "nmf":
                nmf = NMF(self.params["rank"], init="nndsvda", random_state=seed, max_iter=300)
                w = nmf.fit_transform(filled)
                self.components, self.offset = nmf.components_, np.zeros(N_CATEGORIES)
                recon = w @ self.components
            else:
                self.offset = filled.mean(axis=0)
                svd = TruncatedSVD(self.params["rank"], random_state=seed)
                w = svd.fit_transform(filled - self.offset)
                self.components = svd.components_
                recon = w @ self.components + self.offset
            filled = np.where(known, x, clip_ratings(recon))
            history["loss"].append(float(np.sqrt(np.mean((recon[known] - x[known]) ** 2))))
            if len(data.valid):
                pred = self.predict(data.valid, data.valid_mask)
                vm = data.valid_mask
                history["val_loss"].append(
                    float(np.sqrt(np.mean((pred[vm] - data.valid[vm]) ** 2)))
                )
            progress((r + 1) / rounds, f"impute round {r + 1}/{rounds}")
        return history

    def _project(self, filled: np.ndarray) -> np.ndarray:
        if self.params["solver"] == "nmf":
            w, *_ = np.linalg.lstsq(self.components.T, filled.T, rcond=None)
            return np.maximum(w.T, 0.0) @ self.components
        return (filled - self.offset) @ self.components.T @ self.components + self.offset

    def predict(self, ratings: np.ndarray, mask: np.ndarray) -> np.ndarray:
        filled = np.where(mask, ratings, self.means)
        recon = filled
        for _ in range(self.params["fold_in_rounds"]):
            recon = clip_ratings(self._project(filled))
            filled = np.where(mask, ratings, recon)
        return recon

    def save(self, folder: Path) -> None:
        save_arrays(
            folder,
            {"means": self.means, "components": self.components, "offset": self.offset},
            {"params": self.params},
        )

    @classmethod
    def load(cls, folder: Path, metadata: Mapping[str, Any]) -> SVD:
        raw = load_arrays(folder, metadata)
        try:
            model = cls(raw["params"])
            model.means = np.asarray(raw["means"], dtype=np.float64)
            model.components = np.asarray(raw["components"], dtype=np.float64)
            model.offset = np.asarray(raw["offset"], dtype=np.float64)
        except (KeyError, TypeError, ValueError, BadInput) as exc:
            raise ArtifactIntegrityError(f"the SVD model's files are incomplete: {exc}") from exc
        if (
            model.components.ndim != 2
            or model.components.shape[1] != N_CATEGORIES
            or model.means.shape != (N_CATEGORIES,)
        ):
            raise ArtifactIntegrityError(f"{ARRAYS_FILE} is not a factorisation over 29 categories")
        return model

    def describe(self) -> str:
        return f"SVD factorisation of rank {self.params['rank']} ({self.params['solver']})"


FAMILY = SVD
