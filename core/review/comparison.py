"""How versions differ: their metrics, and the places they put in front of the same users.

Metrics alone do not tell a domain expert what changes for users, so this module also runs two
versions on one sample of users at real Madrid locations and measures the ranked lists:
overlap@k per user, the places each version gains and loses, and the mix of categories.

The list measures are pure functions of already-ranked lists (:func:`list_diff`), so they can
be checked without models; :func:`compare_lists` is the thin part that asks
:mod:`core.serving.predict` for the lists.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from core import registry
from core.data.categories import CATEGORIES
from core.errors import BadInput
from core.metrics.direction import higher_is_better
from core.registry import semver
from core.registry.entities import VersionInfo

# Preset locations for previews and samples: central Madrid neighbourhoods, all inside the
# catalogue's area so every one has candidates within the default 2 km radius.
NEIGHBOURHOODS: dict[str, tuple[float, float]] = {
    "Sol": (40.4169, -3.7035),
    "Gran Vía": (40.4203, -3.7058),
    "Malasaña": (40.4262, -3.7044),
    "Chueca": (40.4225, -3.6975),
    "La Latina": (40.4108, -3.7105),
    "Lavapiés": (40.4087, -3.7009),
    "Palacio Real": (40.4180, -3.7143),
    "Retiro": (40.4153, -3.6845),
    "Salamanca": (40.4297, -3.6795),
    "Chamberí": (40.4347, -3.7038),
    "Moncloa": (40.4350, -3.7190),
    "Atocha": (40.4066, -3.6910),
    "Arganzuela (Matadero)": (40.3920, -3.6980),
    "Tetuán": (40.4600, -3.6980),
}


class Ranked(Protocol):
    """What the list measures read from a recommendation
    (``core.serving.ranking.Recommendation``)."""

    place_id: str
    name: str
    category: str
    score: float


# ------------------------------------------------------------------------ metrics


def numeric_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The metrics that are plain numbers (nested or textual entries are left out)."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if np.isfinite(value):
            out[key] = float(value)
    return out


@dataclass(frozen=True)
class MetricComparison:
    """Metric values of several versions and their deltas against two references.

    ``values`` has one row per version label and one column per metric. ``vs_production`` and
    ``vs_baseline`` hold ``value − reference`` with the same shape, or are None when there is
    no such reference. ``directions`` says, per metric, whether higher is better.
    """

    values: pd.DataFrame
    vs_production: pd.DataFrame | None
    vs_baseline: pd.DataFrame | None
    production: str | None
    baseline: str | None
    directions: dict[str, bool]

    def long(self) -> pd.DataFrame:
        """``version, metric, value`` rows, for grouped bar charts."""
        frame = self.values.reset_index(names="version")
        return frame.melt(id_vars="version", var_name="metric", value_name="value").dropna()


def compare_metrics(
    versions: Sequence[VersionInfo],
    *,
    production: VersionInfo | None = None,
    baseline: VersionInfo | None = None,
) -> MetricComparison:
    """Side-by-side metrics with deltas against production and the popularity baseline.

    The references are added as rows when they are not among ``versions`` so the table always
    shows what the deltas are taken against.
    """
    rows: dict[str, dict[str, float]] = {}
    for v in [*versions, *(r for r in (production, baseline) if r is not None)]:
        rows.setdefault(v.label, numeric_metrics(v.metrics))
    metrics = sorted({m for values in rows.values() for m in values})
    values = pd.DataFrame.from_dict(rows, orient="index", columns=metrics, dtype=float)

    def delta(ref: VersionInfo | None) -> pd.DataFrame | None:
        if ref is None:
            return None
        return values - values.loc[ref.label]

    return MetricComparison(
        values,
        delta(production),
        delta(baseline),
        None if production is None else production.label,
        None if baseline is None else baseline.label,
        {m: higher_is_better(m) for m in metrics},
    )


def find_baseline() -> VersionInfo | None:
    """The popularity baseline: a production ``popularity`` version, else the newest one."""
    for stage in ("production", None):
        page = registry.list_versions(family="popularity", stage=stage, page_size=1)
        if page.items:
            return page.items[0]
    return None


def all_versions(model: str) -> list[VersionInfo]:
    """Every version of a model, oldest first by version number (pages of the registry)."""
    found: list[VersionInfo] = []
    page_no = 1
    while True:
        page = registry.list_versions(model=model, page=page_no, page_size=registry.MAX_PAGE_SIZE)
        found.extend(page.items)
        if page_no >= page.pages:
            break
        page_no += 1
    return sorted(found, key=lambda v: semver.parse(v.version))


def metric_trend(model: str) -> pd.DataFrame:
    """One row per version (oldest first): ``version, created_at, stage`` and every metric."""
    rows = [
        {
            "version": v.version,
            "created_at": v.created_at,
            "stage": v.stage,
            **numeric_metrics(v.metrics),
        }
        for v in all_versions(model)
    ]
    return pd.DataFrame(rows, columns=None if rows else ["version", "created_at", "stage"])


# ------------------------------------------------------------------------ user samples


@dataclass(frozen=True)
class UserSample:
    """Users to run versions on: their 29 ratings and where they stand in Madrid."""

    user_ids: list[str]
    prefs: np.ndarray  # (n, 29) ratings 0–5, 0 = not rated
    lats: np.ndarray
    lngs: np.ndarray
    places: list[str]  # the neighbourhood each user stands in
    source: str  # dataset label, or "generated"
    seed: int
    segments: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.user_ids)

    @property
    def masks(self) -> np.ndarray:
        """Which ratings the users gave (the rest are predicted)."""
        return self.prefs > 0

    def describe(self) -> dict[str, Any]:
        """A JSON-able record of the sample (stored with an audit verdict)."""
        return {
            "source": self.source,
            "seed": self.seed,
            "users": len(self),
            "user_ids": list(self.user_ids),
            "neighbourhoods": sorted(set(self.places)),
            "segments": dict(Counter(self.segments)) if self.segments else {},
        }


def assign_locations(
    n: int, *, seed: int, neighbourhoods: Iterable[str] | None = None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Spread ``n`` users evenly over preset neighbourhoods, in a seeded order."""
    names = list(neighbourhoods or NEIGHBOURHOODS)
    unknown = [name for name in names if name not in NEIGHBOURHOODS]
    if unknown:
        raise BadInput(f"unknown neighbourhood(s): {', '.join(unknown)}")
    rng = np.random.default_rng(seed)
    picks = [names[i % len(names)] for i in rng.permutation(n)]
    lats = np.array([NEIGHBOURHOODS[p][0] for p in picks], dtype=float)
    lngs = np.array([NEIGHBOURHOODS[p][1] for p in picks], dtype=float)
    return lats, lngs, picks


