"""The interface every model family implements.

A family predicts the 29 category scores (0–5) for a batch of users from their ratings and
which of them are known; everything after that (keeping the user's own ratings, ranking
places) is shared. Hyperparameters are validated against declared defaults so a typo in
``--param`` is an error naming the key, not a silently ignored setting.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from core.errors import ArtifactIntegrityError, BadInput

Progress = Callable[[float, str], None]

ARRAYS_FILE = "model.npz"
FIELDS_FILE = "params.json"
PICKLED_FILE = "model.joblib"  # how versions of plain-array families were saved before


def no_progress(fraction: float, message: str) -> None:
    """The default progress callback: report nothing."""


@dataclass
class FitData:
    """Training users and a validation split (ratings 0–5, ``mask`` = the rating is known)."""

    train: np.ndarray
    train_mask: np.ndarray
    valid: np.ndarray
    valid_mask: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)


class Family:
    """Base class: declare ``name``, ``framework``, ``defaults``; implement the four methods."""

    name: ClassVar[str]
    framework: ClassVar[str] = "scikit-learn"
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        self.params = self.resolve_params(params)

    @classmethod
    def resolve_params(cls, params: Mapping[str, Any] | None) -> dict[str, Any]:
        """Defaults overridden by ``params``, coerced to the default's type."""
        params = dict(params or {})
        unknown = sorted(set(params) - set(cls.defaults))
        if unknown:
            raise BadInput(
                f"unknown hyperparameter(s) {', '.join(unknown)} for family {cls.name}; "
                f"known: {', '.join(sorted(cls.defaults)) or 'none'}"
            )
        resolved = dict(cls.defaults)
        for key, value in params.items():
            resolved[key] = coerce(key, value, cls.defaults[key])
        cls.check_params(resolved)
        return resolved

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None:
        """Range checks beyond types; raise BadInput naming the parameter."""

    def fit(self, data: FitData, *, seed: int, progress: Progress = no_progress) -> dict[str, Any]:
        """Learn from the training users; return the training history (may be empty)."""
        raise NotImplementedError

    def predict(self, ratings: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Category scores 0–5 for each user (n × 29)."""
        raise NotImplementedError

    def predict_one(self, ratings: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The 29 scores of one user (``ratings`` and ``mask`` of 29); families whose batch
        call has a fixed cost worth avoiding on the request path override it."""
        return self.predict(ratings[None, :], mask[None, :])[0]

    def save(self, folder: Path) -> None:
        raise NotImplementedError

    @classmethod
    def load(cls, folder: Path, metadata: Mapping[str, Any]) -> Family:
        """Load from a folder whose files were already verified against their SHA-256."""
        raise NotImplementedError

    def describe(self) -> str:
        return f"{self.name} model"


def coerce(key: str, value: Any, default: Any) -> Any:
    """``value`` converted to the type of ``default`` (params arrive as strings from the CLI)."""
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                low = value.strip().lower()
                if low in {"true", "1", "yes"}:
                    return True
                if low in {"false", "0", "no"}:
                    return False
                raise ValueError(value)
            return bool(value)
        if isinstance(default, int):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if isinstance(default, float):
            out = float(value)
            if out != out or out in (float("inf"), float("-inf")):
                raise ValueError(value)
            return out
        if isinstance(default, list | tuple):
            items = value.split(",") if isinstance(value, str) else list(value)
            return [int(x) for x in items]
        if isinstance(default, str):
            return str(value)
    except (TypeError, ValueError) as exc:
        raise BadInput(
            f"hyperparameter {key}={value!r} is not a valid {type(default).__name__}"
        ) from exc
    return value


def save_arrays(folder: Path, arrays: Mapping[str, np.ndarray], fields: Mapping[str, Any]) -> None:
    """A model that is plain arrays, saved as ``.npz`` plus JSON for everything else: nothing
    its loader has to unpickle (a pickle runs code)."""
    with open(folder / ARRAYS_FILE, "wb") as fh:
        plain: dict[str, Any] = {name: np.asarray(value) for name, value in arrays.items()}
        np.savez(fh, allow_pickle=False, **plain)  # an object array is refused, not pickled
    (folder / FIELDS_FILE).write_text(
        json.dumps(dict(fields), indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )


def load_arrays(folder: Path, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """What :func:`save_arrays` wrote, as one mapping (fields and arrays), read from the files
    the version lists. An older version's ``model.joblib`` is still read: the caller verified
    its SHA-256 against the registry first, which is what makes unpickling it acceptable."""
    listed = metadata.get("files") or {}
    if ARRAYS_FILE in listed and FIELDS_FILE in listed:
        try:
            with np.load(folder / ARRAYS_FILE, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
            fields = json.loads((folder / FIELDS_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise ArtifactIntegrityError(
                f"{ARRAYS_FILE} or {FIELDS_FILE} cannot be read: {exc}"
            ) from exc
        if not isinstance(fields, dict):
            raise ArtifactIntegrityError(f"{FIELDS_FILE} does not hold an object")
        return {**fields, **arrays}
    if PICKLED_FILE in listed:
        import joblib

        raw = joblib.load(folder / PICKLED_FILE)
        if not isinstance(raw, dict):
            raise ArtifactIntegrityError(f"{PICKLED_FILE} does not hold a model's fields")
        return raw
    raise ArtifactIntegrityError(
        f"the version lists neither {ARRAYS_FILE} + {FIELDS_FILE} nor {PICKLED_FILE}"
    )


def clip_ratings(scores: np.ndarray) -> np.ndarray:
    return np.clip(scores, 0.0, 5.0)
