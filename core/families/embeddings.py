"""Category embeddings from the catalogue's text, and users as mixtures of them.

Every place's name, types and description become a TF-IDF vector (scikit-learn, nothing
downloaded); a truncated SVD turns them into dense place embeddings. A category's embedding
is the mean of the places it covers, combined with how users rate categories together (the
category columns of the training ratings, centred, through the same kind of SVD), because
text alone does not know that beach lovers also like view points. A user's embedding is the
rating-weighted sum of the categories they rated; a category's predicted score is the
category's mean rating moved by the cosine similarity of the two, with a gain fitted on the
training users.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from core.data.categories import CATEGORIES, N_CATEGORIES
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


def _normalise(m: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(m, axis=-1, keepdims=True)
    return m / np.where(norms == 0, 1.0, norms)


class Embeddings(Family):
    name = "embeddings"
    defaults: ClassVar[dict[str, Any]] = {
        "text_dim": 16,
        "rating_dim": 8,
        "text_weight": 0.5,
        "max_features": 5000,
    }

    category_vectors: np.ndarray  # 29 × d, unit rows
    means: np.ndarray
    gain: float
    place_vectors: np.ndarray | None = None

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None:
        if not 2 <= params["text_dim"] <= 256:
            raise BadInput(f"text_dim must be from 2 to 256, got {params['text_dim']}")
        if not 1 <= params["rating_dim"] < N_CATEGORIES:
            raise BadInput(f"rating_dim must be from 1 to 28, got {params['rating_dim']}")
        if not 0.0 <= params["text_weight"] <= 1.0:
            raise BadInput(f"text_weight must be in [0, 1], got {params['text_weight']}")
        if params["max_features"] < 100:
            raise BadInput(f"max_features must be ≥ 100, got {params['max_features']}")

    def _text_vectors(self, seed: int) -> np.ndarray:
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        from core.data import catalogue as catalogue_module

        cat = catalogue_module.load()
        frame = cat.frame
        text = (
            frame["name"].fillna("").astype(str)
            + " "
            + frame["types"].fillna("").astype(str).str.replace("_", " ")
            + " "
            + frame.get("description", frame["name"]).fillna("").astype(str)
        )
        tfidf = TfidfVectorizer(max_features=self.params["max_features"], sublinear_tf=True)
        docs = tfidf.fit_transform(text)
        svd = TruncatedSVD(self.params["text_dim"], random_state=seed)
        places = _normalise(svd.fit_transform(docs))
        self.place_vectors = places.astype(np.float32)
        member = cat.membership().astype(np.float64)  # places × 29
        counts = member.sum(axis=0)
        vectors = (member.T @ places) / np.where(counts == 0, 1.0, counts)[:, None]
        # A category with no place of its types falls back to its own name's words.
        names = svd.transform(tfidf.transform([c.replace("/", " ") for c in CATEGORIES]))
        vectors[counts == 0] = names[counts == 0]
        return _normalise(vectors)

    def _rating_vectors(self, data: FitData) -> np.ndarray:
        x, known = data.train, data.train_mask
        centred = np.where(known, x - self.means, 0.0)
        _, s, vt = np.linalg.svd(centred, full_matrices=False)
        dim = self.params["rating_dim"]
        return _normalise(vt[:dim].T * s[:dim])

    def fit(self, data: FitData, *, seed: int, progress: Progress = no_progress) -> dict[str, Any]:
        x, known = data.train, data.train_mask
        counts = np.maximum(known.sum(axis=0), 1)
        self.means = np.where(known, x, 0.0).sum(axis=0) / counts
        progress(0.2, "embedding the catalogue text")
        text = self._text_vectors(seed)
        progress(0.6, "embedding categories from co-ratings")
        ratings = self._rating_vectors(data)
        w = self.params["text_weight"]
        self.category_vectors = _normalise(
            np.hstack([np.sqrt(w) * text, np.sqrt(1.0 - w) * ratings])
        )
        # Fit the gain: hide one known rating per training user, predict it from the rest.
        rng = np.random.default_rng(seed)
        rows = np.flatnonzero(known.sum(axis=1) >= 2)[:20_000]
        hide = np.array([rng.choice(np.flatnonzero(known[r])) for r in rows], dtype=np.intp)
        visible = known[rows].copy()
        visible[np.arange(len(rows)), hide] = False
        sims = self._similarity(x[rows], visible)[np.arange(len(rows)), hide]
        target = x[rows, hide] - self.means[hide]
        self.gain = float(sims @ target / max(sims @ sims, 1e-9))
        progress(1.0, f"gain fitted on {len(rows)} users")
        return {"gain": self.gain}

    def _similarity(self, ratings: np.ndarray, mask: np.ndarray) -> np.ndarray:
        weights = np.where(mask, ratings - self.means, 0.0)
        users = _normalise(weights @ self.category_vectors)
        return users @ self.category_vectors.T

    def predict(self, ratings: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return clip_ratings(self.means + self.gain * self._similarity(ratings, mask))

    def save(self, folder: Path) -> None:
        arrays = {"category_vectors": self.category_vectors, "means": self.means}
        if self.place_vectors is not None:
            arrays["place_vectors"] = self.place_vectors
        save_arrays(folder, arrays, {"params": self.params, "gain": float(self.gain)})

    @classmethod
    def load(cls, folder: Path, metadata: Mapping[str, Any]) -> Embeddings:
        raw = load_arrays(folder, metadata)
        try:
            model = cls(raw["params"])
            model.category_vectors = np.asarray(raw["category_vectors"], dtype=np.float64)
            model.means = np.asarray(raw["means"], dtype=np.float64)
            model.gain = float(raw["gain"])
        except (KeyError, TypeError, ValueError, BadInput) as exc:
            raise ArtifactIntegrityError(
                f"the embeddings model's files are incomplete: {exc}"
            ) from exc
        place_vectors = raw.get("place_vectors")
        model.place_vectors = None if place_vectors is None else np.asarray(place_vectors)
        if model.category_vectors.ndim != 2 or model.category_vectors.shape[0] != N_CATEGORIES:
            raise ArtifactIntegrityError(f"{ARRAYS_FILE} does not embed the 29 categories")
        return model

    def describe(self) -> str:
        return "Text + co-rating category embeddings with cosine similarity to the user"


FAMILY = Embeddings
