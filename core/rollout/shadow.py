"""Shadow evaluation: what a staging version would have shown the users production served.

The API scores a sample of live requests with the staging version off the response path
(``api.shadow``) and stores, per request, the comparison with what production returned:

- ``overlap``: overlap@k, the share of production's k places the candidate also shows;
- ``gained`` / ``lost``: the places the candidate would show that production did not, and
  those it would no longer show;
- ``category_shift``: the total-variation distance between the two lists' category mixes
  (0: the same mix, 1: no category in common);
- the candidate's own ranking latency.

The model's ``settings["shadow"]`` says how much to sample: ``{"rate": 0.1}`` (default 0,
off). Scores live in ``shadow_results``, apart from the prediction log, so that the
monitoring job, the rollups and the A/B readout never count them as served traffic.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, cast

import numpy as np
from sqlalchemy import Table, insert, select

from core import registry
from core.accounts.auth import Actor
from core.db import transaction, utcnow
from core.db.tables import ShadowResultRow
from core.errors import BadInput

MAX_RATE = 1.0


@dataclass(frozen=True)
class Comparison:
    overlap: float
    gained: list[str]
    lost: list[str]
    category_shift: float


def compare(
    production_places: Sequence[str],
    production_categories: Sequence[str],
    shadow_places: Sequence[str],
    shadow_categories: Sequence[str],
    k: int,
) -> Comparison:
    """Compare two ranked lists of one request (see the module docstring)."""
    prod, cand = list(production_places[:k]), list(shadow_places[:k])
    prod_set, cand_set = set(prod), set(cand)
    overlap = len(prod_set & cand_set) / max(len(prod), 1) if prod else float(not cand)
    return Comparison(
        overlap,
        [p for p in cand if p not in prod_set],
        [p for p in prod if p not in cand_set],
        category_shift(production_categories[:k], shadow_categories[:k]),
    )


def category_shift(a: Sequence[str], b: Sequence[str]) -> float:
    """Total-variation distance between the category shares of two lists."""
    if not a and not b:
        return 0.0
    if not a or not b:
        return 1.0
    ca, cb = Counter(a), Counter(b)
    return 0.5 * sum(abs(ca[c] / len(a) - cb[c] / len(b)) for c in set(ca) | set(cb))


@dataclass(frozen=True)
class ShadowScore:
    """One live request scored by the shadow version."""

    ts: dt.datetime
    model: str
    production_version: str
    shadow_version: str
    request_id: str
    k: int
    overlap: float
    gained: list[str]
    lost: list[str]
    category_shift: float
    production_categories: list[str]
    shadow_categories: list[str]
    latency_ms: float
    error: str | None = None


def store(scores: Sequence[ShadowScore]) -> int:
    """Insert a batch in one transaction; returns how many."""
    if not scores:
        return 0
    with transaction() as s:
        s.execute(insert(cast(Table, ShadowResultRow.__table__)), [asdict(x) for x in scores])
    return len(scores)


def rate_of(settings: Mapping[str, Any] | None) -> float:
    """The sampled share of a model's production requests (0 when unset or malformed)."""
    shadow = (settings or {}).get("shadow") or {}
    try:
        rate = float(shadow.get("rate", 0.0)) if isinstance(shadow, Mapping) else 0.0
    except (TypeError, ValueError):
        return 0.0
    return min(max(rate, 0.0), MAX_RATE) if rate == rate else 0.0


def set_rate(*, actor: Actor, model: str, rate: float) -> float:
    """Sample ``rate`` of production's requests for the staging version (operator)."""
    if not (isinstance(rate, int | float) and 0 <= rate <= MAX_RATE):
        raise BadInput(f"shadow rate must be between 0 and {MAX_RATE}, got {rate}")
    registry.update_model(actor=actor, name=model, settings={"shadow": {"rate": float(rate)}})
    return float(rate)


