"""What an auditor looks at before approving a version: a stratified sample and warnings.

The sample takes users from every taste segment (culture, foodie, nightlife, …), so a version
that serves the majority well but fails one group is seen failing. The warnings are computed,
not judged: one category filling most lists, a category users ask for that is never shown,
short or single-category lists, lists that ignore the user, a segment served far worse than
the rest. The auditor decides; :func:`core.registry.audit.record_verdict` stores the decision.

:func:`find_warnings` is a pure function of ranked lists; :func:`review` asks
:mod:`core.serving.predict` for the lists first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from core.data.categories import CATEGORIES
from core.errors import BadInput
from core.review.comparison import (
    Ranked,
    UserSample,
    category_mix,
    recommend_sample,
    sample_from_frame,
)

NO_RATINGS = "no ratings"
LIKED = 4.0  # a rating at or above this means the user likes the category


@dataclass(frozen=True)
class Thresholds:
    """When a pattern in the sample's lists becomes a warning."""

    dominant_share: float = 0.35
    """One category filling more than this share of all list slots."""
    single_category_lists: float = 0.2
    """More than this share of lists made of one category only."""
    identical_lists: float = 0.8
    """More than this share of users at one location getting the same list."""
    segment_ratio: float = 0.5
    """A segment's liked-category share below this fraction of the overall share."""


@dataclass(frozen=True)
class Finding:
    """One automatic warning (or note) about the sample's lists, with its figures."""

    kind: str
    severity: Literal["warning", "info"]
    message: str
    figures: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "severity": self.severity,
            "message": self.message,
            "figures": self.figures,
        }


def _count(n: int, one: str, many: str) -> str:
    """``1 category``, ``3 categories``: findings are read by people."""
    return f"{n} {one if n == 1 else many}"


def stratified_sample(
    frame: pd.DataFrame, per_segment: int, *, seed: int = 0, source: str = ""
) -> UserSample:
    """Up to ``per_segment`` users of every taste segment, drawn with a seed.

    Segments come from :func:`core.data.generator.taste_segment` (the archetype a user's ratings
    match best); users who rated nothing form their own segment.
    """
    from core.data.generator import taste_segment

    if per_segment < 1:
        raise BadInput(f"users per segment must be at least 1, got {per_segment}")
    if frame.empty:
        raise BadInput(f"{source or 'the users frame'} has no users to sample")
    ratings = frame[list(CATEGORIES)].to_numpy(dtype=np.float64)
    segments = np.where((ratings > 0).any(axis=1), taste_segment(ratings), NO_RATINGS)
    rng = np.random.default_rng(seed)
    rows: list[int] = []
    labels: list[str] = []
    for segment in sorted(set(segments.tolist())):
        members = np.flatnonzero(segments == segment)
        chosen = np.sort(rng.choice(members, size=min(per_segment, len(members)), replace=False))
        rows.extend(chosen.tolist())
        labels.extend([segment] * len(chosen))
    return sample_from_frame(frame.iloc[rows], seed=seed, source=source, segments=labels)


def _liked_share(prefs: np.ndarray, items: Sequence[Ranked], k: int) -> float | None:
    """Share of a list's slots in categories the user rated ``LIKED`` or more (None: no likes)."""
    liked = {CATEGORIES[i] for i in np.flatnonzero(prefs >= LIKED)}
    if not liked or not items:
        return None
    top = items[:k]
    return sum(r.category in liked for r in top) / len(top)


def segment_summary(sample: UserSample, lists: Sequence[Sequence[Ranked]], k: int) -> pd.DataFrame:
    """Per segment: users, mean list length, distinct categories, liked share, top category."""
    segments = sample.segments or ["all"] * len(sample)
    rows = []
    for segment in dict.fromkeys(segments):
        idx = [i for i, s in enumerate(segments) if s == segment]
        seg_lists = [lists[i] for i in idx]
        found = [_liked_share(sample.prefs[i], lists[i], k) for i in idx]
        shares = [s for s in found if s is not None]
        mix = category_mix(seg_lists, k)
        rows.append(
            {
                "segment": segment,
                "users": len(idx),
                "mean length": float(np.mean([len(x[:k]) for x in seg_lists])),
                "distinct categories": float(
                    np.mean([len({r.category for r in x[:k]}) for x in seg_lists])
                ),
                "liked-category share": float(np.mean(shares)) if shares else np.nan,
                "top category": max(mix, key=mix.__getitem__) if mix else "",
            }
        )
    return pd.DataFrame(rows)


