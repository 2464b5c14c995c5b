"""Registries for the dashboard tests, browser tests and page benchmarks, built through core.

Versions are really trained (``svd`` and the ``popularity`` baseline train in well under a
second on a few hundred users), so every page that ranks places has real models to load.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core import registry, training
from core.accounts import auth
from core.accounts.auth import SYSTEM
from core.data import datasets
from core.data.datasets import DatasetInfo
from core.data.generator import generate_users
from tests.helpers import register_dummy

# One account per role; passwords long enough for core's rule.
PASSWORDS = {
    "admin": "admin-password-1",
    "olga": "operator-password-1",
    "ana": "auditor-password-1",
    "victor": "viewer-password-1",
}
ROLES = {"admin": "admin", "olga": "operator", "ana": "auditor", "victor": "viewer"}
MODEL = "recsys"
BASELINE = "popularity"
# Gates that compare with production but tolerate the small differences of test trainings,
# so promotions in the tests depend on the flow, not on which rank happened to score best.
LENIENT_GATES = {
    "ndcg@5": {"higher_is_better": True, "tolerance": 1.0},
    "rmse": {"higher_is_better": False, "tolerance": 5.0},
}
BASELINE_DESCRIPTION = "popularity baseline <b>by category</b> [link](http://example.com)"


def create_accounts(*, missing_only: bool = False) -> None:
    """The test accounts; ``missing_only`` keeps those that exist (a registry whose first
    admin the bootstrap made, as the page benchmark's)."""
    existing = {u.username for u in auth.list_users(actor=SYSTEM)} if missing_only else set()
    for username, role in ROLES.items():
        if username not in existing:
            auth.create_user(
                actor=SYSTEM, username=username, password=PASSWORDS[username], role=role
            )


def ingest_users(tmp: Path, *, n: int = 300, seed: int = 1, name: str = "madrid") -> DatasetInfo:
    path = tmp / f"{name}-{seed}.csv"
    generate_users(n, seed=seed).to_csv(path, index=False)
    return datasets.ingest(path, name=name, actor=SYSTEM)


@dataclass(frozen=True)
class Populated:
    dataset: DatasetInfo
    production: str
    previous_production: str
    staging: str
    candidate: str
    baseline: str


def populate(tmp: Path, *, extra_versions: int = 0) -> Populated:
    """A registry a user would recognise.

    ``recsys`` (svd): the first trained version was production, the second is production
    now, the third is in staging with a 10 % canary, the fourth is a fresh candidate.
    ``extra_versions`` stand-in versions (tiny artifacts that cannot be loaded; for pagination
    and benchmarks) are registered before them, so the four real ones stay the newest.
    ``popularity`` holds the baseline in production, with a description full of markup that
    must be shown as text.
    """
    ds = ingest_users(tmp)
    registry.create_model(
        actor=SYSTEM,
        name=MODEL,
        family="svd",
        description="matrix factorisation recommender",
        settings={"gates": LENIENT_GATES},
    )

    def svd(rank: int, description: str) -> str:
        result = training.train(
            actor=SYSTEM,
            family="svd",
            dataset=ds.label,
            model=MODEL,
            params={"rank": rank, "impute_rounds": 3, "fold_in_rounds": 3},
            description=description,
        )
        return result.version.version

    for i in range(extra_versions):
        register_dummy(
            MODEL,
            family="svd",
            metrics={"ndcg@5": 0.40 + (i % 10) / 100, "rmse": 1.1 - (i % 7) / 100},
            dataset_id=ds.id,
            description=f"sweep {i}",
            payload=f"sweep {i}".encode(),
        )
    first = svd(3, "first version")
    second = svd(5, "more factors")
    third = svd(7, "weekly retrain")
    fourth = svd(9, "newest")
    registry.promote(actor=SYSTEM, model=MODEL, version=first, stage="production", reason="start")
    registry.promote(
        actor=SYSTEM, model=MODEL, version=second, stage="production", reason="better NDCG"
    )
    registry.promote(actor=SYSTEM, model=MODEL, version=third, stage="staging", reason="canary")
    registry.update_model(actor=SYSTEM, name=MODEL, canary_share=0.1)

    base = training.train(
        actor=SYSTEM,
        family="popularity",
        dataset=ds.label,
        model=BASELINE,
        description=BASELINE_DESCRIPTION,
    ).version.version
    registry.promote(
        actor=SYSTEM, model=BASELINE, version=base, stage="production", reason="the baseline"
    )
    return Populated(ds, second, first, third, fourth, base)