@dataclass(frozen=True)
class Summary:
    """The shadow comparison of one shadow version over a period."""

    model: str
    shadow_version: str | None
    production_versions: list[str]
    requests: int
    errors: int
    overlap_mean: float
    gained_mean: float
    lost_mean: float
    category_shift_mean: float
    latency_p50_ms: float
    latency_p95_ms: float
    top_gained: list[tuple[str, int]]
    top_lost: list[tuple[str, int]]
    category_mix: dict[str, dict[str, float]]  # category -> {"production": share, "shadow": share}


def summary(
    model: str,
    *,
    since: dt.datetime | None = None,
    shadow_version: str | None = None,
    limit: int = 20_000,
) -> Summary:
    """Aggregate the latest ``limit`` scores since ``since`` (default: 24 hours) of
    ``shadow_version`` (default: the one scored most recently)."""
    since = since or utcnow() - dt.timedelta(hours=24)
    t = ShadowResultRow
    with transaction(write=False) as s:
        if shadow_version is None:
            shadow_version = s.scalar(
                select(t.shadow_version).where(t.model == model).order_by(t.id.desc()).limit(1)
            )
        rows = (
            s.execute(
                select(
                    t.production_version, t.overlap, t.gained, t.lost, t.category_shift,
                    t.production_categories, t.shadow_categories, t.latency_ms, t.error,
                )
                .where(t.model == model, t.shadow_version == shadow_version, t.ts >= since)
                .order_by(t.id.desc())
                .limit(limit)
            ).all()
            if shadow_version is not None
            else []
        )  # fmt: skip
    ok = [r for r in rows if r.error is None]
    gained: Counter[str] = Counter()
    lost: Counter[str] = Counter()
    mix: dict[str, Counter[str]] = {"production": Counter(), "shadow": Counter()}
    for r in ok:
        gained.update(r.gained)
        lost.update(r.lost)
        mix["production"].update(r.production_categories)
        mix["shadow"].update(r.shadow_categories)
    totals = {side: sum(c.values()) or 1 for side, c in mix.items()}
    categories = sorted(set(mix["production"]) | set(mix["shadow"]))
    latency = np.asarray([r.latency_ms for r in ok], dtype=float)

    def mean(values: list[float]) -> float:
        return float(np.mean(values)) if values else float("nan")

    return Summary(
        model=model,
        shadow_version=shadow_version,
        production_versions=sorted({r.production_version for r in rows}),
        requests=len(rows),
        errors=len(rows) - len(ok),
        overlap_mean=mean([r.overlap for r in ok]),
        gained_mean=mean([len(r.gained) for r in ok]),
        lost_mean=mean([len(r.lost) for r in ok]),
        category_shift_mean=mean([r.category_shift for r in ok]),
        latency_p50_ms=float(np.percentile(latency, 50)) if len(latency) else float("nan"),
        latency_p95_ms=float(np.percentile(latency, 95)) if len(latency) else float("nan"),
        top_gained=gained.most_common(10),
        top_lost=lost.most_common(10),
        category_mix={
            c: {side: mix[side][c] / totals[side] for side in ("production", "shadow")}
            for c in categories
        },
    )


def _score(row: ShadowResultRow) -> ShadowScore:
    return ShadowScore(
        row.ts, row.model, row.production_version, row.shadow_version, row.request_id, row.k,
        row.overlap, list(row.gained), list(row.lost), row.category_shift,
        list(row.production_categories), list(row.shadow_categories), row.latency_ms, row.error,
    )  # fmt: skip


def recent(model: str, *, limit: int = 50) -> list[ShadowScore]:
    """The latest scores of ``model``, newest first: what the candidate would have shown."""
    t = ShadowResultRow
    with transaction(write=False) as s:
        rows = s.scalars(select(t).where(t.model == model).order_by(t.id.desc()).limit(limit))
        return [_score(r) for r in rows]


def score_of(request_id: str) -> ShadowScore | None:
    """The shadow score of one served request, if it was sampled."""
    t = ShadowResultRow
    with transaction(write=False) as s:
        row = s.scalar(select(t).where(t.request_id == request_id).limit(1))
        return None if row is None else _score(row)
