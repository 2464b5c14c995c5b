"""Dataset version → split → fit → evaluate → artifacts → a registered ``candidate``.

One function, used by the CLI, the dashboard and the worker alike, so a version trained by
hand and one trained on a schedule carry the same metrics, lineage and history. Every version
is also compared with the popularity baseline fitted on the very same split (kept in its
metadata), so "better than baseline" means the same thing for every version.
"""

from __future__ import annotations

import importlib.metadata
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core import registry
from core.accounts.auth import Actor, require
from core.data import datasets, splits
from core.data.categories import CATEGORIES
from core.data.datasets import DatasetInfo
from core.errors import BadInput, NotFound
from core.families import check_parent, family_class, fine_tunes_from
from core.families.base import FitData, Progress, no_progress
from core.families.popularity import Popularity
from core.registry import artifacts
from core.registry.entities import VersionInfo
from core.serving import ranking
from core.training import evaluation, mlflow_sync

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    version: VersionInfo
    metrics: dict[str, float]
    history: dict[str, Any]
    duration_s: float
    baseline: dict[str, float] = field(default_factory=dict)


def _stage(progress: Progress, start: float, end: float) -> Progress:
    """A callback reporting into the slice [start, end] of the overall progress."""

    def report(fraction: float, message: str) -> None:
        progress(start + (end - start) * min(max(fraction, 0.0), 1.0), message)

    return report


def _framework_version(framework: str) -> str:
    package = {"tensorflow": "tensorflow-cpu", "numpy": "numpy"}.get(framework, framework)
    for name in (package, framework):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "unknown"


def _ranking_config(model: str) -> ranking.RankingConfig:
    try:
        return ranking.RankingConfig.from_settings(registry.get_model(model).settings)
    except NotFound:
        return ranking.DEFAULT_CONFIG


def fit_data(ratings: np.ndarray, split: splits.Split) -> FitData:
    train, valid = ratings[split.train], ratings[split.valid]
    return FitData(train, train > 0, valid, valid > 0)


def cross_validate(
    family: str,
    params: Mapping[str, Any] | None,
    ratings: np.ndarray,
    folds: int,
    seed: int,
    progress: Progress = no_progress,
) -> dict[str, dict[str, float]]:
    """Mean and standard deviation of each metric over ``folds`` disjoint sets of test users."""
    per_fold: list[dict[str, float]] = []
    for i, test_rows in enumerate(splits.folds_of(len(ratings), folds, seed)):
        split = splits.split_users(ratings, seed=seed + i, test_rows=test_rows)
        model = family_class(family)(params)
        model.fit(fit_data(ratings, split), seed=seed + i)
        per_fold.append(evaluation.evaluate(model, ratings, split, seed=seed, places=False))
        progress((i + 1) / folds, f"fold {i + 1}/{folds}")
    keys = sorted(set().union(*per_fold))
    return {
        k: {
            "mean": round(float(np.mean([f[k] for f in per_fold if k in f])), 6),
            "std": round(float(np.std([f[k] for f in per_fold if k in f])), 6),
        }
        for k in keys
    }


def train(
    *,
    actor: Actor,
    family: str,
    dataset: str | DatasetInfo,
    model: str | None = None,
    params: Mapping[str, Any] | None = None,
    parent: tuple[str, str] | None = None,
    seed: int = 0,
    folds: int = 0,
    progress: Callable[[float, str], None] | None = None,
    description: str = "",
) -> TrainResult:
    """Train one version and register it as a candidate; nothing is registered on failure."""
    require(actor, "operate", "train models")
    progress = progress or no_progress
    started = time.perf_counter()
    instance = family_class(family)(params)  # checks the hyperparameters first
    if fine_tunes_from(family) and parent is None:
        raise BadInput(f"the {family} family needs a parent version (--parent NAME@VERSION)")
    parent_info: VersionInfo | None = None
    if parent is not None:
        parent_info = registry.get_version(*parent)
        check_parent(family, parent_info.label, parent_info.family)  # before loading it
        from core.serving import predict

        instance.parent = predict.load_version(parent_info).model  # type: ignore[attr-defined]
    name = model or (parent[0] if parent is not None else family)

    progress(0.0, "loading the dataset")
    info = datasets.resolve(dataset) if isinstance(dataset, str) else dataset
    ratings = datasets.ratings_matrix(datasets.load_users(info))
    split = splits.split_users(ratings, seed=seed)
    config = _ranking_config(name)

    progress(0.05, f"fitting {family} on {len(split.train)} users")
    history = instance.fit(
        fit_data(ratings, split), seed=seed, progress=_stage(progress, 0.05, 0.8)
    )

    progress(0.8, "evaluating on held-out users")
    metrics = evaluation.evaluate(
        instance, ratings, split, seed=seed, config=config, with_slices=True
    )
    slices = metrics.pop("__slices__")
    if history.get("val_loss"):
        metrics["validation_loss"] = round(float(min(history["val_loss"])), 6)
    baseline: dict[str, float] = {}
    if family != "popularity":
        base = Popularity()
        base.fit(fit_data(ratings, split), seed=seed)
        baseline = evaluation.evaluate(base, ratings, split, seed=seed, config=config)
    cv = {}
    if folds:
        cv = cross_validate(family, params, ratings, folds, seed, _stage(progress, 0.85, 0.95))

    progress(0.95, "writing artifacts and registering")
    framework = type(instance).framework
    extra = {
        "framework": framework,
        "framework_version": _framework_version(framework),
        "input_shape": [len(CATEGORIES)],
        "history": history,
        "split": {**split.describe(), "seed": seed},
        "baseline": baseline,
        "cross_validation": cv,
        "slices": slices["marginals"],
        "slice_cells": slices["cells"],
    }
    tracked = mlflow_sync.log_training(  # never raises; None when MLflow is not configured
        model=name,
        family=family,
        params=instance.params,
        history=history,
        metrics=metrics,
        baseline=baseline,
        dataset=info,
        seed=seed,
        description=description,
    )
    if tracked is not None:
        extra["mlflow"] = tracked
    with artifacts.staging_dir() as staged:
        instance.save(staged)
        version = registry.register_version(
            actor=actor,
            model=name,
            family=family,
            staged_dir=staged,
            metrics=metrics,
            hyperparameters=instance.params,
            dataset_id=info.id,
            parent=None if parent_info is None else (parent_info.model, parent_info.version),
            description=description or instance.describe(),
            metadata=extra,
        )
    mlflow_sync.link_version(tracked, version)
    duration = time.perf_counter() - started
    progress(1.0, f"registered {version.label}")
    log.info("trained %s in %.1f s: %s", version.label, duration, metrics)
    return TrainResult(version, metrics, history, duration, baseline)
