"""A populated registry for a first look: datasets, a version of every family, stages set.

Used by the first start (``scripts/start.sh`` runs ``python -m core demo`` when the registry
holds no model) and by the browser tests. Everything is generated with a seed, so two demos
with the same arguments hold the same data.
"""

from __future__ import annotations

import importlib.util
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from core import registry
from core.accounts.auth import Actor
from core.config import PROJECT_ROOT
from core.data import datasets
from core.data.generator import DriftEpisode, generate_users
from core.families.base import no_progress
from core.training import legacy

log = logging.getLogger(__name__)
LEGACY_DIR = PROJECT_ROOT / "data" / "planwise" / "legacy_model"
BASE_DATASET = "madrid-users"
RECENT_DATASET = "madrid-users-summer"


@dataclass
class DemoReport:
    datasets: list[str] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    production: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def run(
    *,
    actor: Actor,
    users: int = 5000,
    days: int = 30,
    seed: int = 0,
    epochs: int = 15,
    progress: Callable[[float, str], None] | None = None,
) -> DemoReport:
    """Build the demo; each step is a normal core call, so the audit log tells the story."""
    from core import training

    progress = progress or no_progress
    report = DemoReport()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "users.csv"
        generate_users(users, seed=seed, days=days).to_csv(base, index=False)
        recent = Path(tmp) / "users-summer.csv"
        generate_users(
            max(users // 2, 100), seed=seed + 1, days=days, drift=DriftEpisode(0), id_prefix="s"
        ).to_csv(recent, index=False)
        progress(0.05, "ingesting datasets")
        first = datasets.ingest(base, name=BASE_DATASET, actor=actor)
        second = datasets.ingest(recent, name=RECENT_DATASET, actor=actor)
    report.datasets += [first.label, second.label]

    steps: list[tuple[str, dict[str, object]]] = [
        ("popularity", {}),
        ("svd", {}),
        ("embeddings", {}),
        ("autoencoder", {"epochs": epochs}),
    ]
    for i, (family, params) in enumerate(steps):
        progress(0.1 + 0.15 * i, f"training {family}")
        result = training.train(
            actor=actor, family=family, dataset=first.label, params=params, seed=seed
        )
        report.versions.append(result.version.label)
        registry.promote(
            actor=actor,
            model=family,
            version=result.version.version,
            stage="production",
            reason="demo: first version",
        )
        report.production[family] = result.version.version
    progress(0.7, "fine-tuning the autoencoder on summer users")
    tuned = training.train(
        actor=actor,
        family="transfer",
        dataset=second.label,
        parent=("autoencoder", report.production["autoencoder"]),
        params={"epochs": epochs * 2},
        seed=seed,
        description="demo: fine-tuned on the summer users",
    )
    report.versions.append(tuned.version.label)
    svd2 = training.train(
        actor=actor, family="svd", dataset=second.label, params={"rank": 6}, seed=seed
    )
    report.versions.append(svd2.version.label)

    progress(0.85, "importing the legacy Planwise model")
    imported = legacy.import_legacy(
        actor=actor,
        model_file=LEGACY_DIR / "autoencoder.h5",
        scaler_file=LEGACY_DIR / "scaler.save",
        dataset=first.label,
    )
    report.versions.append(imported.label)
    registry.promote(
        actor=actor,
        model=imported.model,
        version=imported.version,
        stage="production",
        reason="demo: the model Planwise served",
    )
    report.production[imported.model] = imported.version

    if importlib.util.find_spec("core.demo.simulate") is not None:
        progress(0.9, "simulating traffic")
        from core.demo import simulate  # type: ignore[attr-defined]

        report.notes.append(simulate.demo_traffic(actor=actor, days=days, seed=seed))
    progress(1.0, "demo ready")
    return report