def sample_users(frame: pd.DataFrame, n: int, *, seed: int = 0, source: str = "") -> UserSample:
    """A seeded random sample of ``n`` users from a users frame (all of them if fewer)."""
    if n < 1:
        raise BadInput(f"sample size must be at least 1, got {n}")
    if frame.empty:
        raise BadInput(f"{source or 'the users frame'} has no users to sample")
    rng = np.random.default_rng(seed)
    take = np.sort(rng.choice(len(frame), size=min(n, len(frame)), replace=False))
    chosen = frame.iloc[take]
    return sample_from_frame(chosen, seed=seed, source=source)


def sample_from_frame(
    chosen: pd.DataFrame, *, seed: int, source: str, segments: list[str] | None = None
) -> UserSample:
    prefs = chosen[list(CATEGORIES)].to_numpy(dtype=np.float64)
    lats, lngs, places = assign_locations(len(chosen), seed=seed)
    ids = (
        chosen["user_id"].astype(str).tolist()
        if "user_id" in chosen
        else [f"user-{i}" for i in range(len(chosen))]
    )
    return UserSample(ids, prefs, lats, lngs, places, source, seed, segments or [])


def generated_users(n: int, *, seed: int = 0) -> pd.DataFrame:
    """Realistic users from the seeded generator, when no dataset is registered."""
    from core.data.generator import generate_users

    return generate_users(n, seed=seed, id_prefix="sample")


# ------------------------------------------------------------------------ ranked lists


def overlap_at_k(a: Sequence[str], b: Sequence[str], k: int) -> float:
    """Share of the top-``k`` places two lists have in common (order ignored).

    Divided by the longer of the two truncated lists, so a version that returns fewer places
    is not rewarded; two empty lists count as identical (1.0).
    """
    if k < 1:
        raise BadInput(f"k must be at least 1, got {k}")
    top_a, top_b = set(a[:k]), set(b[:k])
    size = max(len(top_a), len(top_b))
    return 1.0 if size == 0 else len(top_a & top_b) / size


@dataclass(frozen=True)
class PlaceChange:
    """A place one version shows and the other does not, and for how many users."""

    place_id: str
    name: str
    category: str
    users: int


