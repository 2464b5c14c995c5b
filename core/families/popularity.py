"""The baseline: every user gets the same scores, each category's shrunk mean rating.

A learned family that cannot beat this has learned nothing about individual taste, so every
evaluation also scores it on the same split.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from core.data.categories import N_CATEGORIES
from core.errors import ArtifactIntegrityError, BadInput
from core.families.base import Family, FitData, Progress, no_progress

MODEL_FILE = "model.json"


class Popularity(Family):
    name = "popularity"
    framework = "numpy"
    defaults: ClassVar[dict[str, Any]] = {"shrinkage": 5.0}

    means: np.ndarray

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None:
        if params["shrinkage"] < 0:
            raise BadInput(f"shrinkage must be ≥ 0, got {params['shrinkage']}")

    def fit(self, data: FitData, *, seed: int, progress: Progress = no_progress) -> dict[str, Any]:
        known = data.train_mask
        counts = known.sum(axis=0)
        sums = np.where(known, data.train, 0.0).sum(axis=0)
        overall = sums.sum() / max(counts.sum(), 1)
        self.means = (sums + self.params["shrinkage"] * overall) / (
            counts + self.params["shrinkage"]
        )
        progress(1.0, "category means computed")
        return {}

    def predict(self, ratings: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.means, (len(ratings), N_CATEGORIES)).copy()

    def save(self, folder: Path) -> None:
        (folder / MODEL_FILE).write_text(
            json.dumps({"means": self.means.tolist(), "params": self.params}), encoding="utf-8"
        )

    @classmethod
    def load(cls, folder: Path, metadata: Mapping[str, Any]) -> Popularity:
        raw = json.loads((folder / MODEL_FILE).read_text(encoding="utf-8"))
        means = np.asarray(raw["means"], dtype=np.float64)
        if means.shape != (N_CATEGORIES,) or not np.isfinite(means).all():
            raise ArtifactIntegrityError(f"{MODEL_FILE} does not hold 29 finite category means")
        model = cls(raw.get("params"))
        model.means = means
        return model

    def describe(self) -> str:
        return "Popularity baseline: shrunk mean rating per category"


FAMILY = Popularity