def find_warnings(
    sample: UserSample,
    lists: Sequence[Sequence[Ranked]],
    k: int,
    thresholds: Thresholds | None = None,
) -> list[Finding]:
    """The automatic warnings about one version's lists for the sample, most serious first."""
    t = thresholds or Thresholds()
    if len(lists) != len(sample):
        raise BadInput(f"got lists for {len(lists)} users, the sample has {len(sample)}")
    findings: list[Finding] = []
    n = len(lists)
    if n == 0:
        return findings
    mix = category_mix(lists, k)

    for category, share in sorted(mix.items(), key=lambda kv: -kv[1]):
        if share > t.dominant_share:
            findings.append(
                Finding(
                    "dominant_category",
                    "warning",
                    f"'{category}' fills {share:.0%} of all recommended places "
                    f"(threshold {t.dominant_share:.0%})",
                    {"category": category, "share": share, "threshold": t.dominant_share},
                )
            )

    never = [c for c in CATEGORIES if c not in mix]
    liked_counts = (sample.prefs >= LIKED).sum(axis=0)
    wanted = {c: int(liked_counts[i]) for i, c in enumerate(CATEGORIES) if c in never}
    asked = {c: users for c, users in wanted.items() if users > 0}
    if asked:
        listing = ", ".join(
            f"'{c}' ({u} user{'' if u == 1 else 's'})"
            for c, u in sorted(asked.items(), key=lambda x: -x[1])
        )
        findings.append(
            Finding(
                "category_never_recommended",
                "warning",
                f"{_count(len(asked), 'category', 'categories')} liked by users in the sample "
                f"{'is' if len(asked) == 1 else 'are'} never recommended: " + listing,
                {"categories": asked},
            )
        )
    unasked = [c for c in never if c not in asked]
    if unasked:
        findings.append(
            Finding(
                "category_never_recommended",
                "info",
                f"{_count(len(unasked), 'category', 'categories')} never "
                f"{'appears' if len(unasked) == 1 else 'appear'} "
                "(no user in the sample likes them): " + ", ".join(f"'{c}'" for c in unasked),
                {"categories": unasked},
            )
        )

    empty = [sample.user_ids[i] for i, items in enumerate(lists) if not items]
    short = [sample.user_ids[i] for i, items in enumerate(lists) if 0 < len(items) < k]
    if empty:
        findings.append(
            Finding(
                "empty_lists",
                "warning",
                f"{len(empty)} of {n} users get no recommendation at all",
                {"users": len(empty), "examples": empty[:5]},
            )
        )
    if short:
        findings.append(
            Finding(
                "short_lists",
                "warning",
                f"{len(short)} of {n} users get fewer than {k} places",
                {"users": len(short), "examples": short[:5]},
            )
        )

    single = [
        i
        for i, items in enumerate(lists)
        if len(items) > 1 and len({r.category for r in items[:k]}) == 1
    ]
    if single and len(single) / n > t.single_category_lists:
        findings.append(
            Finding(
                "single_category_lists",
                "warning",
                f"{len(single) / n:.0%} of lists hold one category only "
                f"(threshold {t.single_category_lists:.0%})",
                {"share": len(single) / n, "examples": [sample.user_ids[i] for i in single[:5]]},
            )
        )

    findings.extend(_identical_lists(sample, lists, k, t))
    findings.extend(_segment_gaps(sample, lists, k, t))
    order = {"warning": 0, "info": 1}
    return sorted(findings, key=lambda f: order[f.severity])


def _identical_lists(
    sample: UserSample, lists: Sequence[Sequence[Ranked]], k: int, t: Thresholds
) -> list[Finding]:
    """Users standing in the same place who nevertheless get the same list: no personalisation."""
    same = total = 0
    for place in sorted(set(sample.places)):
        idx = [i for i, p in enumerate(sample.places) if p == place and lists[i]]
        if len(idx) < 2:
            continue
        keys = Counter(tuple(r.place_id for r in lists[i][:k]) for i in idx)
        same += keys.most_common(1)[0][1]
        total += len(idx)
    if total == 0 or same / total <= t.identical_lists:
        return []
    return [
        Finding(
            "not_personalised",
            "warning",
            f"{same / total:.0%} of users at the same location get the same list "
            f"(threshold {t.identical_lists:.0%}): the lists barely depend on the user",
            {"share": same / total, "threshold": t.identical_lists},
        )
    ]


def _segment_gaps(
    sample: UserSample, lists: Sequence[Sequence[Ranked]], k: int, t: Thresholds
) -> list[Finding]:
    if not sample.segments:
        return []
    summary = segment_summary(sample, lists, k)
    overall_shares = [_liked_share(sample.prefs[i], lists[i], k) for i in range(len(lists))]
    known = [s for s in overall_shares if s is not None]
    if not known:
        return []
    overall = float(np.mean(known))
    out = []
    for row in summary.to_dict("records"):
        share = row["liked-category share"]
        if overall > 0 and not np.isnan(share) and share < t.segment_ratio * overall:
            out.append(
                Finding(
                    "segment_underserved",
                    "warning",
                    f"segment '{row['segment']}' gets {share:.0%} of its places in categories "
                    f"it likes, against {overall:.0%} over all users",
                    {"segment": row["segment"], "share": share, "overall": overall},
                )
            )
    return out


@dataclass(frozen=True)
class AuditReview:
    """A version's lists for a stratified sample, and what stands out in them."""

    model: str
    version: str | None
    k: int
    sample: UserSample
    lists: list[list[Any]]
    findings: list[Finding]
    segments: pd.DataFrame

    def user_frame(self, i: int) -> pd.DataFrame:
        """User ``i``'s list as a table."""
        return pd.DataFrame(
            [
                {
                    "rank": rank,
                    "place": r.name,
                    "category": r.category,
                    "score": float(r.score),
                    "distance (m)": float(getattr(r, "distance_m", np.nan)),
                }
                for rank, r in enumerate(self.lists[i], start=1)
            ],
            columns=["rank", "place", "category", "score", "distance (m)"],
        )

    def liked_categories(self, i: int) -> list[str]:
        return [CATEGORIES[j] for j in np.flatnonzero(self.sample.prefs[i] >= LIKED)]

    def record(self) -> dict[str, Any]:
        """What the auditor saw, stored with the verdict."""
        return {
            **self.sample.describe(),
            "k": self.k,
            "warnings": [f.as_dict() for f in self.findings if f.severity == "warning"],
        }


def review(
    model: str,
    version: str | None,
    sample: UserSample,
    *,
    k: int = 10,
    thresholds: Thresholds | None = None,
) -> AuditReview:
    """Recommend for every user of the sample with one version and look for warnings."""
    lists = [list(x) for x in recommend_sample(model, version, sample, k)]
    return AuditReview(
        model,
        version,
        k,
        sample,
        lists,
        find_warnings(sample, lists, k, thresholds),
        segment_summary(sample, lists, k),
    )