@dataclass(frozen=True)
class ListDiff:
    """How the ranked lists of version B differ from version A's on the same users."""

    label_a: str
    label_b: str
    k: int
    users: int
    overlap: list[float]  # per user, in sample order
    gained: list[PlaceChange]  # in B's lists, not in A's (for the same user); most users first
    lost: list[PlaceChange]  # in A's lists, not in B's
    category_mix: dict[str, dict[str, float]]  # label -> category -> share of list slots
    short_lists: dict[str, int]  # label -> users with fewer than k places

    @property
    def mean_overlap(self) -> float:
        return float(np.mean(self.overlap)) if self.overlap else 1.0

    @property
    def identical_share(self) -> float:
        """Share of users whose top-k sets are the same under both versions."""
        return float(np.mean([o == 1.0 for o in self.overlap])) if self.overlap else 1.0

    def mix_frame(self) -> pd.DataFrame:
        """``category, version, share`` rows, categories in model order."""
        rows = [
            {"category": c, "version": label, "share": mix.get(c, 0.0)}
            for label, mix in self.category_mix.items()
            for c in CATEGORIES
            if any(m.get(c, 0.0) > 0 for m in self.category_mix.values())
        ]
        return pd.DataFrame(rows, columns=["category", "version", "share"])


def category_mix(lists: Sequence[Sequence[Ranked]], k: int) -> dict[str, float]:
    """Share of all top-``k`` slots that each category fills (categories in model order)."""
    counts = Counter(r.category for items in lists for r in items[:k])
    total = sum(counts.values())
    if total == 0:
        return {}
    order = {c: i for i, c in enumerate(CATEGORIES)}
    return {
        c: counts[c] / total for c in sorted(counts, key=lambda c: (order.get(c, len(order)), c))
    }


def list_diff(
    lists_a: Sequence[Sequence[Ranked]],
    lists_b: Sequence[Sequence[Ranked]],
    k: int,
    *,
    label_a: str = "A",
    label_b: str = "B",
    top: int = 20,
) -> ListDiff:
    """Compare two versions' lists for the same users (``lists_a[i]`` and ``lists_b[i]``).

    ``top`` limits how many gained and lost places are reported.
    """
    if len(lists_a) != len(lists_b):
        raise BadInput(
            f"the two versions returned lists for {len(lists_a)} and {len(lists_b)} users"
        )
    if k < 1:
        raise BadInput(f"k must be at least 1, got {k}")
    overlap: list[float] = []
    gained: Counter[str] = Counter()
    lost: Counter[str] = Counter()
    info: dict[str, tuple[str, str]] = {}
    for items_a, items_b in zip(lists_a, lists_b, strict=True):
        ids_a = [r.place_id for r in items_a[:k]]
        ids_b = [r.place_id for r in items_b[:k]]
        overlap.append(overlap_at_k(ids_a, ids_b, k))
        for r in (*items_a[:k], *items_b[:k]):
            info.setdefault(r.place_id, (r.name, r.category))
        gained.update(set(ids_b) - set(ids_a))
        lost.update(set(ids_a) - set(ids_b))

    def changes(counter: Counter[str]) -> list[PlaceChange]:
        ranked = sorted(counter.items(), key=lambda kv: (-kv[1], info[kv[0]][0], kv[0]))
        return [PlaceChange(pid, *info[pid], users=n) for pid, n in ranked[:top]]

    return ListDiff(
        label_a,
        label_b,
        k,
        len(lists_a),
        overlap,
        changes(gained),
        changes(lost),
        {label_a: category_mix(lists_a, k), label_b: category_mix(lists_b, k)},
        {
            label_a: sum(len(items) < k for items in lists_a),
            label_b: sum(len(items) < k for items in lists_b),
        },
    )


def recommend_sample(
    model: str, version: str | None, sample: UserSample, k: int
) -> list[list[Any]]:
    """One version's top-``k`` lists for every user of the sample (None = production)."""
    from core.serving import predict

    lats, lngs = sample.lats.tolist(), sample.lngs.tolist()
    return list(predict.recommend_batch(model, version, sample.prefs, lats, lngs, k))


def compare_lists(
    model: str,
    version_a: str | None,
    version_b: str | None,
    sample: UserSample,
    *,
    k: int = 10,
    model_b: str | None = None,
) -> ListDiff:
    """Run two versions (of one model, or of two models) on the sample and diff their lists."""
    model_b = model_b or model
    lists_a = recommend_sample(model, version_a, sample, k)
    lists_b = recommend_sample(model_b, version_b, sample, k)
    return list_diff(
        lists_a,
        lists_b,
        k,
        label_a=f"{model}@{version_a or 'production'}",
        label_b=f"{model_b}@{version_b or 'production'}",
    )
